//! [`InMemoryQueue`]: the embedded engine's bounded queue.

use std::collections::VecDeque;
use std::future::{Future, ready};
use std::sync::{Arc, Mutex};

use super::QueueLimits;
use super::{Delivery, MemoryBudget, Queue, QueueSnapshot, Rewind, Taken, Wakeup, stored_size};
use crate::error::{Error, NoMessagesReason, QueueBound, Result};
use crate::id::{ChannelId, ListenerId};
use crate::journal::{self, Change, Journal};
use crate::message::Message;

/// Whose queue this is; named in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueOwner {
    /// The channel.
    pub channel: ChannelId,
    /// The listener.
    pub listener: ListenerId,
}

/// A bounded in-process FIFO with a replay window.
///
/// Lock discipline: one `std::sync::Mutex` around the whole state, held only
/// for a few pointer moves and never across an `.await` (every method does its
/// work synchronously and returns a ready future). Producers wake consumers
/// after releasing it. The engine's [`MemoryBudget`] is an atomic, updated
/// under this lock so that it always agrees with `State::bytes`.
#[derive(Debug)]
pub struct InMemoryQueue {
    owner: QueueOwner,
    /// Pushes beyond `capacity` queued messages or `max_bytes` queued bytes
    /// fail with `QueueFull`: producers learn about a consumer that fell
    /// behind instead of the broker running out of memory.
    limits: QueueLimits,
    /// Shared by every queue of the engine: the node-wide bound.
    budget: Arc<MemoryBudget>,
    state: Mutex<State>,
    wakeup: Wakeup,
    journal: Option<Arc<dyn Journal>>,
}

#[derive(Debug)]
struct State {
    queued: VecDeque<Delivery>,
    /// The [`stored_size`] of everything in `queued`, kept exact by every
    /// operation that moves messages in or out.
    bytes: usize,
    /// Handed to streams, oldest first, at most `replay_window` long and
    /// `max_bytes` large: a stream of big messages must not keep ten
    /// thousand of them.
    delivered: VecDeque<Delivery>,
    /// The [`stored_size`] of everything in `delivered`.
    window_bytes: usize,
    next_seq: u64,
    /// Highest sequence number pushed out of the replay window.
    evicted_up_to: u64,
    /// Rewinds so far (see [`Taken::epoch`]).
    rewinds: u64,
    closed: bool,
}

/// The bytes of `deliveries`.
fn size_of<'a>(deliveries: impl IntoIterator<Item = &'a Delivery>) -> usize {
    deliveries
        .into_iter()
        .map(|d| stored_size(&d.message))
        .sum()
}

impl State {
    /// Takes `deliveries` (just removed from `queued`) off the byte counts.
    fn removed(&mut self, budget: &MemoryBudget, deliveries: &[Delivery]) {
        let bytes = size_of(deliveries);
        self.bytes = self.bytes.saturating_sub(bytes);
        budget.release(bytes);
    }

    /// Puts `deliveries` (newest first) back at the head of `queued`, counted
    /// but never refused: they were queued before.
    fn put_back(&mut self, budget: &MemoryBudget, deliveries: impl Iterator<Item = Delivery>) {
        let mut bytes = 0;
        for d in deliveries {
            bytes += stored_size(&d.message);
            self.queued.push_front(d);
        }
        self.bytes += bytes;
        budget.force(bytes);
    }
}

impl InMemoryQueue {
    /// An empty queue owned by `owner`, within `limits`, counting its bytes
    /// against `budget`.
    pub fn new(owner: QueueOwner, limits: QueueLimits, budget: Arc<MemoryBudget>) -> Self {
        Self {
            owner,
            limits: QueueLimits {
                capacity: limits.capacity.max(1),
                max_bytes: limits.max_bytes.max(1),
                ..limits
            },
            budget,
            state: Mutex::new(State {
                queued: VecDeque::new(),
                bytes: 0,
                delivered: VecDeque::new(),
                window_bytes: 0,
                next_seq: 1,
                evicted_up_to: 0,
                rewinds: 0,
                closed: false,
            }),
            wakeup: Wakeup::new(),
            journal: None,
        }
    }

