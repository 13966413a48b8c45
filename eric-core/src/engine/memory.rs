//! [`MemoryEngine`]: everything lives in this process; a journal, when
//! given, is told every change (the disk engine's base).

use std::fmt;
use std::future::{Future, ready};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use indexmap::IndexMap;

use super::Engine;
use super::audience::Audience;
use super::idempotency_log::{IdempotencyLog, Recorded};
use crate::error::{Error, NoMessagesReason, Result};
use crate::id::{ChannelId, IdempotencyKey, ListenerId};
use crate::idempotency::Applied;
use crate::journal::{self, Change, Group, Journal, Outcome, Remembered};
use crate::listener::Listener;
use crate::member::{Member, MemberFactory};
use crate::message::Message;
use crate::observe::{NoopObserver, Observer};
use crate::queue::{
    DEFAULT_MEMORY_BUDGET, Delivery, InMemoryQueue, MemoryBudget, Queue, QueueLimits, QueueOwner,
    stored_size,
};
use crate::registry::{Broadcast, MemberRegistry, RegisterMode};
use crate::settings::ChannelSettings;
use crate::subscription::{SubscriptionChange, Subscriptions};

/// The in-process engine: bounded [`InMemoryQueue`]s and per-channel maps.
///
/// Clones share one [`MemoryBudget`]: every queue of every channel made
/// through them counts against it.
#[derive(Clone)]
pub struct MemoryEngine {
    observer: Arc<dyn Observer>,
    budget: Arc<MemoryBudget>,
    journal: Option<Arc<dyn Journal>>,
}

impl MemoryEngine {
    /// An engine reporting to nobody, with the default budget
    /// ([`DEFAULT_MEMORY_BUDGET`]).
    pub fn new() -> Self {
        Self::with_observer(Arc::new(NoopObserver))
    }

    /// An engine reporting counts and timings to `observer`.
    pub fn with_observer(observer: Arc<dyn Observer>) -> Self {
        Self {
            observer,
            budget: Arc::new(MemoryBudget::new(DEFAULT_MEMORY_BUDGET)),
            journal: None,
        }
    }

    /// This engine with a node-wide budget of `max_bytes` queued bytes
    /// instead (see [`MemoryBudget`]); a push beyond it is
    /// [`Error::StorageFull`].
    ///
    /// ```
    /// use eric_core::MemoryEngine;
    /// let engine = MemoryEngine::new().with_budget(256 * 1024 * 1024);
    /// assert_eq!(engine.budget().max_bytes(), 256 * 1024 * 1024);
    /// ```
    pub fn with_budget(self, max_bytes: usize) -> Self {
        Self {
            budget: Arc::new(MemoryBudget::new(max_bytes)),
            ..self
        }
    }

    /// The node-wide budget and what of it is used.
    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// This engine, telling `journal` every change its queues and
    /// registries make, and answering writes once the journal settled them
    /// (see [`crate::journal`]): the base of an engine that keeps its
    /// working state here and writes it through to disk.
    pub fn with_journal(self, journal: Arc<dyn Journal>) -> Self {
        Self {
            journal: Some(journal),
            ..self
        }
    }
}

impl Default for MemoryEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MemoryEngine")
    }
}

impl Engine for MemoryEngine {
    type Queue = InMemoryQueue;
    type Factory = InMemoryMemberFactory;
    type Registry = InMemoryRegistry;

    fn name(&self) -> &'static str {
        "memory"
    }

    fn member_factory(
        &self,
        channel: &ChannelId,
        settings: &ChannelSettings,
    ) -> InMemoryMemberFactory {
        InMemoryMemberFactory {
            channel: channel.clone(),
            limits: settings.queue_limits(),
            budget: self.budget.clone(),
            journal: self.journal.clone(),
        }
    }

    fn registry(&self, channel: &ChannelId, settings: &ChannelSettings) -> InMemoryRegistry {
        InMemoryRegistry::journaled(
            channel.clone(),
            self.budget.clone(),
            settings.max_subscriptions,
            self.journal.clone(),
        )
    }

    fn observer(&self) -> &Arc<dyn Observer> {
        &self.observer
    }
}

/// Creates [`InMemoryQueue`]s with the channel's bounds and the engine's
/// budget.
#[derive(Debug, Clone)]
pub struct InMemoryMemberFactory {
    channel: ChannelId,
    limits: QueueLimits,
    budget: Arc<MemoryBudget>,
    journal: Option<Arc<dyn Journal>>,
}

