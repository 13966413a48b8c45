//! [`Backend`]: what the server needs from an engine beyond `eric-core`'s
//! [`Engine`], implemented for the in-memory and the Redis engine, and
//! [`StorageReport`], the engine-neutral form of a storage's statistics.
//!
//! This is the one module that names an engine's own types: the broker is
//! generic over [`Backend`] (static dispatch, see [`crate::broker`]), and
//! everything above it (the faces, [`crate::metrics`]) sees neither engine.
//! The Redis engine's statistics ([`RedisStats`], [`PubSubActivity`]) are
//! turned into a [`StorageReport`] here, which carries each figure's name
//! and help text, so `metrics` exposes them without knowing Redis.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use eric_core::persistence::ChannelRepository;
use eric_core::{ChannelId, Engine, MemoryEngine, Persistence};
use eric_disk::{DiskEngine, DiskStats};
use eric_redis::stats::LATENCY_BUCKETS_US;
use eric_redis::{PubSubActivity, RedisEngine, RedisStats};
use tokio::sync::{broadcast, watch};

/// Statistics of an engine's storage connections, for `/metrics`, in the
/// order they are exposed. Names are relative to the metrics' `eric_`
/// prefix; counters get their `_total` suffix there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StorageReport {
    /// Counters, in exposition order.
    pub counters: Vec<StorageCounter>,
    /// Latencies of the storage's calls, exposed after the counters.
    pub latency: Option<LatencyHistogram>,
}

/// One counter of a [`StorageReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageCounter {
    /// The metric's name, without prefix or `_total`.
    pub name: &'static str,
    /// Its help text.
    pub help: &'static str,
    /// Its value.
    pub value: u64,
}

/// A latency histogram of a [`StorageReport`], in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyHistogram {
    /// The metric's name, without prefix or unit.
    pub name: &'static str,
    /// Its help text.
    pub help: &'static str,
    /// Observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
    /// (upper bound in seconds, observations in that bucket alone), bounds
    /// ascending; the last bound is infinity.
    pub buckets: Vec<(f64, u64)>,
}

impl StorageReport {
    /// The disk engine's writer.
    fn disk(stats: DiskStats) -> Self {
        let counter = |name, help, value| StorageCounter { name, help, value };
        Self {
            counters: vec![
                counter(
                    "disk_commits",
                    "Transactions the disk engine committed (each holds every write that waited for it)",
                    stats.commits,
                ),
                counter(
                    "disk_syncs",
                    "Commits the disk engine made durable (fsync)",
                    stats.syncs,
                ),
                counter("disk_writes", "Changes the disk engine wrote", stats.writes),
                counter(
                    "disk_errors",
                    "Failed disk commits (the first stops writes until a restart)",
                    stats.errors,
                ),
            ],
            latency: None,
        }
    }

    /// The Redis engine's command connections and pub/sub subscriber.
    fn redis(commands: &RedisStats, pubsub: &PubSubActivity) -> Self {
        let counter = |name, help, value| StorageCounter { name, help, value };
        let buckets = commands
            .buckets
            .iter()
            .enumerate()
            .map(|(i, &count)| {
                let bound = LATENCY_BUCKETS_US
                    .get(i)
                    .map_or(f64::INFINITY, |us| Duration::from_micros(*us).as_secs_f64());
                (bound, count)
            })
            .collect();
        Self {
            counters: vec![
                counter(
                    "redis_pubsub_sessions",
                    "Pub/sub subscriber sessions established (more than one: reconnects)",
                    pubsub.sessions,
                ),
                counter(
                    "redis_commands",
                    "Redis commands, pipelines and scripts sent",
                    commands.commands,
                ),
                counter(
                    "redis_errors",
                    "Redis calls that failed or timed out",
                    commands.errors,
                ),
            ],
            latency: Some(LatencyHistogram {
                name: "redis_command_latency",
                help: "Latency of Redis calls",
                count: commands.commands,
                sum_seconds: Duration::from_micros(commands.latency_us_sum).as_secs_f64(),
                buckets,
            }),
        }
    }
}

/// Why a node cannot serve. `/readyz` is open to anyone, so it answers
/// [`NotReady::reason`], a fixed text per state; the cause is for the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotReady {
    /// The storage did not answer a ping.
    #[error("storage did not answer a ping")]
    Storage(#[source] eric_core::Error),
    /// The Redis subscriber that wakes streams is not connected.
    #[error("the Redis pub/sub subscriber is not connected")]
    Subscriber,
    /// The disk engine stopped writing after a failed write.
    #[error("the disk engine stopped writing: {0}")]
    Disk(String),
}

impl NotReady {
    /// What an unauthenticated caller is told.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Storage(_) => "redis unavailable",
            Self::Subscriber => "redis subscriber disconnected",
            Self::Disk(_) => "disk writes failed",
        }
    }
}

/// An engine the broker can run on.
pub trait Backend: Engine {
    /// Where channel records live for every node and for restarts; `None`:
    /// channels live in this process only.
    fn channel_repository(&self) -> Option<Arc<dyn ChannelRepository>>;

    /// Persistence on the engine's own storage, if it has one.
    fn persistence(&self) -> Option<Persistence<Self>>;

    /// Whether the storage answers and wake-ups flow; the reason if not.
    fn readiness(&self) -> impl Future<Output = Result<(), NotReady>> + Send;

