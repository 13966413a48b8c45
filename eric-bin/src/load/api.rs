//! [`Api`]: the `/v1` calls that set a run up and tear it down (channels,
//! listeners, queue depth), plus the HTTP client every mode uses.

use std::time::Duration;

use serde_json::{Value, json};

use crate::error::{Error, Result};

/// How long a set-up call may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// An HTTP/1.1 client for load: no proxy (the environment's proxy settings
/// must not reroute a benchmark), Nagle off, connections kept alive.
///
/// A client with one task issuing one request at a time keeps exactly one
/// connection; tasks sharing a client get one connection each for requests
/// that overlap.
pub(crate) fn client() -> Result<reqwest::Client> {
    builder().build().map_err(Error::request("(client set-up)"))
}

/// A client for SSE streams: every stream on a new connection, as a
/// browser's `EventSource` opens it (a connection reused from set-up calls
/// would measure another path of the server).
pub(crate) fn stream_client() -> Result<reqwest::Client> {
    builder()
        .pool_max_idle_per_host(0)
        .build()
        .map_err(Error::request("(client set-up)"))
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .http1_only()
        .no_proxy()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(10))
}

/// The server's `/v1` API, for set-up and tear-down.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    client: reqwest::Client,
    streams: reqwest::Client,
    base: String,
}

impl Api {
    /// The API of the server at `base` (no trailing slash).
    pub(crate) fn new(base: &str) -> Result<Self> {
        Ok(Self {
            client: client()?,
            streams: stream_client()?,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// The HTTP client (shared connections pool).
    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The client for SSE streams (see [`stream_client`]).
    pub(crate) fn streams(&self) -> &reqwest::Client {
        &self.streams
    }

    /// `{base}/v1/channels/{channel}/listeners/{listener}/{leaf}`.
    pub(crate) fn listener_url(&self, channel: &str, listener: &str, leaf: &str) -> String {
        format!(
            "{}/v1/channels/{channel}/listeners/{listener}/{leaf}",
            self.base
        )
    }

    /// `{base}/v1/channels/{channel}/messages`: broadcast to its listeners.
    pub(crate) fn broadcast_url(&self, channel: &str) -> String {
        format!("{}/v1/channels/{channel}/messages", self.base)
    }

    /// Creates a channel whose listener queues hold `queue_capacity`
    /// messages (`None`: the server's default); returns its id.
    pub(crate) async fn create_channel(&self, queue_capacity: Option<u64>) -> Result<String> {
        let url = format!("{}/v1/channels", self.base);
        let body = match queue_capacity {
            Some(capacity) => json!({"settings": {"queue_capacity": capacity}}),
            None => json!({}),
        };
        let answer = self.call(self.client.post(&url).json(&body), &url).await?;
        id_of(&answer, &url)
    }

    /// Adds a listener to `channel`; returns its id.
    pub(crate) async fn add_listener(&self, channel: &str) -> Result<String> {
        let url = format!("{}/v1/channels/{channel}/listeners", self.base);
        let answer = self.call(self.client.post(&url), &url).await?;
        id_of(&answer, &url)
    }

    /// Messages waiting in all of `channel`'s listener queues.
    pub(crate) async fn queue_depth(&self, channel: &str) -> Result<u64> {
        let url = format!("{}/v1/channels/{channel}", self.base);
        let answer = self.call(self.client.get(&url), &url).await?;
        let listeners = answer["listeners"]
            .as_array()
            .ok_or_else(|| Error::Answer {
                url: url.clone(),
                status: 200,
                body: "no listeners array in the channel".to_owned(),
            })?;
        Ok(listeners.iter().filter_map(|l| l["queued"].as_u64()).sum())
    }

    /// Deletes `channel` (its listeners and queues go with it).
    pub(crate) async fn delete_channel(&self, channel: &str) -> Result<()> {
        let url = format!("{}/v1/channels/{channel}", self.base);
        self.call(self.client.delete(&url), &url).await.map(drop)
    }

    /// Sends a request; its JSON body (`null` when empty) if it succeeded.
    async fn call(&self, request: reqwest::RequestBuilder, url: &str) -> Result<Value> {
        let response = request
            .timeout(SETUP_TIMEOUT)
            .send()
            .await
            .map_err(Error::request(url))?;
        let status = response.status().as_u16();
        let body = success_body(response, url).await?;
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|e| Error::Answer {
            url: url.to_owned(),
            status,
            body: format!("not JSON: {e}"),
        })
    }
}

/// The body of `response` to a request to `url`, if its status is a
/// success; else the error naming the status and the body.
pub(crate) async fn success_body(response: reqwest::Response, url: &str) -> Result<bytes::Bytes> {
    let status = response.status();
    let body = response.bytes().await.map_err(Error::request(url))?;
    if !status.is_success() {
        return Err(Error::Answer {
            url: url.to_owned(),
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    Ok(body)
}

/// The `id` of a created resource.
fn id_of(answer: &Value, url: &str) -> Result<String> {
    answer["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Answer {
            url: url.to_owned(),
            status: 201,
            body: format!("no id in {answer}"),
        })
}

/// Microseconds since the Unix epoch: a send time another process (or task)
/// can compare with its own clock, which a monotonic `Instant` cannot do.
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
