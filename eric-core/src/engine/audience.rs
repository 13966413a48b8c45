//! [`Audience`]: who a broadcast reaches, found without looking at the
//! listeners it does not reach.
//!
//! Listeners without subscriptions are kept in one ordered map; listeners
//! with some are indexed by message type, then by filter text. A
//! broadcast reads the first whole, then one bucket per filter that can
//! match its topic ([`Topic::matching_filters`]): the cost is the audience
//! plus a handful of hash lookups, never the listeners filtered out, so
//! filtering pays for itself instead of scanning every subscription of
//! every listener.

use std::collections::{HashMap, HashSet};

use indexmap::IndexMap;

use crate::id::ListenerId;
use crate::message::{Message, MessageType};
use crate::subscription::Subscriptions;
use crate::topic::Topic;

type Hasher = foldhash::quality::RandomState;

/// Listeners holding one subscription.
type Bucket<T> = IndexMap<ListenerId, T, Hasher>;

/// The bucket key of subscriptions without a filter (a filter is never
/// empty).
const ANY_TOPIC: &str = "";

/// Listeners by what broadcasts they receive; `T` is what a broadcast needs
/// of each (the in-memory engine's member).
pub(crate) struct Audience<T> {
    /// Listeners without subscriptions: every broadcast reaches them.
    open: Bucket<T>,
    /// Listeners with subscriptions, by type, then filter text
    /// ([`ANY_TOPIC`] for none).
    index: HashMap<MessageType, HashMap<Box<str>, Bucket<T>, Hasher>, Hasher>,
}

impl<T: Clone> Audience<T> {
    pub(crate) fn new() -> Self {
        Self {
            open: IndexMap::default(),
            index: HashMap::default(),
        }
    }

    /// Whether no listener holds subscriptions (every broadcast reaches
    /// every listener).
    pub(crate) fn unfiltered(&self) -> bool {
        self.index.is_empty()
    }

    /// Adds `listener` with its subscriptions.
    pub(crate) fn insert(&mut self, listener: &ListenerId, target: &T, subs: &Subscriptions) {
        if subs.is_empty() {
            self.open.insert(listener.clone(), target.clone());
            return;
        }
        for sub in subs.as_slice() {
            let filter = sub.filter.as_ref().map_or(ANY_TOPIC, |f| f.as_str());
            self.index
                .entry(sub.msg_type.clone())
                .or_default()
                .entry(filter.into())
                .or_default()
                .insert(listener.clone(), target.clone());
        }
    }

    /// Removes `listener`, which was inserted with `subs`.
    pub(crate) fn remove(&mut self, listener: &ListenerId, subs: &Subscriptions) {
        if subs.is_empty() {
            self.open.shift_remove(listener);
            return;
        }
        for sub in subs.as_slice() {
            let filter = sub.filter.as_ref().map_or(ANY_TOPIC, |f| f.as_str());
            let Some(by_filter) = self.index.get_mut(&sub.msg_type) else {
                continue;
            };
            if let Some(bucket) = by_filter.get_mut(filter) {
                bucket.swap_remove(listener);
                if bucket.is_empty() {
                    by_filter.remove(filter);
                }
            }
            if by_filter.is_empty() {
                self.index.remove(&sub.msg_type);
            }
        }
    }

    /// Every listener `message` reaches, each once: those without
    /// subscriptions first, in registration order, then the matching ones.
    pub(crate) fn reached_by(&self, message: &Message) -> Vec<(&ListenerId, &T)> {
        let mut reached: Vec<(&ListenerId, &T)> = self.open.iter().collect();
        let Some(by_filter) = self.index.get(message.msg_type()) else {
            return reached;
        };
        let mut buckets = std::iter::once(ANY_TOPIC)
            .chain(
                message
                    .topic()
                    .into_iter()
                    .flat_map(Topic::matching_filters),
            )
            .filter_map(|filter| by_filter.get(filter))
            .peekable();
        let Some(first) = buckets.next() else {
            return reached;
        };
        if buckets.peek().is_none() {
            // One bucket, the common case: no listener can be in it twice.
            reached.extend(first.iter());
            return reached;
        }
        // A listener subscribed through several matching filters (`a` and
        // `a.b` for topic `a.b.c`) gets the message once.
        let mut seen: HashSet<&ListenerId, Hasher> = HashSet::default();
        for (id, target) in std::iter::once(first).chain(buckets).flatten() {
            if seen.insert(id) {
                reached.push((id, target));
            }
        }
        reached
    }
}
