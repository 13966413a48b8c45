//! The error type of `eric-server`: what can stop a server from starting
//! or serving. Request-level errors are [`eric_core::Error`]s, mapped to
//! HTTP in `http::error` and to the socket protocol in `socket::protocol`.

use std::net::SocketAddr;
use std::path::PathBuf;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop a server from starting or serving.
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

    /// A setting from one source (file, environment variable) is invalid.
    #[error("invalid configuration from {origin}: {reason}")]
    ConfigValue {
        /// Where the bad value came from.
        origin: ConfigOrigin,
        /// What is wrong (names the setting).
        reason: String,
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

    /// A TLS certificate or key file cannot be read or used: at start (the
    /// server does not start) or on a reload (the previous pair stays).
    #[error("cannot use TLS file {}: {source}", path.display())]
    Tls {
        /// The certificate or key file at fault.
        path: PathBuf,
        /// The cause: the file cannot be read, or (`InvalidData`) holds
        /// no usable PEM certificate or key, or a key that does not
        /// belong to the certificate.
        #[source]
        source: std::io::Error,
    },

    /// The engine or a broker operation failed.
    #[error(transparent)]
    Core(#[from] eric_core::Error),

    /// The Redis engine could not be set up.
    #[error(transparent)]
    Redis(#[from] eric_redis::Error),

    /// The disk engine could not open its data directory.
    #[error(transparent)]
    Disk(#[from] eric_disk::Error),
}

/// Where a setting came from, for errors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigOrigin {
    /// The config file.
    File(PathBuf),
    /// An `ERIC__...` environment variable (its name).
    Env(String),
}

impl std::fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "config file {}", path.display()),
            Self::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}
