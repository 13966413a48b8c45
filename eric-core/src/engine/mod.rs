//! [`Engine`]: what a backend provides to channels, and the in-memory one.
//!
//! An engine hands each channel a [`MemberFactory`] (queues for new
//! subscriptions) and a [`MemberRegistry`] (membership and fan-out). The
//! embedded default, [`MemoryEngine`], keeps both in this process; `eric-redis`
//! keeps them in Redis so several broker nodes share them.

mod audience;
mod idempotency_log;
mod memory;

use std::sync::{Arc, LazyLock};

use crate::id::ChannelId;
use crate::member::MemberFactory;
use crate::observe::{NoopObserver, Observer};
use crate::queue::Queue;
use crate::registry::MemberRegistry;
use crate::settings::ChannelSettings;

pub use memory::{InMemoryMemberFactory, InMemoryRegistry, MemoryEngine};

static NOOP: LazyLock<Arc<dyn Observer>> = LazyLock::new(|| Arc::new(NoopObserver));

/// A storage and delivery backend for channels.
pub trait Engine: Clone + Send + Sync + 'static {
    /// The queue type of every listener.
    type Queue: Queue;
    /// Creates queues for new subscriptions.
    type Factory: MemberFactory<Queue = Self::Queue>;
    /// Holds a channel's members.
    type Registry: MemberRegistry<Queue = Self::Queue>;

    /// A short name for logs and metrics ("memory", "redis").
    fn name(&self) -> &'static str;

    /// The factory for channel `channel`.
    fn member_factory(&self, channel: &ChannelId, settings: &ChannelSettings) -> Self::Factory;

    /// The registry of channel `channel`.
    fn registry(&self, channel: &ChannelId, settings: &ChannelSettings) -> Self::Registry;

    /// Told about deliveries and hook timings (metrics); a no-op by default.
    fn observer(&self) -> &Arc<dyn Observer> {
        &NOOP
    }
}
