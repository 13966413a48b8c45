//! [`Broker`]: the operations both faces (HTTP and the socket protocol) offer,
//! on any [`Backend`].
//!
//! Channels are cached in a [`ChannelContainer`]. With the Redis engine the
//! container is only a cache of what Redis holds: a channel created on
//! another node is loaded on first use, one deleted elsewhere is evicted when
//! the deletion notice arrives, and listings read Redis.

use std::sync::Arc;

use eric_core::persistence::ChannelRecord;
use eric_core::{
    Applied, Broadcast, Channel, ChannelContainer, ChannelId, ChannelSettings, Delivery, Error,
    IdempotencyKey, Listener, ListenerId, Message, MessageStream, NoMessagesReason, Queue, Result,
    SseChannel, SseMessage, StreamOptions,
};
use indexmap::IndexMap;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::backend::Backend;

/// A listener as shown to clients.
#[derive(Debug, Clone, Serialize)]
pub struct ListenerInfo {
    /// Its id.
    pub id: ListenerId,
    /// Whether it is running.
    pub running: bool,
    /// Messages waiting in its queue.
    pub queued: usize,
}

/// A channel as shown to clients.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelInfo {
    /// Its id.
    pub id: ChannelId,
    /// Its settings.
    pub settings: ChannelSettings,
    /// Its listeners, in registration order.
    pub listeners: Vec<ListenerInfo>,
}

/// Prefix of the event names the server's own SSE notices use
/// (`eric-gap`, `eric-end`): messages cannot take them, so no producer can
/// fake a notice to a browser listening by event name.
pub const RESERVED_TYPE_PREFIX: &str = "eric-";

fn check_type(message: &Message) -> Result<()> {
    if message
        .msg_type()
        .as_str()
        .starts_with(RESERVED_TYPE_PREFIX)
    {
        return Err(Error::invalid_format(format!(
            "message types starting with {RESERVED_TYPE_PREFIX:?} are reserved for the server's notices"
        )));
    }
    Ok(())
}

/// The broker (cheap to clone).
pub struct Broker<E: Backend> {
    inner: Arc<Inner<E>>,
}

struct Inner<E: Backend> {
    engine: E,
    channels: ChannelContainer<E>,
    defaults: ChannelSettings,
}

impl<E: Backend> Clone for Broker<E> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<E: Backend> std::fmt::Debug for Broker<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("engine", &self.inner.engine.name())
            .field("cached_channels", &self.inner.channels.len())
            .finish()
    }
}

