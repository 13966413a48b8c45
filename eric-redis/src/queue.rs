//! [`RedisQueue`]: what waits for one listener: its own queue (a Redis
//! list) and the channel's broadcast log after its cursor.
//!
//! Dispatches push on the right of the list, consumers pop on the left.
//! Every message is a JSON envelope `{"seq":N,"message":{...}}` numbered
//! from the channel's sequence (dispatches, broadcasts and subscription
//! changes share it), so its SSE id is the same whichever node streams it and
//! a listener's ids increase across both sources. A broadcast is one log
//! entry: a stream takes it from this node's [`Feed`], and the take moves the
//! listener's cursor in Redis (batched per channel by the [`Advancer`]), with
//! the queued messages numbered below that point, merged by number. Queued
//! messages a stream takes are copied to a capped replay list; log entries
//! stay in the log; so a resume on any node, even after the streaming node
//! died between the take and the write, can give back exactly what the
//! client did not get.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use eric_core::channel::QueueLimits;
use eric_core::queue::{QueueSnapshot, Rewind, Taken, Wakeup, stored_size};
use eric_core::{
    ChannelId, Delivery, Error, ListenerId, Message, NoMessagesReason, Queue, Result, Subscriptions,
};

use crate::advance::{Advancer, Outcome, Request};
use crate::batch::Dispatcher;
use crate::client::Client;
use crate::feed::Feed;
use crate::feed::Slice;
use crate::group::{Ask, Group, Join, Leave};
use crate::keys::ChannelKeys;
use crate::scripts::SCRIPTS;

/// A handle on one listener's queue, shared by every stream of it on this node.
pub struct RedisQueue {
    client: Client,
    /// Combines this channel's dispatches into one script call.
    dispatcher: Arc<Dispatcher>,
    keys: Arc<ChannelKeys>,
    channel: ChannelId,
    listener: ListenerId,
    queue_key: String,
    delivered_key: String,
    /// Capacity, byte bound and replay window, from the channel's settings.
    limits: QueueLimits,
    /// Signalled by this node's pub/sub subscriber.
    wakeup: Wakeup,
    /// Set when the listener is removed (here or, via pub/sub, elsewhere).
    closed: AtomicBool,
    /// The channel's log as this node reads it.
    feed: Arc<Feed>,
    /// Moves cursors for this channel's streams on this node.
    advancer: Arc<Advancer>,
    /// This node's group of the channel's caught-up streams.
    group: Arc<Group>,
    /// Streams of this listener open on this node.
    streams: AtomicUsize,
    /// Where this node believes the listener is in the log.
    place: Mutex<Place>,
    /// Counts notices that the list got messages (`m`, or a local change).
    queue_news: Arc<AtomicU64>,
    /// The count at which a take last found the list empty: while the two
    /// differ, takes look at the list.
    queue_seen: AtomicU64,
    /// Whether the feed counts this queue among its readers.
    attached: AtomicBool,
}

impl Drop for RedisQueue {
    fn drop(&mut self) {
        if *self.attached.get_mut() {
            self.feed.detach();
        }
    }
}

/// The listener's cursor and rewind epoch as last confirmed by Redis (none
/// before this node's first take, or after a rewind), and its
/// subscriptions, which filter what it takes from the log.
#[derive(Debug, Default)]
struct Place {
    /// In a group (`Member`, `Leaving`), the cursor is what this node's
    /// streams took, which Redis learns only if the listener leaves.
    at: Option<(u64, u64)>,
    subscriptions: Subscriptions,
    mode: Mode,
    /// Join the group at the next step.
    join: bool,
    /// Leave the group at the next step (or, releasing, ask again).
    leave: bool,
}

/// Where the listener stands with this node's group (see `group`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Mode {
    /// Its own cursor, moved compare-and-set by every take.
    #[default]
    Alone,
    /// A join was asked: takes wait for the answer.
    Joining,
    /// In the group: takes read the feed up to the group's position.
    Member,
    /// Taken out of the group by someone else at this position: takes read
    /// the feed up to it (the group claimed that far), then go on alone.
    Leaving(u64),
    /// A leave was asked: takes wait for the answer.
    Releasing,
}