    /// This queue, telling `journal` every change of its contents (an
    /// engine that writes its state through to disk, see
    /// [`crate::journal`]); its writes then answer once the journal has
    /// settled them.
    pub fn with_journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// Tells the journal, if any, about `change` (made by the caller under
    /// the state lock, so the journal sees this queue's changes in order).
    fn record(&self, change: impl FnOnce(ChannelId, ListenerId) -> Change) {
        if let Some(journal) = &self.journal {
            journal.record(change(
                self.owner.channel.clone(),
                self.owner.listener.clone(),
            ));
        }
    }

    /// `result`, once the journal (if any) has settled what this call
    /// recorded; an error recorded nothing, so it answers at once.
    fn settle<T: Send + 'static>(
        &self,
        result: Result<T>,
    ) -> impl Future<Output = Result<T>> + Send + 'static {
        journal::settle(self.journal.as_ref(), result)
    }

    /// The queue's owner.
    pub fn owner(&self) -> &QueueOwner {
        &self.owner
    }

    /// The configured bound on queued messages.
    pub fn capacity(&self) -> usize {
        self.limits.capacity
    }

    /// The bytes queued now (see [`stored_size`]).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn closed_error(&self) -> Error {
        Error::InvalidListener {
            channel: self.owner.channel.clone(),
            listener: self.owner.listener.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent state (every
        // mutation is a single collection call), so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the state unless the queue is closed.
    fn with_open<T>(&self, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
        let mut state = self.lock();
        if state.closed {
            return Err(self.closed_error());
        }
        f(&mut state)
    }

    fn full(&self, bound: QueueBound) -> Error {
        Error::QueueFull {
            channel: self.owner.channel.clone(),
            listener: self.owner.listener.clone(),
            bound,
        }
    }

    /// Synchronous push, for engines that fan out under their own lock.
    pub fn push_now(&self, message: Message) -> Result<u64> {
        let size = stored_size(&message);
        self.push_sized(message, size, false)
    }

    /// A push whose `size` bytes a broadcast took from the budget already
    /// (for all its queues at once, so it is refused whole or not at all);
    /// on an error, giving them back is the caller's.
    pub(crate) fn push_prepaid(&self, message: Message, size: usize) -> Result<u64> {
        self.push_sized(message, size, true)
    }

    fn push_sized(&self, message: Message, size: usize, prepaid: bool) -> Result<u64> {
        let seq = self.with_open(|state| {
            if state.queued.len() >= self.limits.capacity {
                return Err(self.full(QueueBound::Messages(self.limits.capacity)));
            }
            if state.bytes.saturating_add(size) > self.limits.max_bytes {
                return Err(self.full(QueueBound::Bytes(self.limits.max_bytes)));
            }
            if !prepaid {
                self.budget.reserve(size, "dispatching")?;
            }
            let seq = state.next_seq;
            state.next_seq += 1;
            state.bytes += size;
            self.record(|channel, listener| Change::Queued {
                channel,
                listener,
                seq,
                message: message.clone(),
            });
            state.queued.push_back(Delivery { seq, message });
            Ok(seq)
        })?;
        self.wakeup.notify_one();
        Ok(seq)
    }

    /// Synchronous pop.
    pub fn pop_now(&self) -> Result<Delivery> {
        self.with_open(|state| {
            let d = state.queued.pop_front().ok_or_else(|| Error::NoMessages {
                listener: self.owner.listener.clone(),
                reason: NoMessagesReason::Empty,
            })?;
            state.removed(&self.budget, std::slice::from_ref(&d));
            self.record(|channel, listener| Change::Dropped {
                channel,
                listener,
                seqs: vec![d.seq],
            });
            Ok(d)
        })
    }

    fn drain(&self, state: &mut State, max: usize) -> Vec<Delivery> {
        let n = max.min(state.queued.len());
        let batch: Vec<Delivery> = state.queued.drain(..n).collect();
        state.removed(&self.budget, &batch);
        batch
    }

    /// Pops up to `max` messages for good (not kept for replay).
    fn pop_batch_now(&self, max: usize) -> Result<Vec<Delivery>> {
        self.with_open(|state| {
            let batch = self.drain(state, max);
            if !batch.is_empty() {
                self.record(|channel, listener| Change::Dropped {
                    channel,
                    listener,
                    seqs: batch.iter().map(|d| d.seq).collect(),
                });
            }
            Ok(batch)
        })
    }

    fn take_now(&self, max: usize) -> Result<Taken> {
        self.with_open(|state| {
            let batch = self.drain(state, max);
            if !batch.is_empty() {
                self.record(|channel, listener| Change::Taken {
                    channel,
                    listener,
                    seqs: batch.iter().map(|d| d.seq).collect(),
                });
            }
            state.window_bytes += size_of(&batch);
            state.delivered.extend(batch.iter().cloned());
            // Oldest first out, until the window is within both bounds.
            let mut evicted = Vec::new();
            while state.delivered.len() > self.limits.replay_window
                || state.window_bytes > self.limits.max_bytes
            {
                let Some(gone) = state.delivered.pop_front() else {
                    break;
                };
                state.window_bytes = state
                    .window_bytes
                    .saturating_sub(stored_size(&gone.message));
                state.evicted_up_to = gone.seq;
                evicted.push(gone.seq);
            }
            if !evicted.is_empty() {
                self.record(|channel, listener| Change::Dropped {
                    channel,
                    listener,
                    seqs: evicted,
                });
            }
            Ok(Taken {
                deliveries: batch,
                epoch: state.rewinds,
                gap: None,
            })
        })
    }

    fn rewind_now(&self, after: u64) -> Result<Rewind> {
        let rewind = self.with_open(|state| {
            let keep = state.delivered.partition_point(|d| d.seq <= after);
            let back: Vec<Delivery> = state.delivered.drain(keep..).collect();
            state.window_bytes = state.window_bytes.saturating_sub(size_of(&back));
            let restored = back.len();
            if restored > 0 {
                self.record(|channel, listener| Change::Returned {
                    channel,
                    listener,
                    messages: back.iter().map(|d| (d.seq, d.message.clone())).collect(),
                });
            }
            state.rewinds += 1;
            state.put_back(&self.budget, back.into_iter().rev());
            Ok(Rewind {
                restored,
                gap: after < state.evicted_up_to,
            })
        })?;
        // What came back may be for a consumer already asleep.
        if rewind.restored > 0 {
            self.wakeup.notify_one();
        }
        Ok(rewind)
    }

    fn unread_now(&self, taken: Taken) -> Result<()> {
        if taken.deliveries.is_empty() {
            return Ok(());
        }
        let returned = self.with_open(|state| {
            if state.rewinds != taken.epoch {
                return Ok(false);
            }
            let unread = &taken.deliveries;
            let mut freed = 0;
            state.delivered.retain(|d| {
                let keep = !unread.iter().any(|u| u.seq == d.seq);
                if !keep {
                    freed += stored_size(&d.message);
                }
                keep
            });
            state.window_bytes = state.window_bytes.saturating_sub(freed);
            self.record(|channel, listener| Change::Returned {
                channel,
                listener,
                messages: unread.iter().map(|d| (d.seq, d.message.clone())).collect(),
            });
            state.put_back(&self.budget, taken.deliveries.into_iter().rev());
            Ok(true)
        })?;
        if returned {
            self.wakeup.notify_one();
        }
        Ok(())
    }

    fn restore_now(&self, snapshot: QueueSnapshot) -> Result<()> {
        self.with_open(|state| {
            let last = snapshot
                .messages
                .last()
                .or(snapshot.window.last())
                .map_or(0, |d| d.seq);
            state.next_seq = snapshot.next_seq.max(last + 1).max(state.next_seq);
            let bytes = size_of(&snapshot.messages);
            self.budget.release(state.bytes);
            self.budget.force(bytes);
            state.bytes = bytes;
            // Only a snapshot that carries a window replaces it: older
            // records (and the key-value repositories) keep none.
            if let Some(first) = snapshot.window.first() {
                state.evicted_up_to = first.seq.saturating_sub(1);
                state.window_bytes = size_of(&snapshot.window);
                state.delivered = snapshot.window.iter().cloned().collect();
            }
            let pair = |d: &Delivery| (d.seq, d.message.clone());
            self.record(|channel, listener| Change::Replaced {
                channel,
                listener,
                next_seq: state.next_seq,
                window: state.delivered.iter().map(pair).collect(),
                messages: snapshot.messages.iter().map(pair).collect(),
            });
            state.queued = snapshot.messages.into();
            Ok(())
        })?;
        self.wakeup.notify_one();
        Ok(())
    }
}

impl Drop for InMemoryQueue {
    fn drop(&mut self) {
        // A queue dropped with messages (its channel deleted) gives their
        // bytes back to the engine.
        self.budget.release(self.lock().bytes);
    }
}

impl Queue for InMemoryQueue {
    fn push(&self, message: Message) -> impl Future<Output = Result<u64>> + Send {
        self.settle(self.push_now(message))
    }

    fn pop(&self) -> impl Future<Output = Result<Delivery>> + Send {
        self.settle(self.pop_now())
    }

    fn pop_batch(&self, max: usize) -> impl Future<Output = Result<Vec<Delivery>>> + Send {
        self.settle(self.pop_batch_now(max))
    }

    fn len(&self) -> impl Future<Output = Result<usize>> + Send {
        ready(self.with_open(|state| Ok(state.queued.len())))
    }

    fn take(&self, max: usize) -> impl Future<Output = Result<Taken>> + Send {
        self.settle(self.take_now(max))
    }

    fn rewind(&self, after: u64) -> impl Future<Output = Result<Rewind>> + Send {
        self.settle(self.rewind_now(after))
    }

    fn unread(&self, taken: Taken) -> impl Future<Output = Result<()>> + Send + 'static {
        self.settle(self.unread_now(taken))
    }

    fn snapshot(&self) -> impl Future<Output = Result<Option<QueueSnapshot>>> + Send {
        ready(self.with_open(|state| {
            // A journaled queue is stored by its journal already.
            if self.journal.is_some() {
                return Ok(None);
            }
            Ok(Some(QueueSnapshot {
                next_seq: state.next_seq,
                messages: state.queued.iter().cloned().collect(),
                window: Vec::new(),
            }))
        }))
    }

    fn restore(&self, snapshot: QueueSnapshot) -> impl Future<Output = Result<()>> + Send {
        self.settle(self.restore_now(snapshot))
    }

    fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        // Nothing can reach a closed queue's messages: free them now, not
        // when the last stream lets go of the queue.
        state.queued.clear();
        state.delivered.clear();
        state.window_bytes = 0;
        self.budget.release(std::mem::take(&mut state.bytes));
        drop(state);
        self.wakeup.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn queue(capacity: usize, window: usize) -> InMemoryQueue {
        let limits = QueueLimits {
            capacity,
            max_bytes: usize::MAX,
            replay_window: window,
        };
        queue_within(limits, Arc::new(MemoryBudget::unlimited()))
    }

    fn queue_within(limits: QueueLimits, budget: Arc<MemoryBudget>) -> InMemoryQueue {
        let owner = QueueOwner {
            channel: "c".parse().unwrap(),
            listener: "l".parse().unwrap(),
        };
        InMemoryQueue::new(owner, limits, budget)
    }

    fn msg(n: i64) -> Message {
        Message::try_new("t", json!(n)).unwrap()
    }

    fn payloads(ds: &[Delivery]) -> Vec<i64> {
        ds.iter()
            .map(|d| d.message.payload_value().as_i64().unwrap())
            .collect()
    }

    #[tokio::test]
    async fn fifo_with_increasing_sequence_numbers() {
        let q = queue(10, 10);
        assert_eq!(q.push(msg(1)).await.unwrap(), 1);
        assert_eq!(q.push(msg(2)).await.unwrap(), 2);
        assert_eq!(q.len().await.unwrap(), 2);
        assert_eq!(q.pop().await.unwrap().seq, 1);
        assert_eq!(q.pop().await.unwrap().seq, 2);
        assert!(matches!(
            q.pop().await,
            Err(Error::NoMessages {
                reason: NoMessagesReason::Empty,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn full_queue_refuses_and_keeps_what_it_has() {
        let q = queue(2, 0);
        q.push(msg(1)).await.unwrap();
        q.push(msg(2)).await.unwrap();
        let err = q.push(msg(3)).await.unwrap_err();
        assert!(matches!(
            err,
            Error::QueueFull {
                bound: QueueBound::Messages(2),
                ..
            }
        ));
        assert_eq!(payloads(&q.pop_batch(10).await.unwrap()), [1, 2]);
    }

    #[tokio::test]
    async fn rewind_puts_back_what_streams_took_after_an_id() {
        let q = queue(100, 10);
        for n in 1..=5 {
            q.push(msg(n)).await.unwrap();
        }
        assert_eq!(payloads(&q.take(3).await.unwrap().deliveries), [1, 2, 3]);
        let r = q.rewind(1).await.unwrap();
        assert_eq!(
            r,
            Rewind {
                restored: 2,
                gap: false
            }
        );
        assert_eq!(payloads(&q.pop_batch(10).await.unwrap()), [2, 3, 4, 5]);
    }

    #[tokio::test]
    async fn rewind_reports_a_gap_beyond_the_window() {
        let q = queue(100, 2);
        for n in 1..=5 {
            q.push(msg(n)).await.unwrap();
        }
        q.take(5).await.unwrap();
        let r = q.rewind(1).await.unwrap();
        assert_eq!(
            r,
            Rewind {
                restored: 2,
                gap: true
            }
        );
        assert_eq!(payloads(&q.pop_batch(10).await.unwrap()), [4, 5]);
    }

    #[tokio::test]
    async fn unread_returns_messages_to_the_head_in_order() {
        let q = queue(100, 10);
        for n in 1..=4 {
            q.push(msg(n)).await.unwrap();
        }
        let mut taken = q.take(3).await.unwrap();
        taken.deliveries.remove(0);
        q.unread(taken).await.unwrap();
        assert_eq!(payloads(&q.pop_batch(10).await.unwrap()), [2, 3, 4]);
        // What was unread left the window: a rewind cannot duplicate it.
        assert_eq!(q.rewind(0).await.unwrap().restored, 1);
    }

    #[tokio::test]
    async fn unread_after_a_rewind_gives_nothing_back_twice() {
        let q = queue(100, 10);
        for n in 1..=4 {
            q.push(msg(n)).await.unwrap();
        }
        let mut taken = q.take(4).await.unwrap();
        taken.deliveries.drain(..2);
        q.rewind(1).await.unwrap();
        // A resumed stream takes them again before the old one gives back.
        let again = q.take(10).await.unwrap();
        assert_eq!(payloads(&again.deliveries), [2, 3, 4]);
        q.unread(taken).await.unwrap();
        assert!(q.pop_batch(10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn closed_queue_refuses_everything_and_wakes_waiters() {
        let q = std::sync::Arc::new(queue(10, 10));
        let waiter = {
            let q = q.clone();
            tokio::spawn(async move {
                loop {
                    let armed = q.wakeup().armed();
                    tokio::pin!(armed);
                    armed.as_mut().enable();
                    if matches!(q.pop().await, Err(Error::InvalidListener { .. })) {
                        return;
                    }
                    armed.await;
                }
            })
        };
        q.close();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            q.push(msg(1)).await,
            Err(Error::InvalidListener { .. })
        ));
        assert!(matches!(q.pop().await, Err(Error::InvalidListener { .. })));
    }

    #[tokio::test]
    async fn snapshot_and_restore_keep_sequence_numbers() {
        let q = queue(10, 10);
        q.push(msg(1)).await.unwrap();
        q.push(msg(2)).await.unwrap();
        q.pop().await.unwrap();
        let snap = q.snapshot().await.unwrap().unwrap();
        assert_eq!(snap.next_seq, 3);
        let r = queue(10, 10);
        r.restore(snap).await.unwrap();
        assert_eq!(r.pop().await.unwrap().seq, 2);
        assert_eq!(r.push(msg(3)).await.unwrap(), 3);
    }
}