impl<E: Backend> Broker<E> {
    /// A broker on `engine`; new channels get `defaults` unless told otherwise.
    pub fn new(engine: E, defaults: ChannelSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                engine,
                channels: ChannelContainer::new(),
                defaults,
            }),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &E {
        &self.inner.engine
    }

    /// Restores every persisted channel into the cache (start-up); returns
    /// how many.
    pub async fn restore(&self) -> Result<usize> {
        let Some(persistence) = self.inner.engine.persistence() else {
            return Ok(0);
        };
        let restored = persistence.load_persisted_data(None).await?;
        Ok(self.inner.channels.register_many(restored))
    }

    /// Evicts channels deleted by other nodes until `shutdown`.
    pub async fn follow_deletions(&self, shutdown: CancellationToken) {
        let Some(mut deletions) = self.inner.engine.channel_deletions() else {
            return;
        };
        loop {
            let deleted = tokio::select! {
                () = shutdown.cancelled() => return,
                deleted = deletions.recv() => deleted,
            };
            match deleted {
                Ok(id) => {
                    let _ = self.inner.channels.remove(&id);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    // Some notices were lost: forget the cache, reload lazily.
                    tracing::warn!(missed, "channel deletion notices lost; clearing the cache");
                    for id in self.inner.channels.ids() {
                        let _ = self.inner.channels.remove(&id);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Creates a channel; [`Error::ChannelExists`] if the id is taken.
    pub async fn create_channel(
        &self,
        id: Option<ChannelId>,
        settings: Option<ChannelSettings>,
    ) -> Result<SseChannel<E>> {
        let id = id.unwrap_or_else(ChannelId::generate);
        let settings = settings.unwrap_or_else(|| self.inner.defaults.clone());
        let channel: SseChannel<E> =
            Channel::new(&self.inner.engine, Some(id.clone()), settings.clone())?;
        match self.inner.engine.channel_repository() {
            Some(repository) => {
                repository.create(&ChannelRecord { id, settings }).await?;
                self.inner.channels.register_many([channel.clone()]);
            }
            None => self.inner.channels.register(channel.clone())?,
        }
        Ok(channel)
    }

    /// The channel with this id; [`Error::InvalidChannel`] if there is none.
    pub async fn channel(&self, id: &ChannelId) -> Result<SseChannel<E>> {
        match self.inner.channels.get(id) {
            Ok(channel) => Ok(channel),
            Err(not_cached) => {
                let Some(repository) = self.inner.engine.channel_repository() else {
                    return Err(not_cached);
                };
                let record = repository.load_one(id).await?;
                let channel = Channel::new(&self.inner.engine, Some(record.id), record.settings)?;
                self.inner.channels.register_many([channel]);
                self.inner.channels.get(id)
            }
        }
    }

    /// Every channel id.
    pub async fn channel_ids(&self) -> Result<Vec<ChannelId>> {
        match self.inner.engine.channel_repository() {
            Some(repository) => Ok(repository
                .load_all()
                .await?
                .into_iter()
                .map(|record| record.id)
                .collect()),
            None => Ok(self.inner.channels.ids()),
        }
    }

    /// Deletes a channel: its listeners go, their streams end.
    pub async fn delete_channel(&self, id: &ChannelId) -> Result<()> {
        let channel = self.channel(id).await?;
        match self.inner.engine.persistence() {
            Some(persistence) => persistence.delete(id).await?,
            None => {
                for listener in channel.listener_ids().await? {
                    // Removed concurrently: fine, it is gone either way.
                    let _ = channel.remove_listener(&listener).await;
                }
            }
        }
        let _ = self.inner.channels.remove(id);
        Ok(())
    }

    /// Adds a listener (not started): a new id, or `listener`. Subscribing an
    /// id that exists changes nothing (its queue, flag and streams stay).
    /// Returns its id.
    pub async fn subscribe(
        &self,
        channel: &ChannelId,
        listener: Option<ListenerId>,
    ) -> Result<ListenerId> {
        let channel = self.channel(channel).await?;
        let Some(id) = listener else {
            return Ok(channel.add_listener().await?.id().clone());
        };
        match channel.member(&id).await {
            Ok(_) => Ok(id),
            Err(Error::InvalidListener { .. }) => Ok(channel
                .register_listener(Listener::with_id(id))
                .await?
                .listener_id()
                .clone()),
            Err(e) => Err(e),
        }
    }

    /// Removes a listener; its streams end.
    pub async fn remove_listener(&self, channel: &ChannelId, listener: &ListenerId) -> Result<()> {
        self.channel(channel).await?.remove_listener(listener).await
    }

    /// Starts or stops a listener.
    pub async fn set_running(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
        running: bool,
    ) -> Result<()> {
        let channel = self.channel(channel).await?;
        if running {
            channel.start_listener(listener).await
        } else {
            channel.stop_listener(listener).await
        }
    }

    /// Queues a message for one listener; returns its sequence number.
    pub async fn dispatch(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
        message: Message,
    ) -> Result<u64> {
        check_type(&message)?;
        self.channel(channel)
            .await?
            .dispatch(listener, message)
            .await
    }

    /// [`Broker::dispatch`], at most once per `key` within the channel's
    /// idempotency window; without a key, a plain dispatch.
    pub async fn dispatch_once(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
        message: Message,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<u64>> {
        let Some(key) = key else {
            return self
                .dispatch(channel, listener, message)
                .await
                .map(Applied::fresh);
        };
        check_type(&message)?;
        self.channel(channel)
            .await?
            .dispatch_once(listener, message, key)
            .await
    }

    /// [`Broker::broadcast`], at most once per `key` within the channel's
    /// idempotency window; without a key, a plain broadcast.
    pub async fn broadcast_once(
        &self,
        channel: &ChannelId,
        message: &Message,
        key: Option<&IdempotencyKey>,
    ) -> Result<Applied<Broadcast>> {
        let Some(key) = key else {
            return self.broadcast(channel, message).await.map(Applied::fresh);
        };
        check_type(message)?;
        self.channel(channel)
            .await?
            .broadcast_once(message, key)
            .await
    }

    /// Queues a message for every listener of a channel.
    pub async fn broadcast(&self, channel: &ChannelId, message: &Message) -> Result<Broadcast> {
        check_type(message)?;
        self.channel(channel).await?.broadcast(message).await
    }

    /// The settings channels get unless told otherwise.
    pub fn defaults(&self) -> &ChannelSettings {
        &self.inner.defaults
    }

    /// The next message of a running listener, `None` if its queue is empty;
    /// a stopped listener is [`Error::NoMessages`] with reason `Stopped`.
    pub async fn next(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
    ) -> Result<Option<Delivery>> {
        match self.channel(channel).await?.deliver_next(listener).await {
            Ok(delivery) => Ok(Some(delivery)),
            Err(Error::NoMessages {
                reason: NoMessagesReason::Empty,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Streams the listener, resuming after `last_event_id` when given. A
    /// stopped listener is started first (as eric-api's stream route does)
    /// when `start` says so, else refused with [`NoMessagesReason::Stopped`]
    /// (HTTP: a caller without the right to change listener state).
    pub async fn stream(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
        last_event_id: Option<u64>,
        start: bool,
    ) -> Result<(SseChannel<E>, MessageStream<SseMessage>)> {
        let channel = self.channel(channel).await?;
        if start {
            channel.start_listener(listener).await?;
        } else if !channel.member(listener).await?.listener().is_running() {
            return Err(Error::NoMessages {
                listener: listener.clone(),
                reason: NoMessagesReason::Stopped,
            });
        }
        let stream = channel
            .stream(listener, StreamOptions { last_event_id })
            .await?;
        Ok((channel, stream))
    }

    /// A stream of a channel's broadcasts on a temporary listener.
    pub async fn watch(
        &self,
        channel: &ChannelId,
    ) -> Result<(SseChannel<E>, MessageStream<SseMessage>)> {
        let channel = self.channel(channel).await?;
        let stream = channel.watch().await?;
        Ok((channel, stream))
    }

    /// Every channel with its listener ids (eric-api's `GET /`).
    pub async fn listing(&self) -> Result<IndexMap<ChannelId, Vec<ListenerId>>> {
        let mut listing = IndexMap::new();
        for id in self.channel_ids().await? {
            match self.channel(&id).await {
                Ok(channel) => {
                    listing.insert(id, channel.listener_ids().await?);
                }
                // Deleted between the listing and now.
                Err(Error::InvalidChannel { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(listing)
    }

    /// A channel's settings and listeners with their state.
    pub async fn info(&self, id: &ChannelId) -> Result<ChannelInfo> {
        let channel = self.channel(id).await?;
        let settings = self.stored_settings(&channel).await?;
        let mut listeners = Vec::new();
        for member in channel.members().await? {
            listeners.push(ListenerInfo {
                id: member.listener_id().clone(),
                running: member.listener().is_running(),
                queued: member.queue().len().await?,
            });
        }
        Ok(ChannelInfo {
            id: id.clone(),
            settings,
            listeners,
        })
    }

    /// A channel's settings as stored. Read from storage, not the cache: a
    /// cached channel whose record is gone (Redis lost it without a deletion
    /// notice, e.g. `FLUSHALL`) is not found, and leaves the cache. One read
    /// for `info` only; a restart of Redis is caught for every channel on
    /// re-subscription (the engine announces such channels deleted).
    async fn stored_settings(&self, channel: &SseChannel<E>) -> Result<ChannelSettings> {
        let Some(repository) = self.inner.engine.channel_repository() else {
            return Ok(channel.settings().clone());
        };
        match repository.load_one(channel.id()).await {
            Ok(record) => Ok(record.settings),
            Err(e) => {
                if matches!(e, Error::InvalidChannel { .. }) {
                    let _ = self.inner.channels.remove(channel.id());
                }
                Err(e)
            }
        }
    }

    /// Channels cached on this node (for metrics).
    pub fn cached_channels(&self) -> Vec<SseChannel<E>> {
        self.inner.channels.channels()
    }
}
