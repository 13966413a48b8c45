//! [`Leases`]: temporary listeners die with their node.
//!
//! A `watch` stream registers a temporary listener and removes it when the
//! stream ends. A node that is killed never runs that removal, and the
//! listener would stay in Redis for good, visible from every node and filling
//! with broadcasts up to its capacity. So each temporary listener holds a
//! lease in the global ZSET `P:{%}:leases`: entry `<c> <l> <member>`
//! (segments, then the member id, space-separated: none contains a
//! space), score its expiry in milliseconds of Redis's own clock (`TIME`, so
//! nodes' clocks never matter).
//!
//! - The node holding leases renews all of them in one script every third of
//!   a lease, never a round trip per listener.
//! - Every node sweeps on the same tick: one range read by score finds the
//!   lapsed leases (no `SCAN`), each listener goes through the `remove`
//!   script, only if its member id is still the leased one (a listener
//!   registered later under the same id is not touched), which publishes `r`
//!   so every node ends its streams; then the leases still lapsed are
//!   forgotten. Removing first and forgetting after means a sweeper that dies
//!   in between leaves the lease for the next sweep, not a leak.
//! - A node that was paused longer than a lease may find its listener swept:
//!   its stream ends (`Removed`) as for any removal, and the renewal drops
//!   the lease it no longer has.
//!
//! Groups of streams (`group`) hold leases too, entry `<c> <group id>`: a
//! group whose node died is dissolved by the sweep (its members get their
//! own cursors back at its position) instead of staying in Redis for good.
//!
//! The task stops on [`Leases::shutdown`] or when the last handle goes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use eric_core::{ChannelId, ListenerId};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::client::Client;
use crate::error::Result;
use crate::keys::{ChannelKeys, Keys};
use crate::scripts::SCRIPTS;

/// Lapsed leases read per sweep call; a full batch is followed by another,
/// up to `SWEEP_ROUNDS` per tick, so one tick stays bounded.
const SWEEP_BATCH: usize = 256;
const SWEEP_ROUNDS: usize = 16;

/// What a lease is held for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    /// A temporary listener.
    Listener(ChannelId, ListenerId),
    /// A node's group of a channel's streams.
    Group(ChannelId, String),
}

type Held = HashMap<Holder, String>;

/// A handle on the node's leases and their renewal and sweep task.
#[derive(Clone)]
pub(crate) struct Leases {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    /// Cancels the task when the last handle is dropped.
    _stop_on_drop: Arc<DropGuard>,
}

struct Shared {
    client: Client,
    keys: Keys,
    lease: Duration,
    /// The leases this node holds, with their ZSET entries.
    held: Mutex<Held>,
    /// Renewal scripts run so far (tests and metrics count leases by it).
    renewals: watch::Sender<u64>,
}

impl Leases {
    /// Starts the renewal and sweep task.
    pub(crate) fn start(client: Client, keys: Keys, lease: Duration) -> Self {
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            client,
            keys,
            lease,
            held: Mutex::new(HashMap::new()),
            renewals: watch::Sender::new(0),
        });
        tokio::spawn(run(shared.clone(), cancel.clone()));
        Self {
            shared,
            _stop_on_drop: Arc::new(cancel.clone().drop_guard()),
            cancel,
        }
    }

    /// Stops renewing and sweeping now.
    pub(crate) fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Counts renewal rounds (one script each).
    pub(crate) fn renewals(&self) -> watch::Receiver<u64> {
        self.shared.renewals.subscribe()
    }

    /// Takes a lease for a temporary listener about to be registered (first,
    /// so that no instant exists where it is registered without one).
    pub(crate) async fn take(
        &self,
        channel: &ChannelId,
        listener: &ListenerId,
        member_id: &str,
    ) -> Result<()> {
        let entry = format!(
            "{} {} {member_id}",
            channel.key_segment(),
            listener.key_segment()
        );
        self.shared
            .hold("add", std::slice::from_ref(&entry))
            .await?;
        self.shared
            .held()
            .insert(Holder::Listener(channel.clone(), listener.clone()), entry);
        Ok(())
    }

    /// Takes a lease for this node's group of `channel`'s streams (before
    /// its first member joins), unless held already.
    pub(crate) async fn take_group(&self, channel: &ChannelId, group: &str) -> Result<()> {
        let holder = Holder::Group(channel.clone(), group.to_owned());
        if self.shared.held().contains_key(&holder) {
            return Ok(());
        }
        let entry = format!("{} {group}", channel.key_segment());
        self.shared
            .hold("add", std::slice::from_ref(&entry))
            .await?;
        self.shared.held().insert(holder, entry);
        Ok(())
    }

    /// Gives up the lease of this node's group of `channel`'s streams (it
    /// was dissolved).
    pub(crate) async fn release_group(&self, channel: &ChannelId, group: &str) -> Result<()> {
        self.release_holder(Holder::Group(channel.clone(), group.to_owned()))
            .await
    }

    /// Gives up the lease of a listener that was removed, if this node holds
    /// one (a map lookup otherwise).
    pub(crate) async fn release(&self, channel: &ChannelId, listener: &ListenerId) -> Result<()> {
        self.release_holder(Holder::Listener(channel.clone(), listener.clone()))
            .await
    }

    async fn release_holder(&self, holder: Holder) -> Result<()> {
        let Some(entry) = self.shared.held().remove(&holder) else {
            return Ok(());
        };
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.shared.keys.leases()).arg(entry);
        let _: u64 = self.shared.client.query("releasing a lease", &cmd).await?;
        Ok(())
    }
}

