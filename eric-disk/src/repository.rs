//! Channel and member repositories on the data file, so `eric-core`'s
//! [`Persistence`](eric_core::Persistence) restores a disk engine's
//! channels at start and the broker keeps its channel records there.
//!
//! Reads run on Tokio's blocking threads (redb reads block on the disk);
//! writes go through the writer thread (`writer`), in order with the engine's changes,
//! and answer once settled.

use std::sync::Arc;

use async_trait::async_trait;
use eric_core::persistence::{ChannelRecord, ChannelRepository, MemberRecord, MemberRepository};
use eric_core::{ChannelId, Error, MemberId, Result};
use tokio::sync::oneshot;

use crate::store::{Op, Store};
use crate::writer::Writer;

/// Runs a read of the store off the runtime's workers.
async fn read<T: Send + 'static>(
    store: &Arc<Store>,
    operation: &'static str,
    f: impl FnOnce(&Store) -> crate::Result<T> + Send + 'static,
) -> Result<T> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .map_err(|e| Error::repository(operation, e))?
        .map_err(|e| e.into_core(operation))
}

/// Channel records in the data file.
#[derive(Debug, Clone)]
pub struct DiskChannelRepository {
    store: Arc<Store>,
    writer: Arc<Writer>,
}

impl DiskChannelRepository {
    pub(crate) fn new(store: Arc<Store>, writer: Arc<Writer>) -> Self {
        Self { store, writer }
    }
}

#[async_trait]
impl ChannelRepository for DiskChannelRepository {
    async fn load_all(&self) -> Result<Vec<ChannelRecord>> {
        read(&self.store, "loading channels", Store::channels).await
    }

    async fn load_one(&self, channel: &ChannelId) -> Result<ChannelRecord> {
        let id = channel.clone();
        read(&self.store, "loading a channel", move |s| s.channel(&id))
            .await?
            .ok_or_else(|| Error::InvalidChannel {
                channel: channel.clone(),
            })
    }

    async fn persist(&self, channel: &ChannelRecord) -> Result<()> {
        self.writer.write(Op::PutChannel(channel.clone())).await
    }

    async fn delete(&self, channel: &ChannelId) -> Result<()> {
        self.writer.write(Op::DeleteChannel(channel.clone())).await
    }

    /// Checked and written in one transaction: two creations of one id
    /// cannot both succeed.
    async fn create(&self, channel: &ChannelRecord) -> Result<()> {
        let (answer, created) = oneshot::channel();
        self.writer
            .write(Op::CreateChannel(channel.clone(), answer))
            .await?;
        match created.await {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::ChannelExists {
                channel: channel.id.clone(),
            }),
            // Settled, so committed and answered; a dropped answer means
            // the writer failed after all.
            Err(e) => Err(Error::repository("creating a channel", e)),
        }
    }
}

/// Listener rows, queues and replay windows in the data file.
#[derive(Debug, Clone)]
pub struct DiskMemberRepository {
    store: Arc<Store>,
    writer: Arc<Writer>,
}

impl DiskMemberRepository {
    pub(crate) fn new(store: Arc<Store>, writer: Arc<Writer>) -> Self {
        Self { store, writer }
    }
}

#[async_trait]
impl MemberRepository for DiskMemberRepository {
    async fn load_all(&self, channel: &ChannelId) -> Result<Vec<MemberRecord>> {
        let mut all = self.load_many(std::slice::from_ref(channel)).await?;
        Ok(all.pop().unwrap_or_default())
    }

    async fn persist(&self, channel: &ChannelId, member: &MemberRecord) -> Result<()> {
        self.writer
            .write(Op::PutMember(channel.clone(), member.clone()))
            .await
    }

    async fn delete(&self, channel: &ChannelId, member: &MemberId) -> Result<()> {
        self.writer
            .write(Op::DeleteMember(channel.clone(), member.clone()))
            .await
    }

    /// The records carry their queues and windows; restoring them into the
    /// engine's queues writes nothing back.
    async fn load_many(&self, channels: &[ChannelId]) -> Result<Vec<Vec<MemberRecord>>> {
        let ids = channels.to_vec();
        let members = read(&self.store, "loading listeners", move |s| s.members(&ids)).await?;
        self.writer.loaded(
            channels
                .iter()
                .zip(&members)
                .flat_map(|(channel, records)| {
                    records.iter().filter_map(move |record| {
                        let queue = record.queue.as_ref()?;
                        Some((
                            (channel.clone(), record.listener.id.clone()),
                            (queue.next_seq, queue.window.len(), queue.messages.len()),
                        ))
                    })
                }),
        );
        Ok(members)
    }

    async fn delete_all(&self, channel: &ChannelId) -> Result<()> {
        self.writer.write(Op::DeleteMembers(channel.clone())).await
    }
}
