//! [`ChannelContainer`]: channels by id, in registration order (the
//! reference's `ChannelContainer`).

use std::fmt;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use indexmap::IndexMap;

use crate::channel::{Adapter, Channel};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::id::ChannelId;
use crate::sse::SseAdapter;

type Map<E, A> = IndexMap<ChannelId, Channel<E, A>, foldhash::quality::RandomState>;

/// Channels by id, in the order they were added.
///
/// Lock discipline: a `std::sync::RwLock` around the map, held for map
/// operations only; channels are cloned out before anyone awaits on them.
pub struct ChannelContainer<E: Engine, A: Adapter = SseAdapter> {
    channels: RwLock<Map<E, A>>,
}

impl<E: Engine, A: Adapter> ChannelContainer<E, A> {
    /// An empty container.
    pub fn new() -> Self {
        Self {
            channels: RwLock::new(Map::default()),
        }
    }

    // Map operations cannot leave it half-changed: poison is harmless.
    fn read(&self) -> RwLockReadGuard<'_, Map<E, A>> {
        self.channels.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Map<E, A>> {
        self.channels.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds `channel`; [`Error::ChannelExists`] if its id is taken.
    pub fn register(&self, channel: Channel<E, A>) -> Result<()> {
        let mut map = self.write();
        if map.contains_key(channel.id()) {
            return Err(Error::ChannelExists {
                channel: channel.id().clone(),
            });
        }
        map.insert(channel.id().clone(), channel);
        Ok(())
    }

    /// Adds every channel whose id is not taken yet; returns how many it added.
    /// A duplicate inside the batch is skipped like any other taken id.
    pub fn register_many(&self, channels: impl IntoIterator<Item = Channel<E, A>>) -> usize {
        let mut map = self.write();
        let before = map.len();
        for channel in channels {
            map.entry(channel.id().clone()).or_insert(channel);
        }
        map.len() - before
    }

    /// The channel with this id; [`Error::InvalidChannel`] if there is none.
    pub fn get(&self, id: &ChannelId) -> Result<Channel<E, A>> {
        self.read()
            .get(id)
            .cloned()
            .ok_or_else(|| Error::InvalidChannel {
                channel: id.clone(),
            })
    }

    /// Takes the channel out; [`Error::InvalidChannel`] if there is none.
    pub fn remove(&self, id: &ChannelId) -> Result<Channel<E, A>> {
        self.write()
            .shift_remove(id)
            .ok_or_else(|| Error::InvalidChannel {
                channel: id.clone(),
            })
    }

    /// Whether a channel has this id.
    pub fn contains(&self, id: &ChannelId) -> bool {
        self.read().contains_key(id)
    }

    /// Every id, in registration order.
    pub fn ids(&self) -> Vec<ChannelId> {
        self.read().keys().cloned().collect()
    }

    /// Every channel, in registration order.
    pub fn channels(&self) -> Vec<Channel<E, A>> {
        self.read().values().cloned().collect()
    }

    /// How many channels it holds.
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }
}

impl<E: Engine, A: Adapter> Default for ChannelContainer<E, A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Engine, A: Adapter> fmt::Debug for ChannelContainer<E, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelContainer")
            .field("ids", &self.ids())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::{ChannelSettings, SseChannel};
    use crate::engine::MemoryEngine;

    fn channel(id: &str) -> SseChannel<MemoryEngine> {
        Channel::new(
            &MemoryEngine::new(),
            Some(id.parse().unwrap()),
            ChannelSettings::default(),
        )
        .unwrap()
    }

    #[test]
    fn register_get_remove_in_order() {
        let c = ChannelContainer::new();
        c.register(channel("b")).unwrap();
        c.register(channel("a")).unwrap();
        assert_eq!(c.ids(), ["b".parse().unwrap(), "a".parse().unwrap()]);
        assert_eq!(c.get(&"a".parse().unwrap()).unwrap().id().as_str(), "a");
        let err = c.register(channel("a")).unwrap_err();
        assert_eq!(err.to_string(), "channel with id a already exists");
        c.remove(&"a".parse().unwrap()).unwrap();
        let err = c.get(&"a".parse().unwrap()).unwrap_err();
        assert_eq!(err.to_string(), "no channel with id a");
        assert!(matches!(
            c.remove(&"a".parse().unwrap()),
            Err(Error::InvalidChannel { .. })
        ));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn register_many_skips_taken_ids_even_within_the_batch() {
        let c = ChannelContainer::new();
        c.register(channel("a")).unwrap();
        let added = c.register_many([channel("a"), channel("b"), channel("b"), channel("c")]);
        assert_eq!(added, 2);
        assert_eq!(c.ids().len(), 3);
    }
}
