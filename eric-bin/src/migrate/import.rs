//! Lines → store. The whole input is read and checked first (header,
//! every line's JSON and numbering, no channel twice), then every channel
//! is looked up in the target: a malformed line or a channel the target
//! has (without `--replace`) refuses the import before anything is
//! written. Channels are then written one at a time with the target's
//! repositories; one that fails half way is deleted again.

use std::collections::HashMap;

use eric_core::persistence::{ChannelRecord, ChannelRepository, MemberRecord, MemberRepository};
use eric_core::{ChannelId, Engine as _, MemberFactory as _, Queue as _};
use tokio::io::AsyncBufRead;

use super::format::{ChannelLine, Header, VERSION};
use super::lines::Lines;
use super::store::Store;
use crate::error::{Error, Result};

/// How to import.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ImportOptions {
    /// Overwrite channels the target has (each deleted, then written).
    pub(crate) replace: bool,
    /// The longest line accepted.
    pub(crate) max_line_bytes: usize,
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Imported {
    pub(crate) channels: usize,
    pub(crate) listeners: usize,
    pub(crate) messages: usize,
}

/// One channel as its repositories store it.
pub(crate) type Records = (ChannelRecord, Vec<MemberRecord>);

/// Writes `channels` (from [`read_all`]) into `store`.
pub(crate) async fn import(
    store: &Store,
    channels: Vec<Records>,
    options: ImportOptions,
) -> Result<Imported> {
    if !options.replace {
        refuse_existing(store, &channels).await?;
    }
    let mut done = Imported::default();
    for (record, members) in channels {
        done.channels += 1;
        done.listeners += members.len();
        done.messages += members
            .iter()
            .filter_map(|m| m.queue.as_ref())
            .map(|q| q.messages.len())
            .sum::<usize>();
        let channel = record.id.clone();
        if let Err(error) = write_channel(store, record, members, options.replace).await {
            return Err(Error::ImportStopped {
                channel,
                written: done.channels - 1,
                source: Box::new(error),
            });
        }
    }
    Ok(done)
}

/// Every channel of `input`, checked, before any store is opened: a
/// malformed input touches nothing, not even a target's directory.
pub(crate) async fn read_all<R: AsyncBufRead + Unpin>(
    input: R,
    max: usize,
) -> Result<Vec<Records>> {
    let mut lines = Lines::new(input, max);
    let Some((number, text)) = lines.next().await? else {
        return Err(Error::EmptyInput);
    };
    let header: Header = serde_json::from_str(text).map_err(|source| Error::NotAnExport {
        line: number,
        source,
    })?;
    if header.eric_export != VERSION {
        return Err(Error::UnsupportedVersion {
            found: header.eric_export,
            supported: VERSION,
        });
    }
    let mut seen: HashMap<ChannelId, usize> = HashMap::new();
    let mut out = Vec::new();
    while let Some((number, text)) = lines.next().await? {
        let line: ChannelLine = serde_json::from_str(text).map_err(|source| Error::BadLine {
            line: number,
            source,
        })?;
        line.check(number)?;
        if let Some(first) = seen.insert(line.channel.clone(), number) {
            return Err(Error::DuplicateChannel {
                line: number,
                first,
                channel: line.channel,
            });
        }
        out.push(line.into_records());
    }
    Ok(out)
}

fn repositories(store: &Store) -> (Box<dyn ChannelRepository>, Box<dyn MemberRepository>) {
    match store {
        Store::Disk(engine) => (
            Box::new(engine.channel_repository()),
            Box::new(engine.member_repository()),
        ),
        Store::Redis(engine) => (
            Box::new(engine.channel_repository()),
            Box::new(engine.member_repository()),
        ),
    }
}

/// Refuses the import if the target has any of its channels.
async fn refuse_existing(store: &Store, channels: &[Records]) -> Result<()> {
    let (repository, _) = repositories(store);
    for (record, _) in channels {
        match repository.load_one(&record.id).await {
            Ok(_) => {
                return Err(Error::ChannelExists {
                    channel: record.id.clone(),
                });
            }
            Err(eric_core::Error::InvalidChannel { .. }) => {}
            Err(e) => return Err(Error::storage("looking up a channel", e)),
        }
    }
    Ok(())
}

/// Writes one channel; one that fails after its creation is deleted
/// again, so the target never keeps half a channel.
async fn write_channel(
    store: &Store,
    record: ChannelRecord,
    members: Vec<MemberRecord>,
    replace: bool,
) -> Result<()> {
    let (channels, repository) = repositories(store);
    if replace {
        delete(&*channels, &*repository, &record.id)
            .await
            .map_err(|e| Error::storage("replacing a channel", e))?;
    }
    match channels.create(&record).await {
        Ok(()) => {}
        // Created by someone else since the check (a running Redis node).
        Err(eric_core::Error::ChannelExists { channel }) => {
            return Err(Error::ChannelExists { channel });
        }
        Err(e) => return Err(Error::storage("creating a channel", e)),
    }
    let written = write_members(store, &*repository, &record, members).await;
    if let Err(e) = written {
        // Best effort: the error that stopped the import is the one to
        // report, and a store that failed once may fail here too.
        let _ = delete(&*channels, &*repository, &record.id).await;
        return Err(Error::storage("writing listeners", e));
    }
    Ok(())
}

/// A data directory stores queues with its members (window included); a
/// Redis keeps them in lists, which the engine's queues fill, numbers kept.
async fn write_members(
    store: &Store,
    repository: &dyn MemberRepository,
    record: &ChannelRecord,
    members: Vec<MemberRecord>,
) -> eric_core::Result<()> {
    repository.persist_many(&record.id, &members).await?;
    if let Store::Redis(engine) = store {
        let factory = engine.member_factory(&record.id, &record.settings);
        for member in members {
            if let Some(queue) = member.queue {
                factory.queue(&member.listener.id).restore(queue).await?;
            }
        }
    }
    Ok(())
}

async fn delete(
    channels: &dyn ChannelRepository,
    members: &dyn MemberRepository,
    channel: &ChannelId,
) -> eric_core::Result<()> {
    members.delete_all(channel).await?;
    channels.delete(channel).await
}