/// A member further behind the group's position than this many numbers
/// leaves it: what the group claims ahead of a stream is lost if the node
/// dies and the client resumes without `Last-Event-ID`, so it stays small.
const LAG: u64 = 1024;

/// Takes in a row that may find the listener moved elsewhere (by a
/// concurrent pull, stream, rewind or subscription change) before giving up.
const TAKE_ATTEMPTS: usize = 32;

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("key", &self.queue_key)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Parses stored envelopes into deliveries.
pub(crate) fn decode(envelopes: Vec<String>) -> Result<Vec<Delivery>> {
    envelopes.iter().map(|e| decode_one(e)).collect()
}

fn decode_one(envelope: &str) -> Result<Delivery> {
    serde_json::from_str(envelope).map_err(|source| {
        crate::Error::Decode {
            operation: "reading a queued message",
            source,
        }
        .into()
    })
}

/// The stored form of a message.
pub(crate) fn encode_message(message: &Message) -> Result<String> {
    serde_json::to_string(message).map_err(|e| Error::repository("encoding a message", e))
}

/// The stored form of a delivery: the envelope the dispatch script builds.
fn encode_envelope(delivery: &Delivery) -> Result<String> {
    Ok(format!(
        "{{\"seq\":{},\"message\":{}}}",
        delivery.seq,
        encode_message(&delivery.message)?
    ))
}

impl RedisQueue {
    #[allow(clippy::too_many_arguments)] // one per shared part of the channel
    pub(crate) fn new(
        client: Client,
        dispatcher: Arc<Dispatcher>,
        feed: Arc<Feed>,
        advancer: Arc<Advancer>,
        group: Arc<Group>,
        keys: Arc<ChannelKeys>,
        channel: ChannelId,
        listener: ListenerId,
        limits: QueueLimits,
    ) -> Self {
        Self {
            queue_key: keys.queue(&listener),
            delivered_key: keys.delivered(&listener),
            client,
            dispatcher,
            keys,
            channel,
            listener,
            limits,
            wakeup: Wakeup::new(),
            closed: AtomicBool::new(false),
            feed,
            advancer,
            group,
            streams: AtomicUsize::new(0),
            place: Mutex::new(Place::default()),
            // Unknown at first: the first take looks.
            queue_news: Arc::new(AtomicU64::new(1)),
            queue_seen: AtomicU64::new(0),
            attached: AtomicBool::new(false),
        }
    }

    // A plain value swap: poison is harmless.
    fn place(&self) -> MutexGuard<'_, Place> {
        self.place.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A notification said the list got messages. A member leaves the
    /// group to take them: the group's position would pass them.
    pub(crate) fn queue_changed(&self) {
        self.queue_news.fetch_add(1, Ordering::AcqRel);
        let mut place = self.place();
        if place.mode == Mode::Member {
            place.leave = true;
            drop(place);
            self.want_step();
        }
    }

    /// Asks the group's next step of the feed's task.
    fn want_step(&self) {
        self.group.want();
        self.feed.changed.notify_one();
    }

    /// Whether a stream of this listener here has something new to take
    /// from the feed (the feed's task wakes only those), and the
    /// listener's position when it reads the feed.
    pub(crate) fn wants(&self) -> (bool, Option<u64>) {
        let place = self.place();
        let Some((cursor, _)) = place.at else {
            return (false, None);
        };
        let wants = match place.mode {
            Mode::Alone => self.feed.has_for(cursor, &place.subscriptions, u64::MAX),
            Mode::Member => self
                .feed
                .has_for(cursor, &place.subscriptions, self.group.acked()),
            Mode::Leaving(left) => cursor < left,
            Mode::Joining | Mode::Releasing => false,
        };
        (wants, Some(cursor))
    }

    /// This node learned nothing for a while (a pub/sub reconnect), or the
    /// listener's subscriptions changed: the next take reads the listener's
    /// state and its list again. A member first leaves the group (what the
    /// group claimed for it is still taken here, with the subscriptions it
    /// was claimed under).
    pub(crate) fn forget(&self) {
        {
            let mut place = self.place();
            if place.mode == Mode::Alone {
                place.at = None;
            }
        }
        // A member leaves through it; a listener joining, leaving or
        // alone needs no step for this.
        self.queue_changed();
    }

