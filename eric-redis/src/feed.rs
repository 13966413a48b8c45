//! [`Feed`]: a channel's broadcast log as one node reads it.
//!
//! A broadcast is one entry in the channel's log (`<base>:log`, see
//! `docs/REDIS.md`), not one copy per listener. Each node that holds
//! streams of the channel reads every new entry once, here, when a
//! notification (`b <seq>`) announces it, and keeps the recent ones in
//! memory: every stream of the channel on this node takes its broadcasts
//! from this buffer, filtered by its own subscriptions, so the cost in Redis
//! of a broadcast does not grow with its audience. A stream whose position
//! is older than the buffer reads the log itself (`read_range`), which only
//! a stream far behind does.
//!
//! The buffer holds every entry numbered above `floor` and at most `known`,
//! where `known` is the channel's sequence when the log was last read: every
//! broadcast numbered at most `known` had been logged by then (a number and
//! its entry are written by one script), so nothing below `known` can still
//! appear.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use eric_core::queue::stored_size;
use eric_core::{Delivery, Message, Result, Subscriptions};
use tokio::sync::Notify;

use crate::client::Client;
use crate::scripts::SCRIPTS;

/// Entries read per round trip.
const READ_BATCH: usize = 1024;
/// Entries and bytes (each message as it is stored) kept in memory per
/// channel at most; a stream further behind reads Redis.
const BUFFERED: usize = 8192;
const BUFFERED_BYTES: usize = 16 * 1024 * 1024;

/// One channel's log as this node reads it (see the module docs).
pub(crate) struct Feed {
    client: Client,
    base: String,
    /// The key `read_log` is routed by.
    logstate: String,
    buffer: Mutex<Buffer>,
    /// One read at a time: the others wait for it and find it done.
    reading: tokio::sync::Mutex<()>,
    /// The highest number announced by notifications: the log has an entry
    /// (or a queue a message) numbered that high.
    announced: AtomicU64,
    /// The highest number of a broadcast announced (`b`, or this node's own).
    logged: AtomicU64,
    /// Signalled on announcements, for the task that reads ahead of streams.
    pub(crate) changed: Notify,
    closed: AtomicBool,
    /// Queues on this node that took from the feed: without any, nobody
    /// here streams the channel and announcements are not read.
    readers: AtomicUsize,
}

#[derive(Default)]
struct Buffer {
    /// Oldest first, each numbered above `floor` and at most `known`.
    entries: VecDeque<(u64, Message)>,
    /// Their stored sizes, summed.
    bytes: usize,
    /// Every entry numbered above it (up to `known`) is in `entries`.
    floor: u64,
    /// The channel's sequence at the last read (see the module docs).
    known: u64,
    /// Whether the log was read at all (before that, nothing is known).
    started: bool,
}

/// What `read_log` answers when it moves the node's group too.
type ReadMoving = (u64, u64, Vec<(u64, String)>, u64, Vec<String>);

/// How a read moved this node's group (see `group`).
#[derive(Debug)]
pub(crate) struct GroupMove {
    /// The group's position now.
    pub(crate) position: u64,
    /// Departures recorded, as `read_log` lists them (listener, position).
    pub(crate) left: Vec<String>,
}

/// A stream's share of the log, from [`Feed::slice`] or [`Feed::read_range`].
#[derive(Debug, Default)]
pub(crate) struct Slice {
    /// The entries that reach the listener, oldest first.
    pub(crate) deliveries: Vec<Delivery>,
    /// The position the listener reaches by taking them: every entry up to
    /// it was looked at.
    pub(crate) upto: u64,
    /// Entries after the position asked for had been trimmed from the log
    /// before anyone read them.
    pub(crate) gap: bool,
    /// The log goes on past `upto` although fewer than the entries asked
    /// for were found: taking nothing is no reason to sleep.
    pub(crate) more: bool,
}

impl Buffer {
    /// Drops the oldest entries while `too_many` says so, moving `floor`.
    fn drop_oldest(&mut self, too_many: impl Fn(&Self) -> bool) {
        while too_many(self) {
            let Some((seq, message)) = self.entries.pop_front() else {
                return;
            };
            self.bytes -= stored_size(&message);
            self.floor = seq;
        }
    }
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("base", &self.base)
            .field("known", &self.buffer().known)
            .finish_non_exhaustive()
    }
}

