//! [`RedisStats`]: what the engine's command connections did, for metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds (the last bucket is
/// everything above).
pub const LATENCY_BUCKETS_US: [u64; 10] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
];

/// Counters updated on every command: relaxed atomics, no lock.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    commands: AtomicU64,
    errors: AtomicU64,
    latency_us_sum: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
}

impl Recorder {
    pub(crate) fn record(&self, elapsed: Duration, ok: bool) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.commands.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_us_sum.fetch_add(us, Ordering::Relaxed);
        let bucket = LATENCY_BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> RedisStats {
        RedisStats {
            commands: self.commands.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            latency_us_sum: self.latency_us_sum.load(Ordering::Relaxed),
            buckets: self.buckets.each_ref().map(|b| b.load(Ordering::Relaxed)),
        }
    }
}

/// A snapshot of the node's Redis command statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisStats {
    /// Commands, pipelines and scripts sent.
    pub commands: u64,
    /// Of those, how many failed (including timeouts).
    pub errors: u64,
    /// Sum of their latencies, in microseconds.
    pub latency_us_sum: u64,
    /// How many took at most each of [`LATENCY_BUCKETS_US`] (not
    /// cumulative), the last entry counting the slower ones.
    pub buckets: [u64; LATENCY_BUCKETS_US.len() + 1],
}

/// What the node's pub/sub subscriber connection has done, for metrics and
/// for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PubSubActivity {
    /// Sessions established (the first connection, then one per
    /// reconnect): more than one means the connection was lost.
    pub sessions: u64,
    /// Probes (`PING` on the subscriber connection) answered.
    pub probes: u64,
}
