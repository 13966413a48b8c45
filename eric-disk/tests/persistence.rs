//! `eric-core`'s persistence suite, unchanged, on the disk engine's own
//! repositories: each "node" is a fresh working state on the same file.

#![allow(clippy::unwrap_used)]

mod common;

eric_core::persistence_suite!(common::DiskFixture::new(eric_disk::Fsync::Always));
