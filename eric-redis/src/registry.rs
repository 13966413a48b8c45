//! [`RedisRegistry`]: a channel's membership, kept in Redis.
//!
//! Membership is the truth in Redis: registering or removing a listener is
//! one script that changes only that listener, so concurrent changes from
//! several nodes never lose one, and a broadcast reaches exactly the
//! listeners registered when its script runs. Each node keeps a cache of the
//! listener objects and queue handles it has used (module `state`); scripts
//! that find a cached listener gone evict it.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use eric_core::channel::QueueLimits;
use eric_core::{
    Applied, Broadcast, Delivery, Error, IdempotencyKey, Listener, ListenerId, MemberRegistry,
    Message, NoMessagesReason, Queue, RegisterMode, Result, SubscriptionChange, Subscriptions,
};

use crate::batch::window_ms;
use crate::queue::{RedisQueue, encode_message};
use crate::scripts::SCRIPTS;
use crate::subscriptions;

use crate::state::{ChannelState, Member};

/// A channel's members in Redis (see the module docs).
#[derive(Clone)]
pub struct RedisRegistry {
    shared: Arc<ChannelState>,
    limits: QueueLimits,
    /// The channel's `max_subscriptions`.
    max_subscriptions: usize,
}

/// How often a subscription change re-reads the set after another change
/// to the same listener slipped in between its read and its write. Each
/// retry means another node's change landed, so running out takes that
/// many concurrent changes to one listener.
const CHANGE_ATTEMPTS: usize = 32;

impl fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRegistry")
            .field("channel", &self.shared.channel)
            .finish_non_exhaustive()
    }
}

impl RedisRegistry {
    /// `script` (`broadcast` or its idempotent wrapping) for `encoded`.
    fn broadcast_invocation<'s>(
        &self,
        script: &'s redis::Script,
        encoded: &str,
        message: &Message,
    ) -> redis::ScriptInvocation<'s> {
        let keys = &self.shared.keys;
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&keys.members)
            .arg(&keys.base)
            .arg(encoded)
            .arg(self.limits.capacity)
            .arg(&keys.notify)
            .arg(self.limits.max_bytes)
            .arg(message.msg_type().as_str())
            .arg(message.topic().map_or("", |t| t.as_str()));
        invocation
    }

    pub(crate) fn new(
        shared: Arc<ChannelState>,
        limits: QueueLimits,
        max_subscriptions: usize,
    ) -> Self {
        Self {
            shared,
            limits,
            max_subscriptions,
        }
    }

    fn invalid(&self, listener: &ListenerId) -> Error {
        Error::InvalidListener {
            channel: self.shared.channel.clone(),
            listener: listener.clone(),
        }
    }

    fn queue(&self, listener: &ListenerId) -> RedisQueue {
        RedisQueue::new(
            self.shared.client.clone(),
            self.shared.dispatcher.clone(),
            self.shared.feed.clone(),
            self.shared.advancer.clone(),
            self.shared.group.clone(),
            self.shared.keys.clone(),
            self.shared.channel.clone(),
            listener.clone(),
            self.limits,
        )
    }

    async fn load(&self, listener: &ListenerId) -> Result<Member> {
        let mut pipe = redis::pipe();
        pipe.cmd("HGET")
            .arg(&self.shared.keys.listeners)
            .arg(listener.key_segment().as_ref());
        pipe.cmd("HGET")
            .arg(&self.shared.keys.running)
            .arg(listener.key_segment().as_ref());
        let (member_id, running): (Option<String>, Option<String>) = self
            .shared
            .client
            .pipe("looking up a listener", &pipe)
            .await?;
        let member_id = member_id.ok_or_else(|| self.invalid(listener))?;
        let running = running.as_deref() == Some("1");
        let built = self.build(listener, &member_id, running)?;
        Ok(self.shared.insert_if_absent(built, running))
    }

    /// Whether `listener` is registered, and its stored subscriptions (''
    /// for none), read together.
    async fn read_subscriptions(&self, listener: &ListenerId) -> Result<(bool, String)> {
        let segment = listener.key_segment();
        let mut pipe = redis::pipe();
        pipe.cmd("ZSCORE")
            .arg(&self.shared.keys.members)
            .arg(segment.as_ref());
        pipe.cmd("HGET")
            .arg(&self.shared.keys.subs)
            .arg(segment.as_ref());
        let (score, stored): (Option<String>, Option<String>) = self
            .shared
            .client
            .pipe("reading subscriptions", &pipe)
            .await?;
        Ok((score.is_some(), stored.unwrap_or_default()))
    }

    fn build(&self, listener: &ListenerId, member_id: &str, running: bool) -> Result<Member> {
        let object = Listener::with_id(listener.clone());
        object.set_running(running);
        let id = eric_core::MemberId::new(member_id)?;
        Ok(Member::new(object, self.queue(listener), Some(id)))
    }

    async fn register_now(
        &self,
        member: Member,
        mode: RegisterMode,
        subs: Option<Subscriptions>,
    ) -> Result<Member> {
        let listener = member.listener_id().clone();
        let running = member.listener().is_running();
        let encoded = subs.as_ref().map(subscriptions::encode).transpose()?;
        let mut invocation = SCRIPTS.register.prepare_invoke();
        invocation
            .key(&self.shared.keys.members)
            .key(&self.shared.keys.listeners)
            .key(&self.shared.keys.running)
            .key(&self.shared.keys.order)
            .arg(listener.key_segment().as_ref())
            .arg(member.id().as_str())
            .arg(if running { "1" } else { "0" })
            .arg(if mode == RegisterMode::New {
                "new"
            } else {
                "keep"
            })
            .arg(&self.shared.keys.notify)
            .arg(&self.shared.keys.base)
            .arg(encoded.as_deref().unwrap_or(""))
            .arg(if encoded.is_some() { "1" } else { "0" });
        let (status, stored): (u8, String) = self
            .shared
            .client
            .script("registering a listener", &invocation)
            .await?;
        match status {
            0 => Err(Error::ListenerExists {
                channel: self.shared.channel.clone(),
                listener,
            }),
            1 => {
                // Kept: the same Redis list, under the stored member id.
                let id = eric_core::MemberId::new(&stored)?;
                let (kept, replaced) = self.shared.keep(member, id, running);
                // Streams on the replaced object end (see RegisterMode).
                if let Some(replaced) = replaced {
                    replaced.stop();
                }
                if encoded.is_some() {
                    self.shared.resubscribed(&listener);
                }
                Ok(kept)
            }
            _ => {
                self.shared.insert(member.clone(), running);
                Ok(member)
            }
        }
    }
}

