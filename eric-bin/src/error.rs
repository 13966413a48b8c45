//! The error type of the `eric` binary: what stops `eric serve`, a client
//! subcommand or a load run.

/// `Result` with [`Error`].
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop the binary.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The server could not start or serve.
    #[error(transparent)]
    Server(#[from] eric_server::Error),

    /// A client subcommand's call or stream failed (the server unreachable,
    /// its refusal with its error code, a stream that broke off).
    #[error(transparent)]
    Client(#[from] eric_client::Error),

    /// A load run failed.
    #[error(transparent)]
    Load(#[from] eric_load::Error),

    /// An argument the server would refuse (an id, a message type, a
    /// PAYLOAD that is not JSON), refused before any request.
    #[error(transparent)]
    Argument(#[from] eric_core::Error),

    /// A client subcommand could not write its output (a full disk, a
    /// terminal gone); a reader closing the pipe is not this error.
    #[error("cannot write to stdout: {source}")]
    Output {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