    /// What this listener asks of the group's next step, if anything, and
    /// whether it stays a member meanwhile; the group's position is `acked`.
    pub(crate) fn group_ask(&self, acked: u64) -> (Option<Ask>, bool) {
        let streams = self.streams.load(Ordering::Acquire);
        let mut place = self.place();
        let Some((cursor, epoch)) = place.at else {
            return (None, false);
        };
        let listener = self.listener.clone();
        let give_back = match place.mode {
            Mode::Alone if place.join => {
                place.join = false;
                if streams == 0 {
                    return (None, false);
                }
                place.mode = Mode::Joining;
                let join = Join {
                    listener,
                    cursor,
                    epoch,
                };
                return (Some(Ask::Join(join)), false);
            }
            Mode::Member if place.leave || streams == 0 || acked > cursor + LAG => streams == 0,
            // The last step failed: ask the same again.
            Mode::Releasing if place.leave => streams == 0,
            Mode::Leaving(_) if place.leave || streams == 0 => true,
            mode => return (None, mode == Mode::Member),
        };
        place.leave = false;
        place.mode = Mode::Releasing;
        let leave = Leave {
            listener,
            cursor,
            give_back,
        };
        (Some(Ask::Leave(leave)), false)
    }

    /// The step said someone else took the listener out of the group at
    /// `left`; whether this node is done with that departure (it is acked).
    pub(crate) fn group_left(&self, left: u64) -> bool {
        let mut place = self.place();
        let done = match (place.mode, place.at) {
            (Mode::Member | Mode::Releasing, Some((cursor, epoch))) => {
                place.leave = false;
                if cursor >= left {
                    place.mode = Mode::Alone;
                    place.at = Some((left, epoch));
                    true
                } else {
                    place.mode = Mode::Leaving(left);
                    false
                }
            }
            // Still taking what the group claimed: acked when done.
            (Mode::Leaving(_), _) => return false,
            _ => true,
        };
        drop(place);
        self.wakeup.notify_all();
        done
    }

    /// A take in the group (`Member`, `Leaving`): from the feed, up to what
    /// the group claimed, without a round trip. `None` when the listener is
    /// not in the group; an empty take when it must wait for a step.
    fn take_grouped(&self, max: usize) -> Option<Taken> {
        let mut place = self.place();
        let (cursor, epoch) = place.at?;
        let limit = match place.mode {
            Mode::Alone => return None,
            Mode::Joining | Mode::Releasing => {
                return Some(Taken {
                    deliveries: Vec::new(),
                    epoch,
                    gap: None,
                });
            }
            Mode::Member => self.group.acked(),
            Mode::Leaving(left) => left,
        };
        // The place's lock is held from reading the position to moving it:
        // two streams of the listener here never take the same entry.
        let Some(slice) = self.feed.slice(cursor, max, &place.subscriptions, limit) else {
            // Behind the buffer: out of the group, to read Redis alone.
            place.leave = true;
            drop(place);
            self.want_step();
            return Some(Taken {
                deliveries: Vec::new(),
                epoch,
                gap: None,
            });
        };
        place.at = Some((slice.upto, epoch));
        if let Mode::Leaving(left) = place.mode
            && slice.upto >= left
        {
            // Everything claimed was taken: alone from here.
            place.mode = Mode::Alone;
            place.at = Some((left, epoch));
            drop(place);
            self.group.ack(&self.listener);
            self.feed.changed.notify_one();
            if slice.deliveries.is_empty() {
                return None;
            }
        }
        Some(Taken {
            deliveries: slice.deliveries,
            epoch,
            gap: None,
        })
    }

    /// The answer to a leave this node asked: `applied` when the listener
    /// was still a member and its cursor is now what its streams took.
    pub(crate) fn group_released(&self, applied: bool) {
        let mut place = self.place();
        if place.mode == Mode::Releasing {
            place.mode = Mode::Alone;
            if !applied {
                // Out already (and its departure dealt with): read again.
                place.at = None;
            }
        }
        drop(place);
        self.wakeup.notify_all();
    }

