//! [`ChannelState`]: what one node holds of one channel.
//!
//! Membership lives in Redis, but listener objects (their hooks, their local
//! running flag) and queue handles (their wake-ups) live on each node. This
//! cache is shared by every `Channel` object of the channel on the node and
//! reached by the pub/sub subscriber, which keeps it current: removals close
//! queues (ending streams), flag changes reach listener objects, broadcasts
//! go to the channel's feed (read by one task per channel, which wakes the
//! streams the new entries reach).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::future::BoxFuture;
use tokio::sync::{broadcast, watch};

use eric_core::{ChannelId, ListenerId, Queue, Result};

use crate::advance::Advancer;
use crate::batch::Dispatcher;
use crate::client::Client;
use crate::feed::Feed;
use crate::group::{self, Ask, Group};
use crate::keys::ChannelKeys;
use crate::lease::Leases;
use crate::notify::{Notifier, WakeTarget};
use crate::queue::RedisQueue;
use crate::scripts::SCRIPTS;

pub(crate) type Member = eric_core::Member<RedisQueue>;

/// How long after a failed group step the next is tried without a
/// notification prompting it.
const STEP_RETRY: std::time::Duration = std::time::Duration::from_millis(500);
type Cache = HashMap<ListenerId, Cached, foldhash::quality::RandomState>;

/// A listener this node holds.
struct Cached {
    member: Member,
    /// The running flag Redis had when this node last saw it. Revalidation
    /// applies Redis's flag only when it differs from this (a change made
    /// elsewhere that this node missed), so a local `Listener::start` or
    /// `stop`, which only this node sees, is not undone.
    remote_running: bool,
    /// When (in `ChannelState::changes`) `remote_running` last changed: a
    /// revalidation that read Redis before that must not apply its older view.
    changed: u64,
}

/// One channel's state on this node (see the module docs).
pub(crate) struct ChannelState {
    pub(crate) client: Client,
    pub(crate) channel: ChannelId,
    pub(crate) keys: Arc<ChannelKeys>,
    pub(crate) dispatcher: Arc<Dispatcher>,
    /// The channel's broadcast log as this node reads it.
    pub(crate) feed: Arc<Feed>,
    /// Combines the takes of this channel's streams here.
    pub(crate) advancer: Arc<Advancer>,
    /// The caught-up streams here, moved together.
    pub(crate) group: Arc<Group>,
    cache: Mutex<Cache>,
    /// Counts changes to cached flags (see `Cached::changed`).
    changes: AtomicU64,
    notifier: Notifier,
    /// The node's leases, for this channel's temporary listeners.
    pub(crate) leases: Leases,
    /// Tells the engine's listeners that this channel was deleted.
    deletions: broadcast::Sender<ChannelId>,
    /// Counts the node's group steps and moves (see `RedisEngine::group_steps`).
    steps: watch::Sender<u64>,
}

impl ChannelState {
    pub(crate) fn new(
        client: Client,
        channel: ChannelId,
        keys: ChannelKeys,
        notifier: Notifier,
        leases: Leases,
        deletions: broadcast::Sender<ChannelId>,
        steps: watch::Sender<u64>,
    ) -> Self {
        let keys = Arc::new(keys);
        let group = Arc::new(Group::new(client.clone(), keys.base.clone()));
        Self {
            dispatcher: Arc::new(Dispatcher::new(
                client.clone(),
                channel.clone(),
                keys.clone(),
            )),
            feed: Arc::new(Feed::new(client.clone(), keys.base.clone())),
            advancer: Arc::new(Advancer::new(
                client.clone(),
                channel.clone(),
                keys.base.clone(),
                group.id().to_owned(),
            )),
            group,
            client,
            channel,
            keys,
            cache: Mutex::new(Cache::default()),
            changes: AtomicU64::new(0),
            notifier,
            leases,
            deletions,
            steps,
        }
    }

