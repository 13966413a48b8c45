//! Fixtures shared by this crate's test files.

#![allow(dead_code, unreachable_pub)]

use eric_core::channel::RawAdapter;
use eric_core::testing::{EngineFixture, PersistenceFixture};
use eric_core::{MemoryEngine, Persistence};
use eric_disk::{DiskConfig, DiskEngine, Fsync};
use tempfile::TempDir;

/// A data directory of its own and one engine on it.
pub struct DiskFixture {
    pub dir: TempDir,
    pub engine: DiskEngine,
}

impl DiskFixture {
    /// Under `fsync`.
    pub fn new(fsync: Fsync) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = DiskConfig {
            data_dir: dir.path().join("data"),
            fsync,
        };
        let engine = DiskEngine::open(config, MemoryEngine::new()).unwrap();
        Self { dir, engine }
    }

    /// The data directory's configuration.
    pub fn config(&self) -> DiskConfig {
        self.engine.config().clone()
    }
}

impl EngineFixture for DiskFixture {
    type Engine = DiskEngine;
    fn engine(&self) -> DiskEngine {
        self.engine.clone()
    }
}

impl PersistenceFixture for DiskFixture {
    type Engine = DiskEngine;
    fn node(&self) -> (DiskEngine, Persistence<DiskEngine, RawAdapter>) {
        let engine = self.engine.sibling(MemoryEngine::new());
        let persistence = engine.persistence();
        (engine, persistence)
    }
}
