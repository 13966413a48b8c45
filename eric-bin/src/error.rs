//! The one error type of `eric-bin` (start-up, serving, the client
//! subcommands). Request-level errors are [`eric_core::Error`]s, mapped to
//! HTTP in `http::error` and to the socket protocol in `socket::protocol`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop the binary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The config file cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The config file is not valid TOML for the config.
    #[error("invalid config file {}: {source}", path.display())]
    ConfigParse {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: toml::de::Error,
    },

    /// The settings, once layered, are invalid.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong (names the setting).
        reason: String,
    },

    /// The HTTP address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The Unix socket cannot be created or secured.
    #[error("cannot serve on socket {}: {source}", path.display())]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The engine or a broker operation failed.
    #[error(transparent)]
    Core(#[from] eric_core::Error),

    /// The Redis engine could not be set up.
    #[error(transparent)]
    Redis(#[from] eric_redis::Error),

    /// A client subcommand could not reach the server.
    #[error("request to {url} failed: {source}")]
    Request {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },

    /// A client subcommand got an error answer.
    #[error("{url} answered {status}: {body}")]
    Answer {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The error body.
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

    /// A load run (`eric load`) failed.
    #[error("eric load: {0}")]
    Load(#[from] crate::load::LoadError),
}
