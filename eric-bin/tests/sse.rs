//! SSE over real sockets: framing read by a real SSE parser, resume with
//! `Last-Event-ID`, keep-alive, a client that leaves, a client that stalls,
//! graceful shutdown. Each test names the property it proves; none sleeps to
//! wait (they await the server's stream events under deadlines).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use eric_bin::{Config, Metrics, Server};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(20);

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

struct Running {
    addr: SocketAddr,
    token: CancellationToken,
    task: tokio::task::JoinHandle<eric_bin::Result<()>>,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
}

impl Running {
    async fn start(tune: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::default();
        config.http.addr = "127.0.0.1:0".parse().unwrap();
        tune(&mut config);
        let server = Server::bind(config).await.unwrap();
        let (addr, metrics, token) = (
            server.http_addr().unwrap(),
            server.metrics(),
            CancellationToken::new(),
        );
        let task = tokio::spawn(server.run(token.clone()));
        Self {
            addr,
            token,
            task,
            metrics,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap_or(Value::Null)
    }

    /// A channel `c` with a started listener `l`.
    async fn channel_with_listener(&self) {
        self.post("/v1/channels", json!({"id": "c"})).await;
        self.post("/v1/channels/c/listeners", json!({"id": "l"}))
            .await;
        self.post("/v1/channels/c/listeners/l/start", Value::Null)
            .await;
    }

    async fn dispatch(&self, n: i64) {
        let body = json!({"type": "n", "payload": n});
        self.post("/v1/channels/c/listeners/l/messages", body).await;
    }

    /// Waits until the server's open streams and cut streams match.
    async fn streams_become(&self, open: i64) {
        let mut events = self.metrics.stream_events();
        within(
            "the server's stream count",
            events.wait_for(|(o, _)| *o == open),
        )
        .await
        .unwrap();
    }
}

fn events_of(
    response: reqwest::Response,
) -> impl futures_util::Stream<Item = eventsource_stream::Event> {
    response.bytes_stream().eventsource().map(|e| e.unwrap())
}

#[tokio::test]
async fn framing_is_read_by_a_real_sse_parser() {
    let s = Running::start(|_| {}).await;
    s.channel_with_listener().await;
    s.post(
        "/v1/channels/c/listeners/l/messages",
        json!({"type": "greet", "payload": {"a": "é\nb"}}),
    )
    .await;
    s.post(
        "/v1/channels/c/listeners/l/messages",
        json!({"type": "nothing"}),
    )
    .await;
    let response = s
        .http
        .get(s.url("/v1/channels/c/listeners/l/events"))
        .send()
        .await
        .unwrap();
    let mut events = events_of(response);
    let first = within("an event", events.next()).await.unwrap();
    assert_eq!((first.id.as_str(), first.event.as_str()), ("1", "greet"));
    assert_eq!(
        serde_json::from_str::<Value>(&first.data).unwrap(),
        json!({"a": "é\nb"})
    );
    // `retry:` comes in its own block before the first event (it sets the
    // reconnection time without dispatching an event, as WHATWG specifies);
    // this parser reports it only on events, so the raw bytes are checked in
    // tests/http.rs instead.
    let second = within("an event", events.next()).await.unwrap();
    assert_eq!((second.id.as_str(), second.data.as_str()), ("2", "null"));
}

#[tokio::test]
async fn resume_with_last_event_id_header_or_query_loses_and_repeats_nothing() {
    let s = Running::start(|_| {}).await;
    s.channel_with_listener().await;
    for n in 1..=5 {
        s.dispatch(n).await;
    }
    let url = s.url("/v1/channels/c/listeners/l/events");
    let mut events = events_of(s.http.get(&url).send().await.unwrap());
    for id in ["1", "2"] {
        assert_eq!(within("an event", events.next()).await.unwrap().id, id);
    }
    drop(events);
    s.streams_become(0).await;
    s.dispatch(6).await;
    let resumed = s
        .http
        .get(&url)
        .header("Last-Event-ID", "2")
        .send()
        .await
        .unwrap();
    let mut events = events_of(resumed);
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(within("an event", events.next()).await.unwrap().data);
    }
    assert_eq!(got, ["3", "4", "5", "6"]);
    drop(events);
    s.streams_become(0).await;
    let by_query = s
        .http
        .get(format!("{url}?last_event_id=4"))
        .send()
        .await
        .unwrap();
    let mut events = events_of(by_query);
    assert_eq!(within("an event", events.next()).await.unwrap().data, "5");
    assert_eq!(within("an event", events.next()).await.unwrap().data, "6");
}

