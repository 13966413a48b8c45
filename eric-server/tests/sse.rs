//! SSE over real sockets: framing read by a real SSE parser, resume with
//! `Last-Event-ID`, keep-alive, a client that leaves, a client that stalls,
//! graceful shutdown. Each test names the property it proves; none sleeps to
//! wait (they await the server's stream events under deadlines).
//!
//! A stream opened as a connection's first request is written by the
//! server's own writer; one opened on a connection that already served a
//! request goes through hyper. The stream tests run both ways ([`Via`]).

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use eric_server::{Config, Metrics, Server};
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
    // The data directory of the default engine (on disk), the test's own.
    _data: tempfile::TempDir,
    addr: SocketAddr,
    token: CancellationToken,
    task: tokio::task::JoinHandle<eric_server::Result<()>>,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
}

impl Running {
    async fn start(tune: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.http.addr = "127.0.0.1:0".parse().unwrap();
        config.storage.data_dir = data.path().to_owned();
        tune(&mut config);
        let server = Server::bind(config).await.unwrap();
        let (addr, metrics, token) = (
            server.http_addr().unwrap(),
            server.metrics(),
            CancellationToken::new(),
        );
        let task = tokio::spawn(server.run(token.clone()));
        Self {
            _data: data,
            addr,
            token,
            task,
            metrics,
            http: eric_client::http_client_builder(None, false)
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A GET of `path` that opens its stream `via` one path or the other.
    async fn stream_get(&self, via: Via, path: &str) -> reqwest::RequestBuilder {
        let url = self.url(path);
        match via {
            Via::Direct => eric_client::http_client_builder(None, false)
                .pool_max_idle_per_host(0)
                .build()
                .unwrap()
                .get(url),
            Via::Hyper => {
                // The stream request reuses the connection left idle here.
                let client = eric_client::http_client_builder(None, false)
                    .build()
                    .unwrap();
                let health = client.get(self.url("/healthz")).send().await.unwrap();
                health.bytes().await.unwrap();
                client.get(url)
            }
        }
    }

    /// Opens the stream of listener `l` of channel `c`, `via` one path.
    async fn open_events(&self, via: Via) -> reqwest::Response {
        let path = "/v1/channels/c/listeners/l/events";
        self.stream_get(via, path).await.send().await.unwrap()
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

/// Which of the server's two HTTP paths serves a stream.
#[derive(Debug, Clone, Copy)]
enum Via {
    /// The stream request is the connection's first: the server's writer.
    Direct,
    /// The connection served a request before: hyper.
    Hyper,
}

/// One `#[tokio::test]` per path for each `async fn name(via: Via)`.
macro_rules! both_paths {
    ($($name:ident),* $(,)?) => {
        mod direct {
            $(#[tokio::test] async fn $name() { super::$name(super::Via::Direct).await })*
        }
        mod hyper {
            $(#[tokio::test] async fn $name() { super::$name(super::Via::Hyper).await })*
        }
    };
}

both_paths!(
    framing_is_read_by_a_real_sse_parser,
    resume_with_last_event_id_header_or_query_loses_and_repeats_nothing,
    idle_streams_get_keep_alive_comments,
    a_client_that_leaves_stops_consuming,
    a_client_that_stops_reading_is_cut_after_the_send_timeout,
    shutdown_ends_streams_cleanly,
    watch_streams_broadcasts_and_its_listener_goes_with_it,
    watch_with_filters_streams_only_matching_broadcasts,
    a_stream_opened_from_an_allowed_origin_carries_cors_headers,
    a_stream_needs_a_token_when_tokens_are_configured,
);

fn events_of(
    response: reqwest::Response,
) -> impl futures_util::Stream<Item = eventsource_stream::Event> {
    response.bytes_stream().eventsource().map(|e| e.unwrap())
}

async fn framing_is_read_by_a_real_sse_parser(via: Via) {
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
    let response = s.open_events(via).await;
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
    // tests/v1.rs instead.
    let second = within("an event", events.next()).await.unwrap();
    assert_eq!((second.id.as_str(), second.data.as_str()), ("2", "null"));
}

async fn resume_with_last_event_id_header_or_query_loses_and_repeats_nothing(via: Via) {
    let s = Running::start(|_| {}).await;
    s.channel_with_listener().await;
    for n in 1..=5 {
        s.dispatch(n).await;
    }
    let path = "/v1/channels/c/listeners/l/events";
    let mut events = events_of(s.stream_get(via, path).await.send().await.unwrap());
    for id in ["1", "2"] {
        assert_eq!(within("an event", events.next()).await.unwrap().id, id);
    }
    drop(events);
    s.streams_become(0).await;
    s.dispatch(6).await;
    let resumed = s
        .stream_get(via, path)
        .await
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
        .stream_get(via, &format!("{path}?last_event_id=4"))
        .await
        .send()
        .await
        .unwrap();
    let mut events = events_of(by_query);
    assert_eq!(within("an event", events.next()).await.unwrap().data, "5");
    assert_eq!(within("an event", events.next()).await.unwrap().data, "6");
}

async fn idle_streams_get_keep_alive_comments(via: Via) {
    let s = Running::start(|c| c.http.keep_alive_secs = 1).await;
    s.channel_with_listener().await;
    let response = s.open_events(via).await;
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
async fn a_client_that_leaves_stops_consuming(via: Via) {
    let s = Running::start(|_| {}).await;
    s.channel_with_listener().await;
    let path = "/v1/channels/c/listeners/l/events";
    let response = s.stream_get(via, path).await.send().await.unwrap();
    s.streams_become(1).await;
    drop(response);
    s.streams_become(0).await;
    s.dispatch(42).await;
    let mut events = events_of(s.stream_get(via, path).await.send().await.unwrap());
    assert_eq!(
        within("the message", events.next()).await.unwrap().data,
        "42"
    );
}

async fn a_client_that_stops_reading_is_cut_after_the_send_timeout(via: Via) {
    let s = Running::start(|c| c.http.send_timeout_secs = 1).await;
    s.channel_with_listener().await;
    let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    if let Via::Hyper = via {
        raw.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        read_one_response(&mut raw).await;
    }
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

async fn shutdown_ends_streams_cleanly(via: Via) {
    let s = Running::start(|c| c.http.shutdown_grace_secs = 10).await;
    s.channel_with_listener().await;
    let response = s.open_events(via).await;
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

async fn watch_streams_broadcasts_and_its_listener_goes_with_it(via: Via) {
    let s = Running::start(|_| {}).await;
    s.post("/v1/channels", json!({"id": "c"})).await;
    let response = s
        .stream_get(via, "/v1/channels/c/events")
        .await
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

/// The channel's stream takes subscriptions as `filter` query parameters
/// (`TYPE` or `TYPE:TOPIC`): only matching broadcasts reach it, and the
/// answer's head comes once they apply (a broadcast sent after it is
/// received). A bad filter is refused before any stream opens.
async fn watch_with_filters_streams_only_matching_broadcasts(via: Via) {
    let s = Running::start(|_| {}).await;
    s.post("/v1/channels", json!({"id": "c"})).await;
    let response = s
        .stream_get(via, "/v1/channels/c/events?filter=reading:lab&filter=alarm")
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    for (n, body) in [
        json!({"type": "reading", "payload": 1, "topic": "office"}),
        json!({"type": "reading", "payload": 2}),
        json!({"type": "status", "payload": 3, "topic": "lab"}),
        json!({"type": "reading", "payload": 4, "topic": "lab.fridge"}),
        json!({"type": "alarm", "payload": 5}),
    ]
    .into_iter()
    .enumerate()
    {
        let outcome = s.post("/v1/channels/c/messages", body).await;
        let expected = if n >= 3 { 1 } else { 0 };
        assert_eq!(outcome["delivered"], json!(expected), "message {n}");
    }
    let mut events = events_of(response);
    let first = within("a matching event", events.next()).await.unwrap();
    assert_eq!(
        (first.event.as_str(), first.data.as_str()),
        ("reading", "4")
    );
    let second = within("a matching event", events.next()).await.unwrap();
    assert_eq!(
        (second.event.as_str(), second.data.as_str()),
        ("alarm", "5")
    );

    let bad = s
        .stream_get(via, "/v1/channels/c/events?filter=reading:")
        .await
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), reqwest::StatusCode::BAD_REQUEST);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"]["code"], json!("invalid_topic"));
}

/// Reads one whole response with a `content-length` from `raw`; its head.
async fn read_one_response(raw: &mut tokio::net::TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        within("a response head", raw.read_exact(&mut byte))
            .await
            .unwrap();
        bytes.push(byte[0]);
    }
    let head = String::from_utf8(bytes).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    within("a response body", raw.read_exact(&mut body))
        .await
        .unwrap();
    head
}

/// Reads from `raw` until `text` holds `until`.
async fn read_until(raw: &mut tokio::net::TcpStream, text: &mut String, until: &str) {
    let mut buf = [0u8; 4096];
    within(until, async {
        while !text.contains(until) {
            let n = raw.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before {until:?}: {text:?}");
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
    .await;
}

/// The server's own writer speaks plain HTTP/1.1: the handler's headers,
/// chunked encoding, `connection: close`; the stream ends with the last
/// chunk when its listener stops.
#[tokio::test]
async fn the_direct_path_writes_chunked_http() {
    let s = Running::start(|_| {}).await;
    s.channel_with_listener().await;
    let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(b"GET /v1/channels/c/listeners/l/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    read_until(&mut raw, &mut text, ": connected\n\n\r\n").await;
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    for line in [
        "http/1.1 200 ok",
        "content-type: text/event-stream",
        "cache-control: no-cache",
        "x-accel-buffering: no",
        "transfer-encoding: chunked",
        "connection: close",
    ] {
        assert!(head.lines().any(|l| l == line), "{line:?} missing: {head}");
    }
    assert!(head.lines().any(|l| l.starts_with("date: ")), "{head}");
    assert_eq!(body, "16\r\nretry: 5\n: connected\n\n\r\n");
    s.dispatch(7).await;
    read_until(&mut raw, &mut text, "data: 7\n\n\r\n").await;
    s.post("/v1/channels/c/listeners/l/stop", Value::Null).await;
    let mut rest = Vec::new();
    within("the stream to end", raw.read_to_end(&mut rest))
        .await
        .unwrap();
    let rest = String::from_utf8(rest).unwrap();
    assert!(
        rest.ends_with("event: eric-end\ndata: {\"reason\":\"stopped\"}\n\n\r\n0\r\n\r\n"),
        "{rest:?}"
    );
}

/// An error before the stream starts keeps the one JSON error shape.
#[tokio::test]
async fn the_direct_path_answers_errors_whole() {
    let s = Running::start(|_| {}).await;
    let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(b"GET /v1/channels/nope/listeners/l/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    within("the answer", raw.read_to_end(&mut answer))
        .await
        .unwrap();
    let answer = String::from_utf8(answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 404 Not Found\r\n"), "{head}");
    assert!(head.contains(&format!("content-length: {}\r\n", body.len())));
    let error: Value = serde_json::from_str(body).unwrap();
    assert_eq!(error["error"]["code"], "channel_not_found");
}

/// A head sent a few bytes at a time is not taken by the direct path; hyper
/// reads the rest and the stream works all the same.
#[tokio::test]
async fn a_head_split_over_many_writes_still_streams() {
    let s = Running::start(|_| {}).await;
    s.channel_with_listener().await;
    s.dispatch(1).await;
    let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    raw.set_nodelay(true).unwrap();
    let request = b"GET /v1/channels/c/listeners/l/events HTTP/1.1\r\nHost: x\r\n\r\n";
    for piece in request.chunks(5) {
        raw.write_all(piece).await.unwrap();
        raw.flush().await.unwrap();
    }
    let mut text = String::new();
    read_until(&mut raw, &mut text, "data: 1\n\n").await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
}

/// Hostile first requests on stream routes get hyper's answers, and the
/// server goes on serving.
#[tokio::test]
async fn malformed_stream_requests_are_refused_and_the_server_goes_on() {
    let s = Running::start(|_| {}).await;
    s.channel_with_listener().await;
    let long = format!(
        "GET /v1/channels/c/listeners/l/events HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(512 * 1024)
    );
    let cases: Vec<(&[u8], &str)> = vec![
        (
            b"GET /v1/channels/c/listeners/l/events HTTP/1.1\r\nBad Header: x\r\n\r\n",
            "400",
        ),
        (
            b"GET /v1/channels/c/listeners/l/events HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            "400",
        ),
        (b"\xff\xfe\xfd garbage\r\n\r\n", "400"),
        (long.as_bytes(), "431"),
    ];
    for (request, status) in cases {
        let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        // The server may answer and close before taking it all.
        let _ = raw.write_all(request).await;
        let mut answer = Vec::new();
        let what = format!("the answer {status}");
        let _ = within(&what, raw.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        // Closing with the rest of a huge head unread resets the connection,
        // which may discard the 431 before the client reads it.
        let reset = status == "431" && answer.is_empty();
        assert!(
            reset || answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{status}: {answer:?}"
        );
    }
    s.dispatch(5).await;
    let response = s.open_events(Via::Direct).await;
    let mut events = events_of(response);
    assert_eq!(within("an event", events.next()).await.unwrap().data, "5");
}

/// A connection that never sends a request head is closed after the head
/// timeout (it would otherwise hold a connection slot for ever).
#[tokio::test]
async fn a_silent_connection_is_closed() {
    let s = Running::start(|c| c.http.request_timeout_secs = 1).await;
    let mut raw = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let mut sink = Vec::new();
    within("the connection to close", raw.read_to_end(&mut sink))
        .await
        .unwrap();
    assert!(sink.is_empty());
}

/// `EventSource` on another origin's page: the stream's head allows that
/// origin, whichever path serves it.
async fn a_stream_opened_from_an_allowed_origin_carries_cors_headers(via: Via) {
    let origin = "https://app.example";
    let s = Running::start(|c| c.http.cors_origins = vec![origin.into()]).await;
    s.channel_with_listener().await;
    s.dispatch(1).await;
    let response = s
        .stream_get(via, "/v1/channels/c/listeners/l/events")
        .await
        .header("origin", origin)
        .send()
        .await
        .unwrap();
    let allowed = response.headers().get("access-control-allow-origin");
    assert_eq!(allowed.and_then(|v| v.to_str().ok()), Some(origin));
    let mut events = events_of(response);
    assert_eq!(within("an event", events.next()).await.unwrap().data, "1");
}

/// With tokens configured, a stream without one is refused with the API's
/// error shape, and `?access_token=` (what `EventSource` can send) opens it.
async fn a_stream_needs_a_token_when_tokens_are_configured(via: Via) {
    let reader = "reader-token-0123456789";
    let s = Running::start(|c| {
        c.http.subscribe_tokens = vec![eric_server::http::Token::new(reader)];
    })
    .await;
    let path = "/v1/channels/c/listeners/l/events";
    let refused = s.stream_get(via, path).await.send().await.unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    // Past the check, the usual answer: this channel does not exist.
    let with_token = format!("{path}?access_token={reader}");
    let answer = s.stream_get(via, &with_token).await.send().await.unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::NOT_FOUND);
}
