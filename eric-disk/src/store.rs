//! [`Store`]: the data file, its tables, what a start loads from it and
//! how a batch of writes changes it.
//!
//! Tables (keys are tuples, which redb orders element by element, so one
//! listener's rows, and one channel's, are contiguous ranges):
//!
//! | table       | key                          | value                              |
//! |-------------|------------------------------|------------------------------------|
//! | `channels`  | channel                      | settings (JSON)                    |
//! | `listeners` | (channel, listener)          | [`ListenerRow`] (JSON)             |
//! | `messages`  | (channel, listener, seq)     | the message (JSON)                 |
//! | `window`    | (channel, listener, seq)     | nothing: the message was handed out and is kept for resumes |
//! | `queues`    | (channel, listener)          | the sequence number of the next push |
//! | `applied`   | (channel, listener or "", key) | an idempotency key's outcome and expiry (JSON) |
//!
//! A message is queued when its row has no `window` row. Windows are
//! always older than queues (see [`eric_core::journal`]), so a listener's
//! `messages` range reads as its window followed by its queue.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use eric_core::journal::{Change, Remembered};
use eric_core::persistence::{ChannelRecord, ListenerRecord, MemberRecord};
use eric_core::queue::QueueSnapshot;
use eric_core::{
    ChannelId, ChannelSettings, Delivery, ListenerId, MemberId, Message, Subscriptions,
};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, Table,
    TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::config::DiskConfig;
use crate::error::{Error, Result};

const CHANNELS: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("channels");
const LISTENERS: TableDefinition<'static, (&str, &str), &[u8]> = TableDefinition::new("listeners");
const MESSAGES: TableDefinition<'static, (&str, &str, u64), &[u8]> =
    TableDefinition::new("messages");
const WINDOW: TableDefinition<'static, (&str, &str, u64), ()> = TableDefinition::new("window");
const QUEUES: TableDefinition<'static, (&str, &str), u64> = TableDefinition::new("queues");
const APPLIED: TableDefinition<'static, (&str, &str, &str), &[u8]> =
    TableDefinition::new("applied");

/// A listener as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ListenerRow {
    /// Its member id.
    pub member: MemberId,
    /// Whether it runs.
    pub running: bool,
    /// What it subscribes to.
    #[serde(default, skip_serializing_if = "Subscriptions::is_empty")]
    pub subscriptions: Subscriptions,
    /// A stream's own listener: dropped at the next start.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub temporary: bool,
}

/// One write the writer applies, in order.
#[derive(Debug)]
pub(crate) enum Op {
    /// A change of the engine's state.
    Change(Change),
    /// Writes a channel record.
    PutChannel(ChannelRecord),
    /// Writes a channel record unless one exists; answers whether it wrote.
    CreateChannel(ChannelRecord, oneshot::Sender<bool>),
    /// Deletes a channel with everything of its listeners.
    DeleteChannel(ChannelId),
    /// Writes a member's listener row (and its queue, if the record has one).
    PutMember(ChannelId, MemberRecord),
    /// Deletes the member with this id, with its queue.
    DeleteMember(ChannelId, MemberId),
    /// Deletes every member of a channel, keeping the channel.
    DeleteMembers(ChannelId),
    /// Forgets the idempotency keys expired at this time.
    Expire(SystemTime),
}

/// The open data file, locked for this process.
#[derive(Debug)]
pub(crate) struct Store {
    db: Database,
    path: PathBuf,
    // Held for the store's life: the lock is the file's, released on close.
    _lock: File,
}

