//! [`Journal`]: where an engine that keeps its working state in this
//! process writes every change through to durable storage.
//!
//! The in-memory queues and registry ([`crate::InMemoryQueue`],
//! [`crate::engine::InMemoryRegistry`]) stay the state every read and
//! delivery uses; an engine built on them with a journal (`eric-disk`) is
//! told each change as a [`Change`], recorded under the lock that made it,
//! so the journal sees one listener's changes in the order they happened.
//! A write answers its caller only once [`Journal::settled`] resolves: what
//! "settled" means (written, or on disk) is the journal's durability policy.
//!
//! A change names messages by their sequence number in the listener's
//! queue: a message is queued ([`Change::Queued`]), may move to the replay
//! window ([`Change::Taken`]) and back ([`Change::Returned`]), and leaves
//! for good ([`Change::Dropped`]). The window's messages are always older
//! than the queue's, so a store can keep both in one ordered table.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::{ChannelId, IdempotencyKey, ListenerId, MemberId};
use crate::message::Message;
use crate::subscription::Subscriptions;

/// A future that resolves once what was recorded before it was made is
/// as durable as the journal's policy promises.
pub type Settled = Pin<Box<dyn Future<Output = Result<()>> + Send + 'static>>;

/// What a write with an idempotency key did, as a journal stores it (the
/// answer a retry gets again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A dispatch: the sequence number it got.
    Dispatch(u64),
    /// A broadcast: how many listeners took it, and those whose queue was
    /// full.
    Broadcast {
        /// Listeners that took it.
        delivered: usize,
        /// Listeners that refused it.
        full: Vec<ListenerId>,
    },
}

/// An idempotency key a channel remembers until `expires`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    /// The listener a dispatch's key is scoped to; `None`: the channel's
    /// (a broadcast's).
    pub listener: Option<ListenerId>,
    /// The key.
    pub key: IdempotencyKey,
    /// What the write did.
    pub outcome: Outcome,
    /// When it is forgotten (wall clock: it outlives the process).
    pub expires: SystemTime,
}

/// One change of an engine's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A listener was registered (or registered again, keeping its queue).
    Registered {
        /// Its channel.
        channel: ChannelId,
        /// The listener.
        listener: ListenerId,
        /// Its member id.
        member: MemberId,
        /// Whether it runs.
        running: bool,
        /// What it subscribes to.
        subscriptions: Subscriptions,
        /// It lives as long as one stream (`Channel::watch`): a store drops
        /// it when the process restarts, as the process that used it died.
        temporary: bool,
    },
    /// A listener's subscriptions changed.
    Subscribed {
        /// Its channel.
        channel: ChannelId,
        /// The listener.
        listener: ListenerId,
        /// The set it now holds.
        subscriptions: Subscriptions,
    },
    /// A listener was started or stopped.
    Running {
        /// Its channel.
        channel: ChannelId,
        /// The listener.
        listener: ListenerId,
        /// Whether it now runs.
        running: bool,
    },
    /// A listener was removed, with its queue and replay window.
    Removed {
        /// Its channel.
        channel: ChannelId,
        /// The listener.
        listener: ListenerId,
    },
    /// A message joined the tail of a listener's queue.
    Queued {
        /// Its channel.
        channel: ChannelId,
        /// The listener.
        listener: ListenerId,
        /// Its sequence number.
        seq: u64,
        /// The message.
        message: Message,
    },
    /// Messages moved from the head of the queue to the replay window.
    Taken {
        /// Its channel.
        channel: ChannelId,
        /// The listener.
        listener: ListenerId,
        /// Their sequence numbers.
        seqs: Vec<u64>,
    },
    /// Messages moved from the replay window back to the head of the queue
    /// (a rewind, or a stream giving back what it did not send).
    Returned {
        /// Its channel.
        channel: ChannelId,
        /// The listener.
        listener: ListenerId,
        /// The messages, with their sequence numbers: one pushed out of the
        /// window meanwhile comes back too.
        messages: Vec<(u64, Message)>,
    },
    /// Messages left the queue or the window for good (popped, or pushed
    /// out of the window by newer ones).
    Dropped {
        /// Its channel.
        channel: ChannelId,
        /// The listener.
        listener: ListenerId,
        /// Their sequence numbers.
        seqs: Vec<u64>,
    },
    /// A write with an idempotency key was applied; it is recorded in the
    /// same group as the write itself.
    Applied {
        /// Its channel.
        channel: ChannelId,
        /// The key and what the write did.
        remembered: Remembered,
    },
    /// The queue's contents were replaced (restoring a snapshot): the
    /// whole state follows.
    Replaced {
        /// Its channel.
        channel: ChannelId,
        /// The listener.
        listener: ListenerId,
        /// The sequence number of the next push.
        next_seq: u64,
        /// The replay window, oldest first.
        window: Vec<(u64, Message)>,
        /// The queued messages, oldest first.
        messages: Vec<(u64, Message)>,
    },
}

/// Durable storage behind an in-memory engine.
///
/// [`Journal::record`] is called while the engine holds the lock of the
/// state it changed, so it must not block: it appends to a buffer a writer
/// drains.
pub trait Journal: Send + Sync + fmt::Debug + 'static {
    /// Records `change`, after what was recorded before it.
    fn record(&self, change: Change);

    /// Resolves once every change recorded so far is settled, or with the
    /// error that kept it from being written.
    fn settled(&self) -> Settled;

    /// Opens a group: changes recorded until the matching
    /// [`Journal::end_group`] are written together or not at all (a
    /// broadcast's copies, one per listener). Groups are short and never
    /// span an `.await`; the default keeps no groups.
    fn begin_group(&self) {}

    /// Closes the group [`Journal::begin_group`] opened.
    fn end_group(&self) {}
}

/// `result`, once `journal` (if any) has settled what was recorded before
/// this call; an error recorded nothing, so it answers at once. What the
/// in-memory queues and registries return from each write.
pub fn settle<T: Send + 'static>(
    journal: Option<&Arc<dyn Journal>>,
    result: Result<T>,
) -> impl Future<Output = Result<T>> + Send + 'static {
    let settled = match (&result, journal) {
        (Ok(_), Some(journal)) => Some(journal.settled()),
        _ => None,
    };
    async move {
        let value = result?;
        if let Some(settled) = settled {
            settled.await?;
        }
        Ok(value)
    }
}

/// A [`Journal`] group, closed when dropped (so on every path out).
#[derive(Debug)]
pub struct Group<'a> {
    journal: Option<&'a dyn Journal>,
}

impl<'a> Group<'a> {
    /// Opens a group on `journal`, if there is one.
    pub fn open(journal: Option<&'a dyn Journal>) -> Self {
        if let Some(journal) = journal {
            journal.begin_group();
        }
        Self { journal }
    }
}

impl Drop for Group<'_> {
    fn drop(&mut self) {
        if let Some(journal) = self.journal {
            journal.end_group();
        }
    }
}