    /// Starts the task that reads the log when notifications announce
    /// entries, while some stream here reads it, and wakes the streams the
    /// new entries reach (and only those). It ends with the state.
    pub(crate) fn start_feed(this: &Arc<Self>) {
        let state = Arc::downgrade(this);
        let feed = this.feed.clone();
        tokio::spawn(async move {
            loop {
                feed.changed.notified().await;
                if feed.is_closed() {
                    return;
                }
                if !feed.has_readers() {
                    continue;
                }
                let Some(state) = state.upgrade() else { return };
                // With members here, the read moves the group too: one
                // round trip per read for every caught-up stream.
                let group = state.group.populated().then(|| state.group.id());
                match feed.catch_up_moving(feed.announced(), group).await {
                    Ok(Some(moved)) => {
                        state.apply_departures(&group::departures(&moved.left));
                        state.group.raise(moved.position);
                        state.steps.send_modify(|n| *n += 1);
                    }
                    Ok(None) => {}
                    // Streams read on their own takes and retry from there.
                    Err(error) => tracing::debug!(%error, "reading the broadcast log failed"),
                }
                state.step_group().await;
                let mut slowest = u64::MAX;
                for cached in state.cache().values() {
                    let queue = cached.member.queue();
                    let (wants, position) = queue.wants();
                    if wants {
                        queue.wakeup().notify_one();
                    }
                    slowest = slowest.min(position.unwrap_or(u64::MAX));
                }
                // Memory holds only what some stream here has still to read.
                if slowest != u64::MAX {
                    feed.passed_by_all(slowest);
                }
            }
        });
    }

