//! [`Error`]: what stops a load run.

use std::path::PathBuf;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop a load run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `/v1` call or stream (set-up, dispatch, SSE) failed: the server
    /// could not be reached, refused, or a stream broke off.
    #[error(transparent)]
    Client(#[from] eric_client::Error),

    /// A plain HTTP request or stream of the neutral modes (`peer`) failed.
    /// The line gives the causes too (`invalid peer certificate:
    /// UnknownIssuer`), which reqwest's own line leaves out.
    #[error("{url}: {}", eric_client::causes(source))]
    Http {
        /// The URL.
        url: String,
        /// The cause (without the URL, which `url` holds).
        #[source]
        source: reqwest::Error,
    },

    /// A stream of the neutral modes (`peer`) is not well-formed SSE, or
    /// broke off while being read.
    #[error("{url}: {source}")]
    Sse {
        /// The stream's URL.
        url: String,
        /// The cause.
        #[source]
        source: eventsource_stream::EventStreamError<reqwest::Error>,
    },

    /// A connection the tool drives itself (a pipelined TCP connection, the
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

    /// A peer answered something the run does not allow here.
    #[error("{target} answered {answer:?}, expected {expected}")]
    Unexpected {
        /// The address, URL or socket path.
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

    /// Options that do not fit together (checked before anything is sent).
    #[error("{option}: {reason}")]
    Usage {
        /// The option at fault, as written on the command line.
        option: &'static str,
        /// What is wrong with it.
        reason: String,
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

impl Error {
    /// An [`Error::Http`] for `url`, for `map_err`.
    pub(crate) fn http(url: impl Into<String>) -> impl FnOnce(reqwest::Error) -> Self {
        let url = url.into();
        // The line names the URL once, not again in reqwest's words.
        move |source| Self::Http {
            url,
            source: source.without_url(),
        }
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