    /// Changes of the part of readiness that comes and goes by itself (the
    /// Redis subscriber's connection), for `/readyz?wait=`; `None` if nothing
    /// does.
    fn readiness_changes(&self) -> Option<watch::Receiver<bool>>;

    /// Channels held here that were deleted (by any node), if the engine
    /// shares channels between nodes.
    fn channel_deletions(&self) -> Option<broadcast::Receiver<ChannelId>>;

    /// Statistics of the storage's connections, if the engine keeps any.
    fn storage_report(&self) -> Option<StorageReport>;

    /// Stops background work at shutdown (the Redis subscriber), and
    /// makes what is written durable (the disk engine's last sync).
    fn shutdown(&self) -> impl Future<Output = ()> + Send;
}

impl Backend for MemoryEngine {
    fn channel_repository(&self) -> Option<Arc<dyn ChannelRepository>> {
        None
    }

    fn persistence(&self) -> Option<Persistence<Self>> {
        None
    }

    async fn readiness(&self) -> Result<(), NotReady> {
        Ok(())
    }

    fn readiness_changes(&self) -> Option<watch::Receiver<bool>> {
        None
    }

    fn channel_deletions(&self) -> Option<broadcast::Receiver<ChannelId>> {
        None
    }

    fn storage_report(&self) -> Option<StorageReport> {
        None
    }

    async fn shutdown(&self) {}
}

impl Backend for RedisEngine {
    fn channel_repository(&self) -> Option<Arc<dyn ChannelRepository>> {
        Some(Arc::new(self.channel_repository()))
    }

    fn persistence(&self) -> Option<Persistence<Self>> {
        Some(RedisEngine::persistence(self))
    }

    async fn readiness(&self) -> Result<(), NotReady> {
        self.ping().await.map_err(NotReady::Storage)?;
        if !*self.pubsub_health().borrow() {
            return Err(NotReady::Subscriber);
        }
        Ok(())
    }

    fn readiness_changes(&self) -> Option<watch::Receiver<bool>> {
        Some(self.pubsub_health())
    }

    fn channel_deletions(&self) -> Option<broadcast::Receiver<ChannelId>> {
        Some(RedisEngine::channel_deletions(self))
    }

    fn storage_report(&self) -> Option<StorageReport> {
        let pubsub = *self.pubsub_activity().borrow();
        Some(StorageReport::redis(&self.stats(), &pubsub))
    }

    async fn shutdown(&self) {
        RedisEngine::shutdown(self);
    }
}

impl Backend for DiskEngine {
    fn channel_repository(&self) -> Option<Arc<dyn ChannelRepository>> {
        Some(Arc::new(DiskEngine::channel_repository(self)))
    }

    fn persistence(&self) -> Option<Persistence<Self>> {
        Some(DiskEngine::persistence(self))
    }

    async fn readiness(&self) -> Result<(), NotReady> {
        match self.failure() {
            None => Ok(()),
            Some(reason) => Err(NotReady::Disk(reason)),
        }
    }

    fn readiness_changes(&self) -> Option<watch::Receiver<bool>> {
        None
    }

    fn channel_deletions(&self) -> Option<broadcast::Receiver<ChannelId>> {
        None
    }

    fn storage_report(&self) -> Option<StorageReport> {
        Some(StorageReport::disk(self.stats()))
    }

    async fn shutdown(&self) {
        // The last commit and its fsync block on the disk.
        let engine = self.clone();
        if let Err(error) = tokio::task::spawn_blocking(move || engine.close()).await {
            tracing::error!(%error, "closing the data file failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Redis engine's figures keep the names and help texts `/metrics`
    /// has always shown, and its latency buckets their bounds, in seconds.
    #[test]
    fn redis_statistics_become_a_storage_report() {
        let mut buckets = [0; LATENCY_BUCKETS_US.len() + 1];
        buckets[0] = 2;
        buckets[3] = 1;
        buckets[LATENCY_BUCKETS_US.len()] = 1;
        let commands = RedisStats {
            commands: 4,
            errors: 1,
            latency_us_sum: 2_500_000,
            buckets,
        };
        let pubsub = PubSubActivity {
            sessions: 2,
            probes: 9,
        };
        let report = StorageReport::redis(&commands, &pubsub);
        let counters: Vec<_> = report
            .counters
            .iter()
            .map(|c| (c.name, c.help, c.value))
            .collect();
        assert_eq!(
            counters,
            [
                (
                    "redis_pubsub_sessions",
                    "Pub/sub subscriber sessions established (more than one: reconnects)",
                    2
                ),
                (
                    "redis_commands",
                    "Redis commands, pipelines and scripts sent",
                    4
                ),
                ("redis_errors", "Redis calls that failed or timed out", 1),
            ]
        );
        let latency = report.latency.expect("a latency histogram");
        assert_eq!(
            (
                latency.name,
                latency.help,
                latency.count,
                latency.sum_seconds
            ),
            ("redis_command_latency", "Latency of Redis calls", 4, 2.5)
        );
        assert_eq!(
            latency.buckets,
            [
                (0.0001, 2),
                (0.00025, 0),
                (0.0005, 0),
                (0.001, 1),
                (0.0025, 0),
                (0.005, 0),
                (0.01, 0),
                (0.025, 0),
                (0.1, 0),
                (1.0, 0),
                (f64::INFINITY, 1),
            ]
        );
    }
}
