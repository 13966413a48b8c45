//! Hostile clients over real sockets: a stream client that floods the
//! connection, a body declared larger than the limit. The server runs on its
//! own runtime (two workers, as on a small machine), so a server that spins
//! cannot starve the test's clients and deadlines; every test proves the
//! server keeps answering others.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use eric_server::{Config, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(20);

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A server on port 0, on a runtime of its own.
struct Running {
    addr: SocketAddr,
    token: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
    http: reqwest::Client,
}

impl Running {
    fn start(tune: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        let token = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let stop = token.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut config = Config::default();
                // In memory: no data directory to share.
                config.storage.engine = eric_server::StorageEngine::Memory;
                config.http.addr = "127.0.0.1:0".parse().unwrap();
                tune(&mut config);
                let server = Server::bind(config).await.unwrap();
                tx.send(server.http_addr().unwrap()).unwrap();
                server.run(stop).await.unwrap();
            });
            // Whatever still runs (a spinning connection) is dropped here.
            runtime.shutdown_background();
        });
        let addr = rx.recv_timeout(DEADLINE).unwrap();
        Self {
            addr,
            token,
            thread: Some(thread),
            http: eric_client::http_client_builder(None, false)
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn post(&self, path: &str, body: Value) {
        let response = self.http.post(self.url(path)).json(&body).send().await;
        let status = response.unwrap().status();
        assert!(status.is_success(), "{path}: {status}");
    }

    /// `/healthz` on a new connection, `n` times; the latencies.
    async fn probe(&self, n: usize) -> Vec<Duration> {
        let mut latencies = Vec::with_capacity(n);
        for _ in 0..n {
            let started = Instant::now();
            let response = within(
                "a /healthz probe",
                self.http.get(self.url("/healthz")).send(),
            )
            .await
            .unwrap();
            assert!(response.status().is_success());
            within("a /healthz body", response.bytes()).await.unwrap();
            latencies.push(started.elapsed());
        }
        latencies
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.token.cancel();
        // A server that spins never finishes: after a failure, leave it.
        if let Some(thread) = self.thread.take()
            && !std::thread::panicking()
        {
            let _ = thread.join();
        }
    }
}

/// How a flooder opens its stream.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Via {
    /// As the connection's first request: the server's own writer.
    Direct,
    /// After a `/healthz` on the same keep-alive connection: hyper.
    Hyper,
}

/// How a flood ended.
#[derive(Debug)]
enum Flood {
    /// The server closed the connection after taking this many bytes.
    Closed(u64),
    /// The server stopped reading: a write made no progress for
    /// [`STALLED`] after this many bytes.
    Stalled(u64),
}

/// A write that makes no progress for this long means the server stopped
/// reading (the kernel's buffers are full). Not a timing assertion: a
/// server that keeps reading never lets a write wait this long.
const STALLED: Duration = Duration::from_secs(2);

/// Reads until `needle` has been seen.
async fn read_until(conn: &mut TcpStream, needle: &str) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before {needle:?}: {seen:?}");
        seen.extend_from_slice(&buf[..n]);
    }
}

/// Opens listener `l`'s stream `via` one path, then sends zero bytes until
/// the server closes the connection or stops reading. `flooding` fires once
/// the stream is open and flooding has begun.
async fn flood(
    addr: SocketAddr,
    via: Via,
    l: String,
    flooding: tokio::sync::oneshot::Sender<()>,
) -> Flood {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    if via == Via::Hyper {
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        read_until(&mut conn, "}").await;
    }
    let head = format!("GET /v1/channels/c/listeners/{l}/events HTTP/1.1\r\nHost: x\r\n\r\n");
    conn.write_all(head.as_bytes()).await.unwrap();
    read_until(&mut conn, ": connected").await;
    let zeros = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    let mut flooding = Some(flooding);
    loop {
        match tokio::time::timeout(STALLED, conn.write(&zeros)).await {
            Ok(Ok(0) | Err(_)) => return Flood::Closed(sent),
            Ok(Ok(n)) => sent += n as u64,
            Err(_) => return Flood::Stalled(sent),
        }
        if let Some(tx) = flooding.take() {
            let _ = tx.send(());
        }
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q) as usize]
}

/// Four clients open streams and then send zero bytes without end; probes
/// to `/healthz` meanwhile are all answered, and each flood ends: on the
/// server's own writer the server closes the connection, under hyper it
/// stops reading.
async fn stream_flooders_do_not_stall_the_server(via: Via) {
    let s = Running::start(|_| {});
    s.post("/v1/channels", json!({"id": "c"})).await;
    let flooders = 4;
    let mut floods = Vec::new();
    for i in 0..flooders {
        s.post("/v1/channels/c/listeners", json!({"id": format!("l{i}")}))
            .await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        floods.push((tokio::spawn(flood(s.addr, via, format!("l{i}"), tx)), rx));
    }
    let mut tasks = Vec::new();
    for (task, flooding) in floods {
        // A flood may end before its first write is through (closed).
        let _ = within("a flood to begin", flooding).await;
        tasks.push(task);
    }
    let mut latencies = s.probe(20).await;
    latencies.sort();
    let mut ends = Vec::new();
    for task in tasks {
        ends.push(within("a flood to end", task).await.unwrap());
    }
    eprintln!(
        "{via:?}: probes p50 {:?} max {:?}; floods {ends:?}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 1.0),
    );
    for end in ends {
        match (via, end) {
            // Closed after a small bound (plus what the kernel buffered).
            (Via::Direct, Flood::Closed(sent)) => assert!(sent < 16 << 20, "{sent}"),
            // Hyper reads no further than its buffer while a response streams.
            (Via::Hyper, Flood::Stalled(sent) | Flood::Closed(sent)) => {
                assert!(sent < 16 << 20, "{sent}")
            }
            (via, end) => panic!("{via:?}: {end:?}"),
        }
    }
}