impl Feed {
    pub(crate) fn new(client: Client, base: String) -> Self {
        Self {
            client,
            logstate: format!("{base}:logstate"),
            base,
            buffer: Mutex::new(Buffer::default()),
            reading: tokio::sync::Mutex::new(()),
            announced: AtomicU64::new(0),
            logged: AtomicU64::new(0),
            changed: Notify::new(),
            closed: AtomicBool::new(false),
            readers: AtomicUsize::new(0),
        }
    }

    // Deque pushes and pops cannot leave it half-changed: poison is harmless.
    fn buffer(&self) -> MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A notification named `seq`: the feed will read at least that far.
    pub(crate) fn announce(&self, seq: u64) {
        if self.announced.fetch_max(seq, Ordering::AcqRel) < seq {
            self.changed.notify_one();
        }
    }

    /// A broadcast numbered `seq` is in the log.
    pub(crate) fn logged(&self, seq: u64) {
        self.logged.fetch_max(seq, Ordering::AcqRel);
        self.announce(seq);
    }

    /// A notification of a queued message numbered `seq` arrived. Pub/sub
    /// keeps the order in which scripts published, so every broadcast
    /// numbered below it was announced before it: if all those were read,
    /// the log holds nothing between what was read and `seq`, and the feed
    /// knows that far without a read (a stream that takes the message then
    /// needs one round trip, not two). Otherwise it reads that far.
    pub(crate) fn passed(&self, seq: u64) {
        {
            let mut buffer = self.buffer();
            if buffer.started && self.logged.load(Ordering::Acquire) <= buffer.known {
                buffer.known = buffer.known.max(seq);
                return;
            }
        }
        self.announce(seq);
    }

    /// The highest number announced.
    pub(crate) fn announced(&self) -> u64 {
        self.announced.load(Ordering::Acquire)
    }

    /// A queue here started taking from the feed.
    pub(crate) fn attach(&self) {
        self.readers.fetch_add(1, Ordering::AcqRel);
    }

    /// A queue that took from the feed is gone.
    pub(crate) fn detach(&self) {
        self.readers.fetch_sub(1, Ordering::AcqRel);
    }

    /// Whether any queue here takes from the feed.
    pub(crate) fn has_readers(&self) -> bool {
        self.readers.load(Ordering::Acquire) > 0
    }

    /// Ends the reading task (the channel's state is gone).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.changed.notify_one();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Reads the log until `known` reaches `target` (at least once, if the
    /// log was never read). Concurrent callers share one read.
    pub(crate) async fn catch_up(&self, target: u64) -> Result<()> {
        self.catch_up_moving(target, None).await.map(|_| ())
    }

    /// `catch_up`, moving `group` (this node's group id) to what each read
    /// reaches in the same round trip; the last move, with the departures
    /// read, when this call read at all.
    pub(crate) async fn catch_up_moving(
        &self,
        target: u64,
        group: Option<&str>,
    ) -> Result<Option<GroupMove>> {
        let mut moved: Option<GroupMove> = None;
        loop {
            if self.reached(target) {
                return Ok(moved);
            }
            let _reading = self.reading.lock().await;
            if self.reached(target) {
                return Ok(moved);
            }
            let (_, this) = self.read_more(group).await?;
            if let Some(this) = this {
                moved = Some(match moved {
                    None => this,
                    Some(mut all) => {
                        all.position = all.position.max(this.position);
                        all.left.extend(this.left);
                        all
                    }
                });
            }
        }
    }

    /// Reads the log up to the channel's sequence as it is now (after
    /// notifications may have been missed).
    pub(crate) async fn refresh(&self) -> Result<()> {
        let _reading = self.reading.lock().await;
        while self.read_more(None).await?.0 {}
        Ok(())
    }

    fn reached(&self, target: u64) -> bool {
        let buffer = self.buffer();
        buffer.started && buffer.known >= target
    }

