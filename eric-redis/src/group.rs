//! [`Group`]: the caught-up streams of a channel on this node share one
//! position in the log.
//!
//! Without groups, every stream records what it takes by moving its own
//! cursor in Redis, compare-and-set: a broadcast to N streams on a node is
//! one `advance` call, but N cursors read and written in it. A stream that
//! keeps up with the broadcasts and has nothing queued joins its node's
//! group instead: its cursor in Redis then names the group (`g<id>`), whose
//! one position the node moves once per read of the log, for every member
//! at once (`group_step`), and its streams take from the node's feed up to
//! that position without a round trip. So the Redis work of a broadcast is
//! the same for 10 streams as for 10,000.
//!
//! The group's position is what the node has claimed for its members: a
//! member's streams take up to it, and a member leaves the group by getting
//! its own cursor back:
//! - at what its streams took, when the node asks (its streams ended, it
//!   fell behind, or its queue got a message): nothing claimed is lost;
//! - at the group's position, when anyone else takes it out (a dispatch, a
//!   pull, a subscription change, a resume, another node's stream): the
//!   script records where (`<base>:left:<id>`), and the node's streams take
//!   what was claimed up to there before going on alone. If they end before
//!   that, the rest goes into the listener's queue (`give_back`).
//!
//! One step at a time per group: the channel's feed task runs them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use eric_core::{ListenerId, Result};

use crate::client::Client;
use crate::scripts::SCRIPTS;

/// This node's group of one channel (see the module docs).
pub(crate) struct Group {
    client: Client,
    base: String,
    /// The key the script is routed by.
    logstate: String,
    /// Random, per node and channel state: a restarted node starts another.
    id: String,
    /// The group's position as Redis last confirmed it: members' streams
    /// take up to it.
    acked: AtomicU64,
    /// Departures this node has dealt with, forgotten in Redis by the next
    /// step (key segments).
    acks: Mutex<Vec<String>>,
    /// A queue asked for a step (a join, a leave, a look at departures).
    wanted: AtomicBool,
    /// Whether the group had members at the last look: the feed's reads
    /// then move it in the same round trip.
    populated: AtomicBool,
}

/// What a listener asks of its group's next step.
#[derive(Debug)]
pub(crate) enum Ask {
    Join(Join),
    Leave(Leave),
}

/// Departures as scripts list them (listener segment, position, ...).
pub(crate) fn departures(raw: &[String]) -> Vec<(ListenerId, u64)> {
    raw.chunks_exact(2)
        .filter_map(|pair| {
            Some((
                ListenerId::from_key_segment(&pair[0]).ok()?,
                pair[1].parse().ok()?,
            ))
        })
        .collect()
}

/// A member leaving at the node's request.
#[derive(Debug)]
pub(crate) struct Leave {
    pub(crate) listener: ListenerId,
    /// What its streams took: its cursor from now on.
    pub(crate) cursor: u64,
    /// No stream here takes what the group claimed for it any more.
    pub(crate) give_back: bool,
}

/// A listener joining, if its cursor and rewind epoch are still these.
#[derive(Debug)]
pub(crate) struct Join {
    pub(crate) listener: ListenerId,
    pub(crate) cursor: u64,
    pub(crate) epoch: u64,
}

/// What one step did.
#[derive(Debug)]
pub(crate) struct Stepped {
    /// The group's position now.
    pub(crate) position: u64,
    /// Members taken out by others, and the position each left at.
    pub(crate) left: Vec<(ListenerId, u64)>,
    /// Per leave asked: whether it was still a member (and left as asked).
    pub(crate) leaves: Vec<bool>,
    /// Per join asked: whether it joined.
    pub(crate) joins: Vec<bool>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("id", &self.id)
            .field("acked", &self.acked)
            .finish_non_exhaustive()
    }
}

