//! `EngineBroker<E>`: the broker's work on engine `E`, statically
//! dispatched; [`super::Broker`] is its engine-free handle.

use async_trait::async_trait;
use eric_core::persistence::ChannelRecord;
use eric_core::{
    Applied, Broadcast, Channel, ChannelContainer, ChannelId, ChannelSettings, Delivery, Error,
    IdempotencyKey, Listener, ListenerId, Message, NoMessagesReason, Queue, Result, SseChannel,
    StreamOptions, SubscriptionChange, Subscriptions,
};
use futures_util::future::join_all;
use indexmap::IndexMap;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{ChannelInfo, ListenerInfo, Occupancy, OpenedStream, Operations, RESERVED_TYPE_PREFIX};
use crate::backend::{Backend, NotReady, StorageReport};

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

/// The broker on engine `E`.
pub(super) struct EngineBroker<E: Backend> {
    engine: E,
    channels: ChannelContainer<E>,
    defaults: ChannelSettings,
}

impl<E: Backend> std::fmt::Debug for EngineBroker<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("engine", &self.engine.name())
            .field("cached_channels", &self.channels.len())
            .finish()
    }
}

impl<E: Backend> EngineBroker<E> {
    /// A broker on `engine`; new channels get `defaults` unless told otherwise.
    pub(super) fn new(engine: E, defaults: ChannelSettings) -> Self {
        Self {
            engine,
            channels: ChannelContainer::new(),
            defaults,
        }
    }

    /// The channel with this id; [`Error::InvalidChannel`] if there is none.
    async fn channel(&self, id: &ChannelId) -> Result<SseChannel<E>> {
        match self.channels.get(id) {
            Ok(channel) => Ok(channel),
            Err(not_cached) => {
                let Some(repository) = self.engine.channel_repository() else {
                    return Err(not_cached);
                };
                let record = repository.load_one(id).await?;
                let channel = Channel::new(&self.engine, Some(record.id), record.settings)?;
                self.channels.register_many([channel]);
                self.channels.get(id)
            }
        }
    }

    /// A channel's settings as stored. Read from storage, not the cache: a
    /// cached channel whose record is gone (Redis lost it without a deletion
    /// notice, e.g. `FLUSHALL`) is not found, and leaves the cache. One read
    /// for `info` only; a restart of Redis is caught for every channel on
    /// re-subscription (the engine announces such channels deleted).
    async fn stored_settings(&self, channel: &SseChannel<E>) -> Result<ChannelSettings> {
        let Some(repository) = self.engine.channel_repository() else {
            return Ok(channel.settings().clone());
        };
        match repository.load_one(channel.id()).await {
            Ok(record) => Ok(record.settings),
            Err(e) => {
                if matches!(e, Error::InvalidChannel { .. }) {
                    let _ = self.channels.remove(channel.id());
                }
                Err(e)
            }
        }
    }
}

#[async_trait]
impl<E: Backend> Operations for EngineBroker<E> {
    fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    async fn restore(&self) -> Result<usize> {
        let Some(persistence) = self.engine.persistence() else {
            return Ok(0);
        };
        let restored = persistence.load_persisted_data(None).await?;
        Ok(self.channels.register_many(restored))
    }

