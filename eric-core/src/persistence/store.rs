//! [`Persistence`]: persist, restore and delete whole channels.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::kv::{KvChannelRepository, KvMemberRepository};
use super::repository::{
    ChannelRecord, ChannelRepository, ListenerRecord, MemberRecord, MemberRepository,
};
use super::storage::KvStorage;
use crate::adapter::Adapter;
use crate::channel::Channel;
use crate::engine::Engine;
use crate::error::Result;
use crate::id::ChannelId;
use crate::listener::Listener;
use crate::member::{Member, MemberFactory};
use crate::queue::Queue;
use crate::registry::MemberRegistry;
use crate::sse::SseAdapter;
use crate::subscription::Subscriptions;

/// Saves channels to repositories and rebuilds them on an engine.
pub struct Persistence<E: Engine, A: Adapter = SseAdapter> {
    engine: E,
    channels: Arc<dyn ChannelRepository>,
    members: Arc<dyn MemberRepository>,
    adapter: PhantomData<fn() -> A>,
}

impl<E: Engine, A: Adapter> Persistence<E, A> {
    /// Over the given repositories; restored channels live on `engine`.
    pub fn new(
        engine: E,
        channels: Arc<dyn ChannelRepository>,
        members: Arc<dyn MemberRepository>,
    ) -> Self {
        Self {
            engine,
            channels,
            members,
            adapter: PhantomData,
        }
    }

    /// Over the key-value repositories on `storage`.
    pub fn over_kv(engine: E, storage: Arc<dyn KvStorage>) -> Self {
        Self::new(
            engine,
            Arc::new(KvChannelRepository::new(storage.clone())),
            Arc::new(KvMemberRepository::new(storage)),
        )
    }

    /// Stores `channel`: its settings, every member it has (listener,
    /// running flag and, for engines whose queues are not durable, queued
    /// messages), and deletes the members it removed since the last call,
    /// never stored members it does not know (another process's).
    pub async fn persist(&self, channel: &Channel<E, A>) -> Result<()> {
        let record = ChannelRecord {
            id: channel.id().clone(),
            settings: channel.settings().clone(),
        };
        self.channels.persist(&record).await?;
        let mut records = Vec::new();
        for member in channel.members().await? {
            let subscriptions = channel.subscriptions(member.listener_id()).await?;
            records.push(member_record(&member, subscriptions).await?);
        }
        self.members.persist_many(channel.id(), &records).await?;
        let removed = channel.take_removed();
        for (done, member) in removed.iter().enumerate() {
            if let Err(e) = self.members.delete(channel.id(), member).await {
                channel.return_removed(removed[done..].to_vec());
                return Err(e);
            }
        }
        Ok(())
    }

    /// Restores one channel (`Some`) or every channel (`None`), with their
    /// listeners, running flags and queued messages (the reference's
    /// `load_persisted_data`). An absent channel is [`crate::Error::InvalidChannel`].
    pub async fn load_persisted_data(
        &self,
        channel: Option<&ChannelId>,
    ) -> Result<Vec<Channel<E, A>>> {
        let records = match channel {
            Some(id) => vec![self.channels.load_one(id).await?],
            None => self.channels.load_all().await?,
        };
        let ids: Vec<ChannelId> = records.iter().map(|r| r.id.clone()).collect();
        let members = self.members.load_many(&ids).await?;
        let mut out = Vec::with_capacity(records.len());
        for (record, members) in records.into_iter().zip(members) {
            out.push(self.rebuild(record, members).await?);
        }
        Ok(out)
    }

    /// Restores one channel.
    pub async fn load_one(&self, channel: &ChannelId) -> Result<Channel<E, A>> {
        let mut restored = self.load_persisted_data(Some(channel)).await?;
        restored.pop().ok_or_else(|| crate::Error::InvalidChannel {
            channel: channel.clone(),
        })
    }

    /// Deletes a channel and all its members; absent is fine.
    pub async fn delete(&self, channel: &ChannelId) -> Result<()> {
        self.members.delete_all(channel).await?;
        self.channels.delete(channel).await
    }

    async fn rebuild(
        &self,
        record: ChannelRecord,
        members: Vec<MemberRecord>,
    ) -> Result<Channel<E, A>> {
        let channel = Channel::new(&self.engine, Some(record.id), record.settings)?;
        for member in members {
            restore_member(&channel, member).await?;
        }
        Ok(channel)
    }
}

/// Registers a persisted member on `channel`: its listener with the
/// stored running flag, and its queue with the stored messages (engines
/// whose queues are durable stored none).
async fn restore_member<E: Engine, A: Adapter>(
    channel: &Channel<E, A>,
    record: MemberRecord,
) -> Result<()> {
    let listener = Listener::with_id(record.listener.id);
    listener.set_running(record.listener.running);
    let queue = channel.factory().queue(listener.id());
    if let Some(snapshot) = record.queue {
        queue.restore(snapshot).await?;
    }
    let member = Member::new(listener, queue, Some(record.id));
    channel
        .registry()
        .restore(member, record.listener.subscriptions)
        .await
}

async fn member_record<Q: Queue>(
    member: &Member<Q>,
    subscriptions: Subscriptions,
) -> Result<MemberRecord> {
    Ok(MemberRecord {
        id: member.id().clone(),
        listener: ListenerRecord {
            id: member.listener_id().clone(),
            running: member.listener().is_running(),
            subscriptions,
        },
        queue: member.queue().snapshot().await?,
    })
}

impl<E: Engine, A: Adapter> fmt::Debug for Persistence<E, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Persistence")
            .field("engine", &self.engine.name())
            .finish_non_exhaustive()
    }
}
