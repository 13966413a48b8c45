//! The in-memory engine's record of applied idempotency keys (see
//! [`crate::idempotency`]).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::id::{IdempotencyKey, ListenerId};
use crate::registry::Broadcast;

/// Keys one channel of the in-memory engine remembers at most. Beyond it the
/// oldest are forgotten before their window ends: memory stays bounded
/// however many distinct keys clients send (documented in `docs/HTTP.md`).
pub(crate) const MAX_REMEMBERED_KEYS: usize = 100_000;

/// What a key's write did, as remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// A dispatch: the sequence number it got.
    Dispatch(u64),
    /// A broadcast: its outcome.
    Broadcast(Broadcast),
}

/// A key in its scope: a listener's (dispatch) or the channel's (broadcast).
type Scoped = (Option<ListenerId>, IdempotencyKey);

/// The keys one channel applied within its window, oldest first.
///
/// Not synchronised: the in-memory registry holds it under the same lock
/// as the write it guards, so check, apply and record are one step.
#[derive(Debug, Default)]
pub(crate) struct IdempotencyLog {
    entries: HashMap<Scoped, (Instant, Recorded)>,
    /// Insertion order, for expiry (a channel's window is fixed, so the
    /// oldest insertion expires first) and for the size bound.
    order: VecDeque<(Instant, Scoped)>,
}

impl IdempotencyLog {
    /// An empty log.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// What `key` (in `listener`'s scope, or the channel's for `None`) did,
    /// if it was applied within its window.
    pub(crate) fn get(
        &mut self,
        listener: Option<&ListenerId>,
        key: &IdempotencyKey,
    ) -> Option<Recorded> {
        self.expire(Instant::now());
        let scoped = (listener.cloned(), key.clone());
        self.entries.get(&scoped).map(|(_, r)| r.clone())
    }

    /// Remembers that `key` did `recorded`, for `window`.
    pub(crate) fn insert(
        &mut self,
        listener: Option<&ListenerId>,
        key: &IdempotencyKey,
        recorded: Recorded,
        window: Duration,
    ) {
        if window.is_zero() {
            return;
        }
        let expires = Instant::now() + window;
        let scoped = (listener.cloned(), key.clone());
        while self.entries.len() >= MAX_REMEMBERED_KEYS {
            let Some((_, oldest)) = self.order.pop_front() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        self.order.push_back((expires, scoped.clone()));
        self.entries.insert(scoped, (expires, recorded));
    }

    /// How many keys are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is remembered.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((expires, _)) = self.order.front() {
            if *expires > now {
                break;
            }
            if let Some((_, scoped)) = self.order.pop_front() {
                // A key re-inserted later has a later expiry: keep that one.
                if self.entries.get(&scoped).is_some_and(|(e, _)| *e <= now) {
                    self.entries.remove(&scoped);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(s: &str) -> IdempotencyKey {
        s.parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_scoped_and_forgotten_after_their_window() {
        let mut log = IdempotencyLog::new();
        let a: ListenerId = "a".parse().unwrap();
        let window = Duration::from_secs(60);
        log.insert(Some(&a), &key("k"), Recorded::Dispatch(7), window);
        assert_eq!(log.get(Some(&a), &key("k")), Some(Recorded::Dispatch(7)));
        // Another listener's, and the channel's, are other scopes.
        assert_eq!(log.get(Some(&"b".parse().unwrap()), &key("k")), None);
        assert_eq!(log.get(None, &key("k")), None);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(log.get(Some(&a), &key("k")).is_some());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(log.get(Some(&a), &key("k")), None);
        assert!(log.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_keys_go_first_beyond_the_bound() {
        let mut log = IdempotencyLog::new();
        let window = Duration::from_secs(60);
        for n in 0..MAX_REMEMBERED_KEYS + 2 {
            log.insert(None, &key(&n.to_string()), Recorded::Dispatch(1), window);
        }
        assert_eq!(log.len(), MAX_REMEMBERED_KEYS);
        assert_eq!(log.get(None, &key("0")), None);
        assert_eq!(log.get(None, &key("1")), None);
        assert!(log.get(None, &key("2")).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_window_remembers_nothing() {
        let mut log = IdempotencyLog::new();
        log.insert(None, &key("k"), Recorded::Dispatch(1), Duration::ZERO);
        assert!(log.is_empty());
    }
}
