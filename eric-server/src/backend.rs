//! [`Backend`]: what the server needs from an engine beyond `eric-core`'s
//! [`Engine`], implemented for the in-memory and the Redis engine.

use std::future::Future;
use std::sync::Arc;

use eric_core::persistence::ChannelRepository;
use eric_core::{ChannelId, Engine, MemoryEngine, Persistence};
use eric_redis::{PubSubActivity, RedisEngine, RedisStats};
use tokio::sync::{broadcast, watch};

/// What the Redis engine's connections did, for metrics.
#[derive(Debug, Clone, Copy)]
pub struct RedisReport {
    /// The command connections.
    pub commands: RedisStats,
    /// The pub/sub subscriber connection.
    pub pubsub: PubSubActivity,
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
}

impl NotReady {
    /// What an unauthenticated caller is told.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Storage(_) => "redis unavailable",
            Self::Subscriber => "redis subscriber disconnected",
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

    /// Statistics of the Redis connections, for the Redis engine.
    fn redis_stats(&self) -> Option<RedisReport>;

    /// Stops background work (the Redis subscriber) at shutdown.
    fn shutdown(&self);
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

    fn redis_stats(&self) -> Option<RedisReport> {
        None
    }

    fn shutdown(&self) {}
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

    fn redis_stats(&self) -> Option<RedisReport> {
        Some(RedisReport {
            commands: self.stats(),
            pubsub: *self.pubsub_activity().borrow(),
        })
    }

    fn shutdown(&self) {
        RedisEngine::shutdown(self);
    }
}
