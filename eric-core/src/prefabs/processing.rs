//! [`DataProcessingChannel`]: a listener's queue handled by a bounded pool of
//! concurrent workers (the reference's `DataProcessingChannel`).
//!
//! [`DataProcessingChannel::process_queue`] runs the listener's `on_message`
//! hook on each queued message, each on its own task, and yields one
//! [`Processed`] per message. It differs from the reference on purpose:
//!
//! * the queue is popped lazily: a message leaves it only when a worker slot
//!   is free, so at most `max_workers` messages are out of the queue at once
//!   (the reference drained the whole queue up front);
//! * a stopped listener is not processed and keeps its messages, and stopping
//!   it mid-run stops the popping;
//! * a failing or panicking hook fails its own message only (the reference
//!   abandoned every result on the first exception);
//! * results come in queue order or in completion order, as asked
//!   ([`Order`]; the reference only had completion order);
//! * the workers are the runtime's tasks: no executor is created per call.

use std::fmt;
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use futures_util::stream::{BoxStream, Stream, StreamExt, unfold};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

use crate::channel::{Adapter, Channel, ChannelSettings};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::id::{ChannelId, ListenerId};
use crate::member::Member;
use crate::observe::Observer;
use crate::queue::{Delivery, Queue};

/// What a data-processing run yields per message: the reference's
/// `{"event": type, "data": payload}` (no `retry`, no `id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataEvent {
    /// The message type.
    pub event: String,
    /// The payload.
    pub data: Value,
}

/// The adapter of [`DataProcessingChannel`]: deliveries become [`DataEvent`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessingAdapter;

impl Adapter for ProcessingAdapter {
    type Output = DataEvent;

    fn from_settings(_: &ChannelSettings) -> Self {
        Self
    }

    fn adapt(&self, delivery: &Delivery) -> DataEvent {
        DataEvent {
            event: delivery.message.msg_type().as_str().to_owned(),
            data: delivery.message.payload_value(),
        }
    }
}

/// The order in which a run yields its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Queue order, whatever order the handlers finish in. A slow message
    /// holds back the results after it (they still occupy worker slots).
    #[default]
    Fifo,
    /// As the handlers finish (the reference's `asyncio.as_completed`).
    Completion,
}

/// The result of one message of a run.
#[derive(Debug)]
pub struct Processed {
    /// The message's sequence number in its queue.
    pub seq: u64,
    /// The adapted message, or the hook's failure ([`Error::Hook`]).
    pub result: Result<DataEvent, Error>,
}

/// Why a run stopped taking messages from the queue.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProcessingEnd {
    /// The queue was found empty.
    Drained,
    /// The listener was stopped.
    Stopped,
    /// The listener was removed from its channel.
    Removed,
    /// The queue could not be read; the messages still queued stay there.
    Failed(Error),
}

/// A channel whose listeners' queues are processed by concurrent workers.
pub struct DataProcessingChannel<E: Engine> {
    channel: Channel<E, ProcessingAdapter>,
    /// Bounds the handlers running, and so the messages out of the queue, per run.
    max_workers: NonZeroUsize,
    order: Order,
}

impl<E: Engine> DataProcessingChannel<E> {
    /// A channel on `engine` whose runs use `max_workers` workers (at least 1)
    /// and yield in `order`; a fresh id when `id` is `None`.
    pub fn new(
        engine: &E,
        id: Option<ChannelId>,
        settings: ChannelSettings,
        max_workers: usize,
        order: Order,
    ) -> Result<Self> {
        let max_workers = NonZeroUsize::new(max_workers).ok_or_else(|| {
            Error::invalid_format("max_workers must be at least 1: a run with no worker never ends")
        })?;
        Ok(Self {
            channel: Channel::new(engine, id, settings)?,
            max_workers,
            order,
        })
    }

    /// The channel: add, start and dispatch to listeners through it.
    pub fn channel(&self) -> &Channel<E, ProcessingAdapter> {
        &self.channel
    }

    /// How many messages a run handles at once.
    pub fn max_workers(&self) -> NonZeroUsize {
        self.max_workers
    }

    /// The order runs yield in.
    pub fn order(&self) -> Order {
        self.order
    }

    /// Processes what `listener`'s queue holds with its `on_message` hook;
    /// see the module docs. Fails at once if the listener is not registered.
    ///
    /// The run ends when it finds the queue empty, or once the messages in
    /// flight are yielded after the listener stops or is removed. Dropping
    /// the stream stops the popping; handlers already running finish.
    pub async fn process_queue(&self, listener: &ListenerId) -> Result<ProcessingStream> {
        let member = self.channel.member(listener).await?;
        let span = tracing::debug_span!(
            "process_queue",
            channel = %self.channel.id(),
            listener = %listener,
        );
        let end = Arc::new(OnceLock::new());
        let run = Run {
            channel: self.channel.clone(),
            member,
            end: end.clone(),
        };
        let workers = self.max_workers.get();
        let inner = match self.order {
            Order::Fifo => source(run).buffered(workers).boxed(),
            Order::Completion => source(run).buffer_unordered(workers).boxed(),
        };
        Ok(ProcessingStream {
            inner,
            end,
            span,
            profile: Profile {
                observer: self.channel.observer().clone(),
                channel: self.channel.id().clone(),
                listener: listener.clone(),
                started: None,
                messages: 0,
                reported: false,
            },
        })
    }
}

impl<E: Engine> Clone for DataProcessingChannel<E> {
    fn clone(&self) -> Self {
        Self {
            channel: self.channel.clone(),
            max_workers: self.max_workers,
            order: self.order,
        }
    }
}

