//! Channels: listeners, their queues, dispatch, broadcast, pull and streams.
//!
//! A [`Channel`] is the reference's `AbstractChannel`, parameterised by the
//! [`Engine`] that keeps its members and by the [`Adapter`] that shapes
//! what its streams yield. `Channel<E>` defaults to the SSE adapter, i.e. the
//! reference's `SSEChannel`. Cloning a channel is cheap and clones share
//! everything.

mod stream;

use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use tracing::Instrument;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::id::{ChannelId, IdempotencyKey, ListenerId, MemberId};
use crate::idempotency::Applied;
use crate::listener::Listener;
use crate::member::{Member, MemberFactory};
use crate::message::Message;
use crate::observe::Observer;
use crate::queue::{Delivery, Queue};
use crate::registry::{Broadcast, MemberRegistry, RegisterMode};
use crate::sse::SseAdapter;
use crate::subscription::{SubscriptionChange, Subscriptions};

pub use crate::adapter::{Adapter, RawAdapter};
pub use crate::queue::QueueLimits;
pub use crate::settings::{
    ChannelSettings, DEFAULT_IDEMPOTENCY_WINDOW, DEFAULT_QUEUE_CAPACITY, DEFAULT_QUEUE_MAX_BYTES,
    DEFAULT_REPLAY_WINDOW, DEFAULT_RETRY_MS, MAX_IDEMPOTENCY_WINDOW, MAX_STREAM_DELAY,
};
pub use stream::{MessageStream, StreamEnd, StreamItem, StreamOptions};

/// The SSE channel (the reference's `SSEChannel`).
pub type SseChannel<E> = Channel<E, SseAdapter>;

pub(crate) struct Inner<E: Engine, A> {
    id: ChannelId,
    settings: ChannelSettings,
    adapter: A,
    factory: E::Factory,
    registry: E::Registry,
    observer: Arc<dyn Observer>,
    /// Members this object removed since the last persist. Persisting
    /// deletes exactly these, never members it merely does not know (the
    /// reference's persist deleted listeners another process had added).
    removed: Mutex<Vec<MemberId>>,
}

/// A channel of listeners.
pub struct Channel<E: Engine, A: Adapter = SseAdapter> {
    inner: Arc<Inner<E, A>>,
}

/// A channel reference that does not keep it alive (for hooks that dispatch
/// back into their own channel without a reference cycle).
pub struct WeakChannel<E: Engine, A: Adapter = SseAdapter> {
    inner: Weak<Inner<E, A>>,
}

impl<E: Engine, A: Adapter> Channel<E, A> {
    /// A channel on `engine`; a fresh id when `id` is `None`.
    pub fn new(engine: &E, id: Option<ChannelId>, settings: ChannelSettings) -> Result<Self> {
        let adapter = A::from_settings(&settings);
        Self::with_adapter(engine, id, settings, adapter)
    }