    /// The answer to a join this node asked.
    pub(crate) fn group_joined(&self, joined: bool) {
        let mut place = self.place();
        if place.mode == Mode::Joining {
            // Not joined: a take in flight moved the cursor (it sets the
            // place as it answers), or something else did (the next take's
            // compare fails and reads again).
            place.mode = if joined { Mode::Member } else { Mode::Alone };
        }
        drop(place);
        self.wakeup.notify_all();
    }

    /// The step failed: whether it took effect is unknown. A join that
    /// did is learned by the next take (`Grouped`), at the cursor it was
    /// asked at; a leave is asked again.
    pub(crate) fn group_failed(&self) {
        let mut place = self.place();
        match place.mode {
            Mode::Joining => place.mode = Mode::Alone,
            Mode::Releasing => place.leave = true,
            _ => {}
        }
        drop(place);
        self.wakeup.notify_all();
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::InvalidListener {
                channel: self.channel.clone(),
                listener: self.listener.clone(),
            });
        }
        Ok(())
    }

    /// Queues `message` (stored JSON): the one way messages enter a queue.
    pub(crate) async fn dispatch(&self, message: String) -> Result<u64> {
        let result = self
            .dispatcher
            .dispatch(&self.listener, message, self.limits)
            .await;
        match &result {
            // A take here after this returned must look at the list, not
            // wait for the notification.
            Ok(seq) => {
                self.feed.announce(*seq);
                self.queue_changed();
            }
            Err(Error::InvalidListener { .. }) => self.close(),
            Err(_) => {}
        }
        result
    }

    async fn pop_count(&self, max: usize) -> Result<Vec<Delivery>> {
        self.check_open()?;
        // A script, not a bare `LPOP`: the byte count drops in the same step.
        let mut invocation = SCRIPTS.pop.prepare_invoke();
        invocation
            .key(&self.queue_key)
            .key(&self.keys.bytes)
            .arg(max.max(1))
            .arg(self.listener.key_segment().as_ref())
            .arg(&self.keys.base);
        let popped: Vec<String> = self.client.script("popping", &invocation).await?;
        decode(popped)
    }

    async fn unread_owned(
        client: Client,
        keys: Arc<ChannelKeys>,
        queue_key: String,
        delivered_key: String,
        listener: ListenerId,
        taken: Taken,
        queue_news: Arc<AtomicU64>,
    ) -> Result<()> {
        if taken.deliveries.is_empty() {
            return Ok(());
        }
        let mut invocation = SCRIPTS.unread.prepare_invoke();
        invocation
            .key(&queue_key)
            .key(&delivered_key)
            .key(&keys.rewinds)
            .key(&keys.bytes)
            .key(&keys.window_bytes)
            .arg(taken.epoch)
            .arg(listener.key_segment().as_ref())
            .arg(&keys.notify);
        for delivery in &taken.deliveries {
            // Used only if the stored copy left the replay window; the JSON
            // of a `Message` serialises the same fields again.
            invocation.arg(delivery.seq).arg(encode_envelope(delivery)?);
        }
        let _: i64 = client
            .script("returning unsent messages", &invocation)
            .await?;
        queue_news.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }
}

impl Queue for RedisQueue {
    async fn push(&self, message: Message) -> Result<u64> {
        self.check_open()?;
        self.dispatch(encode_message(&message)?).await
    }

    async fn pop(&self) -> Result<Delivery> {
        let mut popped = self.pop_count(1).await?;
        popped.pop().ok_or_else(|| Error::NoMessages {
            listener: self.listener.clone(),
            reason: NoMessagesReason::Empty,
        })
    }

