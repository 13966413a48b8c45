//! HTTP and SSE helpers against a [`Node`](crate::Node).

use std::pin::Pin;

use eventsource_stream::{Event, Eventsource};
use futures_util::{Stream, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::node::Node;
use crate::within;

/// Where a node answers: a [`Node`] process, or any base URL (a container).
pub trait Base {
    /// `<base><path>`.
    fn url(&self, path: &str) -> String;
}

impl Base for Node {
    fn url(&self, path: &str) -> String {
        Node::url(self, path)
    }
}

impl Base for String {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.trim_end_matches('/'))
    }
}

/// A reqwest client builder as every client of the workspace starts from:
/// eric-client's, which installs the TLS crypto provider reqwest needs
/// before it builds a client (the tests speak plain `http:`).
pub fn reqwest_builder() -> reqwest::ClientBuilder {
    eric_client::http_client_builder(None, false)
}

/// An HTTP client for the `/v1` API.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    /// A client (connections pooled per node).
    ///
    /// # Panics
    ///
    /// When reqwest cannot set a client up.
    pub fn new() -> Self {
        let client = reqwest_builder().build().expect("a reqwest client");
        Self { client }
    }

    /// POSTs JSON; the status and the JSON answer (`null` if none).
    pub async fn post(&self, url: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// GETs JSON.
    pub async fn get(&self, url: &str) -> (StatusCode, Value) {
        let response = self.client.get(url).send().await.expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Asserts a 2xx answer and returns its body.
    pub async fn ok(&self, url: &str, body: Value) -> Value {
        let (status, answer) = self.post(url, body).await;
        assert!(status.is_success(), "POST {url}: {status} {answer}");
        answer
    }

    /// Creates channel `id` on `node` with `settings`.
    pub async fn create_channel(&self, node: &impl Base, id: &str, settings: Value) {
        let body = json!({"id": id, "settings": settings});
        self.ok(&node.url("/v1/channels"), body).await;
    }

    /// Adds listener `id` to `channel` on `node`.
    pub async fn subscribe(&self, node: &impl Base, channel: &str, id: &str) {
        let url = node.url(&format!("/v1/channels/{channel}/listeners"));
        self.ok(&url, json!({"id": id})).await;
    }

    /// Dispatches `payload` to `listener`; returns its sequence number.
    pub async fn dispatch(
        &self,
        node: &impl Base,
        channel: &str,
        listener: &str,
        payload: Value,
    ) -> u64 {
        let url = node.url(&format!(
            "/v1/channels/{channel}/listeners/{listener}/messages"
        ));
        let answer = self
            .ok(&url, json!({"type": "m", "payload": payload}))
            .await;
        answer["seq"].as_u64().expect("a sequence number")
    }

    /// Broadcasts `payload` on `channel`; returns how many listeners got it.
    pub async fn broadcast(&self, node: &impl Base, channel: &str, payload: Value) -> u64 {
        let url = node.url(&format!("/v1/channels/{channel}/messages"));
        let answer = self
            .ok(&url, json!({"type": "b", "payload": payload}))
            .await;
        answer["delivered"].as_u64().expect("a count")
    }

    /// The listener ids of `channel` as `node` sees them.
    pub async fn listeners(&self, node: &impl Base, channel: &str) -> Vec<String> {
        let (status, body) = self
            .get(&node.url(&format!("/v1/channels/{channel}/listeners")))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let listeners = body.as_array().expect("a list").iter();
        listeners
            .map(|l| l["id"].as_str().expect("an id").to_owned())
            .collect()
    }

    /// Opens the SSE stream of `listener`, resuming after `last_event_id`.
    pub async fn events(
        &self,
        node: &impl Base,
        channel: &str,
        listener: &str,
        last_event_id: Option<u64>,
    ) -> Events {
        let url = node.url(&format!(
            "/v1/channels/{channel}/listeners/{listener}/events"
        ));
        let mut request = self.client.get(url);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = within("the stream to open", request.send())
            .await
            .expect("stream opened");
        assert_eq!(response.status(), StatusCode::OK);
        Events {
            inner: Box::pin(response.bytes_stream().eventsource()),
        }
    }
}

type EventStream = Pin<
    Box<
        dyn Stream<Item = Result<Event, eventsource_stream::EventStreamError<reqwest::Error>>>
            + Send,
    >,
>;

/// An open SSE stream.
pub struct Events {
    inner: EventStream,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Events")
    }
}

/// One message event.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The SSE id (the listener's sequence number).
    pub id: u64,
    /// The event type.
    pub event: String,
    /// The data, parsed.
    pub data: Value,
}

impl Events {
    /// The next event; `None` when the stream ended or broke.
    pub async fn next(&mut self) -> Option<Received> {
        let event = within("an SSE event", self.inner.next()).await?.ok()?;
        Some(Received {
            id: event.id.parse().unwrap_or(0),
            event: event.event,
            data: serde_json::from_str(&event.data).unwrap_or(Value::String(event.data)),
        })
    }
}