    /// One step of this node's group, when it has members (and the log
    /// moved) or a listener asked to join or leave; see `group`.
    async fn step_group(&self) {
        let acked = self.group.acked();
        let position = self.feed.known();
        let mut leaving = Vec::new();
        let mut joining = Vec::new();
        let mut members = false;
        for cached in self.cache().values() {
            let queue = cached.member.queue();
            let (ask, member) = queue.group_ask(acked);
            members |= member;
            match ask {
                Some(Ask::Join(join)) => joining.push((cached.member.clone(), join)),
                Some(Ask::Leave(leave)) => leaving.push((cached.member.clone(), leave)),
                None => {}
            }
        }
        self.group.set_populated(members);
        let wanted = self.group.take_wanted();
        if leaving.is_empty() && joining.is_empty() && !wanted && !(members && position > acked) {
            return;
        }
        if (members || !joining.is_empty())
            && let Err(error) = self.leases.take_group(&self.channel, self.group.id()).await
        {
            // No join without a lease: a group nobody dissolves if this node
            // dies would hold its members' cursors for good.
            tracing::debug!(channel = %self.channel, %error, "taking the group's lease failed");
            for (member, _) in joining.drain(..) {
                member.queue().group_failed();
            }
        }
        let (leave_members, leaves): (Vec<_>, Vec<_>) = leaving.into_iter().unzip();
        let (join_members, joins): (Vec<_>, Vec<_>) = joining.into_iter().unzip();
        match self.group.step(position, &leaves, &joins).await {
            Ok(stepped) => {
                self.apply_departures(&stepped.left);
                self.group.raise(stepped.position);
                for (member, applied) in leave_members.iter().zip(&stepped.leaves) {
                    member.queue().group_released(*applied);
                }
                for (member, joined) in join_members.iter().zip(&stepped.joins) {
                    member.queue().group_joined(*joined);
                }
                self.steps.send_modify(|n| *n += 1);
            }
            Err(error) => {
                tracing::debug!(channel = %self.channel, %error, "moving the group of streams failed");
                for member in leave_members.iter().chain(&join_members) {
                    member.queue().group_failed();
                }
                // Asked again once Redis answers: the next notification, or
                // a retry after a pause.
                self.group.want();
                let feed = self.feed.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(STEP_RETRY).await;
                    feed.changed.notify_one();
                });
            }
        }
    }

    /// Members taken out of the group by others: before the group's new
    /// position is raised, so none takes past where it left.
    fn apply_departures(&self, left: &[(ListenerId, u64)]) {
        for (listener, at) in left {
            let done = self
                .cached(listener)
                .is_none_or(|member| member.queue().group_left(*at));
            if done {
                self.group.ack(listener);
            }
        }
    }

    // Map operations cannot leave the cache half-changed: poison is harmless.
    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The member this node holds for `listener`.
    pub(crate) fn cached(&self, listener: &ListenerId) -> Option<Member> {
        self.cache().get(listener).map(|c| c.member.clone())
    }

    fn stamp(&self) -> u64 {
        self.changes.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Caches `member`, whose flag in Redis is `remote_running`.
    pub(crate) fn insert(&self, member: Member, remote_running: bool) {
        let id = member.listener_id().clone();
        let changed = self.stamp();
        self.cache().insert(
            id,
            Cached {
                member,
                remote_running,
                changed,
            },
        );
    }

    /// Caches `member` unless another task cached this listener first;
    /// returns the one cached.
    pub(crate) fn insert_if_absent(&self, member: Member, remote_running: bool) -> Member {
        let id = member.listener_id().clone();
        let changed = self.stamp();
        let mut cache = self.cache();
        let entry = cache.entry(id).or_insert(Cached {
            member,
            remote_running,
            changed,
        });
        entry.member.clone()
    }

    /// Caches `member`, registered again under the member id `id`, in
    /// place of what this node held for its listener (whose member id it
    /// keeps, with `member`'s listener object); returns the cached member
    /// and the listener object it replaced, if another.
    ///
    /// The caller stops the replaced object, so its streams end. It is out
    /// of the cache first, in this one step: a late notification or a
    /// revalidation that sets the cached object's running flag would
    /// otherwise restart it between its stop and its replacement, and its
    /// streams would run on, out of reach.
    pub(crate) fn keep(
        &self,
        member: Member,
        id: eric_core::MemberId,
        remote_running: bool,
    ) -> (Member, Option<eric_core::Listener>) {
        let listener = member.listener_id().clone();
        let changed = self.stamp();
        let mut cache = self.cache();
        let (kept, replaced) = match cache.get(&listener) {
            Some(previous) => {
                let old = previous.member.listener();
                let replaced = (!old.same_object(member.listener())).then(|| old.clone());
                (
                    previous.member.with_listener(member.listener().clone()),
                    replaced,
                )
            }
            None => (member.with_id(id), None),
        };
        cache.insert(
            listener,
            Cached {
                member: kept.clone(),
                remote_running,
                changed,
            },
        );
        (kept, replaced)
    }

    /// Takes `listener` out of the cache.
    pub(crate) fn take(&self, listener: &ListenerId) -> Option<Member> {
        self.cache().remove(listener).map(|c| c.member)
    }

    /// Redis now holds `running` for `listener`: this node follows.
    pub(crate) fn remote_running(&self, listener: &ListenerId, running: bool) {
        let changed = self.stamp();
        if let Some(cached) = self.cache().get_mut(listener) {
            cached.remote_running = running;
            cached.changed = changed;
            cached.member.listener().set_running(running);
        }
    }

    /// `listener`'s list got message `seq` through this node: a take here
    /// after that must find it, without waiting for the notification.
    pub(crate) fn queued(&self, listener: &ListenerId, seq: u64) {
        self.feed.announce(seq);
        if let Some(member) = self.cached(listener) {
            member.queue().queue_changed();
        }
    }

    /// `listener`'s subscriptions changed through this node: its streams
    /// here read them again on their next take, without waiting for `u`.
    pub(crate) fn resubscribed(&self, listener: &ListenerId) {
        if let Some(member) = self.cached(listener) {
            member.queue().forget();
            member.queue().wakeup().notify_one();
        }
    }

    /// Forgets a listener removed elsewhere and ends its streams here.
    pub(crate) fn evict(&self, listener: &ListenerId) {
        if let Some(member) = self.take(listener) {
            member.queue().close();
        }
    }

    /// Acts on one pub/sub notification for this channel.
    pub(crate) fn on_notification(&self, payload: &str) {
        let (kind, rest) = payload.split_once(' ').unwrap_or((payload, ""));
        // Notifications name listeners by key segment.
        let listener = |segment: &str| ListenerId::from_key_segment(segment).ok();
        match kind {
            "m" => {
                let (l, seq) = rest.split_once(' ').unwrap_or((rest, "0"));
                // Its number: the feed knows the log that far before the
                // message is merged with the broadcasts below it.
                if let Ok(seq) = seq.parse() {
                    self.feed.passed(seq);
                }
                if let Some(c) = listener(l).and_then(|l| self.cached(&l)) {
                    c.queue().queue_changed();
                    c.queue().wakeup().notify_one();
                }
            }
            // Its subscriptions changed (and its list may have grown): the
            // next take reads both again.
            "u" => {
                if let Some(l) = listener(rest) {
                    self.resubscribed(&l);
                }
            }
            // The feed's task reads the entry and wakes whom it reaches.
            "b" => {
                if let Ok(seq) = rest.parse() {
                    self.feed.logged(seq);
                }
            }
            "r" => {
                if let Some(l) = listener(rest) {
                    self.evict(&l);
                }
            }
            "s" => {
                if let Some((l, flag)) = rest.split_once(' ')
                    && let Some(l) = listener(l)
                {
                    self.remote_running(&l, flag == "1");
                }
            }
            "x" => {
                for (_, cached) in self.cache().drain() {
                    cached.member.queue().close();
                }
                // Nobody listening is fine: nothing holds the channel then.
                let _ = self.deletions.send(self.channel.clone());
            }
            _ => tracing::debug!(channel = %self.channel, payload, "unknown notification ignored"),
        }
    }

    /// Wakes every stream of this channel on this node, to look again.
    fn wake_all(&self) {
        for cached in self.cache().values() {
            cached.member.queue().wakeup().notify_all();
        }
    }

    /// Once a subscription is confirmed: notifications sent before it were
    /// not seen here, so re-read membership and flags of what this node
    /// holds, then wake every stream to look at its queue.
    ///
    /// It also checks that the channel's record (`meta`) still exists. A
    /// confirmation follows every reconnect, and a Redis that restarted
    /// empty (or lost the channel some other way without an `x` notice)
    /// shows here: the channel is announced deleted so that caches of it
    /// (the server's channel container) do not outlive it. Only the
    /// announcement: streams end by the membership check above, as their
    /// listeners are gone too. A channel made without a record (a library
    /// user's `Channel::new` with no repository) is announced as well, which
    /// costs nothing, as only holders of records listen.
    pub(crate) async fn revalidate(&self) {
        if !self.cache().is_empty() {
            // Notifications may have been missed: every queue looks at its
            // list and its place again, and the feed reads on.
            for cached in self.cache().values() {
                cached.member.queue().forget();
            }
            if let Err(error) = self.feed.refresh().await {
                tracing::warn!(channel = %self.channel, %error, "reading the broadcast log failed");
            }
            let read_at = self.changes.load(Ordering::Acquire);
            match self.members().await {
                Ok(members) => self.apply(members, read_at),
                Err(error) => {
                    tracing::warn!(channel = %self.channel, %error, "revalidation failed")
                }
            }
            self.wake_all();
        }
        // After the membership: whoever acts on the notice finds the
        // listeners already settled.
        match self.record_exists().await {
            Ok(false) => {
                tracing::info!(channel = %self.channel, "channel record gone from Redis; announcing its deletion");
                let _ = self.deletions.send(self.channel.clone());
            }
            Ok(true) => {}
            Err(error) => tracing::warn!(channel = %self.channel, %error, "revalidation failed"),
        }
    }

    /// Whether the channel's record (its `meta` hash) exists in Redis.
    async fn record_exists(&self) -> Result<bool> {
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(&self.keys.meta);
        let found: u8 = self.client.query("checking a channel record", &cmd).await?;
        Ok(found == 1)
    }

    /// Applies what Redis held when `read_at` was taken, except to entries
    /// changed since (their newer state wins).
    fn apply(&self, members: Vec<(ListenerId, String, bool)>, read_at: u64) {
        let live: HashMap<ListenerId, bool> = members.into_iter().map(|(l, _, r)| (l, r)).collect();
        self.cache().retain(|id, cached| match live.get(id) {
            _ if cached.changed > read_at => true,
            Some(&running) => {
                if running != cached.remote_running {
                    cached.remote_running = running;
                    cached.member.listener().set_running(running);
                }
                true
            }
            None => {
                cached.member.queue().close();
                false
            }
        });
    }

    /// Every member: listener id, member id, running flag, in registration order.
    pub(crate) async fn members(&self) -> Result<Vec<(ListenerId, String, bool)>> {
        let mut invocation = SCRIPTS.members.prepare_invoke();
        invocation
            .key(&self.keys.members)
            .key(&self.keys.listeners)
            .key(&self.keys.running)
            .key(&self.keys.subs);
        let (ids, member_ids, running, _subs): (
            Vec<String>,
            Vec<String>,
            Vec<String>,
            Vec<String>,
        ) = self.client.script("listing listeners", &invocation).await?;
        Ok(ids
            .into_iter()
            .zip(member_ids)
            .zip(running)
            .filter_map(|((segment, c), r)| {
                Some((ListenerId::from_key_segment(&segment).ok()?, c, r == "1"))
            })
            .collect())
    }
}

