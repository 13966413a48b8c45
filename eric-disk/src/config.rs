//! [`DiskConfig`]: where the disk engine stores, and [`Fsync`], how soon
//! a write is on disk.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The file under the data directory that holds everything.
pub const DATA_FILE: &str = "eric.redb";

/// The file under the data directory whose lock marks it in use.
pub const LOCK_FILE: &str = "eric.lock";

/// When a write that answered its caller is on disk, as Redis's
/// `appendfsync`. Every policy survives a clean shutdown whole; they
/// differ in what a crash (of the process or of the machine) can lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Every write is on disk (fsync'd) before it answers: a crash loses
    /// nothing acknowledged. Concurrent writes share one fsync (group
    /// commit).
    Always,
    /// Writes answer once committed to the file, which is fsync'd at most
    /// a second later: a crash loses at most the last second.
    #[default]
    Everysec,
    /// Writes answer once committed to the file, fsync'd every 30 seconds
    /// and at shutdown (the kernel's usual write-back delay): a crash loses
    /// at most the last 30 seconds.
    No,
}

impl Fsync {
    /// How long a committed write may wait for its fsync; `None`: none.
    pub fn delay(self) -> Option<Duration> {
        match self {
            Self::Always => None,
            Self::Everysec => Some(Duration::from_secs(1)),
            Self::No => Some(Duration::from_secs(30)),
        }
    }

    /// The policy's name in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Everysec => "everysec",
            Self::No => "no",
        }
    }
}

impl fmt::Display for Fsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An [`Fsync`] name that is none of `always`, `everysec`, `no`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fsync policy {0:?}: expected always, everysec or no")]
pub struct UnknownFsync(pub String);

impl FromStr for Fsync {
    type Err = UnknownFsync;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Self::Always),
            "everysec" => Ok(Self::Everysec),
            "no" => Ok(Self::No),
            other => Err(UnknownFsync(other.to_owned())),
        }
    }
}

/// Where and how the disk engine stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskConfig {
    /// The data directory (created if missing); one process at a time.
    pub data_dir: PathBuf,
    /// When writes are on disk.
    pub fsync: Fsync,
}

impl DiskConfig {
    /// `data_dir` with the default policy ([`Fsync::Everysec`]).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            fsync: Fsync::default(),
        }
    }

    /// The data file's path.
    pub fn data_file(&self) -> PathBuf {
        self.data_dir.join(DATA_FILE)
    }

    /// The lock file's path.
    pub fn lock_file(&self) -> PathBuf {
        self.data_dir.join(LOCK_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_parse_and_print_their_names() {
        for fsync in [Fsync::Always, Fsync::Everysec, Fsync::No] {
            assert_eq!(fsync.as_str().parse::<Fsync>(), Ok(fsync));
        }
        assert_eq!(
            "sometimes".parse::<Fsync>().unwrap_err().to_string(),
            "unknown fsync policy \"sometimes\": expected always, everysec or no"
        );
    }
}
