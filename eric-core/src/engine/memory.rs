//! [`MemoryEngine`]: the embedded default. Everything lives in this process.

use std::fmt;
use std::future::{Future, ready};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use indexmap::IndexMap;

use super::Engine;
use super::idempotency_log::{IdempotencyLog, Recorded};
use crate::error::{Error, NoMessagesReason, Result};
use crate::id::{ChannelId, IdempotencyKey, ListenerId};
use crate::idempotency::Applied;
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

/// The in-process engine: bounded [`InMemoryQueue`]s and per-channel maps.
///
/// Clones share one [`MemoryBudget`]: every queue of every channel made
/// through them counts against it.
#[derive(Clone)]
pub struct MemoryEngine {
    observer: Arc<dyn Observer>,
    budget: Arc<MemoryBudget>,
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
        }
    }

    fn registry(&self, channel: &ChannelId, _settings: &ChannelSettings) -> InMemoryRegistry {
        InMemoryRegistry::new(channel.clone(), self.budget.clone())
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
}

impl MemberFactory for InMemoryMemberFactory {
    type Queue = InMemoryQueue;

    fn queue(&self, listener: &ListenerId) -> InMemoryQueue {
        let owner = QueueOwner {
            channel: self.channel.clone(),
            listener: listener.clone(),
        };
        InMemoryQueue::new(owner, self.limits, self.budget.clone())
    }
}

/// Keyed with foldhash: lookups on the delivery path hash a 36-byte id each
/// time, and SipHash made that the largest cost of `deliver_next`.
type Map = IndexMap<ListenerId, Member<InMemoryQueue>, foldhash::quality::RandomState>;

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
    members: RwLock<Map>,
    /// Idempotency keys of applied writes (see [`crate::idempotency`]).
    applied: Mutex<IdempotencyLog>,
}

impl InMemoryRegistry {
    /// An empty registry for `channel`, whose broadcasts count against
    /// `budget` (the one its queues count against).
    pub fn new(channel: ChannelId, budget: Arc<MemoryBudget>) -> Self {
        Self {
            inner: Arc::new(RegistryInner {
                channel,
                budget,
                members: RwLock::new(Map::default()),
                applied: Mutex::new(IdempotencyLog::new()),
            }),
        }
    }

