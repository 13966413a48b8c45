//! Channel and member repositories on the engine's own layout.
//!
//! The registry already keeps membership and running flags in Redis, and the
//! queues are Redis lists, so persisting writes only channel settings (and
//! re-asserts flags), and restoring is reading: the channel index, then one
//! pipelined round trip for every channel's settings and one for every
//! channel's members, whatever the number of channels (the reference did a
//! keyspace `SCAN` per channel). On a Redis Cluster the index lives in one
//! slot (`{%}`) and those round trips become one pipeline per channel slot,
//! sent at once: no `KEYS`, no script across slots.

use std::fmt;

use async_trait::async_trait;
use eric_core::persistence::{
    ChannelRecord, ChannelRepository, ListenerRecord, MemberRecord, MemberRepository,
};
use eric_core::queue::QueueSnapshot;
use eric_core::{ChannelId, ChannelSettings, Error, ListenerId, MemberId, Result};

use crate::client::Client;
use crate::keys::{ChannelKeys, Keys};
use crate::scripts::SCRIPTS;
use crate::subscriptions;

/// What the `members` script answers: listener ids, member ids, running
/// flags and stored subscriptions, in registration order.
type Members = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

fn decode_settings(json: &str) -> Result<ChannelSettings> {
    serde_json::from_str(json).map_err(|source| {
        crate::Error::Decode {
            operation: "reading channel settings",
            source,
        }
        .into()
    })
}

fn encode_settings(settings: &ChannelSettings) -> Result<String> {
    serde_json::to_string(settings).map_err(|e| Error::repository("encoding channel settings", e))
}

/// Channel records: `<prefix>:{<channel>}:meta` plus the channel index.
#[derive(Clone)]
pub struct RedisChannelRepository {
    client: Client,
    keys: Keys,
}

impl fmt::Debug for RedisChannelRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedisChannelRepository")
    }
}

impl RedisChannelRepository {
    pub(crate) fn new(client: Client, keys: Keys) -> Self {
        Self { client, keys }
    }

    async fn index(&self, channel: &ChannelId) -> Result<()> {
        let mut invocation = SCRIPTS.index_channel.prepare_invoke();
        invocation
            .key(self.keys.channel_index())
            .key(self.keys.channel_counter())
            .arg(channel.as_str());
        let _: u8 = self
            .client
            .script("indexing a channel", &invocation)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ChannelRepository for RedisChannelRepository {
    async fn load_all(&self) -> Result<Vec<ChannelRecord>> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.keys.channel_index()).arg(0).arg(-1);
        let ids: Vec<String> = self.client.query("listing channels", &cmd).await?;
        let ids: Vec<ChannelId> = ids
            .into_iter()
            .filter_map(|id| ChannelId::new(id).ok())
            .collect();
        let metas: Vec<String> = ids.iter().map(|id| self.keys.channel(id).meta).collect();
        let reads: Vec<(&str, redis::Cmd)> = metas
            .iter()
            .map(|meta| {
                let mut cmd = redis::cmd("HGET");
                cmd.arg(meta).arg("settings");
                (meta.as_str(), cmd)
            })
            .collect();
        // One round trip on a single server, one per slot (all at once) on
        // a cluster.
        let settings: Vec<Option<String>> = self
            .client
            .spread("loading channel settings", &reads)
            .await?;
        let mut records = Vec::with_capacity(ids.len());
        for (id, settings) in ids.into_iter().zip(settings) {
            // Indexed but deleted (a delete stopped between its two steps).
            let Some(settings) = settings else { continue };
            records.push(ChannelRecord {
                id,
                settings: decode_settings(&settings)?,
            });
        }
        Ok(records)
    }

