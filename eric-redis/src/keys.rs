//! The key layout (documented key by key in `docs/REDIS.md`).
//!
//! Every key of one channel starts with `<prefix>:{<channel>}`, where
//! `<channel>` is the id's injective `key_segment`: the braces make it the
//! Redis Cluster hash tag, so all of a channel's keys sit in one slot and each
//! script touches a single slot. The segment escapes `{`, `}`, `:` and the
//! glob characters, so no channel's keys can spell another's.
//!
//! Keys shared by all channels (the channel index, the lease set, the generic
//! storage) start with `<prefix>:{%}`. No channel can own that tag: a
//! segment's `%` is always the start of an escape, followed by two hex
//! digits, so `%` alone is never a segment. Global and channel keys are thus
//! disjoint whatever the ids (a channel named `channels` once shared the
//! index's counter).

use eric_core::{ChannelId, IdempotencyKey, ListenerId};

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

    /// A key shared by all channels: `<prefix>:{%}:<name>` (see the module
    /// docs for why no channel key can be one).
    pub(crate) fn global(&self, name: &str) -> String {
        format!("{}:{{%}}:{name}", self.prefix)
    }

    /// ZSET of channel ids (score: creation order).
    pub(crate) fn channel_index(&self) -> String {
        self.global("channels")
    }

    /// The counter behind `channel_index` scores (same slot as the index).
    pub(crate) fn channel_counter(&self) -> String {
        self.global("channels:order")
    }

    /// ZSET of temporary listeners' leases: `<c> <l> <member>` →
    /// expiry in ms (module `lease`).
    pub(crate) fn leases(&self) -> String {
        self.global("leases")
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
    /// HASH: listener id → member id.
    pub(crate) listeners: String,
    /// HASH: listener id → `1` running / `0` stopped.
    pub(crate) running: String,
    /// HASH: listener id → last sequence number its queue gave, from before
    /// the channel's sequence existed (read once, to start above it).
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
    /// HASH: listener id → its subscriptions (JSON), for listeners that
    /// have some. The scripts also keep `<base>:open` (ZSET: listeners
    /// without subscriptions, while some listener has them) and
    /// `<base>:x:<type>\n<filter>` (SET: listeners holding that
    /// subscription; filter empty for none), derived from `base`.
    pub(crate) subs: String,
    /// HASH: the channel's sequence and its broadcast log's counters
    /// (`<base>:log`, a STREAM, and the `cursor` and `since` hashes are
    /// derived from `base`); also the key the log scripts are routed by.
    pub(crate) logstate: String,
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
            subs: key("subs"),
            logstate: key("logstate"),
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

    /// STRING (expiring): what the write named `key` did, as JSON; in
    /// `listener`'s scope for a dispatch, the channel's for a broadcast.
    /// Segments hold no `:`, so the two scopes cannot meet.
    pub(crate) fn applied(&self, listener: Option<&ListenerId>, key: &IdempotencyKey) -> String {
        match listener {
            Some(listener) => format!(
                "{}:once:d:{}:{}",
                self.base,
                listener.key_segment(),
                key.key_segment()
            ),
            None => format!("{}:once:b:{}", self.base, key.key_segment()),
        }
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

    #[test]
    fn global_keys_carry_a_tag_no_channel_can_have() {
        let keys = Keys::new("eric");
        assert_eq!(keys.channel_index(), "eric:{%}:channels");
        for id in ["%", "channels", "{%}", "%25"] {
            let base = keys.channel(&id.parse().unwrap()).base;
            assert!(!base.starts_with("eric:{%}"), "{base}");
        }
    }
}
