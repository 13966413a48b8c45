//! Repositories over any [`KvStorage`].
//!
//! Key layout (every id goes through its injective `key_segment`, so no id
//! can reach into another's keys; the reference matched members of
//! channel `ab` with the bare prefix `ab` and so loaded those of `abc`):
//!
//! | key | value |
//! |---|---|
//! | `channel:<ch>` | [`ChannelRecord`] |
//! | `connection:<ch>:<member>` | `{"id": member, "listener_id": l}` (the index; its family keeps the reference's word) |
//! | `listener:<ch>:<member>` | [`ListenerRecord`] |
//! | `queue:<ch>:<member>` | [`QueueSnapshot`] |
//!
//! A member is written listener and queue first, index last, and deleted
//! index first: a crash in between leaves unindexed records, never an index
//! entry pointing at nothing.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::repository::{
    ChannelRecord, ChannelRepository, ListenerRecord, ListenerRepository, MemberRecord,
    MemberRepository, QueueRepository,
};
use super::storage::KvStorage;
use crate::error::{Error, Result};
use crate::id::{ChannelId, ListenerId, MemberId};
use crate::queue::QueueSnapshot;

const CHANNELS: &str = "channel:";

/// The index's key family: the reference's word, kept because stored keys
/// outlive names.
const INDEX: &str = "connection";

fn channel_key(channel: &ChannelId) -> String {
    format!("{CHANNELS}{}", channel.key_segment())
}

fn members_prefix(channel: &ChannelId) -> String {
    format!("{INDEX}:{}:", channel.key_segment())
}

fn scoped_key(family: &str, channel: &ChannelId, member: &MemberId) -> String {
    format!(
        "{family}:{}:{}",
        channel.key_segment(),
        member.key_segment()
    )
}

fn decode<T: DeserializeOwned>(what: &'static str, value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::repository(what, e))
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::repository(what, e))
}

/// The index entry of a member.
#[derive(Debug, Serialize, Deserialize)]
struct IndexEntry {
    id: MemberId,
    listener_id: ListenerId,
}

macro_rules! debug_named {
    ($($name:ident),*) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($name))
            }
        }
    )*};
}

debug_named!(
    KvChannelRepository,
    KvMemberRepository,
    KvListenerRepository,
    KvQueueRepository
);

/// Listener records in a [`KvStorage`].
#[derive(Clone)]
pub struct KvListenerRepository {
    storage: Arc<dyn KvStorage>,
}

impl KvListenerRepository {
    /// Over `storage`.
    pub fn new(storage: Arc<dyn KvStorage>) -> Self {
        Self { storage }
    }
}

#[async_trait]
impl ListenerRepository for KvListenerRepository {
    async fn load(&self, channel: &ChannelId, member: &MemberId) -> Result<ListenerRecord> {
        let value = self
            .storage
            .fetch_one(&scoped_key("listener", channel, member))
            .await?;
        decode("decoding a listener record", value)
    }

    async fn persist(
        &self,
        channel: &ChannelId,
        member: &MemberId,
        listener: &ListenerRecord,
    ) -> Result<()> {
        let value = encode("encoding a listener record", listener)?;
        self.storage
            .upsert(&scoped_key("listener", channel, member), value)
            .await
    }

    async fn delete(&self, channel: &ChannelId, member: &MemberId) -> Result<()> {
        self.storage
            .delete(&scoped_key("listener", channel, member))
            .await
    }
}

/// Queue contents in a [`KvStorage`].
#[derive(Clone)]
pub struct KvQueueRepository {
    storage: Arc<dyn KvStorage>,
}

impl KvQueueRepository {
    /// Over `storage`.
    pub fn new(storage: Arc<dyn KvStorage>) -> Self {
        Self { storage }
    }
}

#[async_trait]
impl QueueRepository for KvQueueRepository {
    async fn load(&self, channel: &ChannelId, member: &MemberId) -> Result<QueueSnapshot> {
        let value = self
            .storage
            .fetch_one(&scoped_key("queue", channel, member))
            .await?;
        decode("decoding a queue record", value)
    }

    async fn persist(
        &self,
        channel: &ChannelId,
        member: &MemberId,
        queue: &QueueSnapshot,
    ) -> Result<()> {
        let value = encode("encoding a queue record", queue)?;
        self.storage
            .upsert(&scoped_key("queue", channel, member), value)
            .await
    }

    async fn delete(&self, channel: &ChannelId, member: &MemberId) -> Result<()> {
        self.storage
            .delete(&scoped_key("queue", channel, member))
            .await
    }
}

/// Members in a [`KvStorage`], composed of a listener and a queue
/// repository as in the reference.
#[derive(Clone)]
pub struct KvMemberRepository {
    storage: Arc<dyn KvStorage>,
    listeners: Arc<dyn ListenerRepository>,
    queues: Arc<dyn QueueRepository>,
}