    /// One read after `known` (the reading lock held); whether it came back
    /// full, so more may follow, and how `group` moved with it.
    async fn read_more(&self, group: Option<&str>) -> Result<(bool, Option<GroupMove>)> {
        let (started, after) = {
            let buffer = self.buffer();
            (buffer.started, buffer.known)
        };
        if !started {
            // The first read learns where the channel is; streams older than
            // that read Redis themselves.
            let (seq, _, _, _) = self.read(0, 0, None).await?;
            let mut buffer = self.buffer();
            buffer.floor = seq;
            buffer.known = seq;
            buffer.started = true;
            return Ok((false, None));
        }
        let (seq, trimmed, entries, moved) = self.read(after, READ_BATCH, group).await?;
        let full = entries.len() == READ_BATCH;
        let mut buffer = self.buffer();
        if trimmed > buffer.known {
            // Entries after the last read were trimmed before this one:
            // what is kept would not be contiguous with what follows.
            buffer.entries.clear();
            buffer.bytes = 0;
            buffer.floor = trimmed;
        }
        let last = entries.last().map_or(0, |(s, _)| *s);
        buffer.bytes += entries.iter().map(|(_, m)| stored_size(m)).sum::<usize>();
        buffer.entries.extend(entries);
        // `passed` may have moved it further meanwhile, past no entry.
        let read = if full { last } else { seq.max(last) };
        buffer.known = buffer.known.max(read);
        buffer
            .drop_oldest(|buffer| buffer.entries.len() > BUFFERED || buffer.bytes > BUFFERED_BYTES);
        Ok((full, moved))
    }

    /// Every stream here that reads the feed is past `position`: what is
    /// numbered up to it is no longer needed in memory (a stream that comes
    /// later from further back reads Redis).
    pub(crate) fn passed_by_all(&self, position: u64) {
        self.buffer()
            .drop_oldest(|buffer| buffer.entries.front().is_some_and(|(s, _)| *s <= position));
    }

    /// The channel's sequence as far as this node has read the log.
    pub(crate) fn known(&self) -> u64 {
        let buffer = self.buffer();
        if buffer.started { buffer.known } else { 0 }
    }

    /// What a listener at `after` takes from the buffer, at most `max`
    /// entries reaching `subscriptions`, numbered up to `limit`; `None`
    /// when the buffer no longer reaches back that far.
    pub(crate) fn slice(
        &self,
        after: u64,
        max: usize,
        subscriptions: &Subscriptions,
        limit: u64,
    ) -> Option<Slice> {
        let buffer = self.buffer();
        if !buffer.started || after < buffer.floor {
            return None;
        }
        let start = buffer.entries.partition_point(|(s, _)| *s <= after);
        let mut slice = Slice {
            upto: buffer.known.min(limit).max(after),
            ..Slice::default()
        };
        for (seq, message) in buffer.entries.range(start..) {
            if *seq > limit {
                break;
            }
            if subscriptions.admits(message) {
                if slice.deliveries.len() == max {
                    slice.upto = seq - 1;
                    break;
                }
                slice.deliveries.push(Delivery {
                    seq: *seq,
                    message: message.clone(),
                });
            }
        }
        Some(slice)
    }

    /// Whether an entry numbered above `after` and up to `limit`, reaching
    /// `subscriptions`, is in the buffer (a stream there has something to
    /// take).
    pub(crate) fn has_for(&self, after: u64, subscriptions: &Subscriptions, limit: u64) -> bool {
        let buffer = self.buffer();
        let start = buffer.entries.partition_point(|(s, _)| *s <= after);
        buffer
            .entries
            .range(start..)
            .take_while(|(s, _)| *s <= limit)
            .any(|(_, message)| subscriptions.admits(message))
    }