impl MemberFactory for InMemoryMemberFactory {
    type Queue = InMemoryQueue;

    fn queue(&self, listener: &ListenerId) -> InMemoryQueue {
        let owner = QueueOwner {
            channel: self.channel.clone(),
            listener: listener.clone(),
        };
        let queue = InMemoryQueue::new(owner, self.limits, self.budget.clone());
        match &self.journal {
            Some(journal) => queue.with_journal(journal.clone()),
            None => queue,
        }
    }
}

/// A registered member and the subscriptions it holds.
/// A stored outcome as the idempotency log keeps it.
fn recorded(outcome: Outcome) -> Recorded {
    match outcome {
        Outcome::Dispatch(seq) => Recorded::Dispatch(seq),
        Outcome::Broadcast { delivered, full } => {
            Recorded::Broadcast(Broadcast { delivered, full })
        }
    }
}

/// How a registration reaches the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Registration {
    /// Loaded from the journal's own storage: nothing to write.
    Restored,
    /// A listener that outlives its streams.
    Lasting,
    /// A listener for one stream (`Channel::watch`).
    Temporary,
}

struct Slot {
    member: Member<InMemoryQueue>,
    subscriptions: Subscriptions,
}

/// Keyed with foldhash: lookups on the delivery path hash a 36-byte id each
/// time, and SipHash made that the largest cost of `deliver_next`.
type Map = IndexMap<ListenerId, Slot, foldhash::quality::RandomState>;

/// Everything the registry's lock guards: the members in registration
/// order, and who a broadcast reaches ([`Audience`]), kept in step.
struct Members {
    all: Map,
    audience: Audience<Member<InMemoryQueue>>,
}

impl Members {
    fn insert(&mut self, id: ListenerId, member: Member<InMemoryQueue>, subs: Subscriptions) {
        if let Some(old) = self.all.get(&id) {
            self.audience.remove(&id, &old.subscriptions);
        }
        self.audience.insert(&id, &member, &subs);
        self.all.insert(
            id,
            Slot {
                member,
                subscriptions: subs,
            },
        );
    }

    fn remove(&mut self, id: &ListenerId) -> Option<Slot> {
        let slot = self.all.shift_remove(id)?;
        self.audience.remove(id, &slot.subscriptions);
        Some(slot)
    }
}

/// A channel's members in an ordered map.
///
/// Lock discipline: a `std::sync::RwLock` held for map operations and
/// synchronous queue pushes only, never across an `.await`; dispatch and
/// broadcast take the read lock, so producers run in parallel. Writes with
/// an idempotency key also hold the key log's mutex (taken first, then the
/// map), so two retries of one write cannot both apply it.
#[derive(Clone)]
pub struct InMemoryRegistry {
    inner: Arc<RegistryInner>,
}

struct RegistryInner {
    channel: ChannelId,
    /// The engine's budget, which a broadcast charges for all its queues
    /// at once.
    budget: Arc<MemoryBudget>,
    /// The channel's `max_subscriptions`.
    max_subscriptions: usize,
    members: RwLock<Members>,
    /// Idempotency keys of applied writes (see [`crate::idempotency`]).
    applied: Mutex<IdempotencyLog>,
    /// Told every change of the members (see [`crate::journal`]).
    journal: Option<Arc<dyn Journal>>,
}

impl InMemoryRegistry {
    /// An empty registry for `channel`, whose broadcasts count against
    /// `budget` (the one its queues count against) and whose listeners
    /// hold at most `max_subscriptions` each.
    pub fn new(channel: ChannelId, budget: Arc<MemoryBudget>, max_subscriptions: usize) -> Self {
        Self::journaled(channel, budget, max_subscriptions, None)
    }

    /// [`InMemoryRegistry::new`], telling `journal` (if any) every change
    /// of its members (see [`crate::journal`]).
    pub fn journaled(
        channel: ChannelId,
        budget: Arc<MemoryBudget>,
        max_subscriptions: usize,
        journal: Option<Arc<dyn Journal>>,
    ) -> Self {
        Self {
            inner: Arc::new(RegistryInner {
                channel,
                budget,
                max_subscriptions,
                members: RwLock::new(Members {
                    all: Map::default(),
                    audience: Audience::new(),
                }),
                applied: Mutex::new(IdempotencyLog::new()),
                journal,
            }),
        }
    }

