//! The `eric` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // One readable line, not a panic or a debug dump.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("eric: {error}");
            }
            ExitCode::FAILURE
        }
    }
}