    async fn load_one(&self, channel: &ChannelId) -> Result<ChannelRecord> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(self.keys.channel(channel).meta).arg("settings");
        let settings: Option<String> = self.client.query("loading a channel", &cmd).await?;
        let settings = settings.ok_or_else(|| Error::InvalidChannel {
            channel: channel.clone(),
        })?;
        Ok(ChannelRecord {
            id: channel.clone(),
            settings: decode_settings(&settings)?,
        })
    }

    async fn persist(&self, record: &ChannelRecord) -> Result<()> {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(self.keys.channel(&record.id).meta)
            .arg("settings")
            .arg(encode_settings(&record.settings)?);
        let _: u8 = self.client.query("storing a channel", &cmd).await?;
        self.index(&record.id).await
    }

    async fn create(&self, record: &ChannelRecord) -> Result<()> {
        let mut cmd = redis::cmd("HSETNX");
        cmd.arg(self.keys.channel(&record.id).meta)
            .arg("settings")
            .arg(encode_settings(&record.settings)?);
        let created: u8 = self.client.query("creating a channel", &cmd).await?;
        // Indexed in both cases: it repairs a create that stopped in between.
        self.index(&record.id).await?;
        if created == 0 {
            return Err(Error::ChannelExists {
                channel: record.id.clone(),
            });
        }
        Ok(())
    }

    async fn delete(&self, channel: &ChannelId) -> Result<()> {
        let keys = self.keys.channel(channel);
        let mut invocation = SCRIPTS.drop_channel.prepare_invoke();
        invocation.key(&keys.meta);
        for key in keys.listener_structures() {
            invocation.key(key);
        }
        invocation
            .key(&keys.order)
            .arg(&keys.base)
            .arg(&keys.notify);
        let _: u64 = self
            .client
            .script("deleting a channel", &invocation)
            .await?;
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.keys.channel_index()).arg(channel.as_str());
        let _: u8 = self.client.query("unindexing a channel", &cmd).await?;
        Ok(())
    }
}

/// Member records: the membership the registry keeps.
#[derive(Clone)]
pub struct RedisMemberRepository {
    client: Client,
    keys: Keys,
}

impl fmt::Debug for RedisMemberRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RedisMemberRepository")
    }
}

impl RedisMemberRepository {
    pub(crate) fn new(client: Client, keys: Keys) -> Self {
        Self { client, keys }
    }

    fn records(members: Members) -> Result<Vec<MemberRecord>> {
        let (ids, member_ids, running, subs) = members;
        let mut records = Vec::with_capacity(ids.len());
        for (((id, member_id), running), subs) in
            ids.into_iter().zip(member_ids).zip(running).zip(subs)
        {
            // A field no id of ours could have written is skipped, as
            // listing listeners skips it; a set that does not read is an
            // error, not a listener silently receiving everything.
            let (Ok(id), Ok(listener)) =
                (MemberId::new(member_id), ListenerId::from_key_segment(&id))
            else {
                continue;
            };
            records.push(MemberRecord {
                id,
                listener: ListenerRecord {
                    id: listener,
                    running: running == "1",
                    subscriptions: subscriptions::decode(&subs)?,
                },
                queue: None,
            });
        }
        Ok(records)
    }

    /// Every member of `channel`, each with what waits for it and its
    /// replay window, read without taking anything (`eric export`): where
    /// [`MemberRepository::load_all`] leaves `queue` empty (the lists are
    /// the durable copy), this fills it. What waits is the listener's list
    /// and the broadcasts logged after its cursor that its subscriptions
    /// reach, merged by number, as its next takes would hand them out; the
    /// window is its list of handed-out dispatches (broadcasts need none:
    /// the log keeps them). One script per listener, each atomic: a channel
    /// changed meanwhile can be read half before and half after.
    ///
    /// A listener in a node's group is read at the group's position, so
    /// what a running node's group claimed and its streams had not yet sent
    /// counts as taken: export from stopped nodes to miss nothing.
    /// Temporary listeners (those a lease holds: a node's channel streams)
    /// are left out, as a data directory drops them at start: they end
    /// with their stream.
    pub async fn load_all_with_queues(&self, channel: &ChannelId) -> Result<Vec<MemberRecord>> {
        let leased = self.leased(channel).await?;
        let mut records = self.load_all(channel).await?;
        records.retain(|r| !leased.contains(r.listener.id.key_segment().as_ref()));
        let keys = self.keys.channel(channel);
        for record in &mut records {
            let mut invocation = SCRIPTS.peek.prepare_invoke();
            invocation
                .key(&keys.logstate)
                .arg(&keys.base)
                .arg(record.listener.id.key_segment().as_ref());
            let (seq, waiting, window): (u64, Vec<String>, Vec<String>) =
                self.client.script("reading a queue", &invocation).await?;
            let messages = crate::queue::decode(waiting)?;
            let window = crate::queue::decode(window)?;
            let last = messages.last().or(window.last()).map_or(0, |d| d.seq);
            record.queue = Some(QueueSnapshot {
                next_seq: seq.max(last) + 1,
                messages,
                window,
            });
        }
        Ok(records)
    }

