//! # eric-bin
//!
//! The `eric` binary: parses the command line and hands over to the server
//! library (`eric serve`), to its client subcommands (over `eric-client`),
//! or to the load tool (`eric-load`).
//!
//! ## Layout
//!
//! - `cli`: the clap command line and `eric serve` / `eric config` /
//!   `eric health` / `eric completions`.
//! - `client`: the client subcommands and how they print.
//! - `migrate`: `eric export` / `eric import` (JSON lines between engines).
//! - `shutdown`, `telemetry`: signals and logging.
//! - `error`: the binary's `Error`.

use std::process::ExitCode;

use clap::Parser;

mod cli;
mod client;
mod error;
mod migrate;
mod shutdown;
mod telemetry;

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