    async fn pop_batch(&self, max: usize) -> Result<Vec<Delivery>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        self.pop_count(max).await
    }

    async fn len(&self) -> Result<usize> {
        self.check_open()?;
        let mut invocation = SCRIPTS.queued.prepare_invoke();
        invocation
            .key(&self.keys.logstate)
            .arg(&self.keys.base)
            .arg(self.listener.key_segment().as_ref());
        Ok(self.client.script("measuring a queue", &invocation).await?)
    }

    async fn take(&self, max: usize) -> Result<Taken> {
        self.check_open()?;
        let max = max.max(1);
        let mut gap = None;
        let mut moved = 0;
        while moved < TAKE_ATTEMPTS {
            if let Some(taken) = self.take_grouped(max) {
                return Ok(taken);
            }
            // Whatever notifications announced is read before the merge:
            // a queued message is passed only after every broadcast
            // numbered below it.
            self.feed.catch_up(self.feed.announced()).await?;
            let (at, subscriptions) = {
                let place = self.place();
                (place.at, place.subscriptions.clone())
            };
            let news = self.queue_news.load(Ordering::Acquire);
            let queue_max = if news == self.queue_seen.load(Ordering::Acquire) {
                0
            } else {
                max
            };
            let slice = match at {
                None => Slice::default(),
                Some((cursor, epoch)) => {
                    let slice = match self.feed.slice(cursor, max, &subscriptions, u64::MAX) {
                        Some(slice) => slice,
                        None => self.feed.read_range(cursor, max, &subscriptions).await?,
                    };
                    if slice.upto == cursor && queue_max == 0 {
                        // Nothing new anywhere: no round trip.
                        return Ok(Taken {
                            deliveries: Vec::new(),
                            epoch,
                            gap,
                        });
                    }
                    slice
                }
            };
            let request = Request {
                listener: self.listener.clone(),
                at,
                upto: slice.upto,
                queue_max,
                replay_window: self.limits.replay_window,
                max_bytes: self.limits.max_bytes,
            };
            match self.advancer.advance(request).await? {
                Outcome::Grouped => {
                    moved += 1;
                    // A join answered by a failed step took effect, at the
                    // cursor this node still holds.
                    let mut place = self.place();
                    place.mode = Mode::Member;
                    if place.at.is_none() {
                        // Never the case (a join keeps its cursor): out, at
                        // the group's position, rather than stuck.
                        place.at = Some((self.group.acked(), 0));
                        place.leave = true;
                    }
                }
                Outcome::Removed => {
                    self.close();
                    return Err(Error::InvalidListener {
                        channel: self.channel.clone(),
                        listener: self.listener.clone(),
                    });
                }
                Outcome::Moved {
                    cursor,
                    epoch,
                    subscriptions,
                } => {
                    moved += 1;
                    let subscriptions = crate::subscriptions::decode(&subscriptions)?;
                    if !self.attached.swap(true, Ordering::AcqRel) {
                        self.feed.attach();
                    }
                    let mut place = self.place();
                    place.at = Some((cursor, epoch));
                    place.subscriptions = subscriptions;
                }
                Outcome::Advanced {
                    cursor,
                    epoch,
                    queued,
                    head,
                } => {
                    let caught_up = queued.is_empty()
                        && !slice.deliveries.is_empty()
                        && (head == Some(0) || queue_max == 0);
                    {
                        let mut place = self.place();
                        place.at = Some((cursor, epoch));
                        if caught_up && place.mode == Mode::Alone {
                            // Broadcasts only, nothing queued: cheaper in the group.
                            place.join = true;
                        }
                    }
                    if caught_up {
                        self.want_step();
                    }
                    if slice.gap {
                        gap = at.map(|(from, _)| from);
                    }
                    if head == Some(0) {
                        // Empty as of this take: until the next notice.
                        self.queue_seen.store(news, Ordering::Release);
                    }
                    let mut deliveries = decode(queued)?;
                    deliveries.extend(slice.deliveries.into_iter().filter(|d| d.seq <= cursor));
                    deliveries.sort_by_key(|d| d.seq);
                    if deliveries.is_empty() && slice.more {
                        // Read past entries not for this listener: go on.
                        continue;
                    }
                    match head {
                        // The list holds a message numbered beyond what this
                        // node read of the log: read that far, then take it.
                        Some(next) if next > cursor => {
                            self.feed.announce(next);
                            if deliveries.is_empty() {
                                continue;
                            }
                        }
                        _ => {}
                    }
                    return Ok(Taken {
                        deliveries,
                        epoch,
                        gap,
                    });
                }
            }
        }
        Err(Error::Unavailable {
            backend: "redis",
            operation: "taking for a stream",
            source: format!(
                "listener {} moved elsewhere {TAKE_ATTEMPTS} times in a row",
                self.listener
            )
            .into(),
        })
    }

    async fn rewind(&self, after: u64) -> Result<Rewind> {
        self.check_open()?;
        let mut invocation = SCRIPTS.rewind.prepare_invoke();
        invocation
            .key(&self.queue_key)
            .key(&self.delivered_key)
            .key(&self.keys.evicted)
            .key(&self.keys.rewinds)
            .key(&self.keys.bytes)
            .key(&self.keys.window_bytes)
            .arg(after)
            .arg(self.listener.key_segment().as_ref())
            .arg(&self.keys.notify)
            .arg(&self.keys.base);
        let (restored, gap): (usize, u8) =
            self.client.script("resuming a stream", &invocation).await?;
        // The cursor moved (out of the group, if it was in it) and the
        // list may have grown: read both again.
        *self.place() = Place::default();
        self.queue_changed();
        Ok(Rewind {
            restored,
            gap: gap == 1,
        })
    }

    fn unread(&self, taken: Taken) -> impl Future<Output = Result<()>> + Send + 'static {
        Self::unread_owned(
            self.client.clone(),
            self.keys.clone(),
            self.queue_key.clone(),
            self.delivered_key.clone(),
            self.listener.clone(),
            taken,
            self.queue_news.clone(),
        )
    }

    fn snapshot(&self) -> impl Future<Output = Result<Option<QueueSnapshot>>> + Send {
        // Redis lists are the durable copy: repositories store no snapshot.
        std::future::ready(Ok(None))
    }

    async fn restore(&self, snapshot: QueueSnapshot) -> Result<()> {
        // Only a snapshot taken from another engine (a migration: `eric
        // import`) lands here: append its messages with their numbers, put
        // its replay window in place, and keep the counter ahead.
        if snapshot.messages.is_empty() && snapshot.window.is_empty() {
            return Ok(());
        }
        // The channel's sequence first, so nothing numbered later can come
        // below the restored numbers.
        let last = snapshot
            .messages
            .last()
            .or(snapshot.window.last())
            .map_or(0, |d| d.seq);
        let mut raise = SCRIPTS.raise_seq.prepare_invoke();
        raise
            .key(&self.keys.logstate)
            .arg(&self.keys.base)
            .arg(snapshot.next_seq.saturating_sub(1).max(last));
        let _: i64 = self.client.script("restoring a queue", &raise).await?;
        // One transaction, so the byte counts never disagree with the lists.
        let mut pipe = redis::pipe();
        pipe.atomic();
        let segment = self.listener.key_segment();
        let mut restore = |list: &str, sizes: &str, deliveries: &[Delivery]| -> Result<()> {
            if deliveries.is_empty() {
                return Ok(());
            }
            for delivery in deliveries {
                pipe.cmd("RPUSH")
                    .arg(list)
                    .arg(encode_envelope(delivery)?)
                    .ignore();
            }
            // Restored messages are counted, never refused: they were queued.
            let bytes: usize = deliveries.iter().map(|d| stored_size(&d.message)).sum();
            pipe.cmd("HINCRBY")
                .arg(sizes)
                .arg(segment.as_ref())
                .arg(bytes)
                .ignore();
            Ok(())
        };
        restore(&self.queue_key, &self.keys.bytes, &snapshot.messages)?;
        restore(
            &self.delivered_key,
            &self.keys.window_bytes,
            &snapshot.window,
        )?;
        // As the in-memory queue does: what came before the window is gone,
        // so a resume from before it reports a gap.
        if let Some(first) = snapshot.window.first() {
            pipe.cmd("HSET")
                .arg(&self.keys.evicted)
                .arg(segment.as_ref())
                .arg(first.seq.saturating_sub(1))
                .ignore();
        }
        self.client.pipe::<()>("restoring a queue", &pipe).await?;
        Ok(())
    }

    fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    fn stream_opened(&self) {
        self.streams.fetch_add(1, Ordering::AcqRel);
    }

    /// Without a stream left here, a member leaves the group at what its
    /// streams took (what they took and did not send came back through
    /// `unread` first).
    fn stream_closed(&self) {
        if self.streams.fetch_sub(1, Ordering::AcqRel) == 1
            && matches!(self.place().mode, Mode::Member | Mode::Leaving(_))
        {
            self.want_step();
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wakeup.notify_all();
    }
}
