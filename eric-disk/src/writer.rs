//! [`Writer`]: the one thread that writes the data file, with group
//! commit; it is the engine's [`Journal`].
//!
//! Changes are recorded into a buffer under a plain mutex (the engine
//! records them while holding its own locks, so recording must not wait on
//! the disk). The thread takes everything buffered, applies it in one
//! transaction and commits; what arrives meanwhile waits for the next
//! commit, so concurrent writers share one commit, and under `always` one
//! fsync (group commit). Callers wait on [`Journal::settled`] for the
//! commit that holds their change.
//!
//! The thread is a plain OS thread, not a Tokio task: redb's calls block on
//! the disk, and a blocking task would hold one of the runtime's workers
//! for the whole life of the engine.
//!
//! Backpressure: the buffer holds what callers are waiting for; each
//! caller waits for its commit before it writes again, so the buffer is
//! bounded by the number of concurrent writes (connections, streams),
//! which the server bounds.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use eric_core::journal::{Change, Journal, Settled};
use eric_core::{ChannelId, ListenerId};
use redb::Durability;
use tokio::sync::oneshot;

use crate::config::Fsync;
use crate::error::Error;
use crate::store::{Op, Store};

/// The least time between two commits (see `write_until_closed`): at most
/// what a write waits beyond its own commit, and a thousand commits a
/// second at most.
const LINGER: Duration = Duration::from_millis(1);

/// How often committed batches also forget expired idempotency keys.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// What a snapshot restore from this store looks like, to skip writing it
/// back: (next sequence number, window length, queue length).
type Loaded = (u64, usize, usize);

/// Told when its write is committed, or why it never will be.
type Waiter = oneshot::Sender<Result<(), Arc<str>>>;

#[derive(Debug, Default)]
struct Pending {
    ops: Vec<Op>,
    /// Ops recorded so far (committed or not).
    recorded: u64,
    /// Queues just loaded from the file, whose restore writes nothing.
    loaded: HashMap<(ChannelId, ListenerId), Loaded>,
    /// Groups open (see [`Journal::begin_group`]).
    groups: usize,
    /// How many of `ops`, from the front, end outside any group: the
    /// thread takes those, so a group is never split between commits, and
    /// groups that keep overlapping cannot hold back what came before them.
    complete: usize,
    /// Stop after the next commit.
    closing: bool,
    /// A write failed, or the writer ended: nothing more is buffered
    /// (waiters get the failure, or are told the file is closed).
    stopped: bool,
    /// The first failed write's error (readiness reports it).
    failure: Option<Arc<str>>,
    /// Ops recorded before this count are committed.
    committed: u64,
    /// Writes waiting for their commit, by the op count they wait for
    /// (ascending: a waiter takes the count under the lock that orders
    /// them). A commit wakes only those it settles, not every waiter: with
    /// thousands of writes in flight, waking all at each commit was most of
    /// the engine's CPU.
    waiters: VecDeque<(u64, Waiter)>,
}

/// Counters of the writer, for metrics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) commits: AtomicU64,
    pub(crate) syncs: AtomicU64,
    pub(crate) ops: AtomicU64,
    pub(crate) errors: AtomicU64,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    counters: Counters,
}

impl Pending {
    /// Appends `op`; `false` (dropped) once writes have stopped.
    fn push(&mut self, op: Op) -> bool {
        if self.stopped {
            return false;
        }
        self.ops.push(op);
        self.recorded += 1;
        if self.groups == 0 {
            self.complete = self.ops.len();
        }
        true
    }

    fn begin_group(&mut self) {
        self.groups += 1;
    }

    /// Closes a group; `true` when none is open any more.
    fn end_group(&mut self) -> bool {
        self.groups = self.groups.saturating_sub(1);
        if self.groups == 0 {
            self.complete = self.ops.len();
        }
        self.groups == 0
    }

    /// Stops buffering; returns the waiting writes, to be told why
    /// (outside the lock).
    fn stop(&mut self) -> Vec<(u64, Waiter)> {
        self.stopped = true;
        self.ops.clear();
        self.complete = 0;
        self.waiters.drain(..).collect()
    }

    /// The ops that end outside any group, and the count of ops recorded
    /// up to the last of them. What follows belongs to a group still being
    /// recorded (under the engine's locks, without awaiting): the next
    /// batch.
    fn take_complete(&mut self) -> (Vec<Op>, u64) {
        let complete = std::mem::take(&mut self.complete);
        let ops: Vec<Op> = self.ops.drain(..complete).collect();
        (ops, self.recorded - self.ops.len() as u64)
    }
}

