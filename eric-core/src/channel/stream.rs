//! Push streams of a listener's messages.
//!
//! A stream sleeps on its queue's [`Wakeup`](crate::queue::Wakeup) until a
//! message arrives or its listener stops, so an idle stream costs no CPU and,
//! on Redis, issues no command. It takes messages in batches (one round trip
//! for many messages) into a small buffer; what it took but never yielded
//! goes back to the head of the queue when the stream is dropped or its
//! listener stops, so a client that leaves loses nothing.
//!
//! An owner that learns a yielded message did not reach its client (a
//! socket write failed) hands it back with [`MessageStream::give_back`]:
//! it returns ahead of the unyielded buffer, through the same
//! [`Queue::unread`], so it does not depend on the replay window.
//!
//! The reference emitted `error` events forever once a streamed listener was
//! removed. Here a stream ends with exactly one [`StreamItem::End`] naming the
//! reason, and then yields `None`.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, Stream, StreamExt, unfold};
use tokio::time::Instant;

use super::{Adapter, Channel};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::id::ListenerId;
use crate::member::Member;
use crate::queue::{Delivery, Queue, Taken};
use crate::registry::MemberRegistry;

/// How many messages a stream takes per round trip to its queue. Large,
/// because on Redis each take is a round trip (1,024 drained about 60%
/// faster than 256 in `cargo bench -p eric-redis`); what a stream took but
/// did not send goes back through [`Queue::unread`] when it ends.
const STREAM_BATCH: usize = 1024;
/// First and longest pause after a storage error before a stream retries.
const RETRY_MIN: Duration = Duration::from_millis(10);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// Where a stream starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOptions {
    /// Resume after this sequence number (an SSE `Last-Event-ID`): every
    /// message handed out after it and still in the replay window is sent again.
    pub last_event_id: Option<u64>,
}

/// Why a stream ended.
#[derive(Debug)]
pub enum StreamEnd {
    /// The listener was stopped.
    Stopped,
    /// The listener was removed from its channel.
    Removed,
    /// A storage error that retrying cannot fix.
    Failed(Error),
}

/// One item of a stream.
#[derive(Debug)]
pub enum StreamItem<T> {
    /// A message, adapted to the channel's output format.
    Message(T),
    /// The listener's `on_message` hook failed on the message with this
    /// sequence number; the stream goes on.
    Rejected {
        /// The message's sequence number.
        seq: u64,
        /// The hook's error.
        error: Error,
    },
    /// Messages after `after` are lost to this listener: a resume after
    /// `after` found some gone from the replay window, or the listener fell
    /// further behind its channel's broadcasts than their log keeps. Sent
    /// once, before the messages that remain.
    Gap {
        /// The `Last-Event-ID` the stream resumed from.
        after: u64,
    },
    /// The last item: why the stream ended.
    End(StreamEnd),
}

/// Work to run when a stream ends (removing a `watch` listener).
type Cleanup = Box<dyn FnOnce() -> BoxFuture<'static, Result<()>> + Send>;

/// A stream of [`StreamItem`]s; see the module docs.
pub struct MessageStream<T> {
    inner: BoxStream<'static, StreamItem<T>>,
    cleanup: Option<Cleanup>,
    ledger: Arc<Ledger>,
}

/// What a stream and its cursor share, so that the owner can hand messages
/// back to the cursor, which returns them in one ordered piece of work with
/// its own buffer when it is dropped.
#[derive(Debug, Default)]
struct Ledger {
    /// The rewind epoch of the take the last yielded message came from.
    /// Written by the cursor just before it yields, read by the owner just
    /// after, on the same task: no ordering beyond `Relaxed` is needed.
    epoch: AtomicU64,
    /// Handed back by the owner, oldest first.
    returned: Mutex<Vec<Taken>>,
}

impl<T> MessageStream<T> {
    /// The rewind epoch ([`Taken::epoch`]) of the take the message yielded
    /// last came from. An owner that may hand messages back reads it as it
    /// receives each message and keeps it with the message.
    pub fn epoch(&self) -> u64 {
        self.ledger.epoch.load(Ordering::Relaxed)
    }

    /// Ends the stream, handing back messages it yielded that never reached
    /// their client (`unsent`, oldest first, each [`Taken`] with the
    /// [`epoch`](Self::epoch) of its messages). They return to the head of
    /// the queue in order, ahead of what the stream took but had not yet
    /// yielded, through [`Queue::unread`]: whatever the replay window, and
    /// not if a rewind since their take put them back already. The work runs
    /// in the background, as when a stream is dropped.
    pub fn give_back(self, unsent: Vec<Taken>) {
        self.ledger
            .returned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(unsent);
        // Dropping the stream drops its cursor, which returns everything.
    }
}