    /// Reads the log after `after` from Redis, for a listener older than the
    /// buffer: at most `max` entries reaching `subscriptions`, from one read.
    pub(crate) async fn read_range(
        &self,
        after: u64,
        max: usize,
        subscriptions: &Subscriptions,
    ) -> Result<Slice> {
        let (seq, trimmed, entries, _) = self.read(after, READ_BATCH, None).await?;
        let full = entries.len() == READ_BATCH;
        let mut slice = Slice {
            gap: trimmed > after,
            upto: seq.max(after),
            more: false,
            ..Slice::default()
        };
        let last = entries.last().map(|(s, _)| *s);
        for (seq, message) in entries {
            if subscriptions.admits(&message) {
                if slice.deliveries.len() == max {
                    slice.upto = seq - 1;
                    return Ok(slice);
                }
                slice.deliveries.push(Delivery { seq, message });
            }
        }
        if full && let Some(last) = last {
            // Stopped by the read's size: the log goes on after it.
            slice.upto = last;
            slice.more = true;
        }
        Ok(slice)
    }

    /// One `read_log` round trip: the channel's sequence, the trimmed mark
    /// and up to `count` entries after `after`; with `group`, its move.
    async fn read(
        &self,
        after: u64,
        count: usize,
        group: Option<&str>,
    ) -> Result<(u64, u64, Vec<(u64, Message)>, Option<GroupMove>)> {
        let mut invocation = SCRIPTS.read_log.prepare_invoke();
        invocation
            .key(&self.logstate)
            .arg(&self.base)
            .arg(after)
            .arg(count);
        let operation = "reading the broadcast log";
        let (seq, trimmed, raw, moved) = match group {
            None => {
                let (seq, trimmed, raw): (u64, u64, Vec<(u64, String)>) =
                    self.client.script(operation, &invocation).await?;
                (seq, trimmed, raw, None)
            }
            Some(group) => {
                invocation.arg(group);
                let (seq, trimmed, raw, position, left): ReadMoving =
                    self.client.script(operation, &invocation).await?;
                (seq, trimmed, raw, Some(GroupMove { position, left }))
            }
        };
        let mut entries = Vec::with_capacity(raw.len());
        for (number, json) in raw {
            let message: Message =
                serde_json::from_str(&json).map_err(|source| crate::Error::Decode {
                    operation: "reading a logged broadcast",
                    source,
                })?;
            entries.push((number, message));
        }
        Ok((seq, trimmed, entries, moved))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::RedisConfig;

    /// Nothing needs to answer: the test never sends a command.
    fn feed_holding(numbers: impl IntoIterator<Item = u64>) -> Feed {
        let client = Client::new(&RedisConfig::with_url("redis://127.0.0.1:1")).unwrap();
        let feed = Feed::new(client, "t:{c}".into());
        {
            let mut buffer = feed.buffer();
            for seq in numbers {
                let message = Message::try_new("t", json!(seq)).unwrap();
                buffer.bytes += stored_size(&message);
                buffer.entries.push_back((seq, message));
                buffer.known = seq;
            }
            buffer.started = true;
        }
        feed
    }

    /// What every stream here has read leaves memory; a stream from before
    /// it is sent to Redis, one after it still reads the buffer.
    #[test]
    fn entries_every_reader_passed_leave_memory() {
        let feed = feed_holding(1..=10);
        feed.passed_by_all(6);
        let buffer = feed.buffer();
        assert_eq!(buffer.floor, 6);
        assert_eq!(buffer.entries.front().map(|(s, _)| *s), Some(7));
        let left: usize = buffer.entries.iter().map(|(_, m)| stored_size(m)).sum();
        assert_eq!(buffer.bytes, left);
        drop(buffer);
        let all = Subscriptions::default();
        assert!(feed.slice(5, 10, &all, u64::MAX).is_none());
        let slice = feed.slice(6, 10, &all, u64::MAX).unwrap();
        let seqs: Vec<u64> = slice.deliveries.iter().map(|d| d.seq).collect();
        assert_eq!((seqs, slice.upto), (vec![7, 8, 9, 10], 10));
        // A group's stream takes only what the group claimed.
        let slice = feed.slice(6, 10, &all, 8).unwrap();
        let seqs: Vec<u64> = slice.deliveries.iter().map(|d| d.seq).collect();
        assert_eq!((seqs, slice.upto), (vec![7, 8], 8));
        assert!(!feed.has_for(8, &all, 8));
    }
}