impl<E: Engine> fmt::Debug for DataProcessingChannel<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DataProcessingChannel")
            .field("channel", &self.channel)
            .field("max_workers", &self.max_workers)
            .field("order", &self.order)
            .finish()
    }
}

/// The results of one [`DataProcessingChannel::process_queue`] run.
pub struct ProcessingStream {
    inner: BoxStream<'static, Processed>,
    /// Set by the popping side when it stops, which comes before the last
    /// results are yielded.
    end: Arc<OnceLock<ProcessingEnd>>,
    span: tracing::Span,
    profile: Profile,
}

impl ProcessingStream {
    /// Why the run stopped taking messages; `None` while it still takes them.
    /// Results of messages already taken may still follow.
    pub fn end(&self) -> Option<&ProcessingEnd> {
        self.end.get()
    }
}

impl Stream for ProcessingStream {
    type Item = Processed;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Processed>> {
        let this = self.get_mut();
        // Entered for the poll only, so the pops and the spawned handlers
        // (which inherit the current span) are recorded under the run.
        let _entered = this.span.enter();
        this.profile.started.get_or_insert_with(Instant::now);
        let polled = this.inner.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(_)) => this.profile.messages += 1,
            Poll::Ready(None) => this.profile.report(this.end.get()),
            Poll::Pending => {}
        }
        polled
    }
}

impl Drop for ProcessingStream {
    fn drop(&mut self) {
        let _entered = self.span.enter();
        self.profile.report(self.end.get());
    }
}

impl fmt::Debug for ProcessingStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessingStream")
            .field("channel", &self.profile.channel)
            .field("listener", &self.profile.listener)
            .field("yielded", &self.profile.messages)
            .field("end", &self.end.get())
            .finish_non_exhaustive()
    }
}

/// The run's profile (the reference's removed `DataProcessingChannelProfiler`).
struct Profile {
    observer: Arc<dyn Observer>,
    channel: ChannelId,
    listener: ListenerId,
    /// Set at the first poll: a stream created and never polled did no work.
    started: Option<Instant>,
    messages: usize,
    reported: bool,
}

impl Profile {
    /// Reports the run once, when it finishes or is dropped, whichever is first.
    fn report(&mut self, end: Option<&ProcessingEnd>) {
        let Some(started) = self.started.filter(|_| !self.reported) else {
            return;
        };
        self.reported = true;
        let elapsed = started.elapsed();
        self.observer
            .queue_processed(&self.channel, &self.listener, self.messages, elapsed);
        tracing::debug!(messages = self.messages, ?elapsed, ?end, "queue processed");
    }
}

/// The popping side of a run.
struct Run<E: Engine> {
    channel: Channel<E, ProcessingAdapter>,
    member: Member<E::Queue>,
    end: Arc<OnceLock<ProcessingEnd>>,
}

/// One handler future per message, popped only when the buffering combinator
/// asks for one, i.e. when a worker slot is free.
fn source<E: Engine>(
    run: Run<E>,
) -> impl Stream<Item = impl Future<Output = Processed> + Send + 'static> + Send + 'static {
    unfold(run, |run| async move {
        let delivery = run.pop().await?;
        let handler = run.spawn(delivery);
        Some((handler, run))
    })
}

impl<E: Engine> Run<E> {
    /// The next message, or `None` (with the reason recorded) when the run stops.
    async fn pop(&self) -> Option<Delivery> {
        if !self.member.listener().is_running() {
            return self.stop(ProcessingEnd::Stopped);
        }
        match self.member.queue().pop().await {
            Ok(delivery) => Some(delivery),
            Err(Error::NoMessages { .. }) => self.stop(ProcessingEnd::Drained),
            Err(Error::InvalidListener { .. }) => self.stop(ProcessingEnd::Removed),
            Err(error) => {
                tracing::warn!(%error, "processing stopped: the queue cannot be read");
                self.stop(ProcessingEnd::Failed(error))
            }
        }
    }

    fn stop(&self, end: ProcessingEnd) -> Option<Delivery> {
        // The source is never polled again once it has ended, so this is the
        // only `set`; ignoring the "already set" case loses nothing.
        let _ = self.end.set(end);
        None
    }

    /// Starts the hook on its own task, so async handlers run in parallel and
    /// a panic fails this message only.
    fn spawn(&self, delivery: Delivery) -> impl Future<Output = Processed> + Send + use<E> {
        let seq = delivery.seq;
        let listener_id = self.member.listener_id().clone();
        let channel = self.channel.clone();
        let listener = self.member.listener().clone();
        let handle = tokio::spawn(
            async move {
                channel.run_hook(&listener, &delivery).await.map(|()| {
                    channel.observer().delivered(channel.id(), 1);
                    channel.adapt(&delivery)
                })
            }
            .in_current_span(),
        );
        async move {
            let result = handle.await.unwrap_or_else(|joined| {
                Err(Error::Hook {
                    listener: listener_id,
                    source: joined.into(),
                })
            });
            Processed { seq, result }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::engine::MemoryEngine;
    use crate::message::Message;

    #[test]
    fn adapts_to_event_and_data_only() {
        let delivery = Delivery {
            seq: 4,
            message: Message::try_new("t", json!({"a": 1})).unwrap(),
        };
        let event = ProcessingAdapter.adapt(&delivery);
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"event": "t", "data": {"a": 1}})
        );
    }

    #[test]
    fn zero_workers_are_refused() {
        let err = DataProcessingChannel::new(
            &MemoryEngine::new(),
            None,
            ChannelSettings::default(),
            0,
            Order::Fifo,
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidMessageFormat { .. }), "{err}");
        assert!(err.to_string().contains("max_workers"));
    }
}
