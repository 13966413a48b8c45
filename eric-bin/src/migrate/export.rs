//! Store → lines: the header, then each channel (by id, so two exports of
//! one state are the same file) with its listeners and their messages.

use eric_core::persistence::{
    ChannelRecord, ChannelRepository as _, MemberRecord, MemberRepository as _,
};
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use super::format::{ChannelLine, Header, VERSION};
use super::store::Store;
use crate::error::{Error, Result};

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Exported {
    pub(crate) channels: usize,
    pub(crate) listeners: usize,
    pub(crate) messages: usize,
}

/// Writes `store`'s state to `out` (named `to` in errors) as JSON lines.
pub(crate) async fn export<W: AsyncWrite + Unpin>(
    store: &Store,
    out: &mut W,
    to: &str,
) -> Result<Exported> {
    let write_error = |source| Error::Write {
        to: to.to_owned(),
        source,
    };
    write_line(
        out,
        &Header {
            eric_export: VERSION,
        },
    )
    .await
    .map_err(write_error)?;
    let mut channels = load_channels(store).await?;
    channels.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let mut done = Exported::default();
    // One channel at a time: memory holds one channel's messages, not the
    // store's.
    for record in channels {
        let members = load_members(store, &record).await?;
        let line = ChannelLine::from_records(record, members);
        done.channels += 1;
        done.listeners += line.listeners.len();
        done.messages += line.listeners.iter().map(|l| l.queue.len()).sum::<usize>();
        write_line(out, &line).await.map_err(write_error)?;
    }
    out.flush().await.map_err(write_error)?;
    Ok(done)
}

async fn load_channels(store: &Store) -> Result<Vec<ChannelRecord>> {
    let loaded = match store {
        Store::Disk(engine) => engine.channel_repository().load_all().await,
        Store::Redis(engine) => engine.channel_repository().load_all().await,
    };
    loaded.map_err(|e| Error::storage("listing channels", e))
}

/// A channel's members with their queues and windows. A channel deleted
/// since it was listed (a running Redis node) has none.
async fn load_members(store: &Store, channel: &ChannelRecord) -> Result<Vec<MemberRecord>> {
    let loaded = match store {
        Store::Disk(engine) => engine.member_repository().load_all(&channel.id).await,
        Store::Redis(engine) => {
            engine
                .member_repository()
                .load_all_with_queues(&channel.id)
                .await
        }
    };
    loaded.map_err(|e| Error::storage("reading listeners", e))
}

async fn write_line<W: AsyncWrite + Unpin>(
    out: &mut W,
    value: &impl Serialize,
) -> std::io::Result<()> {
    // Our own types, with string keys only: encoding cannot fail, but an
    // error is still an error, not a panic.
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line).await
}