impl MemberRegistry for RedisRegistry {
    type Queue = RedisQueue;

    async fn register(
        &self,
        member: Member,
        mode: RegisterMode,
        subscriptions: Option<Subscriptions>,
    ) -> Result<Member> {
        self.register_now(member, mode, subscriptions).await
    }

    /// Leased first, registered second: there is no moment at which a
    /// killed node could leave it registered without a lease.
    async fn register_temporary(
        &self,
        member: Member,
        subscriptions: Subscriptions,
    ) -> Result<Member> {
        let (channel, listener) = (&self.shared.channel, member.listener_id().clone());
        self.shared
            .leases
            .take(channel, &listener, member.id().as_str())
            .await?;
        let registered = self
            .register_now(member, RegisterMode::New, Some(subscriptions))
            .await;
        if registered.is_err() {
            // The lease would only lapse and be swept: give it back now.
            let _ = self.shared.leases.release(channel, &listener).await;
        }
        registered
    }

    fn restore(
        &self,
        member: Member,
        _subscriptions: Subscriptions,
    ) -> impl Future<Output = Result<()>> + Send {
        // Loaded from Redis itself (subscriptions included): nothing to
        // write, only to cache.
        let running = member.listener().is_running();
        self.shared.insert(member, running);
        std::future::ready(Ok(()))
    }

