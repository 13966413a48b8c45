//! [`Engine`]: what a backend provides to channels, and the in-memory one.
//!
//! An engine hands each channel a [`ConnectionsFactory`] (queues for new
//! subscriptions) and a [`ConnectionRegistry`] (membership and fan-out). The
//! embedded default, [`MemoryEngine`], keeps both in this process; `eric-redis`
//! keeps them in Redis so several broker nodes share them.

mod idempotency_log;
mod memory;

use std::sync::{Arc, LazyLock};

use crate::connection::ConnectionsFactory;
use crate::id::ChannelId;
use crate::observe::{NoopObserver, Observer};
use crate::queue::Queue;
use crate::registry::ConnectionRegistry;
use crate::settings::ChannelSettings;

pub use memory::{InMemoryConnectionsFactory, InMemoryRegistry, MemoryEngine};

static NOOP: LazyLock<Arc<dyn Observer>> = LazyLock::new(|| Arc::new(NoopObserver));

/// A storage and delivery backend for channels.
pub trait Engine: Clone + Send + Sync + 'static {
    /// The queue type of every listener.
    type Queue: Queue;
    /// Creates queues for new subscriptions.
    type Factory: ConnectionsFactory<Queue = Self::Queue>;
    /// Holds a channel's connections.
    type Registry: ConnectionRegistry<Queue = Self::Queue>;

    /// A short name for logs and metrics ("memory", "redis").
    fn name(&self) -> &'static str;

    /// The factory for channel `channel`.
    fn connections_factory(&self, channel: &ChannelId, settings: &ChannelSettings)
    -> Self::Factory;

    /// The registry of channel `channel`.
    fn registry(&self, channel: &ChannelId, settings: &ChannelSettings) -> Self::Registry;

    /// Told about deliveries and hook timings (metrics); a no-op by default.
    fn observer(&self) -> &Arc<dyn Observer> {
        &NOOP
    }
}