    /// The key segments of `channel`'s listeners that a lease holds (lease
    /// entries are `<channel> <listener> <member id>`, segments first).
    async fn leased(&self, channel: &ChannelId) -> Result<std::collections::HashSet<String>> {
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.keys.leases()).arg(0).arg(-1);
        let entries: Vec<String> = self.client.query("reading leases", &cmd).await?;
        let segment = channel.key_segment();
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                let mut parts = entry.split(' ');
                let (c, l, _member) = (parts.next()?, parts.next()?, parts.next()?);
                (c == segment.as_ref()).then(|| l.to_owned())
            })
            .collect())
    }

    async fn remove(&self, keys: &ChannelKeys, member: &MemberId) -> Result<()> {
        let mut invocation = SCRIPTS.remove_member.prepare_invoke();
        for key in keys.listener_structures() {
            invocation.key(key);
        }
        invocation
            .arg(&keys.base)
            .arg(&keys.notify)
            .arg(member.as_str());
        let _: Option<String> = self.client.script("deleting a member", &invocation).await?;
        Ok(())
    }
}

#[async_trait]
impl MemberRepository for RedisMemberRepository {
    async fn load_all(&self, channel: &ChannelId) -> Result<Vec<MemberRecord>> {
        let mut all = self.load_many(std::slice::from_ref(channel)).await?;
        Ok(all.pop().unwrap_or_default())
    }

    async fn persist(&self, channel: &ChannelId, member: &MemberRecord) -> Result<()> {
        self.persist_many(channel, std::slice::from_ref(member))
            .await
    }

    async fn delete(&self, channel: &ChannelId, member: &MemberId) -> Result<()> {
        self.remove(&self.keys.channel(channel), member).await
    }

    async fn load_many(&self, channels: &[ChannelId]) -> Result<Vec<Vec<MemberRecord>>> {
        let keys: Vec<ChannelKeys> = channels.iter().map(|c| self.keys.channel(c)).collect();
        let calls: Vec<(Vec<&str>, Vec<&str>)> = keys
            .iter()
            .map(|k| {
                let keys = vec![k.members.as_str(), &k.listeners, &k.running, &k.subs];
                (keys, vec![])
            })
            .collect();
        let members: Vec<Members> = self
            .client
            .script_pipe("loading listeners", &SCRIPTS.members, &calls)
            .await?;
        members.into_iter().map(Self::records).collect()
    }

    async fn persist_many(&self, channel: &ChannelId, members: &[MemberRecord]) -> Result<()> {
        if members.is_empty() {
            return Ok(());
        }
        let keys = self.keys.channel(channel);
        let mut invocation = SCRIPTS.persist_members.prepare_invoke();
        invocation
            .key(&keys.members)
            .key(&keys.listeners)
            .key(&keys.running)
            .key(&keys.order)
            .arg(&keys.notify)
            .arg(&keys.base);
        for record in members {
            invocation
                .arg(record.listener.id.key_segment().as_ref())
                .arg(record.id.as_str())
                .arg(if record.listener.running { "1" } else { "0" })
                .arg(subscriptions::encode(&record.listener.subscriptions)?);
        }
        let _: u8 = self.client.script("storing members", &invocation).await?;
        Ok(())
    }

    async fn delete_all(&self, channel: &ChannelId) -> Result<()> {
        let keys = self.keys.channel(channel);
        let mut invocation = SCRIPTS.drop_members.prepare_invoke();
        for key in keys.listener_structures() {
            invocation.key(key);
        }
        invocation.arg(&keys.base).arg(&keys.notify);
        let _: u64 = self.client.script("deleting members", &invocation).await?;
        Ok(())
    }
}