impl Shared {
    // Every critical section leaves `Pending` consistent: poison is harmless.
    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer thread's handle: the engine's journal. Dropping the last
/// handle ([`Writer::close`]) commits what is buffered, syncs, and ends
/// the thread.
#[derive(Debug)]
pub(crate) struct Writer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Writer {
    /// Starts the thread writing to `store` under `fsync`.
    pub(crate) fn start(store: Arc<Store>, fsync: Fsync) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            counters: Counters::default(),
        });
        let thread = std::thread::Builder::new()
            .name("eric-disk-writer".into())
            .spawn({
                let shared = shared.clone();
                move || run(&store, fsync, &shared)
            })?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Appends `op` after everything recorded before it.
    pub(crate) fn push(&self, op: Op) {
        let pushed = self.shared.pending().push(op);
        if pushed {
            self.shared.wake.notify_one();
        }
    }

    /// Writes `op` after everything recorded before it; answers once it is
    /// settled (the repositories' writes).
    pub(crate) async fn write(&self, op: Op) -> eric_core::Result<()> {
        self.push(op);
        self.settled().await
    }

    /// Marks queues as just loaded from the file: restoring them writes
    /// nothing (they are stored as they are).
    pub(crate) fn loaded(
        &self,
        queues: impl IntoIterator<Item = ((ChannelId, ListenerId), Loaded)>,
    ) {
        self.shared.pending().loaded.extend(queues);
    }

    /// The first write failure, if any.
    pub(crate) fn failure(&self) -> Option<Arc<str>> {
        self.shared.pending().failure.clone()
    }

    /// The writer's counters.
    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// Commits and syncs what is buffered, then ends the thread; waits for
    /// it. Later records are not written.
    pub(crate) fn close(&self) {
        self.shared.pending().closing = true;
        self.shared.wake.notify_one();
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            // A panicked writer has nothing left to flush; its failure is
            // already what waiters see.
            let _ = thread.join();
        }
    }
}

/// Why a write recorded after the writer ended is not written.
const CLOSED: &str = "the data file was closed (shutdown)";

fn stopped(reason: &str) -> eric_core::Error {
    Error::Stopped {
        reason: reason.to_owned(),
    }
    .into_core("writing to disk")
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

impl Journal for Writer {
    fn record(&self, change: Change) {
        if let Change::Replaced {
            channel,
            listener,
            next_seq,
            window,
            messages,
        } = &change
        {
            let mut pending = self.shared.pending();
            let key = (channel.clone(), listener.clone());
            if pending.loaded.get(&key) == Some(&(*next_seq, window.len(), messages.len())) {
                pending.loaded.remove(&key);
                return;
            }
        }
        self.push(Op::Change(change));
    }

    fn settled(&self) -> Settled {
        let mut pending = self.shared.pending();
        let target = pending.recorded;
        if pending.committed >= target {
            return Box::pin(std::future::ready(Ok(())));
        }
        if pending.stopped {
            let reason = pending.failure.clone();
            drop(pending);
            return Box::pin(std::future::ready(Err(stopped(
                reason.as_deref().unwrap_or(CLOSED),
            ))));
        }
        let (tx, rx) = oneshot::channel();
        pending.waiters.push_back((target, tx));
        drop(pending);
        Box::pin(async move {
            match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(reason)) => Err(stopped(&reason)),
                // The thread is gone without answering: it ended.
                Err(_) => Err(stopped(CLOSED)),
            }
        })
    }

    fn begin_group(&self) {
        self.shared.pending().begin_group();
    }

    fn end_group(&self) {
        let idle = self.shared.pending().end_group();
        if idle {
            self.shared.wake.notify_one();
        }
    }
}

/// The thread: commit what is buffered, as it comes; under `everysec` and
/// `no`, sync at most [`Fsync::delay`] after the first unsynced commit.
fn run(store: &Store, fsync: Fsync, shared: &Shared) {
    write_until_closed(store, fsync, shared);
    // Whatever is recorded from now on is never written: its waiters must
    // hear so rather than wait for ever.
    let mut pending = shared.pending();
    let reason = pending.failure.clone().unwrap_or_else(|| CLOSED.into());
    let waiters = pending.stop();
    drop(pending);
    tell(waiters, &Err(reason));
}

/// Answers waiting writes; one that went away needs no answer.
fn tell(waiters: Vec<(u64, Waiter)>, answer: &Result<(), Arc<str>>) {
    for (_, waiter) in waiters {
        let _ = waiter.send(answer.clone());
    }
}