impl<T: Send + 'static> MessageStream<T> {
    /// Ends the stream now. Unsent messages go back to the queue, and a
    /// `watch` stream's listener is removed before this returns (dropping the
    /// stream does the same in the background).
    pub async fn close(mut self) -> Result<()> {
        self.inner = futures_util::stream::empty().boxed();
        match self.cleanup.take() {
            Some(cleanup) => cleanup().await,
            None => Ok(()),
        }
    }
}

impl<T> Drop for MessageStream<T> {
    fn drop(&mut self) {
        if let Some(cleanup) = self.cleanup.take() {
            spawn_detached(cleanup(), "removing a watch listener");
        }
    }
}

impl<T> fmt::Debug for MessageStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MessageStream")
    }
}

impl<T> Stream for MessageStream<T> {
    type Item = StreamItem<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.poll_next_unpin(cx)
    }
}

/// Opens a stream on `member`. With `owned`, the listener is removed when
/// the stream is dropped (`watch`).
pub(super) fn open<E: Engine, A: Adapter>(
    channel: Channel<E, A>,
    member: Member<E::Queue>,
    options: StreamOptions,
    owned: Option<ListenerId>,
) -> MessageStream<A::Output> {
    let cleanup = owned.map(|listener| {
        let channel = channel.clone();
        Box::new(move || {
            let removal = channel.registry().remove(&listener);
            async move { removal.await.map(|_| ()) }.boxed()
        }) as Cleanup
    });
    let ledger = Arc::new(Ledger::default());
    member.queue().stream_opened();
    let cursor = Cursor {
        ledger: ledger.clone(),
        batch: if channel.settings().stream_delay.is_zero() {
            STREAM_BATCH
        } else {
            1
        },
        channel,
        member,
        buffer: VecDeque::new(),
        epoch: 0,
        resume_after: options.last_event_id,
        last_sent: None,
        retry: RETRY_MIN,
        finished: false,
    };
    let inner = unfold(cursor, |mut cursor| async move {
        let item = cursor.next().await?;
        Some((item, cursor))
    });
    MessageStream {
        inner: inner.boxed(),
        cleanup,
        ledger,
    }
}

struct Cursor<E: Engine, A: Adapter> {
    channel: Channel<E, A>,
    member: Member<E::Queue>,
    /// Taken from the queue, not yet yielded.
    buffer: VecDeque<Delivery>,
    /// The rewind epoch of the take that filled `buffer`.
    epoch: u64,
    /// Shared with the [`MessageStream`]: see [`Ledger`].
    ledger: Arc<Ledger>,
    batch: usize,
    resume_after: Option<u64>,
    last_sent: Option<Instant>,
    retry: Duration,
    finished: bool,
}

enum Step<T> {
    Yield(StreamItem<T>),
    Continue,
}

impl<E: Engine, A: Adapter> Cursor<E, A> {
    async fn next(&mut self) -> Option<StreamItem<A::Output>> {
        loop {
            if self.finished {
                return None;
            }
            let step = self.step().await;
            if let Step::Yield(item) = step {
                if matches!(item, StreamItem::End(_)) {
                    self.finished = true;
                }
                return Some(item);
            }
        }
    }

    async fn step(&mut self) -> Step<A::Output> {
        if let Some(after) = self.resume_after.take() {
            // Engine futures are boxed: inline, the largest (a Redis round
            // trip's whole state) would size every idle stream.
            match Box::pin(self.member.queue().rewind(after)).await {
                Ok(rewind) if rewind.gap => return Step::Yield(StreamItem::Gap { after }),
                Ok(_) => {}
                Err(e) => {
                    self.resume_after = Some(after);
                    return self.on_error(e).await;
                }
            }
        }
        if !self.member.listener().is_running() {
            self.give_back();
            return Step::Yield(StreamItem::End(StreamEnd::Stopped));
        }
        if !self.buffer.is_empty() {
            return self.send_buffered().await;
        }
        let taken = {
            let (queue, listener) = (self.member.queue(), self.member.listener());
            let armed = queue.wakeup().armed();
            tokio::pin!(armed);
            armed.as_mut().enable();
            let taken = Box::pin(queue.take(self.batch)).await;
            if matches!(&taken, Ok(t) if t.deliveries.is_empty()) {
                tokio::select! {
                    () = armed => {}
                    () = listener.stopped() => {}
                }
            }
            taken
        };
        match taken {
            Ok(taken) => {
                if let Some(after) = taken.gap {
                    // Yielded after the messages are buffered: they follow it.
                    self.retry = RETRY_MIN;
                    self.epoch = taken.epoch;
                    self.buffer.extend(taken.deliveries);
                    return Step::Yield(StreamItem::Gap { after });
                }
                if !taken.deliveries.is_empty() {
                    self.retry = RETRY_MIN;
                    self.epoch = taken.epoch;
                    self.buffer.extend(taken.deliveries);
                }
                Step::Continue
            }
            Err(e) => self.on_error(e).await,
        }
    }

