//! `eric-core`'s behaviour, byte-bound, idempotency and topic suites,
//! unchanged, on the disk engine.

#![allow(clippy::unwrap_used)]

mod common;

use eric_disk::Fsync;

eric_core::behaviour_suite!(common::DiskFixture::new(Fsync::Everysec));
eric_core::bounds_suite!(common::DiskFixture::new(Fsync::Everysec));
eric_core::idempotency_suite!(common::DiskFixture::new(Fsync::Everysec));
eric_core::topics_suite!(common::DiskFixture::new(Fsync::Always));
