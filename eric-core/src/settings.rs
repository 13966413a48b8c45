//! [`ChannelSettings`]: what a channel is created with and persisted with.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::queue::QueueLimits;

/// Default bound of each listener's queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 100_000;
/// Default byte bound of each listener's queue: 64 MiB of queued messages
/// (as stored: their JSON, type and ids included). Without it a queue's
/// only bound was its message count, so 100,000 one-MiB messages (~100 GiB)
/// fitted in one listener's queue.
pub const DEFAULT_QUEUE_MAX_BYTES: usize = 64 * 1024 * 1024;
/// Default number of handed-out messages kept per listener for resumes.
pub const DEFAULT_REPLAY_WINDOW: usize = 10_000;
/// The reference's SSE `retry` default, in milliseconds.
pub const DEFAULT_RETRY_MS: u64 = 5;
/// Default time a channel remembers the idempotency keys of applied writes.
pub const DEFAULT_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(300);
/// Longest accepted `idempotency_window`.
pub const MAX_IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Default bound of each listener's subscriptions.
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 1_000;
/// Highest accepted `max_subscriptions`: each subscription is an index entry
/// that every change to the listener's set rewrites.
pub const MAX_SUBSCRIPTIONS_LIMIT: usize = 100_000;
/// Longest accepted `stream_delay`.
pub const MAX_STREAM_DELAY: Duration = Duration::from_secs(3600);

/// A channel's settings. Field names match the reference's persisted
/// dictionary where it has them (`stream_delay_seconds`,
/// `retry_timeout_milliseconds`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSettings {
    /// Least time between two messages of one stream, counted from the last
    /// one sent (a message after a longer pause goes at once).
    #[serde(
        rename = "stream_delay_seconds",
        serialize_with = "ser_secs",
        deserialize_with = "de_secs"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = f64, minimum = 0, maximum = 3600, default = 0.0)
    )]
    pub stream_delay: Duration,
    /// The SSE `retry` hint sent to clients, in milliseconds.
    #[serde(rename = "retry_timeout_milliseconds")]
    pub retry_ms: u64,
    /// Most messages a listener's queue holds; pushes beyond fail.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub queue_capacity: usize,
    /// Most bytes a listener's queued messages may add up to (each counted
    /// as its stored JSON: type, payload, ids); a push beyond fails like a
    /// push beyond `queue_capacity`. Settings persisted before it existed
    /// load with the default.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub queue_max_bytes: usize,
    /// How many handed-out messages per listener stay recoverable for resumes.
    pub replay_window: usize,
    /// How long a write's idempotency key is remembered: a retry within it
    /// is acknowledged, not applied again (0: keys are not remembered).
    #[serde(
        rename = "idempotency_window_seconds",
        serialize_with = "ser_secs",
        deserialize_with = "de_secs"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = f64,
            minimum = 0,
            maximum = 86400,
            default = default_idempotency_window_secs
        )
    )]
    pub idempotency_window: Duration,
    /// Most subscriptions one listener may hold; a change beyond fails
    /// whole. Settings persisted before it existed load with the default.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub max_subscriptions: usize,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            stream_delay: Duration::ZERO,
            retry_ms: DEFAULT_RETRY_MS,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            queue_max_bytes: DEFAULT_QUEUE_MAX_BYTES,
            replay_window: DEFAULT_REPLAY_WINDOW,
            idempotency_window: DEFAULT_IDEMPOTENCY_WINDOW,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
        }
    }
}

impl ChannelSettings {
    /// Checks the bounds; the only constructor path for untrusted settings.
    pub fn validate(&self) -> Result<()> {
        if self.stream_delay > MAX_STREAM_DELAY {
            return Err(Error::invalid_format(format!(
                "stream_delay_seconds must be at most {}",
                MAX_STREAM_DELAY.as_secs()
            )));
        }
        if self.idempotency_window > MAX_IDEMPOTENCY_WINDOW {
            return Err(Error::invalid_format(format!(
                "idempotency_window_seconds must be at most {}",
                MAX_IDEMPOTENCY_WINDOW.as_secs()
            )));
        }
        if self.queue_capacity == 0 {
            return Err(Error::invalid_format("queue_capacity must be at least 1"));
        }
        if self.queue_max_bytes == 0 {
            return Err(Error::invalid_format("queue_max_bytes must be at least 1"));
        }
        if !(1..=MAX_SUBSCRIPTIONS_LIMIT).contains(&self.max_subscriptions) {
            return Err(Error::invalid_format(format!(
                "max_subscriptions must be between 1 and {MAX_SUBSCRIPTIONS_LIMIT}"
            )));
        }
        Ok(())
    }

    /// The bounds every queue of the channel gets.
    pub fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            capacity: self.queue_capacity.max(1),
            max_bytes: self.queue_max_bytes.max(1),
            replay_window: self.replay_window,
        }
    }
}

/// [`DEFAULT_IDEMPOTENCY_WINDOW`] as the JSON writes it, for the schema.
#[cfg(feature = "openapi")]
fn default_idempotency_window_secs() -> f64 {
    DEFAULT_IDEMPOTENCY_WINDOW.as_secs_f64()
}

fn ser_secs<S: Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn de_secs<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_field_names_and_defaults() {
        let s: ChannelSettings = serde_json::from_str(
            r#"{"stream_delay_seconds": 0.5, "retry_timeout_milliseconds": 7}"#,
        )
        .unwrap();
        assert_eq!(s.stream_delay, Duration::from_millis(500));
        assert_eq!(s.retry_ms, 7);
        assert_eq!(s.queue_capacity, DEFAULT_QUEUE_CAPACITY);
        assert_eq!(s.idempotency_window, DEFAULT_IDEMPOTENCY_WINDOW);
        assert_eq!(
            s.queue_max_bytes, DEFAULT_QUEUE_MAX_BYTES,
            "settings persisted before the byte bound load with its default"
        );
        let back: ChannelSettings =
            serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn refuses_nonsense() {
        assert!(
            serde_json::from_str::<ChannelSettings>(r#"{"stream_delay_seconds": -1}"#).is_err()
        );
        assert!(serde_json::from_str::<ChannelSettings>(r#"{"bogus": 1}"#).is_err());
        let zero = ChannelSettings {
            queue_capacity: 0,
            ..Default::default()
        };
        assert!(zero.validate().is_err());
        let no_bytes = ChannelSettings {
            queue_max_bytes: 0,
            ..Default::default()
        };
        assert!(no_bytes.validate().is_err());
        let slow = ChannelSettings {
            stream_delay: Duration::from_secs(7200),
            ..Default::default()
        };
        assert!(slow.validate().is_err());
        let forever = ChannelSettings {
            idempotency_window: Duration::from_secs(7 * 24 * 3600),
            ..Default::default()
        };
        assert!(forever.validate().is_err());
        for max_subscriptions in [0, MAX_SUBSCRIPTIONS_LIMIT + 1] {
            let subscriptions = ChannelSettings {
                max_subscriptions,
                ..Default::default()
            };
            assert!(subscriptions.validate().is_err());
        }
    }
}
