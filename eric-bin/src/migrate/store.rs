//! [`Store`]: the engine an export reads or an import writes, opened from
//! the command line's [`Source`].

use std::path::PathBuf;

use eric_core::MemoryEngine;
use eric_disk::{DiskConfig, DiskEngine};
use eric_redis::{RedisConfig, RedisEngine};

use crate::error::{Error, Result};

/// Which store a command reads or writes.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A data directory (the disk engine's).
    Disk(PathBuf),
    /// A Redis, with the key prefix of its eric data.
    Redis { url: String, prefix: Option<String> },
}

/// An opened store.
pub(crate) enum Store {
    Disk(DiskEngine),
    Redis(RedisEngine),
}

impl Store {
    /// Opens `source`. A data directory must exist (`create`: or is made)
    /// and be free: a running server holds its lock.
    pub(crate) async fn open(source: Source, create: bool) -> Result<Self> {
        match source {
            Source::Disk(dir) => {
                let config = DiskConfig::new(&dir);
                if !create && !config.data_file().is_file() {
                    return Err(Error::NoData { dir });
                }
                let opened = tokio::task::spawn_blocking(move || {
                    DiskEngine::open(config, MemoryEngine::new())
                })
                .await
                .map_err(|e| Error::storage("opening the data directory", e))?;
                match opened {
                    Ok(engine) => Ok(Self::Disk(engine)),
                    Err(source @ eric_disk::Error::Locked { .. }) => Err(Error::DirectoryInUse {
                        dir,
                        source: Box::new(source),
                    }),
                    Err(source) => Err(Error::Disk(Box::new(source))),
                }
            }
            Source::Redis { url, prefix } => {
                let mut config = RedisConfig::with_url(url);
                if let Some(prefix) = prefix {
                    config = config.with_prefix(prefix);
                }
                let engine = RedisEngine::connect(config)?;
                engine.check_server().await?;
                Ok(Self::Redis(engine))
            }
        }
    }

    /// Writes what is buffered and lets go of the store (a data directory's
    /// file is synced and its lock released).
    pub(crate) async fn close(self) -> Result<()> {
        match self {
            // Every write awaited its commit already (and failed there if
            // it did); this syncs the file and releases the lock.
            Self::Disk(engine) => tokio::task::spawn_blocking(move || engine.close())
                .await
                .map_err(|e| Error::storage("closing the data directory", e)),
            Self::Redis(engine) => {
                engine.shutdown();
                Ok(())
            }
        }
    }
}