    // Every critical section leaves the map consistent, so a poisoned lock
    // (a panic elsewhere while holding it) is still safe to use.
    fn read(&self) -> RwLockReadGuard<'_, Map> {
        self.inner.members.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Map> {
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
        match self.read().get(listener) {
            Some(member) => member.queue().push_now(message),
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
            .get(listener)
            .cloned()
            .ok_or_else(|| self.invalid(listener))
    }

    fn register_now(
        &self,
        member: Member<InMemoryQueue>,
        mode: RegisterMode,
    ) -> Result<Member<InMemoryQueue>> {
        let mut map = self.write();
        let id = member.listener_id().clone();
        let registered = match (map.get(&id), mode) {
            (None, _) => member,
            (Some(_), RegisterMode::New) => {
                return Err(Error::ListenerExists {
                    channel: self.inner.channel.clone(),
                    listener: id,
                });
            }
            (Some(existing), RegisterMode::KeepQueue) => {
                if !existing.listener().same_object(member.listener()) {
                    existing.listener().stop();
                }
                existing.with_listener(member.listener().clone())
            }
        };
        map.insert(id, registered.clone());
        Ok(registered)
    }

    fn remove_now(&self, listener: &ListenerId) -> Result<Member<InMemoryQueue>> {
        let removed = self.write().shift_remove(listener);
        let member = removed.ok_or_else(|| self.invalid(listener))?;
        member.queue().close();
        Ok(member)
    }

    fn broadcast_now(&self, message: &Message) -> Result<Broadcast> {
        let mut outcome = Broadcast::default();
        let map = self.read();
        let size = stored_size(message);
        // The budget is charged for every queue before any push, so a
        // broadcast the node cannot hold is refused whole (as a Redis
        // script at `maxmemory` is); queues that refuse give their share
        // back.
        let budget = &self.inner.budget;
        budget.reserve(size.saturating_mul(map.len()), "broadcasting")?;
        for (id, member) in map.iter() {
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
            .field("listeners", &self.read().len())
            .finish()
    }
}

impl MemberRegistry for InMemoryRegistry {
    type Queue = InMemoryQueue;

    fn register(
        &self,
        member: Member<InMemoryQueue>,
        mode: RegisterMode,
    ) -> impl Future<Output = Result<Member<InMemoryQueue>>> + Send {
        ready(self.register_now(member, mode))
    }

    fn restore(&self, member: Member<InMemoryQueue>) -> impl Future<Output = Result<()>> + Send {
        ready(
            self.register_now(member, RegisterMode::KeepQueue)
                .map(|_| ()),
        )
    }

    fn remove(
        &self,
        listener: &ListenerId,
    ) -> impl Future<Output = Result<Member<InMemoryQueue>>> + Send + 'static {
        ready(self.remove_now(listener))
    }

    fn get(
        &self,
        listener: &ListenerId,
    ) -> impl Future<Output = Result<Member<InMemoryQueue>>> + Send {
        ready(self.get_now(listener))
    }

    fn members(&self) -> impl Future<Output = Result<Vec<Member<InMemoryQueue>>>> + Send {
        ready(Ok(self.read().values().cloned().collect()))
    }

    fn listener_ids(&self) -> impl Future<Output = Result<Vec<ListenerId>>> + Send {
        ready(Ok(self.read().keys().cloned().collect()))
    }

    fn pop_next(
        &self,
        listener: &ListenerId,
    ) -> impl Future<Output = Result<(Delivery, Option<Listener>)>> + Send {
        // One read lock for lookup, flag and pop: no member clone.
        let map = self.read();
        let result = match map.get(listener) {
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
        drop(map);
        ready(result)
    }

    fn dispatch(
        &self,
        listener: &ListenerId,
        message: Message,
    ) -> impl Future<Output = Result<u64>> + Send {
        ready(self.dispatch_now(listener, message))
    }

    fn broadcast(&self, message: &Message) -> impl Future<Output = Result<Broadcast>> + Send {
        ready(self.broadcast_now(message))
    }

    fn dispatch_once(
        &self,
        listener: &ListenerId,
        message: Message,
        key: &IdempotencyKey,
        window: Duration,
    ) -> impl Future<Output = Result<Applied<u64>>> + Send {
        let mut applied = self.applied();
        let result = match applied.get(Some(listener), key) {
            Some(Recorded::Dispatch(seq)) => Ok(Applied::replayed(seq)),
            _ => self.dispatch_now(listener, message).map(|seq| {
                applied.insert(Some(listener), key, Recorded::Dispatch(seq), window);
                Applied::fresh(seq)
            }),
        };
        ready(result)
    }

    fn broadcast_once(
        &self,
        message: &Message,
        key: &IdempotencyKey,
        window: Duration,
    ) -> impl Future<Output = Result<Applied<Broadcast>>> + Send {
        let mut applied = self.applied();
        let result = match applied.get(None, key) {
            Some(Recorded::Broadcast(outcome)) => Ok(Applied::replayed(outcome)),
            // A broadcast the budget refused applied nothing: not recorded.
            _ => self.broadcast_now(message).map(|outcome| {
                applied.insert(None, key, Recorded::Broadcast(outcome.clone()), window);
                Applied::fresh(outcome)
            }),
        };
        ready(result)
    }

    fn set_running(
        &self,
        listener: &ListenerId,
        running: bool,
    ) -> impl Future<Output = Result<()>> + Send {
        ready(
            self.get_now(listener)
                .map(|c| c.listener().set_running(running)),
        )
    }
}
