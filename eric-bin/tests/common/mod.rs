//! The `eric` binary as the tests run it: a command for a server URL with
//! none of the caller's `ERIC_*` client settings, and its run to completion
//! under a deadline.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::time::timeout;

/// Longest wait for anything; a healthy run takes a fraction of it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// What a finished `eric` run left.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// `eric --url URL ARGS...`, without the environment's `ERIC_URL`,
/// `ERIC_TOKEN` or `ERIC_CA_FILE` (a test sets what it means to).
pub fn command(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eric"));
    command
        .arg("--url")
        .arg(url)
        .args(args)
        .env_remove("ERIC_URL")
        .env_remove("ERIC_TOKEN")
        .env_remove("ERIC_CA_FILE")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs `command` to completion.
pub async fn run(mut command: Command) -> Run {
    let output = timeout(DEADLINE, command.output())
        .await
        .unwrap_or_else(|_| panic!("{command:?} did not finish"))
        .unwrap();
    Run {
        code: output.status.code(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}