#[tokio::test]
async fn idle_streams_get_keep_alive_comments() {
    let s = Running::start(|c| c.http.keep_alive_secs = 1).await;
    s.channel_with_listener().await;
    let response = s
        .http
        .get(s.url("/v1/channels/c/listeners/l/events"))
        .send()
        .await
        .unwrap();
    let mut body = response.bytes_stream();
    let mut text = String::new();
    within("a keep-alive comment", async {
        while !text.contains(": keep-alive\n\n") {
            text.push_str(&String::from_utf8_lossy(
                &body.next().await.unwrap().unwrap(),
            ));
        }
    })
    .await;
    assert!(text.starts_with("retry: 5\n: connected\n\n"));
}

/// The reference kept consuming an abandoned stream's messages: here a
/// message dispatched after the client left goes to the next stream.
#[tokio::test]
async fn a_client_that_leaves_stops_consuming() {
    let s = Running::start(|_| {}).await;
    s.channel_with_listener().await;
    let url = s.url("/v1/channels/c/listeners/l/events");
    let response = s.http.get(&url).send().await.unwrap();
    s.streams_become(1).await;
    drop(response);
    s.streams_become(0).await;
    s.dispatch(42).await;
    let mut events = events_of(s.http.get(&url).send().await.unwrap());
    assert_eq!(
        within("the message", events.next()).await.unwrap().data,
        "42"
    );
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_after_the_send_timeout() {
    let s = Running::start(|c| c.http.send_timeout_secs = 1).await;
    s.channel_with_listener().await;
    let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let request = "GET /v1/channels/c/listeners/l/events HTTP/1.1\r\nHost: x\r\n\r\n";
    raw.write_all(request.as_bytes()).await.unwrap();
    s.streams_become(1).await;
    // Far more than the socket buffers hold, and never read.
    let big = "x".repeat(64 * 1024);
    let producer = {
        let (http, url) = (s.http.clone(), s.url("/v1/channels/c/listeners/l/messages"));
        tokio::spawn(async move {
            for _ in 0..400 {
                let body = json!({"type": "big", "payload": big});
                if http.post(&url).json(&body).send().await.is_err() {
                    return;
                }
            }
        })
    };
    let mut events = s.metrics.stream_events();
    within(
        "the stalled stream to be cut",
        events.wait_for(|(_, cut)| *cut == 1),
    )
    .await
    .unwrap();
    producer.abort();
    let mut sink = Vec::new();
    within("the connection to close", raw.read_to_end(&mut sink))
        .await
        .ok();
}

#[tokio::test]
async fn shutdown_ends_streams_cleanly() {
    let s = Running::start(|c| c.http.shutdown_grace_secs = 10).await;
    s.channel_with_listener().await;
    let response = s
        .http
        .get(s.url("/v1/channels/c/listeners/l/events"))
        .send()
        .await
        .unwrap();
    s.streams_become(1).await;
    s.token.cancel();
    let mut body = response.bytes_stream();
    let mut text = String::new();
    within("the stream to end", async {
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
    })
    .await;
    assert!(
        text.ends_with(": the server is shutting down\n\n"),
        "{text:?}"
    );
    within("the server to stop", s.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn watch_streams_broadcasts_and_its_listener_goes_with_it() {
    let s = Running::start(|_| {}).await;
    s.post("/v1/channels", json!({"id": "c"})).await;
    let response = s
        .http
        .get(s.url("/v1/channels/c/events"))
        .send()
        .await
        .unwrap();
    s.streams_become(1).await;
    let outcome = s
        .post(
            "/v1/channels/c/messages",
            json!({"type": "news", "payload": 1}),
        )
        .await;
    assert_eq!(outcome["delivered"], json!(1));
    let mut events = events_of(response);
    assert_eq!(
        within("the broadcast", events.next()).await.unwrap().event,
        "news"
    );
    drop(events);
    s.streams_become(0).await;
    let listeners: Value = s
        .http
        .get(s.url("/v1/channels/c/listeners"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listeners, json!([]));
}