impl WakeTarget for ChannelState {
    fn on_notification(&self, payload: &str) {
        ChannelState::on_notification(self, payload);
    }

    fn revalidate(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async move { ChannelState::revalidate(&self).await })
    }
}

impl Drop for ChannelState {
    fn drop(&mut self) {
        self.feed.close();
        if self.group.acked() > 0
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            // Its members' streams are gone with the state: each left at
            // what it took, or, if the step never ran, at the position.
            let (group, leases, channel) = (
                self.group.clone(),
                self.leases.clone(),
                self.channel.clone(),
            );
            runtime.spawn(async move {
                if let Err(error) = group.dissolve().await {
                    tracing::debug!(%channel, %error, "ending the group of streams failed");
                    return;
                }
                let _ = leases.release_group(&channel, group.id()).await;
            });
        }
        // Lets the subscriber drop this channel's subscription.
        self.notifier.changed();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use eric_core::Listener;

    use super::*;
    use crate::config::RedisConfig;
    use crate::keys::Keys;

    /// Nothing needs to answer: the test never sends a command.
    fn state() -> ChannelState {
        let config = RedisConfig::with_url("redis://127.0.0.1:1");
        let client = Client::new(&config).unwrap();
        let pubsub = redis::Client::open(config.url.as_str()).unwrap();
        let notifier = Notifier::start(pubsub, client.clone(), None, Duration::from_millis(50));
        let channel: ChannelId = "c".parse().unwrap();
        let keys = Keys::new("t");
        let leases = Leases::start(client.clone(), keys.clone(), Duration::from_secs(30));
        let keys = keys.channel(&channel);
        ChannelState::new(
            client,
            channel,
            keys,
            notifier,
            leases,
            broadcast::channel(1).0,
            watch::Sender::new(0),
        )
    }

