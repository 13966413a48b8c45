//! [`Dispatcher`]: concurrent dispatches to one channel combined into one
//! script call.
//!
//! Redis runs one script at a time, so a script per message caps a channel's
//! dispatch rate far below what Redis can push. Here a dispatch joins a
//! pending batch and, unless [`MAX_FLUSHES`] flushes are running, starts one
//! (a spawned task, so a cancelled caller cannot strand the others). A flush
//! takes its share of what is pending, so several round trips overlap on the
//! multiplexed connections instead of queueing behind one another. A lone
//! dispatch still costs exactly one round trip, with no timer; under load,
//! batches grow by themselves. A dispatch to an idle channel (nothing
//! pending, no flush running) runs on the caller's task instead: at low load
//! that saves the hops through a flush task, and whatever arrives meanwhile
//! starts flushes as usual. Order per producer holds: a producer's next
//! dispatch starts only once the previous one returned. The script checks
//! membership, bounds (count and bytes) and sequence numbers once per
//! listener of the batch and pushes that listener's messages in one `RPUSH`.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use eric_core::channel::QueueLimits;
use eric_core::{ChannelId, Error, ListenerId, QueueBound, Result};
use tokio::sync::oneshot;

use crate::client::Client;
use crate::keys::ChannelKeys;
use crate::scripts::SCRIPTS;

/// Messages per script call at most (bounds the script's run time, during
/// which Redis serves nobody else).
const MAX_BATCH: usize = 512;
/// Flushes of one channel in flight at once.
const MAX_FLUSHES: usize = 4;
// An inline dispatch holds a flush slot without draining `pending`; a second
// slot guarantees whatever queues meanwhile gets a flush task (with one, it
// would wait for the next dispatch).
const _: () = assert!(MAX_FLUSHES >= 2);

struct Pending {
    listener: ListenerId,
    message: String,
    limits: QueueLimits,
    reply: oneshot::Sender<Result<u64>>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Pending>,
    /// Flush tasks running; each drains `pending` before it stops.
    flushing: usize,
}

/// Combines a channel's dispatches (see the module docs).
pub(crate) struct Dispatcher {
    client: Client,
    channel: ChannelId,
    keys: Arc<ChannelKeys>,
    queue: Mutex<Queue>,
}

impl Dispatcher {
    pub(crate) fn new(client: Client, channel: ChannelId, keys: Arc<ChannelKeys>) -> Self {
        Self {
            client,
            channel,
            keys,
            queue: Mutex::new(Queue::default()),
        }
    }

