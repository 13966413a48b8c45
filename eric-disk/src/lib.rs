//! # eric-disk
//!
//! The disk engine of eric: a single node that keeps its channels,
//! listeners, queues, subscriptions and replay windows in a data
//! directory, so a restart, or a crash within the chosen fsync policy,
//! loses nothing acknowledged. No Redis needed.
//!
//! Design in one paragraph: the working state is `eric-core`'s in-memory
//! engine, unchanged (every read and delivery costs what it costs there);
//! the engine is given a [`journal`](eric_core::journal) that it tells
//! every change, under the lock that made it. One writer thread applies
//! the changes in order to an embedded [redb](https://docs.rs/redb) file
//! (a copy-on-write B-tree: ACID, crash safe, checksummed) in one
//! transaction per batch, so concurrent writes share a commit (group
//! commit), and a write answers its caller once its commit is as durable
//! as the [`Fsync`] policy asks. A start loads the file back through
//! `eric-core`'s [`Persistence`](eric_core::Persistence) with this crate's
//! repositories. `docs/DISK.md` describes the file and what each policy
//! can lose.
//!
//! ## Layout
//!
//! - [`config`]: [`DiskConfig`] and [`Fsync`].
//! - [`error`]: the crate's [`Error`] and its mapping to `eric_core::Error`.
//! - `store`: the data file, its tables, loading and applying writes.
//! - `writer`: the writer thread (group commit), the engine's journal.
//! - [`repository`]: channel and member repositories on the file.
//! - [`engine`]: the engine itself, [`DiskEngine`].
//!
//! Imports point one way: `engine` → `repository` → `writer` → `store` →
//! `config`, `error`.

pub mod config;
pub mod engine;
pub mod error;
pub mod repository;
mod store;
mod writer;

pub use config::{DiskConfig, Fsync};
pub use engine::{DiskEngine, DiskStats};
pub use error::{Error, Result};
pub use repository::{DiskChannelRepository, DiskMemberRepository};