impl Group {
    pub(crate) fn new(client: Client, base: String) -> Self {
        let id = uuid::Uuid::new_v4().simple().to_string();
        Self {
            client,
            logstate: format!("{base}:logstate"),
            base,
            // 64 bits of randomness: unique among a channel's nodes.
            id: id[..16].to_owned(),
            acked: AtomicU64::new(0),
            acks: Mutex::new(Vec::new()),
            wanted: AtomicBool::new(false),
            populated: AtomicBool::new(false),
        }
    }

    /// The group's id, as member cursors name it.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// How far members' streams may take.
    pub(crate) fn acked(&self) -> u64 {
        self.acked.load(Ordering::Acquire)
    }

    // Vec pushes and drains cannot leave it half-changed: poison is harmless.
    fn acks(&self) -> MutexGuard<'_, Vec<String>> {
        self.acks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The departure of `listener` is dealt with here.
    pub(crate) fn ack(&self, listener: &ListenerId) {
        self.acks().push(listener.key_segment().into_owned());
        self.want();
    }

    /// A queue needs a step (the caller wakes the feed's task).
    pub(crate) fn want(&self) {
        self.wanted.store(true, Ordering::Release);
    }

    /// Records whether the group has members here.
    pub(crate) fn set_populated(&self, populated: bool) {
        self.populated.store(populated, Ordering::Release);
    }

    /// Whether the group had members at the last look.
    pub(crate) fn populated(&self) -> bool {
        self.populated.load(Ordering::Acquire)
    }

    /// Whether a step was asked for since the last call.
    pub(crate) fn take_wanted(&self) -> bool {
        self.wanted.swap(false, Ordering::AcqRel)
    }

    /// One `group_step` call: `leaves`, then the acked departures, then the
    /// move to `position`, then `joins`. The caller applies what it says
    /// before the next step.
    pub(crate) async fn step(
        &self,
        position: u64,
        leaves: &[Leave],
        joins: &[Join],
    ) -> Result<Stepped> {
        let acks = std::mem::take(&mut *self.acks());
        let result = self.invoke(position, leaves, &acks, joins).await;
        if result.is_err() {
            // Sent again with the next step (forgetting twice is harmless).
            self.acks().extend(acks);
        }
        result
    }

    /// Raises the position members' streams take up to: only after the
    /// departures of the step that confirmed it were applied, so a member
    /// taken out never takes past where it left.
    pub(crate) fn raise(&self, position: u64) {
        self.acked.fetch_max(position, Ordering::AcqRel);
    }

    async fn invoke(
        &self,
        position: u64,
        leaves: &[Leave],
        acks: &[String],
        joins: &[Join],
    ) -> Result<Stepped> {
        let mut invocation = SCRIPTS.group_step.prepare_invoke();
        invocation
            .key(&self.logstate)
            .arg(&self.base)
            .arg(&self.id)
            .arg(position)
            .arg(leaves.len());
        for leave in leaves {
            invocation
                .arg(leave.listener.key_segment().as_ref())
                .arg(leave.cursor)
                .arg(u8::from(leave.give_back));
        }
        invocation.arg(acks.len());
        for ack in acks {
            invocation.arg(ack);
        }
        for join in joins {
            invocation
                .arg(join.listener.key_segment().as_ref())
                .arg(join.cursor)
                .arg(join.epoch);
        }
        let (position, left, leaves, joins): (u64, Vec<String>, Vec<u8>, Vec<u8>) = self
            .client
            .script("moving a group of streams", &invocation)
            .await?;
        Ok(Stepped {
            position,
            left: departures(&left),
            leaves: leaves.into_iter().map(|b| b == 1).collect(),
            joins: joins.into_iter().map(|b| b == 1).collect(),
        })
    }

    /// Ends the group in Redis (its node no longer streams the channel):
    /// every member left gets its own cursor back at the group's position.
    pub(crate) async fn dissolve(&self) -> Result<()> {
        let mut invocation = SCRIPTS.group_dissolve.prepare_invoke();
        invocation
            .key(&self.logstate)
            .arg(&self.base)
            .arg(&self.id)
            // Nobody reads them: this node is the group's.
            .arg(1);
        let _: i64 = self
            .client
            .script("ending a group of streams", &invocation)
            .await?;
        Ok(())
    }
}