    fn remove(
        &self,
        listener: &ListenerId,
    ) -> impl Future<Output = Result<Member>> + Send + 'static {
        let (this, listener) = (self.clone(), listener.clone());
        async move {
            let keys = &this.shared.keys;
            let mut invocation = SCRIPTS.remove.prepare_invoke();
            for key in keys.listener_structures() {
                invocation.key(key);
            }
            invocation
                .arg(&keys.base)
                .arg(&keys.notify)
                .arg(listener.key_segment().as_ref());
            let removed: Option<String> = this
                .shared
                .client
                .script("removing a listener", &invocation)
                .await?;
            // Removed here or gone already: a lease of it has nothing to keep.
            if let Err(error) = this
                .shared
                .leases
                .release(&this.shared.channel, &listener)
                .await
            {
                tracing::debug!(%error, "releasing a lease failed; it will lapse and be swept");
            }
            let member_id = removed.ok_or_else(|| this.invalid(&listener))?;
            let member = match this.shared.take(&listener) {
                Some(cached) => cached,
                None => this.build(&listener, &member_id, false)?,
            };
            member.queue().close();
            Ok(member)
        }
    }

    async fn subscriptions(&self, listener: &ListenerId) -> Result<Subscriptions> {
        let (present, stored) = self.read_subscriptions(listener).await?;
        if !present {
            return Err(self.invalid(listener));
        }
        subscriptions::decode(&stored)
    }

    /// Read, apply in Rust, then write only if the set is still the one
    /// read (a compare-and-set script): the change logic and its bound live
    /// in eric-core once, and the write is one atomic script, so every
    /// broadcast sees the set before or after.
    async fn change_subscriptions(
        &self,
        listener: &ListenerId,
        change: SubscriptionChange,
    ) -> Result<Subscriptions> {
        let keys = &self.shared.keys;
        for _ in 0..CHANGE_ATTEMPTS {
            let (present, stored) = self.read_subscriptions(listener).await?;
            if !present {
                return Err(self.invalid(listener));
            }
            let current = subscriptions::decode(&stored)?;
            let next = change.apply(listener, &current, self.max_subscriptions)?;
            let encoded = subscriptions::encode(&next)?;
            let mut invocation = SCRIPTS.set_subscriptions.prepare_invoke();
            invocation
                .key(&keys.members)
                .key(&keys.subs)
                .arg(&keys.base)
                .arg(listener.key_segment().as_ref())
                .arg(&stored)
                .arg(&encoded)
                .arg(&keys.notify);
            let status: i8 = self
                .shared
                .client
                .script("changing subscriptions", &invocation)
                .await?;
            match status {
                1 => {
                    self.shared.resubscribed(listener);
                    return Ok(next);
                }
                0 => return Err(self.invalid(listener)),
                _ => continue,
            }
        }
        Err(Error::Unavailable {
            backend: "redis",
            operation: "changing subscriptions",
            source: format!(
                "listener {listener}'s subscriptions changed concurrently {CHANGE_ATTEMPTS} times in a row"
            )
            .into(),
        })
    }

    async fn get(&self, listener: &ListenerId) -> Result<Member> {
        match self.shared.cached(listener) {
            Some(member) => Ok(member),
            None => self.load(listener).await,
        }
    }

    async fn members(&self) -> Result<Vec<Member>> {
        let members = self.shared.members().await?;
        members
            .into_iter()
            .map(|(id, member_id, running)| match self.shared.cached(&id) {
                Some(cached) => Ok(cached),
                None => Ok(self
                    .shared
                    .insert_if_absent(self.build(&id, &member_id, running)?, running)),
            })
            .collect()
    }

    async fn listener_ids(&self) -> Result<Vec<ListenerId>> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(&self.shared.keys.members).arg(0).arg(-1);
        let ids: Vec<String> = self.shared.client.query("listing listeners", &cmd).await?;
        Ok(ids
            .into_iter()
            .filter_map(|segment| ListenerId::from_key_segment(&segment).ok())
            .collect())
    }

    async fn pop_next(&self, listener: &ListenerId) -> Result<(Delivery, Option<Listener>)> {
        let member = self.get(listener).await?;
        if !member.listener().is_running() {
            return Err(Error::NoMessages {
                listener: listener.clone(),
                reason: NoMessagesReason::Stopped,
            });
        }
        let delivery = member.queue().pop().await?;
        let hook = member
            .listener()
            .has_hook()
            .then(|| member.listener().clone());
        Ok((delivery, hook))
    }

    async fn dispatch(&self, listener: &ListenerId, message: Message) -> Result<u64> {
        // The script checks membership: no lookup needed first.
        let encoded = encode_message(&message)?;
        let result = self
            .shared
            .dispatcher
            .dispatch(listener, encoded, self.limits)
            .await;
        match &result {
            Ok(seq) => self.shared.queued(listener, *seq),
            Err(Error::InvalidListener { .. }) => self.shared.evict(listener),
            Err(_) => {}
        }
        result
    }

    async fn broadcast(&self, message: &Message) -> Result<Broadcast> {
        let encoded = encode_message(message)?;
        let invocation = self.broadcast_invocation(&SCRIPTS.broadcast, &encoded, message);
        let (delivered, full, seq): (usize, Vec<String>, Option<u64>) = self
            .shared
            .client
            .script("broadcasting", &invocation)
            .await?;
        Ok(self.broadcast_outcome(delivered, full, seq))
    }

    async fn dispatch_once(
        &self,
        listener: &ListenerId,
        message: Message,
        key: &IdempotencyKey,
        window: Duration,
    ) -> Result<Applied<u64>> {
        if window.is_zero() {
            return self.dispatch(listener, message).await.map(Applied::fresh);
        }
        let encoded = encode_message(&message)?;
        let record = self.shared.keys.applied(Some(listener), key);
        let result = self
            .shared
            .dispatcher
            .dispatch_once(listener, encoded, self.limits, &record, window)
            .await;
        match result {
            Ok((replayed, seq)) => {
                self.shared.queued(listener, seq);
                Ok(Applied {
                    value: seq,
                    replayed,
                })
            }
            Err(e) => {
                if matches!(e, Error::InvalidListener { .. }) {
                    self.shared.evict(listener);
                }
                Err(e)
            }
        }
    }

    async fn broadcast_once(
        &self,
        message: &Message,
        key: &IdempotencyKey,
        window: Duration,
    ) -> Result<Applied<Broadcast>> {
        if window.is_zero() {
            return self.broadcast(message).await.map(Applied::fresh);
        }
        let encoded = encode_message(message)?;
        let mut invocation = self.broadcast_invocation(&SCRIPTS.broadcast_once, &encoded, message);
        invocation
            .arg(self.shared.keys.applied(None, key))
            .arg(window_ms(window));
        let (replayed, (delivered, full, seq)): (u8, (usize, Vec<String>, Option<u64>)) = self
            .shared
            .client
            .script("broadcasting", &invocation)
            .await?;
        Ok(Applied {
            value: self.broadcast_outcome(delivered, full, seq),
            replayed: replayed == 1,
        })
    }

    async fn set_running(&self, listener: &ListenerId, running: bool) -> Result<()> {
        let keys = &self.shared.keys;
        let mut invocation = SCRIPTS.set_running.prepare_invoke();
        invocation
            .key(&keys.members)
            .key(&keys.running)
            .arg(listener.key_segment().as_ref())
            .arg(if running { "1" } else { "0" })
            .arg(&keys.notify);
        let found: u8 = self
            .shared
            .client
            .script("starting or stopping a listener", &invocation)
            .await?;
        if found == 0 {
            self.shared.evict(listener);
            return Err(self.invalid(listener));
        }
        // The notification does the same on every node; here, at once.
        self.shared.remote_running(listener, running);
        Ok(())
    }
}

