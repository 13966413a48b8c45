//! # eric-tests
//!
//! Support for the integration tests in `tests/tests/`: they start one real
//! Redis and several `eric serve` processes (the built binary) on loopback
//! ports, and drive them only through the public HTTP API and SSE. The
//! disk engine's tests (`disk.rs`, `disk_files.rs`) need no Redis: each
//! runs its processes on a data directory of its own.
//!
//! ## Layout
//!
//! - [`node`]: [`Node`], one `eric serve` process.
//! - [`client`]: HTTP and SSE helpers against a node.
//! - [`latency`]: delivery latencies, stamped by producers, reported.

pub mod client;
pub mod latency;
pub mod node;

pub use client::{Base, Events, Http};
pub use latency::Latencies;
pub use node::Node;

use std::future::Future;
use std::time::Duration;

/// How long a test waits for an expected event before failing.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Awaits `f`, failing the test if it takes longer than [`DEADLINE`].
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(DEADLINE, f).await {
        Ok(out) => out,
        Err(_) => panic!("timed out after {DEADLINE:?} waiting for {what}"),
    }
}