impl Shared {
    // Map operations cannot leave it half-changed: poison is harmless.
    fn held(&self) -> MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX)
    }

    /// Sets the expiry of `entries` to a lease from now; `renew` only of
    /// those still there. Returns the entries that were not.
    async fn hold(&self, mode: &str, entries: &[String]) -> Result<Vec<String>> {
        let mut invocation = SCRIPTS.lease_hold.prepare_invoke();
        invocation
            .key(self.keys.leases())
            .arg(mode)
            .arg(self.lease_ms());
        for entry in entries {
            invocation.arg(entry);
        }
        self.client.script("holding leases", &invocation).await
    }

    /// Renews every lease this node holds, in one script.
    async fn renew(&self) {
        let entries: Vec<String> = self.held().values().cloned().collect();
        if entries.is_empty() {
            return;
        }
        match self.hold("renew", &entries).await {
            Ok(lost) => {
                if !lost.is_empty() {
                    // Swept while this node was away: its streams end on the `r`.
                    tracing::warn!(lost = lost.len(), "leases lapsed before renewal");
                    self.held().retain(|_, entry| !lost.contains(entry));
                }
                self.renewals.send_modify(|n| *n += 1);
            }
            Err(error) => tracing::warn!(%error, "renewing leases failed"),
        }
    }

    /// Removes the listeners of lapsed leases, then forgets those leases.
    async fn sweep(&self) -> Result<()> {
        for _ in 0..SWEEP_ROUNDS {
            let mut invocation = SCRIPTS.lease_lapsed.prepare_invoke();
            invocation.key(self.keys.leases()).arg(SWEEP_BATCH);
            let lapsed: Vec<String> = self
                .client
                .script("reading lapsed leases", &invocation)
                .await?;
            if lapsed.is_empty() {
                return Ok(());
            }
            self.remove(&lapsed).await?;
            let mut invocation = SCRIPTS.lease_forget.prepare_invoke();
            invocation.key(self.keys.leases());
            for entry in &lapsed {
                invocation.arg(entry);
            }
            let _: u64 = self
                .client
                .script("forgetting lapsed leases", &invocation)
                .await?;
            tracing::info!(count = lapsed.len(), "removed listeners whose lease lapsed");
            if lapsed.len() < SWEEP_BATCH {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Removes the listeners of lapsed leases, each only if it is still the
    /// leased member, and dissolves lapsed groups, in one pipelined round
    /// trip each (both scripts are safe to run twice); an entry that is not
    /// a lease is only forgotten.
    async fn remove(&self, lapsed: &[String]) -> Result<()> {
        let (groups, listeners): (Vec<&String>, Vec<&String>) = lapsed
            .iter()
            .partition(|entry| entry.split(' ').count() == 2);
        let groups: Vec<(ChannelKeys, &str)> = groups
            .into_iter()
            .filter_map(|entry| {
                let (channel, group) = entry.split_once(' ')?;
                let channel = ChannelId::from_key_segment(channel).ok()?;
                Some((self.keys.channel(&channel), group))
            })
            .collect();
        if !groups.is_empty() {
            // Ten leases: a node paused that long has lost more than this.
            let departures = (self.lease_ms().saturating_mul(10)).to_string();
            let calls: Vec<(Vec<&str>, Vec<&str>)> = groups
                .iter()
                .map(|(keys, group)| {
                    (
                        vec![keys.logstate.as_str()],
                        vec![keys.base.as_str(), *group, departures.as_str()],
                    )
                })
                .collect();
            let _: Vec<i64> = self
                .client
                .script_pipe(
                    "dissolving groups whose lease lapsed",
                    &SCRIPTS.group_dissolve,
                    &calls,
                )
                .await?;
        }
        let leased: Vec<_> = listeners
            .into_iter()
            .filter_map(|m| self.parse(m))
            .collect();
        let calls: Vec<(Vec<&str>, Vec<&str>)> = leased
            .iter()
            .map(|(keys, listener, member_id)| {
                let args = vec![
                    keys.base.as_str(),
                    keys.notify.as_str(),
                    listener,
                    member_id,
                ];
                (keys.listener_structures().to_vec(), args)
            })
            .collect();
        let _: Vec<Option<String>> = self
            .client
            .script_pipe(
                "removing listeners whose lease lapsed",
                &SCRIPTS.remove,
                &calls,
            )
            .await?;
        Ok(())
    }

    /// A lease entry's channel keys, listener segment and member id.
    fn parse<'m>(&self, entry: &'m str) -> Option<(ChannelKeys, &'m str, &'m str)> {
        let mut parts = entry.splitn(3, ' ');
        let parsed = match (parts.next(), parts.next(), parts.next()) {
            (Some(channel), Some(listener), Some(member_id)) => {
                ChannelId::from_key_segment(channel)
                    .ok()
                    .map(|channel| (self.keys.channel(&channel), listener, member_id))
            }
            _ => None,
        };
        if parsed.is_none() {
            tracing::warn!(entry, "malformed lease ignored");
        }
        parsed
    }
}

/// Renews and sweeps every third of a lease until cancelled.
async fn run(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval((shared.lease / 3).max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let round = async {
        loop {
            tick.tick().await;
            // Renewal first: a node late on its own leases keeps them.
            shared.renew().await;
            if let Err(error) = shared.sweep().await {
                tracing::warn!(%error, "sweeping lapsed leases failed");
            }
        }
    };
    tokio::select! {
        () = cancel.cancelled() => {}
        () = round => {}
    }
}