impl Store {
    /// Opens (or creates) the data directory of `config`: takes its lock,
    /// checks the data file's integrity, and drops what no restart keeps
    /// (temporary listeners, rows of listeners that are gone).
    pub(crate) fn open(config: &DiskConfig) -> Result<Self> {
        let dir = &config.data_dir;
        fs::create_dir_all(dir).map_err(|source| Error::Directory {
            path: dir.clone(),
            source,
        })?;
        let lock_path = config.lock_file();
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| Error::Directory {
                path: lock_path.clone(),
                source,
            })?;
        // redb locks its file too, but only once it has read it; this lock
        // refuses a second process before it touches anything.
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    dir: dir.clone(),
                    lock: lock_path,
                });
            }
            Err(TryLockError::Error(source)) => {
                return Err(Error::Directory {
                    path: lock_path,
                    source,
                });
            }
        }
        let path = config.data_file();
        // Every page's checksum is verified at each open, not only after a
        // crash: a file changed outside eric (or a disk that lost confirmed
        // writes) is refused with the file named, never trusted or cut.
        let db = Database::builder()
            .set_check_integrity_on_open(true)
            .create(&path)
            .map_err(|e| match e {
                redb::DatabaseError::DatabaseAlreadyOpen => Error::Locked {
                    dir: dir.clone(),
                    lock: path.clone(),
                },
                other => Error::store(&path, other),
            })?;
        let store = Self {
            db,
            path,
            _lock: lock,
        };
        store.prune()?;
        Ok(store)
    }

    /// The data file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, source: impl Into<redb::Error>) -> Error {
        Error::store(&self.path, source)
    }

    fn decode<T: for<'de> Deserialize<'de>>(&self, what: &'static str, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|source| Error::Record {
            path: self.path.clone(),
            what,
            source,
        })
    }

    /// Creates the tables, and removes temporary listeners (their streams
    /// died with the process that held them) with their rows, and expired
    /// idempotency keys. Rows of other listeners that are gone (written by
    /// a stream of a deleted channel) are not searched for: that would read
    /// every message at each start, the load skips them, and a listener
    /// registered again under their id clears them first.
    fn prune(&self) -> Result<()> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut tables = Tables::open(&txn).map_err(|e| self.err(e))?;
            let mut gone = Vec::new();
            for row in tables.listeners.iter().map_err(|e| self.err(e))? {
                let (key, value) = row.map_err(|e| self.err(e))?;
                let row: ListenerRow = self.decode("listener", value.value())?;
                if row.temporary {
                    let (channel, listener) = key.value();
                    gone.push((channel.to_owned(), listener.to_owned()));
                }
            }
            for (channel, listener) in &gone {
                tables
                    .listeners
                    .remove((channel.as_str(), listener.as_str()))
                    .map_err(|e| self.err(e))?;
                tables.purge(channel, listener).map_err(|e| self.err(e))?;
            }
            tables.expire(SystemTime::now()).map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// The idempotency keys not yet expired, by channel.
    pub(crate) fn remembered(&self) -> Result<HashMap<ChannelId, Vec<Remembered>>> {
        let now = SystemTime::now();
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(APPLIED).map_err(|e| self.err(e))?;
        let mut out: HashMap<ChannelId, Vec<Remembered>> = HashMap::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (key, value) = row.map_err(|e| self.err(e))?;
            let remembered: Remembered = self.decode("idempotency key", value.value())?;
            if remembered.expires <= now {
                continue;
            }
            let Ok(channel) = key.value().0.parse::<ChannelId>() else {
                continue;
            };
            out.entry(channel).or_default().push(remembered);
        }
        Ok(out)
    }

    /// Every channel record.
    pub(crate) fn channels(&self) -> Result<Vec<ChannelRecord>> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(CHANNELS).map_err(|e| self.err(e))?;
        let mut out =
            Vec::with_capacity(usize::try_from(table.len().map_err(|e| self.err(e))?).unwrap_or(0));
        for row in table.iter().map_err(|e| self.err(e))? {
            let (key, value) = row.map_err(|e| self.err(e))?;
            out.push(self.channel_record(key.value(), value.value())?);
        }
        Ok(out)
    }

    /// One channel record, if stored.
    pub(crate) fn channel(&self, id: &ChannelId) -> Result<Option<ChannelRecord>> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(CHANNELS).map_err(|e| self.err(e))?;
        let value = table.get(id.as_str()).map_err(|e| self.err(e))?;
        value
            .map(|v| self.channel_record(id.as_str(), v.value()))
            .transpose()
    }

    fn channel_record(&self, id: &str, settings: &[u8]) -> Result<ChannelRecord> {
        let settings: ChannelSettings = self.decode("channel", settings)?;
        let id = id.parse().map_err(|e: eric_core::IdError| Error::Record {
            path: self.path.clone(),
            what: "channel id",
            source: serde::de::Error::custom(e),
        })?;
        Ok(ChannelRecord { id, settings })
    }

    /// The members of each of `channels`, in the same order, with their
    /// queues and replay windows.
    pub(crate) fn members(&self, channels: &[ChannelId]) -> Result<Vec<Vec<MemberRecord>>> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let listeners = txn.open_table(LISTENERS).map_err(|e| self.err(e))?;
        let messages = txn.open_table(MESSAGES).map_err(|e| self.err(e))?;
        let window = txn.open_table(WINDOW).map_err(|e| self.err(e))?;
        let queues = txn.open_table(QUEUES).map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(channels.len());
        for channel in channels {
            let c = channel.as_str();
            let mut members = Vec::new();
            for row in listeners.range((c, "")..).map_err(|e| self.err(e))? {
                let (key, value) = row.map_err(|e| self.err(e))?;
                let (kc, l) = key.value();
                if kc != c {
                    break;
                }
                let row: ListenerRow = self.decode("listener", value.value())?;
                let listener: ListenerId =
                    l.parse().map_err(|e: eric_core::IdError| Error::Record {
                        path: self.path.clone(),
                        what: "listener id",
                        source: serde::de::Error::custom(e),
                    })?;
                let windowed: HashSet<u64> = window
                    .range((c, l, 0)..=(c, l, u64::MAX))
                    .map_err(|e| self.err(e))?
                    .map(|r| r.map(|(k, _)| k.value().2))
                    .collect::<Result<_, _>>()
                    .map_err(|e| self.err(e))?;
                let mut snapshot = QueueSnapshot {
                    next_seq: queues
                        .get((c, l))
                        .map_err(|e| self.err(e))?
                        .map_or(1, |v| v.value()),
                    ..QueueSnapshot::default()
                };
                for m in messages
                    .range((c, l, 0)..=(c, l, u64::MAX))
                    .map_err(|e| self.err(e))?
                {
                    let (key, value) = m.map_err(|e| self.err(e))?;
                    let seq = key.value().2;
                    let message: Message = self.decode("message", value.value())?;
                    let delivery = Delivery { seq, message };
                    if windowed.contains(&seq) {
                        snapshot.window.push(delivery);
                    } else {
                        snapshot.messages.push(delivery);
                    }
                }
                members.push(MemberRecord {
                    id: row.member,
                    listener: ListenerRecord {
                        id: listener,
                        running: row.running,
                        subscriptions: row.subscriptions,
                    },
                    queue: Some(snapshot),
                });
            }
            out.push(members);
        }
        Ok(out)
    }

    /// Applies `ops` in one transaction, committed with `durability`.
    pub(crate) fn write(&self, ops: Vec<Op>, durability: Durability) -> Result<()> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(durability)
            .map_err(|e| self.err(redb::Error::from(e)))?;
        // Answers to creations go out only once the commit succeeded.
        let mut answers = Vec::new();
        {
            let mut tables = Tables::open(&txn).map_err(|e| self.err(e))?;
            let mut next_seqs: HashMap<(ChannelId, ListenerId), u64> = HashMap::new();
            for op in ops {
                tables
                    .apply(op, &mut next_seqs, &mut answers)
                    .map_err(|e| self.err(e))?;
            }
            for ((c, l), next) in next_seqs {
                let key = (c.as_str(), l.as_str());
                let stored = tables
                    .queues
                    .get(key)
                    .map_err(|e| self.err(e))?
                    .map_or(1, |v| v.value());
                if next > stored {
                    tables.queues.insert(key, next).map_err(|e| self.err(e))?;
                }
            }
        }
        txn.commit().map_err(|e| self.err(e))?;
        for (answer, wrote) in answers {
            // The creator may have stopped waiting: nothing to tell.
            let _ = answer.send(wrote);
        }
        Ok(())
    }

    /// Commits nothing, durably: makes every earlier commit durable.
    pub(crate) fn sync(&self) -> Result<()> {
        self.write(Vec::new(), Durability::Immediate)
    }
}

