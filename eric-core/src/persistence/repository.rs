//! Records and the repository contracts (the reference's
//! `ChannelRepositoryInterface`, `ConnectionRepositoryInterface`,
//! `ListenerRepositoryInterface` and `QueueRepositoryInterface`).
//!
//! Repositories store plain records, not live objects: a channel is rebuilt
//! from its record by [`super::Persistence`] on the engine of the caller's
//! choice. That replaces the reference's pickles and class-path loading with
//! JSON any language can read. Deviation: listener and queue records are keyed
//! by channel *and* member id, so two channels can never share one.
//!
//! The contracts use `async-trait` (boxed futures): persistence is not on the
//! delivery hot path, and `Arc<dyn ...Repository>` lets a caller mix backends.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::id::{ChannelId, ListenerId, MemberId};
use crate::queue::QueueSnapshot;
use crate::settings::ChannelSettings;
use crate::subscription::Subscriptions;

/// A persisted channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelRecord {
    /// Its id.
    pub id: ChannelId,
    /// Its settings.
    pub settings: ChannelSettings,
}

/// A persisted listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerRecord {
    /// Its id.
    pub id: ListenerId,
    /// Whether it was running.
    pub running: bool,
    /// Its subscriptions; left out when it has none, so records written
    /// before subscriptions existed read as listeners without any.
    #[serde(default, skip_serializing_if = "Subscriptions::is_empty")]
    pub subscriptions: Subscriptions,
}

/// A persisted member: listener plus queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// The member id.
    pub id: MemberId,
    /// The listener.
    pub listener: ListenerRecord,
    /// The queued messages, for engines whose queues are not durable by
    /// themselves; `None` where the engine keeps them (Redis lists).
    pub queue: Option<QueueSnapshot>,
}

/// Stores listener records.
#[async_trait]
pub trait ListenerRepository: Send + Sync + 'static {
    /// The record; [`crate::Error::ItemNotFound`] if absent.
    async fn load(&self, channel: &ChannelId, member: &MemberId) -> Result<ListenerRecord>;
    /// Writes the record.
    async fn persist(
        &self,
        channel: &ChannelId,
        member: &MemberId,
        listener: &ListenerRecord,
    ) -> Result<()>;
    /// Deletes the record; absent is fine.
    async fn delete(&self, channel: &ChannelId, member: &MemberId) -> Result<()>;
}

/// Stores queue contents.
#[async_trait]
pub trait QueueRepository: Send + Sync + 'static {
    /// The stored contents; [`crate::Error::ItemNotFound`] if absent.
    async fn load(&self, channel: &ChannelId, member: &MemberId) -> Result<QueueSnapshot>;
    /// Writes the contents.
    async fn persist(
        &self,
        channel: &ChannelId,
        member: &MemberId,
        queue: &QueueSnapshot,
    ) -> Result<()>;
    /// Deletes the contents; absent is fine.
    async fn delete(&self, channel: &ChannelId, member: &MemberId) -> Result<()>;
}

/// Stores a channel's members.
#[async_trait]
pub trait MemberRepository: Send + Sync + 'static {
    /// Every member of `channel` (and of no other channel).
    async fn load_all(&self, channel: &ChannelId) -> Result<Vec<MemberRecord>>;

    /// One member; [`crate::Error::InvalidMember`] if absent. The default
    /// looks for it among [`MemberRepository::load_all`]'s; a backend that
    /// can read one record alone overrides it.
    async fn load_one(&self, channel: &ChannelId, member: &MemberId) -> Result<MemberRecord> {
        self.load_all(channel)
            .await?
            .into_iter()
            .find(|record| &record.id == member)
            .ok_or_else(|| crate::Error::InvalidMember {
                channel: channel.clone(),
                member: member.clone(),
            })
    }

    /// Writes one member.
    async fn persist(&self, channel: &ChannelId, member: &MemberRecord) -> Result<()>;

    /// Deletes one member; absent is fine.
    async fn delete(&self, channel: &ChannelId, member: &MemberId) -> Result<()>;

    /// The members of several channels, in the same order (one round
    /// trip where the backend can; the default loops).
    async fn load_many(&self, channels: &[ChannelId]) -> Result<Vec<Vec<MemberRecord>>> {
        let mut out = Vec::with_capacity(channels.len());
        for channel in channels {
            out.push(self.load_all(channel).await?);
        }
        Ok(out)
    }

    /// Writes several members of one channel.
    async fn persist_many(&self, channel: &ChannelId, members: &[MemberRecord]) -> Result<()> {
        for member in members {
            self.persist(channel, member).await?;
        }
        Ok(())
    }

    /// Deletes every member of `channel`.
    async fn delete_all(&self, channel: &ChannelId) -> Result<()> {
        for member in self.load_all(channel).await? {
            self.delete(channel, &member.id).await?;
        }
        Ok(())
    }
}

/// Stores channel records.
#[async_trait]
pub trait ChannelRepository: Send + Sync + 'static {
    /// Every channel record.
    async fn load_all(&self) -> Result<Vec<ChannelRecord>>;
    /// One record; [`crate::Error::InvalidChannel`] if absent.
    async fn load_one(&self, channel: &ChannelId) -> Result<ChannelRecord>;
    /// Writes the record.
    async fn persist(&self, channel: &ChannelRecord) -> Result<()>;
    /// Deletes the record; absent is fine.
    async fn delete(&self, channel: &ChannelId) -> Result<()>;

    /// Writes the record unless the channel exists ([`crate::Error::ChannelExists`]).
    /// The default checks then writes; shared backends make it atomic.
    async fn create(&self, channel: &ChannelRecord) -> Result<()> {
        match self.load_one(&channel.id).await {
            Ok(_) => Err(crate::Error::ChannelExists {
                channel: channel.id.clone(),
            }),
            Err(crate::Error::InvalidChannel { .. }) => self.persist(channel).await,
            Err(e) => Err(e),
        }
    }
}