/// Creates queue handles for new subscriptions of one channel.
#[derive(Clone)]
pub struct RedisMemberFactory {
    registry: RedisRegistry,
}

impl RedisMemberFactory {
    pub(crate) fn new(registry: RedisRegistry) -> Self {
        Self { registry }
    }
}

impl fmt::Debug for RedisMemberFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisMemberFactory")
            .field("channel", &self.registry.shared.channel)
            .finish()
    }
}

impl eric_core::MemberFactory for RedisMemberFactory {
    type Queue = RedisQueue;

    fn queue(&self, listener: &ListenerId) -> RedisQueue {
        self.registry.queue(listener)
    }
}

/// A broadcast script's answer: full listeners come back as key segments.
/// Its number goes to this node's feed at once, so that a take here after
/// the broadcast returned finds it, without waiting for the notification.
impl RedisRegistry {
    fn broadcast_outcome(
        &self,
        delivered: usize,
        full: Vec<String>,
        seq: Option<u64>,
    ) -> Broadcast {
        if let Some(seq) = seq {
            self.shared.feed.logged(seq);
        }
        broadcast_outcome(delivered, full)
    }
}

fn broadcast_outcome(delivered: usize, full: Vec<String>) -> Broadcast {
    Broadcast {
        delivered,
        full: full
            .into_iter()
            .filter_map(|segment| ListenerId::from_key_segment(&segment).ok())
            .collect(),
    }
}
