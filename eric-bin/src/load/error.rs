//! [`LoadError`]: why a load run stopped.
//!
//! The tool keeps its own error type so each failure names what was being
//! driven (a URL, a socket path, a pid); [`crate::Error::Load`] carries it
//! out of [`super::run`].

use std::path::PathBuf;

/// `Result` with [`LoadError`].
pub(crate) type LoadResult<T> = std::result::Result<T, LoadError>;

/// What can stop a load run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// An HTTP request could not be made or its answer not read.
    #[error("request to {url} failed: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },

    /// The server answered with an unexpected status, or a stream ended or
    /// carried something the run did not produce.
    #[error("{url} answered {status}: {body}")]
    Answer {
        /// The URL.
        url: String,
        /// The HTTP status (200 for a stream that went wrong midway).
        status: u16,
        /// The body, or what was wrong with the stream.
        body: String,
    },

    /// A connection outside the HTTP client (a pipelined TCP connection, the
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

    /// A peer answered something the protocol does not allow here.
    #[error("{target} answered {answer:?}, expected {expected}")]
    Unexpected {
        /// The address or socket path.
        target: String,
        /// The answer (shortened).
        answer: String,
        /// What was expected.
        expected: &'static str,
    },

    /// The measured process's `/proc` files cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Proc {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The measured process's `/proc` files have an unknown shape.
    #[error("cannot parse {}: {reason}", path.display())]
    ProcFormat {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: &'static str,
    },

    /// This process may not open enough files for the run.
    #[error("open files limit is {limit}, the run needs {needed} (raise `ulimit -Hn`)")]
    FileLimit {
        /// The limit obtained.
        limit: u64,
        /// What the run needs.
        needed: u64,
    },

    /// Something the run waits for did not happen in time.
    #[error("{what} did not happen within {secs} s")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline, in seconds.
        secs: u64,
    },
}

impl LoadError {
    /// An [`LoadError::Http`] for `url`.
    pub(crate) fn http(url: impl Into<String>) -> impl FnOnce(reqwest::Error) -> Self {
        let url = url.into();
        move |source| Self::Http { url, source }
    }

    /// An [`LoadError::Io`] for `target`.
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