    /// Remembers idempotency keys a journal stored (a restart): a retry
    /// within their window gets the first answer again. Expired ones are
    /// skipped.
    pub fn remember(&self, entries: impl IntoIterator<Item = Remembered>) {
        let now = std::time::SystemTime::now();
        let mut applied = self.applied();
        for entry in entries {
            let Ok(left) = entry.expires.duration_since(now) else {
                continue;
            };
            applied.insert(
                entry.listener.as_ref(),
                &entry.key,
                recorded(entry.outcome),
                left,
            );
        }
    }

    /// Tells the journal that the write keyed `key` did `outcome`, for
    /// `window` (in the group that holds the write itself).
    fn record_applied(
        &self,
        listener: Option<&ListenerId>,
        key: &IdempotencyKey,
        outcome: Outcome,
        window: Duration,
    ) {
        if window.is_zero() {
            return;
        }
        self.record(|channel| Change::Applied {
            channel,
            remembered: Remembered {
                listener: listener.cloned(),
                key: key.clone(),
                outcome,
                expires: std::time::SystemTime::now() + window,
            },
        });
    }

    /// Tells the journal, if any, about `change` (made by the caller under
    /// the members' lock, so changes of one listener arrive in order).
    fn record(&self, change: impl FnOnce(ChannelId) -> Change) {
        if let Some(journal) = &self.inner.journal {
            journal.record(change(self.inner.channel.clone()));
        }
    }

    /// `result`, once the journal (if any) has settled what this call
    /// recorded; an error recorded nothing, so it answers at once.
    fn settle<T: Send + 'static>(
        &self,
        result: Result<T>,
    ) -> impl Future<Output = Result<T>> + Send + 'static {
        journal::settle(self.inner.journal.as_ref(), result)
    }

    // Every critical section leaves the map consistent, so a poisoned lock
    // (a panic elsewhere while holding it) is still safe to use.
    fn read(&self) -> RwLockReadGuard<'_, Members> {
        self.inner.members.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Members> {
        self.inner
            .members
            .write()
            .unwrap_or_else(|p| p.into_inner())
    }

    // Insertions and removals leave the log consistent: poison is harmless.
    fn applied(&self) -> MutexGuard<'_, IdempotencyLog> {
        self.inner.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dispatch_now(&self, listener: &ListenerId, message: Message) -> Result<u64> {
        match self.read().all.get(listener) {
            Some(slot) => slot.member.queue().push_now(message),
            None => Err(self.invalid(listener)),
        }
    }

    fn invalid(&self, listener: &ListenerId) -> Error {
        Error::InvalidListener {
            channel: self.inner.channel.clone(),
            listener: listener.clone(),
        }
    }

    fn get_now(&self, listener: &ListenerId) -> Result<Member<InMemoryQueue>> {
        self.read()
            .all
            .get(listener)
            .map(|slot| slot.member.clone())
            .ok_or_else(|| self.invalid(listener))
    }

    fn register_now(
        &self,
        member: Member<InMemoryQueue>,
        mode: RegisterMode,
        subscriptions: Option<Subscriptions>,
        registration: Registration,
    ) -> Result<Member<InMemoryQueue>> {
        let mut members = self.write();
        let id = member.listener_id().clone();
        let (registered, subs) = match (members.all.get(&id), mode) {
            (None, _) => (member, subscriptions.unwrap_or_default()),
            (Some(_), RegisterMode::New) => {
                return Err(Error::ListenerExists {
                    channel: self.inner.channel.clone(),
                    listener: id,
                });
            }
            (Some(existing), RegisterMode::KeepQueue) => {
                if !existing.member.listener().same_object(member.listener()) {
                    existing.member.listener().stop();
                }
                let subs = subscriptions.unwrap_or_else(|| existing.subscriptions.clone());
                (
                    existing.member.with_listener(member.listener().clone()),
                    subs,
                )
            }
        };
        if registration != Registration::Restored {
            self.record(|channel| Change::Registered {
                channel,
                listener: id.clone(),
                member: registered.id().clone(),
                running: registered.listener().is_running(),
                subscriptions: subs.clone(),
                temporary: registration == Registration::Temporary,
            });
        }
        members.insert(id, registered.clone(), subs);
        Ok(registered)
    }

    fn remove_now(&self, listener: &ListenerId) -> Result<Member<InMemoryQueue>> {
        let mut members = self.write();
        let slot = members
            .remove(listener)
            .ok_or_else(|| self.invalid(listener))?;
        // Closed before the removal is recorded, under the members' lock:
        // a push that found the member before is recorded before it, and
        // none after (the queue refuses it), so no message of a removed
        // listener outlives it in the journal.
        slot.member.queue().close();
        self.record(|channel| Change::Removed {
            channel,
            listener: listener.clone(),
        });
        drop(members);
        Ok(slot.member)
    }

    fn change_subscriptions_now(
        &self,
        listener: &ListenerId,
        change: &SubscriptionChange,
    ) -> Result<Subscriptions> {
        // The write lock excludes every broadcast (they take the read
        // lock): one sees the set before the change or after it.
        let mut members = self.write();
        let slot = members
            .all
            .get(listener)
            .ok_or_else(|| self.invalid(listener))?;
        let next = change.apply(listener, &slot.subscriptions, self.inner.max_subscriptions)?;
        let member = slot.member.clone();
        self.record(|channel| Change::Subscribed {
            channel,
            listener: listener.clone(),
            subscriptions: next.clone(),
        });
        members.insert(listener.clone(), member, next.clone());
        Ok(next)
    }

    fn broadcast_now(&self, message: &Message) -> Result<Broadcast> {
        let members = self.read();
        if members.audience.unfiltered() {
            // Nobody filters: every member, straight from the map.
            let all = members.all.iter().map(|(id, slot)| (id, &slot.member));
            return self.push_to(message, members.all.len(), all);
        }
        let reached = members.audience.reached_by(message);
        self.push_to(message, reached.len(), reached.into_iter())
    }

    /// Pushes `message` onto the queues of `count` members.
    fn push_to<'a>(
        &self,
        message: &Message,
        count: usize,
        members: impl Iterator<Item = (&'a ListenerId, &'a Member<InMemoryQueue>)>,
    ) -> Result<Broadcast> {
        let mut outcome = Broadcast::default();
        // Every listener's copy reaches the journal's storage in one write:
        // a crash keeps the broadcast for all of them or for none.
        let _group = Group::open(self.inner.journal.as_deref());
        let size = stored_size(message);
        // The budget is charged for every queue before any push, so a
        // broadcast the node cannot hold is refused whole (as a Redis
        // script at `maxmemory` is); queues that refuse give their share
        // back.
        let budget = &self.inner.budget;
        budget.reserve(size.saturating_mul(count), "broadcasting")?;
        for (id, member) in members {
            match member.queue().push_prepaid(message.clone(), size) {
                Ok(_) => outcome.delivered += 1,
                Err(e) => {
                    budget.release(size);
                    // Any other error: closed between lookup and push, it
                    // is being removed.
                    if matches!(e, Error::QueueFull { .. }) {
                        outcome.full.push(id.clone());
                    }
                }
            }
        }
        Ok(outcome)
    }
}

