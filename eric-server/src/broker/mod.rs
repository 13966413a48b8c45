//! [`Broker`]: the operations both faces (HTTP and the socket protocol)
//! offer, one type whatever the engine.
//!
//! Channels are cached in a `ChannelContainer`. With the Redis engine the
//! container is only a cache of what Redis holds: a channel created on
//! another node is loaded on first use, one deleted elsewhere is evicted when
//! the deletion notice arrives, and listings read Redis.
//!
//! ## Where the engine's type stops
//!
//! The broker's work is written once, generic over the engine
//! (`engine_broker::EngineBroker<E: Backend>`): channels, queues and
//! streams stay statically dispatched, as in `eric-core`, whose benchmarks
//! show that matters on the delivery path. The faces see [`Broker`], a
//! handle on that broker as a trait object ([`Operations`]), so the router,
//! every handler, the socket face and [`crate::metrics`] are compiled once
//! instead of once per engine, and name no engine.
//!
//! Why a trait object rather than an enum of the two engines: the faces and
//! the generic broker meet in one place, this trait, and a further engine
//! needs a [`Backend`] impl and nothing here. The price is one virtual call
//! and one boxed future (`async-trait`) per broker call, a request's
//! handful against the tens of microseconds HTTP parsing and routing take
//! (`BENCHMARKS.md`, "Engine behind a trait object at the server boundary").
//! Streams are not behind it: a [`MessageStream`] is the engine's own,
//! polled directly.

mod engine_broker;

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use async_trait::async_trait;
use eric_core::{
    Applied, Broadcast, ChannelId, ChannelSettings, Delivery, IdempotencyKey, ListenerId, Message,
    MessageStream, Result, SseMessage, SubscriptionChange, Subscriptions,
};
use indexmap::IndexMap;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use self::engine_broker::EngineBroker;
use crate::backend::{Backend, NotReady, StorageReport};

/// Prefix of the event names the server's own SSE notices use
/// (`eric-gap`, `eric-end`): messages cannot take them, so no producer can
/// fake a notice to a browser listening by event name.
pub const RESERVED_TYPE_PREFIX: &str = "eric-";

/// A listener as shown to clients.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ListenerInfo {
    /// Its id.
    pub id: ListenerId,
    /// Whether it is running.
    pub running: bool,
    /// Messages waiting in its queue.
    pub queued: usize,
}

/// A channel as shown to clients.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelInfo {
    /// Its id.
    pub id: ChannelId,
    /// Its settings.
    pub settings: ChannelSettings,
    /// Its listeners, in registration order.
    pub listeners: Vec<ListenerInfo>,
}

/// A stream the broker opened.
#[derive(Debug)]
pub struct OpenedStream {
    /// The events.
    pub stream: MessageStream<SseMessage>,
    /// The channel's `retry` hint for clients, in milliseconds.
    pub retry_ms: u64,
}

/// What the channels cached on this node hold, for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Occupancy {
    /// Channels cached.
    pub channels: usize,
    /// Listeners of the channels read.
    pub listeners: usize,
    /// Messages waiting, per channel read, in cache order.
    pub depths: Vec<(ChannelId, usize)>,
}

/// The broker (cheap to clone): whatever the engine, the same type. Its
/// operations are those of [`Operations`], called through it.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<dyn Operations>,
}

impl Broker {
    /// A broker on `engine`; new channels get `defaults` unless told otherwise.
    pub fn new<E: Backend>(engine: E, defaults: ChannelSettings) -> Self {
        Self {
            inner: Arc::new(EngineBroker::new(engine, defaults)),
        }
    }
}

/// A smart pointer to the engine's broker: `broker.dispatch(...)` calls
/// [`Operations::dispatch`] (a trait object's methods need no import).
impl Deref for Broker {
    type Target = dyn Operations;

    fn deref(&self) -> &Self::Target {
        &*self.inner
    }
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

/// The broker's operations, as the faces call them (see the module docs for
/// why a trait object). Object-safe: futures are boxed by `async-trait`.
#[async_trait]
pub trait Operations: fmt::Debug + Send + Sync + 'static {
    /// The engine's short name, for logs ("memory", "redis").
    fn engine_name(&self) -> &'static str;

    /// Restores every persisted channel into the cache (start-up); returns
    /// how many.
    async fn restore(&self) -> Result<usize>;

    /// Evicts channels deleted by other nodes until `shutdown`.
    async fn follow_deletions(&self, shutdown: CancellationToken);

    /// Creates a channel; [`eric_core::Error::ChannelExists`] if the id is
    /// taken. Returns its id.
    async fn create_channel(
        &self,
        id: Option<ChannelId>,
        settings: Option<ChannelSettings>,
    ) -> Result<ChannelId>;