    /// Yields the next buffered message, honouring `stream_delay`.
    async fn send_buffered(&mut self) -> Step<A::Output> {
        let delay = self.channel.settings().stream_delay;
        if let Some(last) = self.last_sent.filter(|_| !delay.is_zero()) {
            let due = last + delay;
            if due > Instant::now() {
                tokio::select! {
                    () = tokio::time::sleep_until(due) => {}
                    () = self.member.listener().stopped() => {}
                }
                // Re-check the running flag before sending.
                return Step::Continue;
            }
        }
        let Some(delivery) = self.buffer.pop_front() else {
            return Step::Continue;
        };
        self.last_sent = Some(Instant::now());
        let item = match self
            .channel
            .run_hook(self.member.listener(), &delivery)
            .await
        {
            Ok(()) => {
                self.ledger.epoch.store(self.epoch, Ordering::Relaxed);
                self.channel.observer().delivered(self.channel.id(), 1);
                StreamItem::Message(self.channel.adapt(&delivery))
            }
            Err(error) => StreamItem::Rejected {
                seq: delivery.seq,
                error,
            },
        };
        Step::Yield(item)
    }

    async fn on_error(&mut self, error: Error) -> Step<A::Output> {
        if matches!(error, Error::InvalidListener { .. }) {
            return Step::Yield(StreamItem::End(StreamEnd::Removed));
        }
        if !error.is_transient() {
            self.give_back();
            return Step::Yield(StreamItem::End(StreamEnd::Failed(error)));
        }
        tracing::warn!(
            channel = %self.channel.id(),
            listener = %self.member.listener_id(),
            error = %error,
            retry_in = ?self.retry,
            "stream cannot reach its queue; retrying"
        );
        let queue = self.member.queue();
        let armed = queue.wakeup().armed();
        tokio::pin!(armed);
        armed.as_mut().enable();
        // Engines wake every queue after a reconnect, which cuts this short.
        tokio::select! {
            () = tokio::time::sleep(self.retry) => {}
            () = armed => {}
            () = self.member.listener().stopped() => {}
        }
        self.retry = (self.retry * 2).min(RETRY_MAX);
        Step::Continue
    }

    /// Returns what the owner handed back and what was taken but never
    /// yielded to the queue, in that order.
    fn give_back(&mut self) {
        let mut unsent = std::mem::take(
            &mut *self
                .ledger
                .returned
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        if !self.buffer.is_empty() {
            unsent.push(Taken {
                deliveries: self.buffer.drain(..).collect(),
                epoch: self.epoch,
                gap: None,
            });
        }
        let unsent = merge_epochs(unsent);
        if unsent.is_empty() {
            return;
        }
        let queue = self.member.queue();
        // Each unread goes to the head of the queue, so the newest goes
        // first; awaited one after another, they land in that order too on
        // engines whose futures start only when polled.
        let unreads: Vec<_> = unsent.into_iter().rev().map(|t| queue.unread(t)).collect();
        spawn_detached(
            async move {
                let mut result = Ok(());
                for unread in unreads {
                    if let Err(error) = unread.await {
                        result = Err(error);
                    }
                }
                result
            },
            "returning unsent messages",
        );
    }
}

impl<E: Engine, A: Adapter> Drop for Cursor<E, A> {
    fn drop(&mut self) {
        self.give_back();
        self.member.queue().stream_closed();
    }
}

/// Joins neighbours of the same epoch (usually all of them: one unread).
fn merge_epochs(groups: Vec<Taken>) -> Vec<Taken> {
    let mut merged: Vec<Taken> = Vec::with_capacity(groups.len());
    for group in groups {
        if group.deliveries.is_empty() {
            continue;
        }
        match merged.last_mut() {
            Some(last) if last.epoch == group.epoch => last.deliveries.extend(group.deliveries),
            _ => merged.push(group),
        }
    }
    merged
}

/// Drives `work` to completion in the background (engines start such work
/// when it is created; what remains is I/O to finish), logging failures.
fn spawn_detached(work: impl Future<Output = Result<()>> + Send + 'static, what: &'static str) {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(async move {
                if let Err(error) = work.await {
                    tracing::debug!(%error, "{what} failed");
                }
            });
        }
        Err(_) => tracing::debug!("no runtime: {what} skipped"),
    }
}