/// The tables, open in one write transaction.
struct Tables<'t> {
    channels: Table<'t, &'static str, &'static [u8]>,
    listeners: Table<'t, (&'static str, &'static str), &'static [u8]>,
    messages: Table<'t, (&'static str, &'static str, u64), &'static [u8]>,
    window: Table<'t, (&'static str, &'static str, u64), ()>,
    queues: Table<'t, (&'static str, &'static str), u64>,
    applied: Table<'t, (&'static str, &'static str, &'static str), &'static [u8]>,
}

type Answers = Vec<(oneshot::Sender<bool>, bool)>;

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, redb::Error> {
    // Our own records always serialize; a failure would be a bug, reported
    // as the storage error it would cause.
    serde_json::to_vec(value).map_err(|e| redb::Error::Corrupted(format!("encoding a record: {e}")))
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, redb::Error> {
        Ok(Self {
            channels: txn.open_table(CHANNELS)?,
            listeners: txn.open_table(LISTENERS)?,
            messages: txn.open_table(MESSAGES)?,
            window: txn.open_table(WINDOW)?,
            queues: txn.open_table(QUEUES)?,
            applied: txn.open_table(APPLIED)?,
        })
    }

    /// The row of listener `l` of channel `c`, if stored and readable (an
    /// unreadable one is reported by the next load, naming the file).
    fn row(&self, c: &str, l: &str) -> Result<Option<ListenerRow>, redb::Error> {
        Ok(self
            .listeners
            .get((c, l))?
            .and_then(|v| serde_json::from_slice(v.value()).ok()))
    }

    /// Forgets idempotency keys expired at `now`.
    fn expire(&mut self, now: SystemTime) -> Result<(), redb::Error> {
        self.applied.retain(|_, value| {
            // An unreadable row is kept: the load reports it, naming the file.
            serde_json::from_slice::<Remembered>(value).map_or(true, |r| r.expires > now)
        })?;
        Ok(())
    }

    fn apply(
        &mut self,
        op: Op,
        next_seqs: &mut HashMap<(ChannelId, ListenerId), u64>,
        answers: &mut Answers,
    ) -> Result<(), redb::Error> {
        match op {
            Op::Change(change) => self.change(change, next_seqs)?,
            Op::PutChannel(record) => {
                self.channels
                    .insert(record.id.as_str(), json(&record.settings)?.as_slice())?;
            }
            Op::CreateChannel(record, answer) => {
                let exists = self.channels.get(record.id.as_str())?.is_some();
                if !exists {
                    self.channels
                        .insert(record.id.as_str(), json(&record.settings)?.as_slice())?;
                }
                answers.push((answer, !exists));
            }
            Op::DeleteChannel(channel) => {
                self.delete_members(&channel)?;
                self.channels.remove(channel.as_str())?;
                let c = channel.as_str();
                let mut keys = Vec::new();
                for row in self.applied.range((c, "", "")..)? {
                    let (key, _) = row?;
                    let (kc, scope, k) = key.value();
                    if kc != c {
                        break;
                    }
                    keys.push((scope.to_owned(), k.to_owned()));
                }
                for (scope, k) in &keys {
                    self.applied.remove((c, scope.as_str(), k.as_str()))?;
                }
            }
            Op::Expire(now) => self.expire(now)?,
            Op::PutMember(channel, record) => {
                let (c, l) = (channel.as_str(), record.listener.id.as_str());
                let temporary = self.row(c, l)?.is_some_and(|row| row.temporary);
                let row = ListenerRow {
                    member: record.id,
                    running: record.listener.running,
                    subscriptions: record.listener.subscriptions,
                    temporary,
                };
                self.listeners.insert((c, l), json(&row)?.as_slice())?;
                if let Some(queue) = record.queue {
                    self.replace(c, l, queue.next_seq, &queue.window, &queue.messages)?;
                }
            }
            Op::DeleteMember(channel, member) => {
                let c = channel.as_str();
                let mut found = None;
                for row in self.listeners.range((c, "")..)? {
                    let (key, value) = row?;
                    let (kc, l) = key.value();
                    if kc != c {
                        break;
                    }
                    if serde_json::from_slice::<ListenerRow>(value.value())
                        .is_ok_and(|row| row.member == member)
                    {
                        found = Some(l.to_owned());
                        break;
                    }
                }
                if let Some(l) = found {
                    self.listeners.remove((c, l.as_str()))?;
                    self.purge(c, &l)?;
                }
            }
            Op::DeleteMembers(channel) => self.delete_members(&channel)?,
        }
        Ok(())
    }

    fn change(
        &mut self,
        change: Change,
        next_seqs: &mut HashMap<(ChannelId, ListenerId), u64>,
    ) -> Result<(), redb::Error> {
        match change {
            Change::Registered {
                channel,
                listener,
                member,
                running,
                subscriptions,
                temporary,
            } => {
                let key = (channel.as_str(), listener.as_str());
                if self.listeners.get(key)?.is_none() {
                    // Rows left by an earlier listener of this id (a stream
                    // of a deleted channel still wrote) are not this one's.
                    self.purge(key.0, key.1)?;
                }
                let row = ListenerRow {
                    member,
                    running,
                    subscriptions,
                    temporary,
                };
                self.listeners.insert(key, json(&row)?.as_slice())?;
            }
            Change::Subscribed {
                channel,
                listener,
                subscriptions,
            } => self.update_row(&channel, &listener, |row| row.subscriptions = subscriptions)?,
            Change::Running {
                channel,
                listener,
                running,
            } => self.update_row(&channel, &listener, |row| row.running = running)?,
            Change::Removed { channel, listener } => {
                self.listeners
                    .remove((channel.as_str(), listener.as_str()))?;
                self.purge(channel.as_str(), listener.as_str())?;
                next_seqs.remove(&(channel, listener));
            }
            Change::Queued {
                channel,
                listener,
                seq,
                message,
            } => {
                self.messages.insert(
                    (channel.as_str(), listener.as_str(), seq),
                    json(&message)?.as_slice(),
                )?;
                let next = next_seqs.entry((channel, listener)).or_insert(0);
                *next = (*next).max(seq + 1);
            }
            Change::Taken {
                channel,
                listener,
                seqs,
            } => {
                for seq in seqs {
                    self.window
                        .insert((channel.as_str(), listener.as_str(), seq), ())?;
                }
            }
            Change::Returned {
                channel,
                listener,
                messages,
            } => {
                let (c, l) = (channel.as_str(), listener.as_str());
                for (seq, message) in messages {
                    self.window.remove((c, l, seq))?;
                    self.messages
                        .insert((c, l, seq), json(&message)?.as_slice())?;
                }
            }
            Change::Dropped {
                channel,
                listener,
                seqs,
            } => {
                let (c, l) = (channel.as_str(), listener.as_str());
                for seq in seqs {
                    self.messages.remove((c, l, seq))?;
                    self.window.remove((c, l, seq))?;
                }
            }
            Change::Applied {
                channel,
                remembered,
            } => {
                let scope = remembered.listener.as_ref().map_or("", ListenerId::as_str);
                self.applied.insert(
                    (channel.as_str(), scope, remembered.key.as_str()),
                    json(&remembered)?.as_slice(),
                )?;
            }
            Change::Replaced {
                channel,
                listener,
                next_seq,
                window,
                messages,
            } => {
                let to_deliveries = |pairs: Vec<(u64, Message)>| {
                    pairs
                        .into_iter()
                        .map(|(seq, message)| Delivery { seq, message })
                        .collect::<Vec<_>>()
                };
                self.replace(
                    channel.as_str(),
                    listener.as_str(),
                    next_seq,
                    &to_deliveries(window),
                    &to_deliveries(messages),
                )?;
                next_seqs.remove(&(channel, listener));
            }
        }
        Ok(())
    }

    fn update_row(
        &mut self,
        channel: &ChannelId,
        listener: &ListenerId,
        update: impl FnOnce(&mut ListenerRow),
    ) -> Result<(), redb::Error> {
        let key = (channel.as_str(), listener.as_str());
        let Some(mut row) = self.row(key.0, key.1)? else {
            // Removed meanwhile: nothing to update.
            return Ok(());
        };
        update(&mut row);
        self.listeners.insert(key, json(&row)?.as_slice())?;
        Ok(())
    }

    /// Replaces a listener's window and queue.
    fn replace(
        &mut self,
        c: &str,
        l: &str,
        next_seq: u64,
        window: &[Delivery],
        messages: &[Delivery],
    ) -> Result<(), redb::Error> {
        self.purge(c, l)?;
        for d in window {
            self.messages
                .insert((c, l, d.seq), json(&d.message)?.as_slice())?;
            self.window.insert((c, l, d.seq), ())?;
        }
        for d in messages {
            self.messages
                .insert((c, l, d.seq), json(&d.message)?.as_slice())?;
        }
        self.queues.insert((c, l), next_seq)?;
        Ok(())
    }

    /// Deletes a listener's messages, window and sequence (not its row).
    fn purge(&mut self, c: &str, l: &str) -> Result<(), redb::Error> {
        self.messages
            .retain_in((c, l, 0)..=(c, l, u64::MAX), |_, _| false)?;
        self.window
            .retain_in((c, l, 0)..=(c, l, u64::MAX), |_, ()| false)?;
        self.queues.remove((c, l))?;
        Ok(())
    }

    fn delete_members(&mut self, channel: &ChannelId) -> Result<(), redb::Error> {
        let c = channel.as_str();
        let mut listeners = Vec::new();
        for row in self.listeners.range((c, "")..)? {
            let (key, _) = row?;
            let (kc, l) = key.value();
            if kc != c {
                break;
            }
            listeners.push(l.to_owned());
        }
        for l in &listeners {
            self.listeners.remove((c, l.as_str()))?;
            self.purge(c, l)?;
        }
        Ok(())
    }
}
