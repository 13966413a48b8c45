//! The key layout (documented key by key in `docs/REDIS.md`).
//!
//! Every key of one channel starts with `<prefix>:{<channel>}`, where
//! `<channel>` is the id's injective `key_segment`: the braces make it the
//! Redis Cluster hash tag, so all of a channel's keys sit in one slot and each
//! script touches a single slot. The segment escapes `{`, `}`, `:` and the
//! glob characters, so no channel's keys can spell another's.

use eric_core::{ChannelId, ListenerId};

/// Key names of one node's prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// ZSET of channel ids (score: creation order), under its own hash tag:
    /// the only structure shared by all channels.
    pub(crate) fn channel_index(&self) -> String {
        format!("{}:{{channels}}:index", self.prefix)
    }

    /// The counter behind `channel_index` scores (same slot as the index).
    pub(crate) fn channel_counter(&self) -> String {
        format!("{}:{{channels}}:order", self.prefix)
    }

    /// The keys of one channel.
    pub(crate) fn channel(&self, channel: &ChannelId) -> ChannelKeys {
        ChannelKeys::new(format!("{}:{{{}}}", self.prefix, channel.key_segment()))
    }
}

/// The keys of one channel, all under its hash tag, named once.
#[derive(Debug, Clone)]
pub(crate) struct ChannelKeys {
    /// `<prefix>:{<channel>}`; scripts derive queue keys from it.
    pub(crate) base: String,
    /// HASH: `settings` (JSON).
    pub(crate) meta: String,
    /// ZSET: listener id → registration order.
    pub(crate) members: String,
    /// HASH: listener id → connection id.
    pub(crate) listeners: String,
    /// HASH: listener id → `1` running / `0` stopped.
    pub(crate) running: String,
    /// HASH: listener id → last sequence number given.
    pub(crate) seqs: String,
    /// HASH: listener id → highest sequence number gone from the replay window.
    pub(crate) evicted: String,
    /// HASH: listener id → rewinds so far (the epoch `unread` checks).
    pub(crate) rewinds: String,
    /// HASH: listener id → bytes of the messages in its queue (what
    /// `queue_max_bytes` bounds), kept by every script that moves them.
    pub(crate) bytes: String,
    /// HASH: listener id → bytes of its replay window (bounded by
    /// `queue_max_bytes` as well as by `replay_window`).
    pub(crate) window_bytes: String,
    /// STRING: the counter behind `members` scores.
    pub(crate) order: String,
    /// The pub/sub channel that wakes this channel's streams on every node.
    pub(crate) notify: String,
}

impl ChannelKeys {
    fn new(base: String) -> Self {
        let key = |suffix: &str| format!("{base}:{suffix}");
        Self {
            meta: key("meta"),
            members: key("members"),
            listeners: key("listeners"),
            running: key("running"),
            seqs: key("seq"),
            evicted: key("evicted"),
            rewinds: key("rewinds"),
            bytes: key("bytes"),
            window_bytes: key("dbytes"),
            order: key("order"),
            notify: key("notify"),
            base,
        }
    }

    /// The eight per-listener structures a removal clears, in the order the
    /// `drop` Lua helper expects.
    pub(crate) fn listener_structures(&self) -> [&str; 8] {
        [
            &self.members,
            &self.listeners,
            &self.running,
            &self.seqs,
            &self.evicted,
            &self.rewinds,
            &self.bytes,
            &self.window_bytes,
        ]
    }

    /// LIST: a listener's queue (JSON envelopes `{"seq":..,"message":..}`).
    pub(crate) fn queue(&self, listener: &ListenerId) -> String {
        format!("{}:q:{}", self.base, listener.key_segment())
    }

    /// LIST: a listener's replay window, oldest first.
    pub(crate) fn delivered(&self, listener: &ListenerId) -> String {
        format!("{}:d:{}", self.base, listener.key_segment())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_keys_share_one_well_formed_hash_tag() {
        let keys = Keys::new("eric");
        let ch = keys.channel(&"a{b}:c*".parse().unwrap());
        assert_eq!(ch.meta, "eric:{a%7Bb%7D%3Ac%2A}:meta");
        let l: ListenerId = "l:1".parse().unwrap();
        assert_eq!(ch.queue(&l), "eric:{a%7Bb%7D%3Ac%2A}:q:l%3A1");
        for key in [
            ch.members.clone(),
            ch.queue(&l),
            ch.delivered(&l),
            ch.notify.clone(),
        ] {
            let tag = &key[key.find('{').unwrap()..=key.find('}').unwrap()];
            assert_eq!(tag, "{a%7Bb%7D%3Ac%2A}");
        }
    }
}