impl KvMemberRepository {
    /// Over `storage`, with its own listener and queue repositories.
    pub fn new(storage: Arc<dyn KvStorage>) -> Self {
        Self::with_parts(
            storage.clone(),
            Arc::new(KvListenerRepository::new(storage.clone())),
            Arc::new(KvQueueRepository::new(storage)),
        )
    }

    /// Over `storage` for the index, with the given listener and queue repositories.
    pub fn with_parts(
        storage: Arc<dyn KvStorage>,
        listeners: Arc<dyn ListenerRepository>,
        queues: Arc<dyn QueueRepository>,
    ) -> Self {
        Self {
            storage,
            listeners,
            queues,
        }
    }

    async fn load_indexed(
        &self,
        channel: &ChannelId,
        entry: IndexEntry,
    ) -> Result<Option<MemberRecord>> {
        let listener = match self.listeners.load(channel, &entry.id).await {
            Ok(listener) => listener,
            Err(Error::ItemNotFound { .. }) => {
                tracing::warn!(%channel, member = %entry.id, "member without listener record skipped");
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let queue = match self.queues.load(channel, &entry.id).await {
            Ok(queue) => Some(queue),
            Err(Error::ItemNotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        Ok(Some(MemberRecord {
            id: entry.id,
            listener,
            queue,
        }))
    }
}

#[async_trait]
impl MemberRepository for KvMemberRepository {
    async fn load_all(&self, channel: &ChannelId) -> Result<Vec<MemberRecord>> {
        let entries = self
            .storage
            .fetch_by_prefix(&members_prefix(channel))
            .await?;
        let mut out = Vec::with_capacity(entries.len());
        for (_, value) in entries {
            let entry = decode("decoding a member index entry", value)?;
            out.extend(self.load_indexed(channel, entry).await?);
        }
        Ok(out)
    }

    async fn load_one(&self, channel: &ChannelId, member: &MemberId) -> Result<MemberRecord> {
        let invalid = || Error::InvalidMember {
            channel: channel.clone(),
            member: member.clone(),
        };
        let value = match self
            .storage
            .fetch_one(&scoped_key(INDEX, channel, member))
            .await
        {
            Err(Error::ItemNotFound { .. }) => return Err(invalid()),
            other => other?,
        };
        let entry = decode("decoding a member index entry", value)?;
        self.load_indexed(channel, entry).await?.ok_or_else(invalid)
    }

    async fn persist(&self, channel: &ChannelId, member: &MemberRecord) -> Result<()> {
        self.listeners
            .persist(channel, &member.id, &member.listener)
            .await?;
        if let Some(queue) = &member.queue {
            self.queues.persist(channel, &member.id, queue).await?;
        }
        let entry = IndexEntry {
            id: member.id.clone(),
            listener_id: member.listener.id.clone(),
        };
        let value = encode("encoding a member index entry", &entry)?;
        self.storage
            .upsert(&scoped_key(INDEX, channel, &member.id), value)
            .await
    }

    async fn delete(&self, channel: &ChannelId, member: &MemberId) -> Result<()> {
        self.storage
            .delete(&scoped_key(INDEX, channel, member))
            .await?;
        self.listeners.delete(channel, member).await?;
        self.queues.delete(channel, member).await
    }

    async fn delete_all(&self, channel: &ChannelId) -> Result<()> {
        // From the index alone: a member whose listener record is broken
        // must still be deletable (the reference could not delete those).
        let entries = self
            .storage
            .fetch_by_prefix(&members_prefix(channel))
            .await?;
        for (_, value) in entries {
            let entry: IndexEntry = decode("decoding a member index entry", value)?;
            self.delete(channel, &entry.id).await?;
        }
        Ok(())
    }
}

/// Channel records in a [`KvStorage`].
#[derive(Clone)]
pub struct KvChannelRepository {
    storage: Arc<dyn KvStorage>,
}

impl KvChannelRepository {
    /// Over `storage`.
    pub fn new(storage: Arc<dyn KvStorage>) -> Self {
        Self { storage }
    }
}

#[async_trait]
impl ChannelRepository for KvChannelRepository {
    async fn load_all(&self) -> Result<Vec<ChannelRecord>> {
        self.storage
            .fetch_by_prefix(CHANNELS)
            .await?
            .into_iter()
            .map(|(_, value)| decode("decoding a channel record", value))
            .collect()
    }

    async fn load_one(&self, channel: &ChannelId) -> Result<ChannelRecord> {
        match self.storage.fetch_one(&channel_key(channel)).await {
            Ok(value) => decode("decoding a channel record", value),
            Err(Error::ItemNotFound { .. }) => Err(Error::InvalidChannel {
                channel: channel.clone(),
            }),
            Err(e) => Err(e),
        }
    }

    async fn persist(&self, channel: &ChannelRecord) -> Result<()> {
        let value = encode("encoding a channel record", channel)?;
        self.storage.upsert(&channel_key(&channel.id), value).await
    }

    async fn delete(&self, channel: &ChannelId) -> Result<()> {
        self.storage.delete(&channel_key(channel)).await
    }
}