    fn cached(state: &ChannelState, id: &ListenerId) -> Member {
        let queue = RedisQueue::new(
            state.client.clone(),
            state.dispatcher.clone(),
            state.feed.clone(),
            state.advancer.clone(),
            state.group.clone(),
            state.keys.clone(),
            state.channel.clone(),
            id.clone(),
            eric_core::ChannelSettings::default().queue_limits(),
        );
        Member::new(Listener::with_id(id.clone()), queue, None)
    }

    /// A revalidation reads Redis, then applies; a start that lands in
    /// between must not be undone by the older view.
    #[tokio::test]
    async fn a_revalidation_never_applies_a_view_older_than_a_change() {
        let state = state();
        let id: ListenerId = "l".parse().unwrap();
        state.insert(cached(&state, &id), false);
        let read_at = state.changes.load(Ordering::Acquire);
        state.remote_running(&id, true);
        state.apply(vec![(id.clone(), "conn".into(), false)], read_at);
        assert!(state.cached(&id).unwrap().listener().is_running());
        // A view read after the change does apply.
        let read_at = state.changes.load(Ordering::Acquire);
        state.apply(vec![(id.clone(), "conn".into(), false)], read_at);
        assert!(!state.cached(&id).unwrap().listener().is_running());
        // A listener missing from a fresh view was removed: it is closed.
        state.apply(vec![], state.changes.load(Ordering::Acquire));
        assert!(state.cached(&id).is_none());
    }
}
