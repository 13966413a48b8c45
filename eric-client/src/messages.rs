//! Message calls: dispatch (one listener), broadcast (a channel), `next`
//! (pull one delivery), and the message's shapes.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::client::{Client, Write, Written};
use crate::error::{Error, Result};
use crate::listeners::listener_path;

/// A message: a type (the SSE event name) and a JSON payload, kept as JSON
/// text so nothing is rounded or reordered on the way.
///
/// ```
/// let message = eric_client::Message::json("greet", &[1, 2])?;
/// assert_eq!(message.payload.get(), "[1,2]");
/// # Ok::<(), eric_client::Error>(())
/// ```
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// Its type: 1 to 256 bytes, no CR, LF or NUL, not starting `eric-`.
    #[serde(rename = "type")]
    pub msg_type: String,
    /// Its payload, as JSON text.
    #[serde(default = "null")]
    pub payload: Box<RawValue>,
    /// The listener id it was signed with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<String>,
    /// Its message id, if any (it also names a write: see [`Write`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What it is about, if its publisher said: 1 to 256 bytes, no CR, LF
    /// or NUL (the server refuses others: `invalid_topic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

fn null() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

impl Message {
    /// A message whose payload is already JSON text.
    pub fn raw(msg_type: impl Into<String>, payload: Box<RawValue>) -> Self {
        Self {
            msg_type: msg_type.into(),
            payload,
            sender_id: None,
            id: None,
            topic: None,
        }
    }

    /// The same message about `topic`.
    #[must_use]
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = Some(topic.into());
        self
    }

    /// A message whose payload is `payload` encoded as JSON.
    pub fn json(msg_type: impl Into<String>, payload: &impl Serialize) -> Result<Self> {
        let payload =
            serde_json::value::to_raw_value(payload).map_err(|source| Error::Encode { source })?;
        Ok(Self::raw(msg_type, payload))
    }
}

/// The answer to a dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Queued {
    /// The message's position in the listener's queue: its SSE event id.
    pub seq: u64,
}

/// The answer to a broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Broadcast {
    /// How many listeners got the message.
    pub delivered: u64,
    /// The listeners whose queue was full (they did not get it).
    pub full: Vec<String>,
}

/// A message handed out by `next`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Delivery {
    /// Its position in the listener's queue.
    pub seq: u64,
    /// The message.
    pub message: Message,
}

impl Client {
    /// Queues `message` for one listener; its `seq` comes back.
    pub async fn dispatch(
        &self,
        channel: impl AsRef<str>,
        listener: impl AsRef<str>,
        message: &Message,
        write: &Write,
    ) -> Result<Written<Queued>> {
        let path = listener_path(channel.as_ref(), listener.as_ref(), Some("messages"));
        self.write(&path, message, write).await
    }

    /// Queues `message` for every listener of `channel`.
    pub async fn broadcast(
        &self,
        channel: impl AsRef<str>,
        message: &Message,
        write: &Write,
    ) -> Result<Written<Broadcast>> {
        let path = ["v1", "channels", channel.as_ref(), "messages"];
        self.write(&path, message, write).await
    }

    /// Takes a running listener's next message; `None` if its queue is
    /// empty (409 `listener_stopped` if it is stopped).
    pub async fn next(
        &self,
        channel: impl AsRef<str>,
        listener: impl AsRef<str>,
    ) -> Result<Option<Delivery>> {
        let path = listener_path(channel.as_ref(), listener.as_ref(), Some("next"));
        self.post_maybe(&path).await
    }

    /// The URL a dispatch to `listener` goes to, or a broadcast to
    /// `channel` when `listener` is `None`: for clients that write their
    /// own requests (the load tool's pipelined connections).
    pub fn messages_url(&self, channel: &str, listener: Option<&str>) -> reqwest::Url {
        match listener {
            Some(listener) => self.url(&listener_path(channel, listener, Some("messages"))),
            None => self.url(&["v1", "channels", channel, "messages"]),
        }
    }
}
