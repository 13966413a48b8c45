//! The one error type of `eric-disk`, and how it becomes an
//! [`eric_core::Error`].
//!
//! Opening names the file or directory at fault: a directory that cannot
//! be made, one another process holds, a data file that fails its
//! integrity check. Once open, a failed write stops the engine's writes
//! (the state in memory is then ahead of the file, so the file stays the
//! truth a restart loads): every later write is refused as
//! [`eric_core::Error::Unavailable`], a full disk as
//! [`eric_core::Error::StorageFull`].

use std::io;
use std::path::PathBuf;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the disk engine can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The data directory could not be created or its lock file opened.
    #[error("cannot use data directory {path}: {source}")]
    Directory {
        /// The directory or file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },

    /// Another process holds the data directory.
    #[error(
        "data directory {dir} is in use by another process (it holds the lock on {lock}); \
         one eric process per data directory"
    )]
    Locked {
        /// The directory.
        dir: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },

    /// The data file failed its integrity check: it was changed outside
    /// eric, or the disk lost writes it had confirmed.
    #[error(
        "data file {path} is corrupted ({detail}); it was left as it is: \
         restore the data directory from a copy taken while eric was stopped, \
         or move the file away to start empty"
    )]
    Corrupted {
        /// The file.
        path: PathBuf,
        /// What the check found.
        detail: String,
    },

    /// The data file could not be opened or read.
    #[error("data file {path}: {source}")]
    Store {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: redb::Error,
    },

    /// A stored record could not be decoded.
    #[error("data file {path}: unreadable {what} record: {source}")]
    Record {
        /// The file.
        path: PathBuf,
        /// Which kind of record.
        what: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },

    /// An earlier write failed, so this engine writes no more until it is
    /// restarted.
    #[error("the disk engine stopped writing after an error: {reason}")]
    Stopped {
        /// The first error.
        reason: String,
    },
}

impl Error {
    /// A [`Error::Store`] for `path`.
    pub(crate) fn store(path: &std::path::Path, source: impl Into<redb::Error>) -> Self {
        let source = source.into();
        if let redb::Error::Corrupted(detail) = &source {
            return Self::Corrupted {
                path: path.to_owned(),
                detail: detail.clone(),
            };
        }
        Self::Store {
            path: path.to_owned(),
            source,
        }
    }

    /// Whether the disk is full (`ENOSPC`).
    fn disk_full(&self) -> bool {
        const ENOSPC: i32 = 28;
        matches!(self, Self::Store { source: redb::Error::Io(e), .. } if e.raw_os_error() == Some(ENOSPC))
    }

    /// This error as `eric-core` reports it, for `operation`.
    pub(crate) fn into_core(self, operation: &'static str) -> eric_core::Error {
        if self.disk_full() {
            return eric_core::Error::StorageFull {
                backend: "disk",
                operation,
                source: Box::new(self),
            };
        }
        match self {
            Self::Record { .. } | Self::Corrupted { .. } => {
                eric_core::Error::repository(operation, self)
            }
            _ => eric_core::Error::Unavailable {
                backend: "disk",
                operation,
                source: Box::new(self),
            },
        }
    }
}
