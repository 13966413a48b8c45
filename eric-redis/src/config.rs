//! [`RedisConfig`]: how the engine reaches Redis.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Shortest accepted lease: renewals every 10 ms are already a busy loop.
const MIN_LEASE_MS: u64 = 30;

/// Settings of the Redis engine. Every field has a default, so a config
/// file or environment only names what it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]` (or `redis+unix://`): a
    /// single server or any node of a Redis Cluster (eric asks the server
    /// which it is). Several cluster nodes to start from may be given,
    /// separated by commas. With `sentinels`, only the (first) URL's user,
    /// password and database count: they are the primary's.
    pub url: String,
    /// Redis Sentinel URLs (`redis://host:26379`). When set, the node asks
    /// them for the primary named `master_name`, and again whenever its
    /// connections to it fail, so it follows a failover.
    pub sentinels: Vec<String>,
    /// The name the sentinels monitor the primary under (with `sentinels`;
    /// `mymaster` as in Redis's example `sentinel.conf`).
    pub master_name: String,
    /// Replicas that must acknowledge every write before it is confirmed
    /// (`WAIT` after each write script, on the same connection); 0: none,
    /// Redis's asynchronous replication. A failover then loses no
    /// confirmed write while a replica that acknowledged it is promoted.
    pub wait_replicas: u32,
    /// Longest wait for those acknowledgements, in milliseconds; a write not
    /// acknowledged in time fails as "outcome unknown" (it was applied on
    /// the primary).
    pub wait_timeout_ms: u64,
    /// Prefix of every key and pub/sub channel, so several brokers (or tests)
    /// can share one Redis.
    pub prefix: String,
    /// Command connections per node, shared by every channel and listener
    /// (multiplexed: each pipelines many concurrent commands).
    pub pool_size: usize,
    /// Longest wait for one command, in milliseconds.
    pub command_timeout_ms: u64,
    /// How often the node checks its pub/sub connection end to end by
    /// publishing a probe to itself, in milliseconds (0: never).
    pub probe_interval_ms: u64,
    /// How long a temporary listener (a `watch` stream's) outlives its node
    /// if the node dies without removing it, in milliseconds. The node
    /// renews its leases every third of this; any node removes a listener
    /// whose lease lapsed.
    pub lease_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            sentinels: Vec::new(),
            master_name: "mymaster".to_owned(),
            wait_replicas: 0,
            wait_timeout_ms: 1_000,
            prefix: "eric".to_owned(),
            pool_size: 4,
            command_timeout_ms: 5_000,
            probe_interval_ms: 10_000,
            lease_ms: 30_000,
        }
    }
}

impl RedisConfig {
    /// The defaults with another URL.
    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }

    /// The defaults with another URL and prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The command timeout.
    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms)
    }

    /// The probe interval, if probing is on.
    pub fn probe_interval(&self) -> Option<Duration> {
        (self.probe_interval_ms > 0).then(|| Duration::from_millis(self.probe_interval_ms))
    }

    /// The URLs in `url` (one, or several cluster nodes to start from).
    pub fn urls(&self) -> impl Iterator<Item = &str> {
        self.url.split(',').map(str::trim).filter(|u| !u.is_empty())
    }

    /// How long a write waits for replicas (see `wait_replicas`).
    pub fn wait_timeout(&self) -> Duration {
        Duration::from_millis(self.wait_timeout_ms)
    }

    /// The lease of temporary listeners.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// Checks the settings once, at start-up.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::Config {
                reason: reason.to_owned(),
            })
        };
        if self.urls().next().is_none() {
            return bad("url must name at least one server");
        }
        for url in self.urls().chain(self.sentinels.iter().map(String::as_str)) {
            if let Err(e) = redis::Client::open(url) {
                return Err(Error::Config {
                    reason: format!("url {url:?}: {e}"),
                });
            }
        }
        // Each setting is checked on its own: the server checks after each
        // environment variable, in no particular order.
        if self.master_name.is_empty() {
            return bad("master_name must not be empty");
        }
        if self.wait_timeout_ms == 0 {
            return bad("wait_timeout_ms must be at least 1 (WAIT 0 would wait forever)");
        }
        if self.prefix.is_empty() || !self.prefix.chars().all(|c| c.is_ascii_graphic()) {
            return bad("prefix must be non-empty printable ASCII");
        }
        if self.prefix.contains(['{', '}']) {
            return bad("prefix must not contain '{' or '}': they delimit Redis Cluster hash tags");
        }
        if self.pool_size == 0 {
            return bad("pool_size must be at least 1");
        }
        if self.command_timeout_ms == 0 {
            return bad("command_timeout_ms must be at least 1");
        }
        if self.lease_ms < MIN_LEASE_MS {
            return bad("lease_ms must be at least 30 (leases are renewed every third of it)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_refused() {
        RedisConfig::default().validate().unwrap();
        let seeds = RedisConfig::with_url("redis://a:1, redis://b:2,");
        seeds.validate().unwrap();
        assert_eq!(
            seeds.urls().collect::<Vec<_>>(),
            ["redis://a:1", "redis://b:2"]
        );
        RedisConfig {
            sentinels: vec!["redis://127.0.0.1:26379".into()],
            master_name: "main".into(),
            ..Default::default()
        }
        .validate()
        .unwrap();
        for bad in [
            RedisConfig::with_url("http://nope"),
            RedisConfig::default().with_prefix(""),
            RedisConfig::default().with_prefix("a{b}"),
            RedisConfig {
                pool_size: 0,
                ..Default::default()
            },
            RedisConfig {
                lease_ms: 29,
                ..Default::default()
            },
            RedisConfig::with_url(" , "),
            RedisConfig::with_url("redis://a:1,http://b"),
            RedisConfig {
                master_name: String::new(),
                ..Default::default()
            },
            RedisConfig {
                wait_timeout_ms: 0,
                ..Default::default()
            },
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::Config { .. })),
                "{bad:?}"
            );
        }
    }
}
