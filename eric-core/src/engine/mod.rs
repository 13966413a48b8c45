//! [`Engine`]: what a backend provides to channels, and the in-memory one.
//!
//! An engine hands each channel a [`MemberFactory`] (queues for new
//! subscriptions) and a [`MemberRegistry`] (membership and fan-out). The
//! in-memory engine, [`MemoryEngine`], keeps both in this process (and,
//! given a [`crate::journal::Journal`], tells it every change: the disk
//! engine); `eric-redis` keeps them in Redis so several broker nodes share
//! them.

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

/// How an engine's broadcasts meet a listener's bounds (`queue_capacity`,
/// `queue_max_bytes`). Dispatches are the same everywhere: queued per
/// listener, refused with `QueueFull` when it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcasts {
    /// A copy in every listener's queue: a full queue refuses its copy and
    /// the broadcast names the listener ([`crate::Broadcast::full`]). The
    /// in-memory engine, where a copy is a pointer.
    Copied,
    /// One entry in the channel's log, which each listener reads from its
    /// own position: no listener refuses a broadcast; the log keeps the
    /// newest within the bounds, and a listener further behind loses the
    /// oldest, which its stream reports as a gap
    /// ([`crate::StreamItem::Gap`]). Only a message larger than
    /// `queue_max_bytes` is refused, naming every listener it would have
    /// reached. Sequence numbers come from the channel (a listener's
    /// increase across its queue and the log, not one by one), so both
    /// merge in order. Redis, where a copy per listener would make a
    /// broadcast's cost grow with its audience.
    Logged,
}

/// A storage and delivery backend for channels.
pub trait Engine: Clone + Send + Sync + 'static {
    /// How broadcasts meet full listeners (see [`Broadcasts`]).
    const BROADCASTS: Broadcasts = Broadcasts::Copied;

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