impl fmt::Debug for InMemoryRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryRegistry")
            .field("channel", &self.inner.channel)
            .field("listeners", &self.read().all.len())
            .finish()
    }
}

impl MemberRegistry for InMemoryRegistry {
    type Queue = InMemoryQueue;

    fn register(
        &self,
        member: Member<InMemoryQueue>,
        mode: RegisterMode,
        subscriptions: Option<Subscriptions>,
    ) -> impl Future<Output = Result<Member<InMemoryQueue>>> + Send {
        self.settle(self.register_now(member, mode, subscriptions, Registration::Lasting))
    }

    fn register_temporary(
        &self,
        member: Member<InMemoryQueue>,
        subscriptions: Subscriptions,
    ) -> impl Future<Output = Result<Member<InMemoryQueue>>> + Send {
        self.settle(self.register_now(
            member,
            RegisterMode::New,
            Some(subscriptions),
            Registration::Temporary,
        ))
    }

    fn restore(
        &self,
        member: Member<InMemoryQueue>,
        subscriptions: Subscriptions,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(
            self.register_now(
                member,
                RegisterMode::KeepQueue,
                Some(subscriptions),
                Registration::Restored,
            )
            .map(|_| ()),
        )
    }

    fn subscriptions(
        &self,
        listener: &ListenerId,
    ) -> impl Future<Output = Result<Subscriptions>> + Send {
        let result = self
            .read()
            .all
            .get(listener)
            .map(|slot| slot.subscriptions.clone())
            .ok_or_else(|| self.invalid(listener));
        ready(result)
    }