    /// Whether the channel, and the listener when one is named, exist:
    /// [`eric_core::Error::InvalidChannel`] or
    /// [`eric_core::Error::InvalidListener`] if not. Changes nothing.
    async fn ensure_exists(&self, channel: &ChannelId, listener: Option<&ListenerId>)
    -> Result<()>;

    /// Every channel id.
    async fn channel_ids(&self) -> Result<Vec<ChannelId>>;

    /// Deletes a channel: its listeners go, their streams end.
    async fn delete_channel(&self, id: &ChannelId) -> Result<()>;

    /// Adds a listener (not started): a new id, or `listener`, holding
    /// `subscriptions` from the moment it exists (none when `None`).
    /// Subscribing an id that exists keeps its queue, flag and streams;
    /// given `subscriptions` replace its set, `None` leaves it. Returns its
    /// id.
    async fn subscribe(
        &self,
        channel: &ChannelId,
        listener: Option<ListenerId>,
        subscriptions: Option<Subscriptions>,
    ) -> Result<ListenerId>;

    /// A listener's subscriptions.
    async fn subscriptions(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
    ) -> Result<Subscriptions>;

    /// Changes a listener's subscriptions atomically; returns the set now
    /// held.
    async fn change_subscriptions(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
        change: SubscriptionChange,
    ) -> Result<Subscriptions>;

    /// Removes a listener; its streams end.
    async fn remove_listener(&self, channel: &ChannelId, listener: &ListenerId) -> Result<()>;

    /// Starts or stops a listener.
    async fn set_running(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
        running: bool,
    ) -> Result<()>;

    /// Queues a message for one listener; returns its sequence number.
    async fn dispatch(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
        message: Message,
    ) -> Result<u64>;

    /// [`Operations::dispatch`], at most once per `key` within the
    /// channel's idempotency window; without a key, a plain dispatch.
    async fn dispatch_once(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
        message: Message,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<u64>>;

    /// [`Operations::broadcast`], at most once per `key` within the
    /// channel's idempotency window; without a key, a plain broadcast.
    async fn broadcast_once(
        &self,
        channel: &ChannelId,
        message: &Message,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<Broadcast>>;

    /// Queues a message for every listener of a channel.
    async fn broadcast(&self, channel: &ChannelId, message: &Message) -> Result<Broadcast>;

    /// The settings channels get unless told otherwise.
    fn defaults(&self) -> &ChannelSettings;

    /// The next message of a running listener, `None` if its queue is empty;
    /// a stopped listener is [`eric_core::Error::NoMessages`] with reason
    /// `Stopped`.
    async fn next(&self, channel: &ChannelId, listener: &ListenerId) -> Result<Option<Delivery>>;

    /// Streams the listener, resuming after `last_event_id` when given. A
    /// stopped listener is started first (as eric-api's stream route does)
    /// when `start` says so, else refused with
    /// [`eric_core::NoMessagesReason::Stopped`] (HTTP: a caller without the
    /// right to change listener state).
    async fn stream(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
        last_event_id: Option<u64>,
        start: bool,
    ) -> Result<OpenedStream>;

    /// A stream of a channel's broadcasts on a temporary listener holding
    /// `subscriptions` (every broadcast when there are none).
    async fn watch(
        &self,
        channel: &ChannelId,
        subscriptions: Subscriptions,
    ) -> Result<OpenedStream>;

    /// Every channel with its listener ids (eric-api's `GET /`).
    async fn listing(&self) -> Result<IndexMap<ChannelId, Vec<ListenerId>>>;

    /// A channel's settings and listeners with their state.
    async fn info(&self, id: &ChannelId) -> Result<ChannelInfo>;

    /// The channels cached on this node; listeners and queue depths of the
    /// first `at_most` of them (each costs a round trip per listener on
    /// Redis).
    async fn occupancy(&self, at_most: usize) -> Occupancy;

    /// Whether the storage answers and wake-ups flow; the reason if not.
    async fn readiness(&self) -> std::result::Result<(), NotReady>;

    /// Changes of the part of readiness that comes and goes by itself, for
    /// `/readyz?wait=`; `None` if nothing does.
    fn readiness_changes(&self) -> Option<watch::Receiver<bool>>;

    /// Statistics of the storage's connections, if the engine keeps any.
    fn storage_report(&self) -> Option<StorageReport>;

    /// Stops the engine's background work (the Redis subscriber) and makes
    /// its writes durable (the disk engine) at shutdown.
    async fn shutdown(&self);
}