    /// A channel with an explicit adapter.
    pub fn with_adapter(
        engine: &E,
        id: Option<ChannelId>,
        settings: ChannelSettings,
        adapter: A,
    ) -> Result<Self> {
        settings.validate()?;
        let id = id.unwrap_or_else(ChannelId::generate);
        Ok(Self {
            inner: Arc::new(Inner {
                factory: engine.member_factory(&id, &settings),
                registry: engine.registry(&id, &settings),
                observer: engine.observer().clone(),
                id,
                settings,
                adapter,
                removed: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The id.
    #[inline]
    pub fn id(&self) -> &ChannelId {
        &self.inner.id
    }

    /// The settings it was created with.
    #[inline]
    pub fn settings(&self) -> &ChannelSettings {
        &self.inner.settings
    }

    /// Its adapter.
    #[inline]
    pub fn adapter(&self) -> &A {
        &self.inner.adapter
    }

    /// Adapts a delivery to this channel's output format.
    #[inline]
    pub fn adapt(&self, delivery: &Delivery) -> A::Output {
        self.inner.adapter.adapt(delivery)
    }

    /// A weak reference.
    pub fn downgrade(&self) -> WeakChannel<E, A> {
        WeakChannel {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// Creates a listener (not started) with a new queue and registers it.
    pub async fn add_listener(&self) -> Result<Listener> {
        self.add_listener_with(Subscriptions::default()).await
    }

    /// Creates a listener (not started) holding `subscriptions`, with a new
    /// queue, and registers it: no broadcast reaches it unfiltered.
    pub async fn add_listener_with(&self, subscriptions: Subscriptions) -> Result<Listener> {
        let member = self.inner.factory.create(None);
        self.check_subscriptions(member.listener_id(), Some(&subscriptions))?;
        let registered = self
            .inner
            .registry
            .register(member, RegisterMode::New, Some(subscriptions))
            .await?;
        Ok(registered.listener().clone())
    }

    /// Registers `listener` with a new queue. If its id is registered already,
    /// the queue and its messages are kept and `listener` replaces the old
    /// listener object.
    pub async fn register_listener(&self, listener: Listener) -> Result<Member<E::Queue>> {
        self.register_listener_with(listener, None).await
    }

    /// [`Channel::register_listener`], also setting the listener's
    /// subscriptions in the same atomic step when `subscriptions` is given
    /// (replacing those of a listener registered already); `None` gives a
    /// new listener none and leaves a registered one's as they are.
    pub async fn register_listener_with(
        &self,
        listener: Listener,
        subscriptions: Option<Subscriptions>,
    ) -> Result<Member<E::Queue>> {
        self.check_subscriptions(listener.id(), subscriptions.as_ref())?;
        let member = self.inner.factory.create(Some(listener));
        self.inner
            .registry
            .register(member, RegisterMode::KeepQueue, subscriptions)
            .await
    }

    /// Registers `member` as it is; its listener id must be new.
    pub async fn register_member(&self, member: Member<E::Queue>) -> Result<Member<E::Queue>> {
        self.inner
            .registry
            .register(member, RegisterMode::New, None)
            .await
    }

    /// The subscriptions `listener` holds (none: it receives every
    /// broadcast).
    pub async fn subscriptions(&self, listener: &ListenerId) -> Result<Subscriptions> {
        self.inner.registry.subscriptions(listener).await
    }

    /// Changes `listener`'s subscriptions atomically (every broadcast, on
    /// every node, sees the set before or after); returns the set now held.
    /// A result over the channel's `max_subscriptions` is
    /// [`Error::TooManySubscriptions`] and changes nothing.
    pub async fn change_subscriptions(
        &self,
        listener: &ListenerId,
        change: SubscriptionChange,
    ) -> Result<Subscriptions> {
        if let SubscriptionChange::Replace(set) = &change {
            // Refused before any storage round trip.
            self.check_subscriptions(listener, Some(set))?;
        }
        self.inner
            .registry
            .change_subscriptions(listener, change)
            .await
    }

    fn check_subscriptions(
        &self,
        listener: &ListenerId,
        subscriptions: Option<&Subscriptions>,
    ) -> Result<()> {
        subscriptions.map_or(Ok(()), |subs| {
            subs.check_limit(listener, self.inner.settings.max_subscriptions)
        })
    }

    /// Unregisters a listener and discards its queue; its streams end.
    pub async fn remove_listener(&self, listener: &ListenerId) -> Result<()> {
        let removed = self.inner.registry.remove(listener).await?;
        self.lock_removed().push(removed.id().clone());
        Ok(())
    }

    /// The registered listener object.
    pub async fn get_listener(&self, listener: &ListenerId) -> Result<Listener> {
        Ok(self.member(listener).await?.listener().clone())
    }

    /// The member of a listener.
    pub async fn member(&self, listener: &ListenerId) -> Result<Member<E::Queue>> {
        self.inner.registry.get(listener).await
    }

    /// Every member, in registration order.
    pub async fn members(&self) -> Result<Vec<Member<E::Queue>>> {
        self.inner.registry.members().await
    }

    /// Every listener id, in registration order.
    pub async fn listener_ids(&self) -> Result<Vec<ListenerId>> {
        self.inner.registry.listener_ids().await
    }

    /// Starts a listener, for every holder of it.
    pub async fn start_listener(&self, listener: &ListenerId) -> Result<()> {
        self.inner.registry.set_running(listener, true).await
    }

    /// Stops a listener, for every holder of it; its streams end.
    pub async fn stop_listener(&self, listener: &ListenerId) -> Result<()> {
        self.inner.registry.set_running(listener, false).await
    }

    /// How many messages wait in a listener's queue.
    pub async fn queue_len(&self, listener: &ListenerId) -> Result<usize> {
        self.member(listener).await?.queue().len().await
    }

    /// Queues `message` for one listener, running or not; returns its
    /// sequence number (the SSE id it will carry).
    pub async fn dispatch(&self, listener: &ListenerId, message: Message) -> Result<u64> {
        let result = self.inner.registry.dispatch(listener, message).await;
        self.count_dispatch(result.as_ref().map(|_| true));
        result
    }

    /// Queues `message` for every listener whose subscriptions admit it
    /// (every listener without any); listeners whose queue is full are
    /// named in the result instead of aborting the rest.
    pub async fn broadcast(&self, message: &Message) -> Result<Broadcast> {
        let outcome = self.inner.registry.broadcast(message).await?;
        self.count_broadcast(&outcome);
        Ok(outcome)
    }

    /// [`Channel::dispatch`] at most once per idempotency `key` within the
    /// channel's `idempotency_window` (see [`crate::idempotency`]).
    pub async fn dispatch_once(
        &self,
        listener: &ListenerId,
        message: Message,
        key: &IdempotencyKey,
    ) -> Result<Applied<u64>> {
        let window = self.inner.settings.idempotency_window;
        let result = self
            .inner
            .registry
            .dispatch_once(listener, message, key, window)
            .await;
        self.count_dispatch(result.as_ref().map(|a| !a.replayed));
        result
    }

    /// [`Channel::broadcast`] at most once per idempotency `key` within the
    /// channel's `idempotency_window` (see [`crate::idempotency`]).
    pub async fn broadcast_once(
        &self,
        message: &Message,
        key: &IdempotencyKey,
    ) -> Result<Applied<Broadcast>> {
        let window = self.inner.settings.idempotency_window;
        let applied = self
            .inner
            .registry
            .broadcast_once(message, key, window)
            .await?;
        // A repeat applied nothing: nothing to count.
        if !applied.replayed {
            self.count_broadcast(&applied.value);
        }
        Ok(applied)
    }

    /// Reports a dispatch to the observer: `Ok(true)` when a message was
    /// queued now (a repeat queued nothing).
    fn count_dispatch(&self, result: Result<bool, &Error>) {
        match result {
            Ok(true) => self.inner.observer.dispatched(&self.inner.id, 1),
            Ok(false) => {}
            Err(Error::QueueFull { .. }) => self.inner.observer.refused_full(&self.inner.id, 1),
            Err(_) => {}
        }
    }

    fn count_broadcast(&self, outcome: &Broadcast) {
        self.inner
            .observer
            .dispatched(&self.inner.id, outcome.delivered);
        if !outcome.full.is_empty() {
            self.inner
                .observer
                .refused_full(&self.inner.id, outcome.full.len());
        }
    }

    /// Pops a running listener's next message and runs its hook on it.
    ///
    /// A stopped listener gets [`Error::NoMessages`] and keeps its messages. A
    /// failing hook gives [`Error::Hook`]; the message counts as handled.
    pub async fn deliver_next(&self, listener: &ListenerId) -> Result<Delivery> {
        let (delivery, hook) = self.inner.registry.pop_next(listener).await?;
        if let Some(listener) = hook {
            // Boxed: most listeners have no hook, and an inline hook future
            // would make every `deliver_next` future several times larger.
            Box::pin(self.run_hook(&listener, &delivery)).await?;
        }
        self.inner.observer.delivered(&self.inner.id, 1);
        Ok(delivery)
    }

    /// Runs `listener`'s hook on a delivery, timed for the observer.
    pub(crate) async fn run_hook(&self, listener: &Listener, delivery: &Delivery) -> Result<()> {
        if !listener.has_hook() {
            return Ok(());
        }
        let span = tracing::debug_span!(
            "on_message",
            channel = %self.inner.id,
            listener = %listener.id(),
            seq = delivery.seq,
        );
        let started = Instant::now();
        let result = listener
            .on_message(&delivery.message)
            .instrument(span)
            .await;
        let elapsed = started.elapsed();
        self.inner
            .observer
            .hook_finished(&self.inner.id, listener.id(), elapsed, result.is_ok());
        tracing::trace!(channel = %self.inner.id, listener = %listener.id(), ?elapsed, "on_message done");
        result.map_err(|source| Error::Hook {
            listener: listener.id().clone(),
            source,
        })
    }

    /// A stream of `listener`'s messages, adapted (the reference's
    /// `message_stream`). Fails at once if the listener is not registered.
    pub async fn message_stream(&self, listener: &Listener) -> Result<MessageStream<A::Output>> {
        self.stream(listener.id(), StreamOptions::default()).await
    }

    /// A stream of a listener's messages, adapted, resuming after
    /// `options.last_event_id` when given.
    pub async fn stream(
        &self,
        listener: &ListenerId,
        options: StreamOptions,
    ) -> Result<MessageStream<A::Output>> {
        let member = self.member(listener).await?;
        Ok(stream::open(self.clone(), member, options, None))
    }

    /// A stream on a new, started listener that only broadcasts reach; the
    /// listener is removed when the stream is dropped.
    pub async fn watch(&self) -> Result<MessageStream<A::Output>> {
        self.watch_with(Subscriptions::default()).await
    }

    /// [`Channel::watch`] on a listener holding `subscriptions`: only the
    /// broadcasts they admit reach it (all of them when there are none).
    pub async fn watch_with(
        &self,
        subscriptions: Subscriptions,
    ) -> Result<MessageStream<A::Output>> {
        let member = self.inner.factory.create(None);
        self.check_subscriptions(member.listener_id(), Some(&subscriptions))?;
        // Started before it is registered, so every node sees it running.
        member.listener().start();
        let member = self
            .inner
            .registry
            .register_temporary(member, subscriptions)
            .await?;
        let listener = member.listener().clone();
        Ok(stream::open(
            self.clone(),
            member,
            StreamOptions::default(),
            Some(listener.id().clone()),
        ))
    }

    /// Puts back removals that could not be persisted.
    pub(crate) fn return_removed(&self, removed: Vec<MemberId>) {
        self.lock_removed().extend(removed);
    }

    /// Member ids removed since the last call (for persistence).
    pub(crate) fn take_removed(&self) -> Vec<MemberId> {
        std::mem::take(&mut *self.lock_removed())
    }

    fn lock_removed(&self) -> std::sync::MutexGuard<'_, Vec<MemberId>> {
        // A Vec push/take cannot leave it inconsistent: poison is harmless.
        self.inner.removed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes this channel's members and queues (persistence rebuilds
    /// restored members with it).
    pub(crate) fn factory(&self) -> &E::Factory {
        &self.inner.factory
    }

    pub(crate) fn registry(&self) -> &E::Registry {
        &self.inner.registry
    }

    pub(crate) fn observer(&self) -> &Arc<dyn Observer> {
        &self.inner.observer
    }
}

impl<E: Engine, A: Adapter> WeakChannel<E, A> {
    /// The channel, if it still exists.
    pub fn upgrade(&self) -> Option<Channel<E, A>> {
        self.inner.upgrade().map(|inner| Channel { inner })
    }
}

impl<E: Engine, A: Adapter> Clone for Channel<E, A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<E: Engine, A: Adapter> Clone for WeakChannel<E, A> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<E: Engine, A: Adapter> fmt::Debug for Channel<E, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field("id", &self.inner.id)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl<E: Engine, A: Adapter> fmt::Debug for WeakChannel<E, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakChannel")
    }
}
