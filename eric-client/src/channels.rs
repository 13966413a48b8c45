//! Channel calls (`/v1/channels[/{c}]`) and the channel's shapes.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::Result;
use crate::listeners::ListenerInfo;

/// A channel as the server shows it (`GET /v1/channels/{c}`). Serialising
/// it gives the server's JSON back, field for field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChannelInfo {
    /// Its id.
    pub id: String,
    /// Its settings.
    pub settings: ChannelSettings,
    /// Its listeners, in registration order.
    pub listeners: Vec<ListenerInfo>,
}

/// A channel's settings as the server shows them (see `docs/HTTP.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChannelSettings {
    /// Least time between two messages of one stream, in seconds.
    pub stream_delay_seconds: f64,
    /// The SSE `retry` hint sent to clients, in milliseconds.
    pub retry_timeout_milliseconds: u64,
    /// Most messages a listener's queue holds.
    pub queue_capacity: u64,
    /// Most bytes a listener's queued messages add up to.
    pub queue_max_bytes: u64,
    /// Messages per listener kept after sending, for resumes.
    pub replay_window: u64,
    /// How long idempotency keys of applied writes are remembered, in
    /// seconds.
    pub idempotency_window_seconds: f64,
}

/// A channel to create: its id and the settings that differ from the
/// built-in defaults. With no setting given, the server's configured
/// defaults (its `[channels]` section) apply instead of the built-in ones.
///
/// ```
/// let channel = eric_client::NewChannel::new().id("orders").queue_capacity(1_000);
/// # let _ = channel;
/// ```
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewChannel {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Settings::is_empty")]
    settings: Settings,
}

/// The settings a [`NewChannel`] sets; those left out take the built-in
/// defaults.
#[derive(Debug, Clone, Default, Serialize)]
struct Settings {
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_timeout_milliseconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_capacity: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replay_window: Option<u64>,
}

impl Settings {
    fn is_empty(&self) -> bool {
        self.retry_timeout_milliseconds.is_none()
            && self.queue_capacity.is_none()
            && self.replay_window.is_none()
    }
}

impl NewChannel {
    /// A channel with a new UUID as its id and the server's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Its id (default: a new UUID, chosen by the server).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The SSE `retry` hint sent to clients, in milliseconds.
    pub fn retry_ms(mut self, millis: u64) -> Self {
        self.settings.retry_timeout_milliseconds = Some(millis);
        self
    }

    /// Most messages a listener's queue holds.
    pub fn queue_capacity(mut self, capacity: u64) -> Self {
        self.settings.queue_capacity = Some(capacity);
        self
    }

    /// Messages per listener kept after sending, so a resume can recover
    /// them.
    pub fn replay_window(mut self, window: u64) -> Self {
        self.settings.replay_window = Some(window);
        self
    }
}

#[derive(Deserialize)]
struct ChannelList {
    channels: Vec<String>,
}

impl Client {
    /// The channels' ids.
    pub async fn channels(&self) -> Result<Vec<String>> {
        let list: ChannelList = self.get(&["v1", "channels"]).await?;
        Ok(list.channels)
    }

    /// Creates a channel (409 `channel_exists` if its id is taken).
    pub async fn create_channel(&self, channel: &NewChannel) -> Result<ChannelInfo> {
        self.post(&["v1", "channels"], Some(channel)).await
    }

    /// A channel's settings and listeners.
    pub async fn channel(&self, channel: impl AsRef<str>) -> Result<ChannelInfo> {
        self.get(&["v1", "channels", channel.as_ref()]).await
    }

    /// Deletes a channel: its listeners go and their streams end.
    pub async fn delete_channel(&self, channel: impl AsRef<str>) -> Result<()> {
        let path = ["v1", "channels", channel.as_ref()];
        self.call(Method::DELETE, &path).await
    }
}
