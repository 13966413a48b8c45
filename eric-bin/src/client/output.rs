//! Where the client subcommands write: results to stdout, notes to stderr.
//!
//! Results are plain ids or one JSON value per line, so scripts can read
//! them. Each line is flushed at once: a reader piping `eric listen` sees
//! every event as it arrives.
//!
//! A reader that goes away (`eric listen ... | head -3`) closes the pipe;
//! Rust ignores `SIGPIPE`, so the next write fails with `BrokenPipe`. That
//! is the reader saying "enough", not an error: the command ends quietly
//! ([`ControlFlow::Break`]). As with `tail -f`, a stream notices at its
//! next event: watching the pipe itself needs `unsafe` file-descriptor
//! registration, which this workspace forbids. Any other write failure (a
//! full disk) is [`Error::Output`]: the command fails, as what it was asked
//! to deliver was not delivered.
//!
//! Writes go through tokio's stdout, which runs them on the blocking pool:
//! a slow reader holds back the command (that is the backpressure we want)
//! but never a runtime worker.

use std::io::{ErrorKind, Write as _};
use std::ops::ControlFlow;

use serde::Serialize;
use tokio::io::AsyncWriteExt as _;

use crate::error::{Error, Result};

/// Whether the command may go on writing (`Break` once stdout is closed).
pub(super) type Flow = ControlFlow<()>;

/// Writes `text` and a line break to stdout.
pub(super) async fn line(text: &str) -> Result<Flow> {
    let mut buffer = Vec::with_capacity(text.len() + 1);
    buffer.extend_from_slice(text.as_bytes());
    buffer.push(b'\n');
    let mut out = tokio::io::stdout();
    let written = match out.write_all(&buffer).await {
        Ok(()) => out.flush().await,
        Err(error) => Err(error),
    };
    match written {
        Ok(()) => Ok(Flow::Continue(())),
        Err(error) if error.kind() == ErrorKind::BrokenPipe => Ok(Flow::Break(())),
        Err(source) => Err(Error::Output { source }),
    }
}

/// Writes `value` as one line of compact JSON.
pub(super) async fn json_line(value: &impl Serialize) -> Result<Flow> {
    // Our values are JSON trees or plain structs, whose encoding cannot
    // fail; were it to, the caller gets an output error, not a panic.
    let text = serde_json::to_string(value).map_err(|e| Error::Output { source: e.into() })?;
    line(&text).await
}

/// Writes a diagnostic line (`eric: ...`) to stderr; failures to do so are
/// ignored, as there is nowhere left to report them. Synchronous, as the
/// logs are: notes are rare and short, and stderr is unbuffered.
pub(super) fn note(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "eric: {text}");
}
