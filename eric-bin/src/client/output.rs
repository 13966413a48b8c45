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
//! registration, which this workspace forbids.

use std::io::Write as _;
use std::ops::ControlFlow;

use serde::Serialize;

/// Whether the command may go on writing (`Break` once stdout is closed).
pub(super) type Flow = ControlFlow<()>;

/// Writes `text` and a line break to stdout.
pub(super) fn line(text: &str) -> Flow {
    let mut out = std::io::stdout().lock();
    let written = writeln!(out, "{text}").and_then(|()| out.flush());
    match written {
        Ok(()) => Flow::Continue(()),
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Flow::Break(()),
        Err(error) => {
            // A full disk or a closed terminal: say so once and stop, as
            // nothing more can be delivered.
            note(&format!("cannot write to stdout: {error}"));
            Flow::Break(())
        }
    }
}

/// Writes `value` as one line of compact JSON.
pub(super) fn json_line(value: &impl Serialize) -> Flow {
    match serde_json::to_string(value) {
        Ok(text) => line(&text),
        // Our values are JSON trees or plain structs: this cannot fail, and
        // if it did, a note beats a panic.
        Err(error) => {
            note(&format!("cannot encode the output as JSON: {error}"));
            Flow::Break(())
        }
    }
}

/// Writes a diagnostic line (`eric: ...`) to stderr; failures to do so are
/// ignored, as there is nowhere left to report them.
pub(super) fn note(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "eric: {text}");
}