    // Vec pushes and swaps cannot leave it half-changed: poison is harmless.
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `message` (stored JSON) for `listener`, whose queue is bounded
    /// by `limits`; returns its sequence number.
    pub(crate) async fn dispatch(
        self: &Arc<Self>,
        listener: &ListenerId,
        message: String,
        limits: QueueLimits,
    ) -> Result<u64> {
        let alone = {
            let mut queue = self.queue();
            let idle = queue.flushing == 0 && queue.pending.is_empty();
            queue.flushing += usize::from(idle);
            idle
        };
        if alone {
            // Counted as a flush until it ends, even if the caller gives up.
            let _running = InlineFlush(self);
            let seqs = self
                .invoke([(listener, limits, message.as_str())].into_iter())
                .await;
            return match seqs {
                Ok(seqs) if seqs.len() == 1 => self.outcome(listener, limits, seqs[0]),
                Ok(seqs) => Err(count_mismatch(seqs.len(), 1)),
                Err(e) => Err(e.into()),
            };
        }
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = self.queue();
            queue.pending.push(Pending {
                listener: listener.clone(),
                message,
                limits,
                reply,
            });
            let start = queue.flushing < MAX_FLUSHES;
            queue.flushing += usize::from(start);
            start
        };
        if start {
            let this = self.clone();
            tokio::spawn(async move { this.flush_all().await });
        }
        answer.await.unwrap_or_else(|_| {
            // The flush task died (runtime shutting down): nothing is known.
            Err(Error::repository(
                "dispatching",
                std::io::Error::other("the dispatch task stopped"),
            ))
        })
    }

    async fn flush_all(self: Arc<Self>) {
        loop {
            // Dispatches already scheduled join this batch rather than start
            // flushes of one message each.
            tokio::task::yield_now().await;
            let batch = {
                let mut queue = self.queue();
                if queue.pending.is_empty() {
                    queue.flushing -= 1;
                    return;
                }
                // A share, so the other flushes get work to overlap with.
                let n = queue.pending.len().div_ceil(queue.flushing).min(MAX_BATCH);
                queue.pending.drain(..n).collect::<Vec<_>>()
            };
            self.flush(batch).await;
        }
    }

    async fn flush(&self, batch: Vec<Pending>) {
        let messages = batch
            .iter()
            .map(|p| (&p.listener, p.limits, p.message.as_str()));
        match self.invoke(messages).await {
            Ok(seqs) if seqs.len() == batch.len() => {
                for (p, seq) in batch.into_iter().zip(seqs) {
                    let outcome = self.outcome(&p.listener, p.limits, seq);
                    let _ = p.reply.send(outcome);
                }
            }
            Ok(seqs) => {
                let n = batch.len();
                for p in batch {
                    let _ = p.reply.send(Err(count_mismatch(seqs.len(), n)));
                }
            }
            Err(e) => {
                let e: Error = e.into();
                for p in batch {
                    let _ = p.reply.send(Err(copy_error(&e)));
                }
            }
        }
    }

    /// One script call dispatching `messages`: their sequence numbers, or
    /// -1 (not a member), -2 (queue full) and -3 (queue full by bytes) per
    /// message.
    async fn invoke<'a>(
        &self,
        messages: impl Iterator<Item = (&'a ListenerId, QueueLimits, &'a str)>,
    ) -> crate::Result<Vec<i64>> {
        let invocation = self.prepare(&SCRIPTS.dispatch_many, messages);
        self.client.script("dispatching", &invocation).await
    }

    /// `script` (`dispatch_many` or its idempotent wrapping) with its keys
    /// and the arguments of `messages`.
    fn prepare<'s, 'a>(
        &self,
        script: &'s redis::Script,
        messages: impl Iterator<Item = (&'a ListenerId, QueueLimits, &'a str)>,
    ) -> redis::ScriptInvocation<'s> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&self.keys.members)
            .key(&self.keys.seqs)
            .key(&self.keys.bytes)
            .arg(&self.keys.base)
            .arg(&self.keys.notify);
        for (listener, limits, message) in messages {
            invocation
                .arg(listener.key_segment().as_ref())
                .arg(limits.capacity)
                .arg(limits.max_bytes)
                .arg(message);
        }
        invocation
    }

    /// Queues `message` for `listener` unless the write recorded at
    /// `record` happened within `window` (see `eric_core::idempotency`):
    /// → (replayed, its sequence number). Never combined with other
    /// dispatches: the record belongs to this one message's script call.
    pub(crate) async fn dispatch_once(
        &self,
        listener: &ListenerId,
        message: String,
        limits: QueueLimits,
        record: &str,
        window: Duration,
    ) -> Result<(bool, u64)> {
        let mut invocation = self.prepare(
            &SCRIPTS.dispatch_once,
            [(listener, limits, message.as_str())].into_iter(),
        );
        invocation.arg(record).arg(window_ms(window));
        let (replayed, seqs): (u8, Vec<i64>) =
            self.client.script("dispatching", &invocation).await?;
        match seqs.as_slice() {
            [seq] => Ok((replayed == 1, self.outcome(listener, limits, *seq)?)),
            _ => Err(count_mismatch(seqs.len(), 1)),
        }
    }

    fn outcome(&self, listener: &ListenerId, limits: QueueLimits, seq: i64) -> Result<u64> {
        let full = |bound| Error::QueueFull {
            channel: self.channel.clone(),
            listener: listener.clone(),
            bound,
        };
        match seq {
            -1 => Err(Error::InvalidListener {
                channel: self.channel.clone(),
                listener: listener.clone(),
            }),
            -2 => Err(full(QueueBound::Messages(limits.capacity))),
            -3 => Err(full(QueueBound::Bytes(limits.max_bytes))),
            seq => Ok(seq.unsigned_abs()),
        }
    }
}

/// Ends an inline flush's count, however its caller's future ends.
struct InlineFlush<'a>(&'a Dispatcher);

impl Drop for InlineFlush<'_> {
    fn drop(&mut self) {
        self.0.queue().flushing -= 1;
    }
}

/// A window as `SET ... PX` takes it: at least 1 ms.
pub(crate) fn window_ms(window: Duration) -> u64 {
    u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn count_mismatch(got: usize, sent: usize) -> Error {
    Error::repository(
        "dispatching",
        std::io::Error::other(format!("{got} results for {sent} messages")),
    )
}

/// The same failure for every message of a batch (errors are not `Clone`:
/// their sources are boxed), keeping its kind so callers can branch on it.
pub(crate) fn copy_error(e: &Error) -> Error {
    let source = || -> eric_core::BoxError { e.to_string().into() };
    match e {
        Error::OutcomeUnknown { backend, operation } => {
            Error::OutcomeUnknown { backend, operation }
        }
        Error::Unavailable {
            backend, operation, ..
        } => Error::Unavailable {
            backend,
            operation,
            source: source(),
        },
        Error::StorageFull {
            backend, operation, ..
        } => Error::StorageFull {
            backend,
            operation,
            source: source(),
        },
        Error::Repository { operation, .. } => Error::Repository {
            operation,
            source: source(),
        },
        _ => Error::repository("dispatching", source()),
    }
}
