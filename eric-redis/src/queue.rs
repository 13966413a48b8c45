//! [`RedisQueue`]: a listener's queue as a Redis list.
//!
//! Producers push on the right, consumers pop on the left. Every message is a
//! JSON envelope `{"seq":N,"message":{...}}` whose sequence number the
//! dispatch script assigns atomically (`HINCRBY`), so it is the same SSE id
//! whichever node streams it. Streams take through a script that also copies
//! what it hands out to a capped replay list, so a resume on any node, even
//! after the streaming node died between the pop and the write, can put back
//! exactly what the client did not get.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use eric_core::channel::QueueLimits;
use eric_core::queue::{QueueSnapshot, Rewind, Taken, Wakeup, stored_size};
use eric_core::{ChannelId, Delivery, Error, ListenerId, Message, NoMessagesReason, Queue, Result};

use crate::batch::Dispatcher;
use crate::client::Client;
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
}

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
    pub(crate) fn new(
        client: Client,
        dispatcher: Arc<Dispatcher>,
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
        }
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
        if matches!(result, Err(Error::InvalidListener { .. })) {
            self.close();
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
            .arg(self.listener.key_segment().as_ref());
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
        let mut cmd = redis::cmd("LLEN");
        cmd.arg(&self.queue_key);
        Ok(self.client.query("measuring a queue", &cmd).await?)
    }

    async fn take(&self, max: usize) -> Result<Taken> {
        self.check_open()?;
        let mut invocation = SCRIPTS.take.prepare_invoke();
        invocation
            .key(&self.queue_key)
            .key(&self.delivered_key)
            .key(&self.keys.evicted)
            .key(&self.keys.rewinds)
            .key(&self.keys.bytes)
            .key(&self.keys.window_bytes)
            .arg(max.max(1))
            .arg(self.limits.replay_window)
            .arg(self.listener.key_segment().as_ref())
            .arg(self.limits.max_bytes);
        let (epoch, envelopes): (u64, Vec<String>) = self
            .client
            .script("taking for a stream", &invocation)
            .await?;
        Ok(Taken {
            deliveries: decode(envelopes)?,
            epoch,
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
            .arg(&self.keys.notify);
        let (restored, gap): (usize, u8) =
            self.client.script("resuming a stream", &invocation).await?;
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
        )
    }

    fn snapshot(&self) -> impl Future<Output = Result<Option<QueueSnapshot>>> + Send {
        // Redis lists are the durable copy: repositories store no snapshot.
        std::future::ready(Ok(None))
    }

    async fn restore(&self, snapshot: QueueSnapshot) -> Result<()> {
        // Only a snapshot taken from another engine (a migration) lands here:
        // append its messages with their numbers and keep the counter ahead.
        if snapshot.messages.is_empty() {
            return Ok(());
        }
        // One transaction, so the byte count never disagrees with the list.
        let mut pipe = redis::pipe();
        pipe.atomic();
        let segment = self.listener.key_segment();
        for delivery in &snapshot.messages {
            pipe.cmd("RPUSH")
                .arg(&self.queue_key)
                .arg(encode_envelope(delivery)?)
                .ignore();
        }
        let last = snapshot.next_seq.saturating_sub(1);
        pipe.cmd("HSET")
            .arg(&self.keys.seqs)
            .arg(segment.as_ref())
            .arg(last)
            .ignore();
        // Restored messages are counted, never refused: they were queued.
        let bytes: usize = snapshot
            .messages
            .iter()
            .map(|d| stored_size(&d.message))
            .sum();
        pipe.cmd("HINCRBY")
            .arg(&self.keys.bytes)
            .arg(segment.as_ref())
            .arg(bytes)
            .ignore();
        self.client.pipe::<()>("restoring a queue", &pipe).await?;
        Ok(())
    }

    fn wakeup(&self) -> &Wakeup {
        &self.wakeup
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wakeup.notify_all();
    }
}
