//! The persistence suites on the in-memory storage and engine.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use eric_core::testing::MemoryFixture;
use eric_core::{InMemoryStorage, KvStorage};

mod storage {
    use super::*;
    eric_core::storage_suite!(Arc::new(InMemoryStorage::new()) as Arc<dyn KvStorage>);
}

mod round_trips {
    use super::*;
    eric_core::persistence_suite!(MemoryFixture::new());
}