    async fn follow_deletions(&self, shutdown: CancellationToken) {
        let Some(mut deletions) = self.engine.channel_deletions() else {
            return;
        };
        loop {
            let deleted = tokio::select! {
                () = shutdown.cancelled() => return,
                deleted = deletions.recv() => deleted,
            };
            match deleted {
                Ok(id) => {
                    let _ = self.channels.remove(&id);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    // Some notices were lost: forget the cache, reload lazily.
                    tracing::warn!(missed, "channel deletion notices lost; clearing the cache");
                    for id in self.channels.ids() {
                        let _ = self.channels.remove(&id);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn create_channel(
        &self,
        id: Option<ChannelId>,
        settings: Option<ChannelSettings>,
    ) -> Result<ChannelId> {
        let id = id.unwrap_or_else(ChannelId::generate);
        let settings = settings.unwrap_or_else(|| self.defaults.clone());
        let channel: SseChannel<E> =
            Channel::new(&self.engine, Some(id.clone()), settings.clone())?;
        match self.engine.channel_repository() {
            Some(repository) => {
                repository.create(&ChannelRecord { id, settings }).await?;
                self.channels.register_many([channel.clone()]);
            }
            None => self.channels.register(channel.clone())?,
        }
        Ok(channel.id().clone())
    }

    async fn ensure_exists(
        &self,
        channel: &ChannelId,
        listener: Option<&ListenerId>,
    ) -> Result<()> {
        let channel = self.channel(channel).await?;
        if let Some(listener) = listener {
            channel.member(listener).await?;
        }
        Ok(())
    }

    async fn channel_ids(&self) -> Result<Vec<ChannelId>> {
        match self.engine.channel_repository() {
            Some(repository) => Ok(repository
                .load_all()
                .await?
                .into_iter()
                .map(|record| record.id)
                .collect()),
            None => Ok(self.channels.ids()),
        }
    }

    async fn delete_channel(&self, id: &ChannelId) -> Result<()> {
        let channel = self.channel(id).await?;
        if let Some(persistence) = self.engine.persistence() {
            persistence.delete(id).await?;
        }
        let _ = self.channels.remove(id);
        // An engine whose channels live in this process (memory, disk)
        // removes the listeners here, which ends their streams, once the
        // channel is gone (a stream that ends asks whether it still
        // exists); a shared one (Redis) ends them on every node from its
        // deletion notice.
        if self.engine.channel_deletions().is_none() {
            for listener in channel.listener_ids().await? {
                // Removed concurrently: fine, it is gone either way.
                let _ = channel.remove_listener(&listener).await;
            }
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        channel: &ChannelId,
        listener: Option<ListenerId>,
        subscriptions: Option<Subscriptions>,
    ) -> Result<ListenerId> {
        let channel = self.channel(channel).await?;
        let Some(id) = listener else {
            let subscriptions = subscriptions.unwrap_or_default();
            return Ok(channel.add_listener_with(subscriptions).await?.id().clone());
        };
        match channel.member(&id).await {
            Ok(_) => {
                // Registered already: its listener object (and the streams
                // on it) stays; only the set changes, when one is given.
                if let Some(set) = subscriptions {
                    let change = SubscriptionChange::Replace(set);
                    channel.change_subscriptions(&id, change).await?;
                }
                Ok(id)
            }
            Err(Error::InvalidListener { .. }) => Ok(channel
                .register_listener_with(Listener::with_id(id), subscriptions)
                .await?
                .listener_id()
                .clone()),
            Err(e) => Err(e),
        }
    }

    async fn subscriptions(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
    ) -> Result<Subscriptions> {
        self.channel(channel).await?.subscriptions(listener).await
    }

    async fn change_subscriptions(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
        change: SubscriptionChange,
    ) -> Result<Subscriptions> {
        let channel = self.channel(channel).await?;
        channel.change_subscriptions(listener, change).await
    }

    async fn remove_listener(&self, channel: &ChannelId, listener: &ListenerId) -> Result<()> {
        self.channel(channel).await?.remove_listener(listener).await
    }

    async fn set_running(
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

    async fn dispatch(
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

    async fn dispatch_once(
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

    async fn broadcast_once(
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

    async fn broadcast(&self, channel: &ChannelId, message: &Message) -> Result<Broadcast> {
        check_type(message)?;
        self.channel(channel).await?.broadcast(message).await
    }

    fn defaults(&self) -> &ChannelSettings {
        &self.defaults
    }

    async fn next(&self, channel: &ChannelId, listener: &ListenerId) -> Result<Option<Delivery>> {
        match self.channel(channel).await?.deliver_next(listener).await {
            Ok(delivery) => Ok(Some(delivery)),
            Err(Error::NoMessages {
                reason: NoMessagesReason::Empty,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn stream(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
        last_event_id: Option<u64>,
        start: bool,
    ) -> Result<OpenedStream> {
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
        Ok(OpenedStream {
            stream,
            retry_ms: channel.settings().retry_ms,
        })
    }

    async fn watch(
        &self,
        channel: &ChannelId,
        subscriptions: Subscriptions,
    ) -> Result<OpenedStream> {
        let channel = self.channel(channel).await?;
        let stream = channel.watch_with(subscriptions).await?;
        Ok(OpenedStream {
            stream,
            retry_ms: channel.settings().retry_ms,
        })
    }

    async fn listing(&self) -> Result<IndexMap<ChannelId, Vec<ListenerId>>> {
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

    async fn info(&self, id: &ChannelId) -> Result<ChannelInfo> {
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

    async fn occupancy(&self, at_most: usize) -> Occupancy {
        let channels = self.channels.channels();
        let mut occupancy = Occupancy {
            channels: channels.len(),
            ..Occupancy::default()
        };
        for channel in channels.iter().take(at_most) {
            let Ok(members) = channel.members().await else {
                continue;
            };
            occupancy.listeners += members.len();
            let lengths = join_all(members.iter().map(|c| c.queue().len())).await;
            let depth: usize = lengths.into_iter().filter_map(Result::ok).sum();
            occupancy.depths.push((channel.id().clone(), depth));
        }
        occupancy
    }

    async fn readiness(&self) -> std::result::Result<(), NotReady> {
        self.engine.readiness().await
    }

    fn readiness_changes(&self) -> Option<watch::Receiver<bool>> {
        self.engine.readiness_changes()
    }

    fn storage_report(&self) -> Option<StorageReport> {
        self.engine.storage_report()
    }

    async fn shutdown(&self) {
        self.engine.shutdown().await;
    }
}
