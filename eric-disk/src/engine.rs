//! [`DiskEngine`]: the in-memory engine, its state written through to the
//! data file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use eric_core::engine::{InMemoryMemberFactory, InMemoryRegistry};
use eric_core::journal::{Journal, Remembered};
use eric_core::{
    Adapter, ChannelId, ChannelSettings, Engine, InMemoryQueue, MemoryEngine, Observer, Persistence,
};

use crate::config::DiskConfig;
use crate::error::{Error, Result};
use crate::repository::{DiskChannelRepository, DiskMemberRepository};
use crate::store::Store;
use crate::writer::Writer;

/// The disk engine: every read and delivery is the in-memory engine's;
/// every change is also written to one data file by a writer thread, and
/// each write answers once its policy ([`crate::Fsync`]) is met. A start
/// loads everything back ([`DiskEngine::persistence`]).
///
/// Clones share the file and the writer. One process per data directory.
#[derive(Clone)]
pub struct DiskEngine {
    memory: MemoryEngine,
    store: Arc<Store>,
    writer: Arc<Writer>,
    config: Arc<DiskConfig>,
    /// Idempotency keys stored before this start, given to each channel's
    /// registry as it is made, so a retry after a restart is answered as
    /// the first write was.
    remembered: Arc<HashMap<ChannelId, Vec<Remembered>>>,
}

/// What the writer has done, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskStats {
    /// Transactions committed.
    pub commits: u64,
    /// Commits made durable (fsync'd).
    pub syncs: u64,
    /// Changes written.
    pub writes: u64,
    /// Failed commits (the first stops the writer).
    pub errors: u64,
}

impl DiskEngine {
    /// Opens `config`'s data directory (creating it), with `memory` (its
    /// observer and budget) as the working state. Blocks on the disk: the
    /// whole file's integrity is checked.
    pub fn open(config: DiskConfig, memory: MemoryEngine) -> Result<Self> {
        let store = Arc::new(Store::open(&config)?);
        let remembered = Arc::new(store.remembered()?);
        let writer =
            Writer::start(store.clone(), config.fsync).map_err(|source| Error::Directory {
                path: config.data_dir.clone(),
                source,
            })?;
        let writer = Arc::new(writer);
        let journal: Arc<dyn Journal> = writer.clone();
        Ok(Self {
            memory: memory.with_journal(journal),
            store,
            writer,
            config: Arc::new(config),
            remembered,
        })
    }

    /// Another engine on this file and writer, with a working state of its
    /// own (`memory`): what a restarted process would load into, without
    /// giving up the directory's lock. For tests of restoring; both
    /// engines' writes reach the file in the order they are made.
    pub fn sibling(&self, memory: MemoryEngine) -> Self {
        let journal: Arc<dyn Journal> = self.writer.clone();
        Self {
            memory: memory.with_journal(journal),
            store: self.store.clone(),
            writer: self.writer.clone(),
            config: self.config.clone(),
            remembered: self.remembered.clone(),
        }
    }

    /// Where and how it stores.
    pub fn config(&self) -> &DiskConfig {
        &self.config
    }

    /// The data file.
    pub fn data_file(&self) -> &Path {
        self.store.path()
    }

    /// The in-memory engine underneath (its budget).
    pub fn memory(&self) -> &MemoryEngine {
        &self.memory
    }

    /// Channel records in the data file.
    pub fn channel_repository(&self) -> DiskChannelRepository {
        DiskChannelRepository::new(self.store.clone(), self.writer.clone())
    }

    /// Members (listeners, queues, windows) in the data file.
    pub fn member_repository(&self) -> DiskMemberRepository {
        DiskMemberRepository::new(self.store.clone(), self.writer.clone())
    }

    /// Restores and deletes whole channels on the data file.
    pub fn persistence<A: Adapter>(&self) -> Persistence<Self, A> {
        Persistence::new(
            self.clone(),
            Arc::new(self.channel_repository()),
            Arc::new(self.member_repository()),
        )
    }

    /// Why the engine stopped writing, if it did (readiness).
    pub fn failure(&self) -> Option<String> {
        self.writer.failure().map(|reason| reason.to_string())
    }

    /// What the writer has done.
    pub fn stats(&self) -> DiskStats {
        let c = self.writer.counters();
        DiskStats {
            commits: c.commits.load(Ordering::Relaxed),
            syncs: c.syncs.load(Ordering::Relaxed),
            writes: c.ops.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
        }
    }

    /// Commits and syncs what is buffered and stops the writer (shutdown):
    /// later writes fail. Blocks until the file is synced.
    pub fn close(&self) {
        self.writer.close();
    }
}

impl std::fmt::Debug for DiskEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskEngine")
            .field("file", &self.store.path())
            .field("fsync", &self.config.fsync)
            .finish_non_exhaustive()
    }
}

impl Engine for DiskEngine {
    type Queue = InMemoryQueue;
    type Factory = InMemoryMemberFactory;
    type Registry = InMemoryRegistry;

    fn name(&self) -> &'static str {
        "disk"
    }

    fn member_factory(&self, channel: &ChannelId, settings: &ChannelSettings) -> Self::Factory {
        self.memory.member_factory(channel, settings)
    }

    fn registry(&self, channel: &ChannelId, settings: &ChannelSettings) -> Self::Registry {
        let registry = self.memory.registry(channel, settings);
        if let Some(keys) = self.remembered.get(channel) {
            registry.remember(keys.iter().cloned());
        }
        registry
    }

    fn observer(&self) -> &Arc<dyn Observer> {
        self.memory.observer()
    }
}
