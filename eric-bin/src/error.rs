//! The error type of the `eric` binary: what stops `eric serve`, a client
//! subcommand or a load run.

use std::path::PathBuf;

/// `Result` with [`Error`].
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop the binary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The server could not start or serve.
    #[error(transparent)]
    Server(#[from] eric_server::Error),

    /// The `--token` cannot be sent as an HTTP header.
    #[error("invalid token: it holds characters an HTTP header cannot")]
    InvalidToken,

    /// A client subcommand sent something the broker's types refuse.
    #[error(transparent)]
    Core(#[from] eric_core::Error),

    /// A client subcommand or a load run could not reach the server, or
    /// read its answer.
    #[error("request to {url} failed: {source}")]
    Request {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },

    /// A client subcommand got an error answer; or a load run got an
    /// unexpected status, or a stream that ended or carried something the
    /// run did not produce.
    #[error("{url} answered {status}: {body}")]
    Answer {
        /// The URL.
        url: String,
        /// The HTTP status (200 for a stream that went wrong midway).
        status: u16,
        /// The error body, or what was wrong with the stream.
        body: String,
    },

    /// A client subcommand could not write its output (a full disk, a
    /// terminal gone); a reader closing the pipe is not this error.
    #[error("cannot write to stdout: {source}")]
    Output {
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// A load run's connection outside the HTTP client (a pipelined TCP connection, the
    /// Unix socket) failed.
    #[error("{target}: {action} failed: {source}")]
    Io {
        /// The address or socket path.
        target: String,
        /// What was being done ("connect", "write", ...).
        action: &'static str,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// A peer of a load run answered something the protocol does not allow
    /// here.
    #[error("{target} answered {answer:?}, expected {expected}")]
    Unexpected {
        /// The address or socket path.
        target: String,
        /// The answer (shortened).
        answer: String,
        /// What was expected.
        expected: &'static str,
    },

    /// A load run's measured process's `/proc` files cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Proc {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// A load run's measured process's `/proc` files have an unknown shape.
    #[error("cannot parse {}: {reason}", path.display())]
    ProcFormat {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: &'static str,
    },

    /// This process may not open enough files for a load run.
    #[error("open files limit is {limit}, the run needs {needed} (raise `ulimit -Hn`)")]
    FileLimit {
        /// The limit obtained.
        limit: u64,
        /// What the run needs.
        needed: u64,
    },

    /// Something a load run waits for did not happen in time.
    #[error("{what} did not happen within {secs} s")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline, in seconds.
        secs: u64,
    },
}

impl Error {
    /// An [`Error::Request`] for `url`, for `map_err`.
    pub(crate) fn request(url: impl Into<String>) -> impl FnOnce(reqwest::Error) -> Self {
        let url = url.into();
        move |source| Self::Request { url, source }
    }

    /// An [`Error::Io`] for `target` while doing `action`, for `map_err`.
    pub(crate) fn io(
        target: impl Into<String>,
        action: &'static str,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let target = target.into();
        move |source| Self::Io {
            target,
            action,
            source,
        }
    }
}