#[tokio::test]
async fn stream_flooders_on_the_direct_path_are_closed() {
    stream_flooders_do_not_stall_the_server(Via::Direct).await;
}

#[tokio::test]
async fn stream_flooders_under_hyper_are_not_read() {
    stream_flooders_do_not_stall_the_server(Via::Hyper).await;
}

/// Sends `request` on a new connection; the answer's status and JSON body
/// (the connection is read until the server closes it or the body is whole).
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, Value) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    within("an answer", async {
        loop {
            let text = String::from_utf8_lossy(&seen).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n")
                && let Ok(value) = serde_json::from_str::<Value>(body)
            {
                let status = head[9..12].parse().unwrap();
                return (status, value);
            }
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before an answer: {text:?}");
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
}

/// A body declared larger than `http.max_body_bytes` is refused at once,
/// before any of it is sent, on any route.
#[tokio::test]
async fn a_declared_oversized_body_is_refused_before_it_is_read() {
    // A long time limit: an answer that waits for the body fails the
    // deadline instead of coming back as 503.
    let s = Running::start(|c| c.http.request_timeout_secs = 600);
    for (method, path) in [
        ("POST", "/v1/channels"),
        ("POST", "/dispatch?channel_id=c&listener_id=l"),
        ("GET", "/healthz"),
    ] {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 99999999999\r\n\r\n"
        );
        let started = Instant::now();
        let (status, body) = raw(s.addr, head.as_bytes()).await;
        eprintln!(
            "{method} {path}: {status} {body} in {:?}",
            started.elapsed()
        );
        assert_eq!(status, 413, "{path}: {body}");
        assert_eq!(body["error"]["code"], "payload_too_large", "{path}");
    }
    // The limit itself is allowed: a declared length of exactly the limit
    // is read (and then refused as JSON, which it is not).
    let limit = Config::default().http.max_body_bytes;
    let mut request = format!(
        "POST /v1/channels HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {limit}\r\n\r\n"
    )
    .into_bytes();
    request.extend(std::iter::repeat_n(b'x', limit));
    let (status, body) = raw(s.addr, &request).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("malformed_json"))
    );
}

/// A body within the limit that trickles in ends at the time limit with
/// 503 `timeout`, and the server answers others meanwhile.
#[tokio::test]
async fn a_dribbled_body_ends_at_the_time_limit() {
    let s = Running::start(|c| c.http.request_timeout_secs = 1);
    let head = "POST /v1/channels HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 100\r\n\r\n{\"id\"";
    let answer = tokio::spawn(raw(s.addr, head.as_bytes()));
    s.probe(1).await;
    let (status, body) = answer.await.unwrap();
    assert_eq!((status, &body["error"]["code"]), (503, &json!("timeout")));
}

/// `[[...1...]]`, `depth` levels deep.
fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// Every route that takes a JSON body answers a body nested deeper than
/// the one limit with the same 422 `invalid_body`, wherever the depth sits:
/// in the payload, in a value that is kept, or in a key that is ignored.
/// Between the old limits (65 to 128 levels) and beyond serde_json's own
/// (128) alike.
#[tokio::test]
async fn json_nested_too_deep_gets_one_answer_on_every_route() {
    let s = Running::start(|_| {});
    s.post("/v1/channels", json!({"id": "c"})).await;
    s.post("/v1/channels/c/listeners", json!({"id": "l"})).await;
    // A message's envelope is one level; its payload may have 64 more.
    let limit = eric_core::message::MAX_PAYLOAD_DEPTH;
    let message_routes = [
        "/v1/channels/c/listeners/l/messages",
        "/v1/channels/c/messages",
        "/dispatch?channel_id=c&listener_id=l",
        "/broadcast?channel_id=c",
    ];
    let mut cases = Vec::new();
    for route in message_routes {
        for depth in [limit + 1, 200] {
            let deep = nested(depth);
            cases.push((route, format!(r#"{{"type": "t", "payload": {deep}}}"#)));
            cases.push((
                route,
                format!(r#"{{"type": "t", "payload": 1, "ignored": {deep}}}"#),
            ));
        }
    }
    for depth in [limit + 1, 200] {
        let deep = nested(depth);
        cases.push((
            "/v1/channels",
            format!(r#"{{"id": "d", "settings": {{"queue_capacity": {deep}}}}}"#),
        ));
        cases.push((
            "/v1/channels",
            format!(r#"{{"id": "d", "unknown": {deep}}}"#),
        ));
        cases.push((
            "/v1/channels/c/listeners",
            format!(r#"{{"id": "m", "unknown": {deep}}}"#),
        ));
    }
    let mut wrong = Vec::new();
    for (route, body) in cases {
        let response = s
            .http
            .post(s.url(route))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if (status, &answer["error"]["code"]) != (422, &json!("invalid_body")) {
            let (depth, at) = (body.matches('[').count(), body.find('[').unwrap());
            let code = answer["error"]["code"].as_str().unwrap_or("-").to_owned();
            let key = &body[at.saturating_sub(12)..at];
            wrong.push(format!("{route} {key}{depth} deep: {status} {code}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // The deepest payload allowed still goes through, on both APIs.
    for route in message_routes {
        let body = format!(r#"{{"type": "t", "payload": {}}}"#, nested(limit));
        let response = s
            .http
            .post(s.url(route))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{route}: {}",
            response.status()
        );
    }
}