    fn change_subscriptions(
        &self,
        listener: &ListenerId,
        change: SubscriptionChange,
    ) -> impl Future<Output = Result<Subscriptions>> + Send {
        self.settle(self.change_subscriptions_now(listener, &change))
    }

    fn remove(
        &self,
        listener: &ListenerId,
    ) -> impl Future<Output = Result<Member<InMemoryQueue>>> + Send + 'static {
        self.settle(self.remove_now(listener))
    }

    fn get(
        &self,
        listener: &ListenerId,
    ) -> impl Future<Output = Result<Member<InMemoryQueue>>> + Send {
        ready(self.get_now(listener))
    }

    fn members(&self) -> impl Future<Output = Result<Vec<Member<InMemoryQueue>>>> + Send {
        ready(Ok(self
            .read()
            .all
            .values()
            .map(|slot| slot.member.clone())
            .collect()))
    }

    fn listener_ids(&self) -> impl Future<Output = Result<Vec<ListenerId>>> + Send {
        ready(Ok(self.read().all.keys().cloned().collect()))
    }

    fn pop_next(
        &self,
        listener: &ListenerId,
    ) -> impl Future<Output = Result<(Delivery, Option<Listener>)>> + Send {
        // One read lock for lookup, flag and pop: no member clone.
        let members = self.read();
        let result = match members.all.get(listener).map(|slot| &slot.member) {
            None => Err(self.invalid(listener)),
            Some(c) if !c.listener().is_running() => Err(Error::NoMessages {
                listener: listener.clone(),
                reason: NoMessagesReason::Stopped,
            }),
            Some(c) => c.queue().pop_now().map(|delivery| {
                let hook = c.listener().has_hook().then(|| c.listener().clone());
                (delivery, hook)
            }),
        };
        drop(members);
        self.settle(result)
    }

    fn dispatch(
        &self,
        listener: &ListenerId,
        message: Message,
    ) -> impl Future<Output = Result<u64>> + Send {
        self.settle(self.dispatch_now(listener, message))
    }

    fn broadcast(&self, message: &Message) -> impl Future<Output = Result<Broadcast>> + Send {
        self.settle(self.broadcast_now(message))
    }

    fn dispatch_once(
        &self,
        listener: &ListenerId,
        message: Message,
        key: &IdempotencyKey,
        window: Duration,
    ) -> impl Future<Output = Result<Applied<u64>>> + Send {
        let mut applied = self.applied();
        // The message and its key reach the journal's storage together: a
        // crash cannot keep the one without the other.
        let group = Group::open(self.inner.journal.as_deref());
        let result = match applied.get(Some(listener), key) {
            Some(Recorded::Dispatch(seq)) => Ok(Applied::replayed(seq)),
            _ => self.dispatch_now(listener, message).map(|seq| {
                applied.insert(Some(listener), key, Recorded::Dispatch(seq), window);
                self.record_applied(Some(listener), key, Outcome::Dispatch(seq), window);
                Applied::fresh(seq)
            }),
        };
        drop(group);
        drop(applied);
        self.settle(result)
    }

    fn broadcast_once(
        &self,
        message: &Message,
        key: &IdempotencyKey,
        window: Duration,
    ) -> impl Future<Output = Result<Applied<Broadcast>>> + Send {
        let mut applied = self.applied();
        let group = Group::open(self.inner.journal.as_deref());
        let result = match applied.get(None, key) {
            Some(Recorded::Broadcast(outcome)) => Ok(Applied::replayed(outcome)),
            // A broadcast the budget refused applied nothing: not recorded.
            _ => self.broadcast_now(message).map(|outcome| {
                applied.insert(None, key, Recorded::Broadcast(outcome.clone()), window);
                let stored = Outcome::Broadcast {
                    delivered: outcome.delivered,
                    full: outcome.full.clone(),
                };
                self.record_applied(None, key, stored, window);
                Applied::fresh(outcome)
            }),
        };
        drop(group);
        drop(applied);
        self.settle(result)
    }

    fn set_running(
        &self,
        listener: &ListenerId,
        running: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        // The write lock orders the flag and its record against another
        // start or stop of the same listener.
        let members = self.write();
        let result = match members.all.get(listener) {
            Some(slot) => {
                slot.member.listener().set_running(running);
                self.record(|channel| Change::Running {
                    channel,
                    listener: listener.clone(),
                    running,
                });
                Ok(())
            }
            None => Err(self.invalid(listener)),
        };
        drop(members);
        self.settle(result)
    }
}
