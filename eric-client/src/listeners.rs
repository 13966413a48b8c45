//! Listener calls (`/v1/channels/{c}/listeners[/{l}[/start|stop]]`).

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::Result;

/// A listener as the server shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ListenerInfo {
    /// Its id.
    pub id: String,
    /// Whether it is running (hands out messages).
    pub running: bool,
    /// Messages waiting in its queue.
    pub queued: u64,
}

#[derive(Serialize)]
struct NewListener<'a> {
    id: &'a str,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

impl Client {
    /// The listeners of `channel`, in registration order.
    pub async fn listeners(&self, channel: impl AsRef<str>) -> Result<Vec<ListenerInfo>> {
        self.get(&["v1", "channels", channel.as_ref(), "listeners"])
            .await
    }

    /// Adds a listener (stopped until started or streamed) and returns its
    /// id: `id`, or a new UUID. Adding an id that exists changes nothing
    /// (its queue and state are kept).
    pub async fn add_listener(&self, channel: impl AsRef<str>, id: Option<&str>) -> Result<String> {
        let path = ["v1", "channels", channel.as_ref(), "listeners"];
        let body = id.map(|id| NewListener { id });
        let created: Created = self.post(&path, body.as_ref()).await?;
        Ok(created.id)
    }

    /// One listener.
    pub async fn listener(
        &self,
        channel: impl AsRef<str>,
        listener: impl AsRef<str>,
    ) -> Result<ListenerInfo> {
        self.get(&listener_path(channel.as_ref(), listener.as_ref(), None))
            .await
    }

    /// Removes a listener: its queued messages go and its streams end.
    pub async fn remove_listener(
        &self,
        channel: impl AsRef<str>,
        listener: impl AsRef<str>,
    ) -> Result<()> {
        let path = listener_path(channel.as_ref(), listener.as_ref(), None);
        self.call(Method::DELETE, &path).await
    }

    /// Starts a listener: it hands out messages (`next`, streams).
    pub async fn start(&self, channel: impl AsRef<str>, listener: impl AsRef<str>) -> Result<()> {
        let path = listener_path(channel.as_ref(), listener.as_ref(), Some("start"));
        self.call(Method::POST, &path).await
    }

    /// Stops a listener: its streams end, its messages stay queued.
    pub async fn stop(&self, channel: impl AsRef<str>, listener: impl AsRef<str>) -> Result<()> {
        let path = listener_path(channel.as_ref(), listener.as_ref(), Some("stop"));
        self.call(Method::POST, &path).await
    }
}

/// `/v1/channels/{c}/listeners/{l}[/{leaf}]` as path segments.
pub(crate) fn listener_path<'a>(
    channel: &'a str,
    listener: &'a str,
    leaf: Option<&'a str>,
) -> Vec<&'a str> {
    let mut path = vec!["v1", "channels", channel, "listeners", listener];
    path.extend(leaf);
    path
}
