//! Queues: each listener's FIFO of messages.
//!
//! [`Queue`] is the contract every engine implements (the in-memory
//! [`InMemoryQueue`] here, Redis lists in `eric-redis`). Beyond the
//! reference's `push`/`pop` it has:
//!
//! * a per-queue sequence number assigned at push: the SSE `id`;
//! * [`Queue::take`], the pop used by streams, which keeps what it hands out in
//!   a bounded *replay window*, and [`Queue::rewind`], which puts back what a
//!   stream handed out after a given sequence number (resume by
//!   `Last-Event-ID`);
//! * a [`Wakeup`] that producers signal, so an idle consumer sleeps instead of
//!   polling;
//! * two bounds: messages (`queue_capacity`) and bytes (`queue_max_bytes`,
//!   each message counted as its [`stored_size`]); the in-memory engine
//!   adds a node-wide [`MemoryBudget`].
//!
//! The methods return `impl Future + Send` rather than boxed futures: queues
//! sit on the hot path (every dispatch and delivery), and an engine's concrete
//! queue type is known statically (see `docs/ARCHITECTURE.md`, "Static
//! dispatch on the hot path").

mod budget;
mod memory;
mod size;
mod wakeup;

use std::future::Future;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::message::Message;

pub use budget::{BudgetExceeded, DEFAULT_MEMORY_BUDGET, MemoryBudget};
pub use memory::{InMemoryQueue, QueueOwner};
pub use size::stored_size;
pub use wakeup::Wakeup;

/// The bounds of one listener's queue, taken from its channel's settings
/// (`queue_capacity`, `queue_max_bytes`, `replay_window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Most queued messages.
    pub capacity: usize,
    /// Most queued bytes (each message counted as [`stored_size`]).
    pub max_bytes: usize,
    /// Handed-out messages kept for resumes.
    pub replay_window: usize,
}

/// A message as it leaves a queue: with the sequence number the queue gave it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Delivery {
    /// Position in the listener's queue, from 1, strictly increasing; the SSE `id`.
    pub seq: u64,
    /// The message.
    pub message: Message,
}

/// What [`Queue::take`] handed out, and the queue's rewind epoch at that moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Taken {
    /// The messages, oldest first.
    pub deliveries: Vec<Delivery>,
    /// How many rewinds the queue had seen. [`Queue::unread`] compares it with
    /// the current count: after a rewind the messages may be queued again or
    /// even re-taken by another stream, so giving them back would duplicate them.
    pub epoch: u64,
    /// Messages after this sequence number, older than `deliveries`, were
    /// lost before anyone took them (an engine whose broadcasts a listener
    /// can fall behind, beyond its bound, drops the oldest): the stream
    /// says so before the messages.
    pub gap: Option<u64>,
}

/// What [`Queue::rewind`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rewind {
    /// How many messages went back to the head of the queue.
    pub restored: usize,
    /// Some messages after the given sequence number were handed out and have
    /// left the replay window: the client cannot be made whole.
    pub gap: bool,
}

/// A queue's contents, for repositories that store queues as records.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct QueueSnapshot {
    /// The sequence number the next push gets.
    pub next_seq: u64,
    /// The queued messages, oldest first.
    pub messages: Vec<Delivery>,
    /// The replay window: messages handed out and kept for resumes, oldest
    /// first, all older than `messages`. Only an engine that stores windows
    /// fills it (`eric-disk`); [`Queue::snapshot`] leaves it empty, and
    /// [`Queue::restore`] leaves the window alone when it is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub window: Vec<Delivery>,
}

/// A listener's FIFO queue.
///
/// Errors: `pop` on an empty queue is [`crate::Error::NoMessages`]; `push` on
/// a full one (by count or by bytes) is [`crate::Error::QueueFull`] and
/// changes nothing; any call on a closed queue (its listener was removed)
/// is [`crate::Error::InvalidListener`].
///
/// The byte count follows every message in and out: pushes add, pops and
/// takes subtract, rewinds, unreads and restores add back (without
/// refusing: those messages were queued before).
pub trait Queue: Send + Sync + 'static {
    /// Appends `message`; returns its sequence number and wakes one consumer.
    fn push(&self, message: Message) -> impl Future<Output = Result<u64>> + Send;

    /// Removes and returns the oldest message (a plain pop: not kept for replay).
    fn pop(&self) -> impl Future<Output = Result<Delivery>> + Send;

    /// Removes and returns up to `max` oldest messages (none when empty).
    fn pop_batch(&self, max: usize) -> impl Future<Output = Result<Vec<Delivery>>> + Send;

    /// How many messages are queued.
    fn len(&self) -> impl Future<Output = Result<usize>> + Send;

    /// Whether no message is queued.
    fn is_empty(&self) -> impl Future<Output = Result<bool>> + Send {
        async { Ok(self.len().await? == 0) }
    }

    /// Like [`Queue::pop_batch`], but what it returns stays recoverable in the
    /// replay window until newer deliveries push it out.
    fn take(&self, max: usize) -> impl Future<Output = Result<Taken>> + Send;

    /// Moves every message of the replay window newer than `after` back to the
    /// head of the queue, in order.
    fn rewind(&self, after: u64) -> impl Future<Output = Result<Rewind>> + Send;

    /// Returns taken but never delivered messages to the head of the queue,
    /// unless a [`Queue::rewind`] happened since they were taken: it put them
    /// back already, and a resumed stream may hold them again, so giving them
    /// back would duplicate them.
    ///
    /// Streams call this from their destructor, so an implementation must start
    /// its work when called: the returned future owns what it needs, and the
    /// caller may only spawn it.
    fn unread(&self, taken: Taken) -> impl Future<Output = Result<()>> + Send + 'static;

    /// The contents, for record-based repositories; `None` when the engine
    /// stores queues durably itself (Redis lists need no copy).
    fn snapshot(&self) -> impl Future<Output = Result<Option<QueueSnapshot>>> + Send;

    /// Replaces the contents with `snapshot` (restoring persisted data).
    fn restore(&self, snapshot: QueueSnapshot) -> impl Future<Output = Result<()>> + Send;

    /// Signalled when messages arrive or the queue closes.
    fn wakeup(&self) -> &Wakeup;

    /// A stream of this queue began taking. Engines that claim messages
    /// for a queue's streams ahead of their takes (Redis groups its caught-up
    /// streams) count them, to hand back what is claimed when the last one
    /// ends; the default does nothing.
    fn stream_opened(&self) {}

    /// A stream of this queue ended (after handing back what it did not
    /// send, [`Queue::unread`]); see [`Queue::stream_opened`].
    fn stream_closed(&self) {}

    /// Marks the queue closed (its listener is gone) and wakes every consumer.
    fn close(&self);
}
