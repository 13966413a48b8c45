//! [`MemberRegistry`]: where a channel keeps its members.
//!
//! This is the reference's private `_ConnectionManager` made a contract, so an
//! engine can keep membership where every node sees it (Redis) instead of in
//! one process's dictionaries. It also owns fan-out, because only the engine
//! can make a broadcast atomic.

use std::future::Future;
use std::time::Duration;

use crate::error::Result;
use crate::id::{IdempotencyKey, ListenerId};
use crate::idempotency::Applied;
use crate::listener::Listener;
use crate::member::Member;
use crate::message::Message;
use crate::queue::{Delivery, Queue};
use crate::subscription::{SubscriptionChange, Subscriptions};

/// What a broadcast did; its JSON is the answer to an HTTP broadcast.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Broadcast {
    /// Listeners whose queue took the message.
    pub delivered: usize,
    /// Listeners whose queue was full: they did not get it (never silently).
    pub full: Vec<ListenerId>,
}

/// What [`MemberRegistry::register`] does when the listener id is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterMode {
    /// Refuse with [`crate::Error::ListenerExists`].
    New,
    /// Keep the registered queue, its messages and the member id, and
    /// install the new listener object (so a restored listener can get its
    /// hook back). The replaced object is stopped, so streams opened on it
    /// end (`Stopped`) instead of running on out of reach of start and stop;
    /// they reopen on the registered object. The reference replaced the
    /// queue and lost the messages.
    KeepQueue,
}

/// A channel's members, keyed by listener id, in registration order.
pub trait MemberRegistry: Send + Sync + 'static {
    /// The engine's queue type.
    type Queue: Queue;

    /// Registers `member`; returns the member now registered.
    ///
    /// `subscriptions` (already checked against the channel's bound) take
    /// effect in the same atomic step as the registration, so no broadcast
    /// reaches a new listener unfiltered. `None` registers a new listener
    /// with none and leaves a kept one's ([`RegisterMode::KeepQueue`]) as
    /// they are; `Some` replaces a kept one's.
    fn register(
        &self,
        member: Member<Self::Queue>,
        mode: RegisterMode,
        subscriptions: Option<Subscriptions>,
    ) -> impl Future<Output = Result<Member<Self::Queue>>> + Send;

    /// Registers `member` (a new listener id) as temporary: it lives as
    /// long as the stream that uses it (`Channel::watch`), which removes it
    /// when it ends. An engine whose listeners outlive the process (Redis)
    /// must also remove it when the process dies without doing so, so it
    /// leases it; the default is [`register`](Self::register) with
    /// [`RegisterMode::New`], right for engines that die with the process.
    fn register_temporary(
        &self,
        member: Member<Self::Queue>,
        subscriptions: Subscriptions,
    ) -> impl Future<Output = Result<Member<Self::Queue>>> + Send {
        self.register(member, RegisterMode::New, Some(subscriptions))
    }

    /// Installs a member loaded from this engine's own storage (restoring
    /// persisted data), with the subscriptions it was stored with. Engines
    /// whose registry *is* that storage only cache it; the in-memory one
    /// registers it.
    fn restore(
        &self,
        member: Member<Self::Queue>,
        subscriptions: Subscriptions,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The subscriptions `listener` holds.
    fn subscriptions(
        &self,
        listener: &ListenerId,
    ) -> impl Future<Output = Result<Subscriptions>> + Send;

    /// Applies `change` to `listener`'s subscriptions, atomically with
    /// respect to broadcasts on every node, refusing a result over the
    /// channel's `max_subscriptions` (nothing changes then); returns the set
    /// now held.
    fn change_subscriptions(
        &self,
        listener: &ListenerId,
        change: SubscriptionChange,
    ) -> impl Future<Output = Result<Subscriptions>> + Send;

    /// Unregisters the listener and closes its queue, which ends its streams.
    ///
    /// Callers may drop the future, spawned, from a destructor: an
    /// implementation starts its work when called.
    fn remove(
        &self,
        listener: &ListenerId,
    ) -> impl Future<Output = Result<Member<Self::Queue>>> + Send + 'static;

    /// The member of `listener`.
    fn get(
        &self,
        listener: &ListenerId,
    ) -> impl Future<Output = Result<Member<Self::Queue>>> + Send;

    /// Every member, in registration order.
    fn members(&self) -> impl Future<Output = Result<Vec<Member<Self::Queue>>>> + Send;

    /// Every listener id, in registration order.
    fn listener_ids(&self) -> impl Future<Output = Result<Vec<ListenerId>>> + Send;

    /// Pops the oldest message of a running listener, with the listener
    /// itself when it has an `on_message` hook to run; [`crate::Error::NoMessages`]
    /// when the listener is stopped (its messages stay) or its queue is empty.
    fn pop_next(
        &self,
        listener: &ListenerId,
    ) -> impl Future<Output = Result<(Delivery, Option<Listener>)>> + Send;

    /// Queues `message` for `listener` (running or not); returns its sequence number.
    fn dispatch(
        &self,
        listener: &ListenerId,
        message: Message,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Queues `message` for every listener registered when the call takes
    /// effect whose subscriptions admit it
    /// ([`Subscriptions::admits`]).
    fn broadcast(&self, message: &Message) -> impl Future<Output = Result<Broadcast>> + Send;

    /// [`MemberRegistry::dispatch`] at most once per `key` (in the
    /// listener's scope) within `window`: a repeat answers the first
    /// sequence number, marked replayed. Checking, applying and remembering
    /// are one atomic step on every node; a refused dispatch is not remembered.
    fn dispatch_once(
        &self,
        listener: &ListenerId,
        message: Message,
        key: &IdempotencyKey,
        window: Duration,
    ) -> impl Future<Output = Result<Applied<u64>>> + Send;

    /// [`MemberRegistry::broadcast`] at most once per `key` (in the
    /// channel's scope) within `window`, like `dispatch_once`.
    fn broadcast_once(
        &self,
        message: &Message,
        key: &IdempotencyKey,
        window: Duration,
    ) -> impl Future<Output = Result<Applied<Broadcast>>> + Send;

    /// Starts or stops `listener`, where every holder of it sees the change.
    fn set_running(
        &self,
        listener: &ListenerId,
        running: bool,
    ) -> impl Future<Output = Result<()>> + Send;
}