fn write_until_closed(store: &Store, fsync: Fsync, shared: &Shared) {
    let durability = match fsync {
        Fsync::Always => Durability::Immediate,
        Fsync::Everysec | Fsync::No => Durability::None,
    };
    // When the oldest commit not yet synced must be synced.
    let mut sync_due: Option<Instant> = None;
    // Expired idempotency keys are forgotten on the way, once a minute:
    // the scan is of the keys alone, and memory forgets them anyway.
    let mut expired_at = Instant::now();
    // When the last commit began.
    let mut committed_at: Option<Instant> = None;
    loop {
        let mut pending = shared.pending();
        while pending.complete == 0 && !pending.closing {
            match sync_due {
                None => pending = shared.wake.wait(pending).unwrap_or_else(|p| p.into_inner()),
                Some(due) => {
                    let now = Instant::now();
                    if now >= due {
                        break;
                    }
                    pending = shared
                        .wake
                        .wait_timeout(pending, due - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
            }
        }
        // A commit costs CPU of its own (redb writes the pages it touched
        // and its allocator state), so under load one per change would take
        // the core the requests need: commits are at least `LINGER` apart,
        // and what arrives meanwhile joins the next one.
        if let Some(at) = committed_at.filter(|_| pending.complete > 0) {
            let next = at + LINGER;
            loop {
                let now = Instant::now();
                if now >= next || pending.closing {
                    break;
                }
                pending = shared
                    .wake
                    .wait_timeout(pending, next - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
        let (mut ops, upto) = pending.take_complete();
        let closing = pending.closing;
        drop(pending);

        if !ops.is_empty() && expired_at.elapsed() >= EXPIRE_EVERY {
            ops.push(Op::Expire(SystemTime::now()));
            expired_at = Instant::now();
        }
        let result = if ops.is_empty() {
            Ok(())
        } else {
            committed_at = Some(Instant::now());
            let count = ops.len() as u64;
            let result = store.write(ops, durability);
            if result.is_ok() {
                shared.counters.commits.fetch_add(1, Ordering::Relaxed);
                shared.counters.ops.fetch_add(count, Ordering::Relaxed);
                if fsync == Fsync::Always {
                    shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
                } else if sync_due.is_none() {
                    sync_due = fsync.delay().map(|d| Instant::now() + d);
                }
            }
            result
        };
        let result = result.and_then(|()| {
            let due = sync_due.is_some_and(|due| closing || Instant::now() >= due);
            if due {
                store.sync()?;
                shared.counters.syncs.fetch_add(1, Ordering::Relaxed);
                sync_due = None;
            }
            Ok(())
        });
        match result {
            Ok(()) => {
                let mut pending = shared.pending();
                pending.committed = upto;
                let settled = pending
                    .waiters
                    .iter()
                    .take_while(|(target, _)| *target <= upto)
                    .count();
                let waiters: Vec<_> = pending.waiters.drain(..settled).collect();
                drop(pending);
                tell(waiters, &Ok(()));
            }
            Err(e) => {
                shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, file = %store.path().display(), "disk write failed; no more writes until restart");
                let reason: Arc<str> = e.to_string().into();
                let mut pending = shared.pending();
                pending.failure = Some(reason.clone());
                let waiters = pending.stop();
                drop(pending);
                tell(waiters, &Err(reason));
                return;
            }
        }
        if closing {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(n: u64) -> Op {
        Op::DeleteChannel(format!("c{n}").parse().unwrap_or_else(|_| unreachable!()))
    }

    fn ids(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::DeleteChannel(c) => c.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    /// A group is taken whole or not at all, and what others record
    /// meanwhile waits for it; what came before it is not held back.
    #[test]
    fn a_batch_never_splits_a_group() {
        let mut pending = Pending::default();
        assert!(pending.push(op(1)));
        pending.begin_group();
        pending.push(op(2));
        pending.push(op(3)); // another writer, during the group
        let (ops, upto) = pending.take_complete();
        assert_eq!((ids(&ops), upto), (vec!["c1".to_owned()], 1));
        pending.begin_group(); // a second group overlapping the first
        pending.push(op(4));
        assert!(!pending.end_group());
        assert_eq!(pending.take_complete().0.len(), 0, "one group still open");
        assert!(pending.end_group());
        let (ops, upto) = pending.take_complete();
        assert_eq!(
            (ids(&ops), upto),
            (vec!["c2".to_owned(), "c3".to_owned(), "c4".to_owned()], 4)
        );
        pending.stop();
        assert!(!pending.push(op(5)), "nothing is kept once writes stopped");
    }
}
