//! [`Links`]: the subscriber's connections, one per shard, for sharded
//! pub/sub (`SSUBSCRIBE`).
//!
//! The scripts notify with `SPUBLISH` on `P:{<c>}:notify`, which carries the
//! channel's hash tag: on a cluster only the primary serving that slot
//! delivers it, so the subscriber needs a connection to every primary and
//! subscribes to each channel on the one serving it. On a single server
//! (or a sentinel-managed primary) that is one connection serving every
//! slot: the same code path.
//!
//! Why hand-made rather than redis-rs's: its `PubSub` offers no
//! `SSUBSCRIBE`; its cluster connection does, but resubscribes by itself
//! after a reconnect, so the node could not tell when a subscription was
//! confirmed again, which is when it must catch up on what it missed. So each
//! link is a plain RESP3 connection whose pushes (messages, confirmations,
//! its own disconnection) go to the actor's bounded queue, and a
//! subscription is a pipeline of one-channel `SSUBSCRIBE`s: each answers
//! with its own confirmation or error (`MOVED`: the slot map changed), never
//! leaving the connection waiting for confirmations that will not come. The
//! slot map is read (`CLUSTER SLOTS`) whenever the links are opened; a
//! topology change (a `MOVED`, a subscription the server dropped because its
//! slot moved) ends the session and the actor opens the links again.

use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::connector::{Connector, Shard, slot};

/// A push from the server on link `link`.
pub(super) struct Push {
    pub(super) link: usize,
    pub(super) info: PushInfo,
}

/// Why a subscription change failed.
pub(super) enum Failure {
    /// The connection failed or did not answer in time.
    Broken(String),
    /// The server refused (`MOVED`: the slot map changed).
    Refused(String),
}

/// The open connections of one session, one per shard.
pub(super) struct Links {
    shards: Vec<Shard>,
    conns: Vec<MultiplexedConnection>,
    timeout: Duration,
}

impl Links {
    /// Reads the shards and connects to each. Pushes go to `pushes`; when it
    /// is full, `overflow` is cancelled (the session then starts over, which
    /// catches every channel up: nothing is lost, only work is repeated).
    pub(super) async fn open(
        connector: &Connector,
        timeout: Duration,
        pushes: &mpsc::Sender<Push>,
        overflow: &CancellationToken,
    ) -> Result<Self, String> {
        let shards = connector
            .shards()
            .await
            .map_err(|e| format!("reading the shards failed: {e}"))?;
        if shards.is_empty() {
            return Err("the cluster names no primary".into());
        }
        let mut conns = Vec::with_capacity(shards.len());
        for (link, shard) in shards.iter().enumerate() {
            let (pushes, overflow) = (pushes.clone(), overflow.clone());
            let forward = move |info: PushInfo| match pushes.try_send(Push { link, info }) {
                Err(mpsc::error::TrySendError::Full(_)) => {
                    overflow.cancel();
                    Err(())
                }
                // Closed: the session is over.
                _ => Ok(()),
            };
            let conn = connector
                .subscriber(shard, forward)
                .await
                .map_err(|e| format!("connecting to {:?} failed: {e}", shard.info.addr()))?;
            conns.push(conn);
        }
        Ok(Self {
            shards,
            conns,
            timeout,
        })
    }

    /// The link whose shard serves `channel`'s slot.
    pub(super) fn link_of(&self, channel: &str) -> Result<usize, String> {
        if self.shards.len() == 1 {
            return Ok(0);
        }
        let slot = slot(channel.as_bytes());
        self.shards
            .iter()
            .position(|s| s.serves(slot))
            .ok_or_else(|| format!("no primary serves slot {slot}"))
    }

    /// `SSUBSCRIBE`s each channel on `link`, in one round trip; `Ok` once
    /// every one is confirmed.
    pub(super) async fn subscribe(
        &mut self,
        link: usize,
        channels: &[String],
    ) -> Result<(), Failure> {
        self.each(link, "SSUBSCRIBE", PushKind::SSubscribe, channels)
            .await
    }

    /// `SUNSUBSCRIBE`s each channel on `link`, in one round trip.
    pub(super) async fn unsubscribe(
        &mut self,
        link: usize,
        channels: &[String],
    ) -> Result<(), Failure> {
        self.each(link, "SUNSUBSCRIBE", PushKind::SUnsubscribe, channels)
            .await
    }

    async fn each(
        &mut self,
        link: usize,
        command: &str,
        confirmation: PushKind,
        channels: &[String],
    ) -> Result<(), Failure> {
        let mut pipe = redis::pipe();
        for channel in channels {
            pipe.cmd(command).arg(channel);
        }
        let conn = &mut self.conns[link];
        let answers = match tokio::time::timeout(
            self.timeout,
            conn.req_packed_commands(&pipe, 0, channels.len()),
        )
        .await
        {
            Ok(Ok(answers)) => answers,
            Ok(Err(e)) => return Err(Failure::Broken(format!("{command} failed: {e}"))),
            Err(_) => return Err(Failure::Broken(format!("{command} timed out"))),
        };
        for answer in answers {
            match answer {
                Value::Push { kind, .. } if kind == confirmation => {}
                Value::ServerError(e) => {
                    return Err(Failure::Refused(format!("{command} refused: {e:?}")));
                }
                other => return Err(Failure::Refused(format!("{command} answered {other:?}"))),
            }
        }
        Ok(())
    }

    /// `PING`s every link: any answer proves it alive.
    pub(super) async fn ping(&mut self) -> Result<(), String> {
        let pings = self
            .conns
            .iter_mut()
            .map(|conn| async move { redis::cmd("PING").query_async::<Value>(conn).await });
        match tokio::time::timeout(self.timeout, futures_util::future::try_join_all(pings)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("probe failed: {e}")),
            Err(_) => Err("probe timed out".into()),
        }
    }
}
