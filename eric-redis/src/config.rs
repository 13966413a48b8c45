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
    /// `redis://[user:password@]host:port[/db]` (or `rediss://`, `redis+unix://`).
    pub url: String,
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
        if let Err(e) = redis::Client::open(self.url.as_str()) {
            return Err(Error::Config {
                reason: format!("url {:?}: {e}", self.url),
            });
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
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::Config { .. })),
                "{bad:?}"
            );
        }
    }
}
