//! The hardening review's attacks, run against real `eric serve` processes
//! on both engines at once, while a prober asks `/healthz` every 20 ms: the
//! node must answer every probe (each within a 5 s bound) throughout, and
//! every attack must get its typed answer. Probe latencies, the node's CPU
//! time and its memory before and after are reported (`--nocapture`), not
//! asserted: timing belongs to benchmarks.
//!
//! Every attack is bounded in bytes, connections and time, and aims at the
//! node's loopback address only.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use eric_redis::test_support::TestRedis;
use eric_tests::{Http, Node, within};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// How long one probe may take before it counts as unanswered.
const PROBE_BOUND: Duration = Duration::from_secs(5);
/// What one flooder sends at most before giving up on being cut.
const FLOOD_BOUND: usize = 256 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_node_survives_every_attack_and_keeps_answering() {
    let node = Node::start_memory(&[]).await;
    attack("memory", &node).await;
    node.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_node_survives_every_attack_and_keeps_answering() {
    let redis = TestRedis::start().await;
    let node = Node::start(redis.url(), &redis.unique_prefix(), &[]).await;
    attack("redis", &node).await;
    node.terminate().await;
}

async fn attack(engine: &str, node: &Node) {
    let http = eric_tests::client::reqwest_builder().build().unwrap();
    post(node, "/v1/channels", json!({"id": "c"}), 201).await;
    for l in ["l", "big"] {
        post(node, "/v1/channels/c/listeners", json!({"id": l}), 201).await;
    }
    let (rss_before, cpu_before) = node.usage();

    let (stop, stopped) = watch::channel(false);
    let prober = tokio::spawn(probe(node.url("/healthz"), stopped));
    let started = Instant::now();
    let (flooded, ()) = tokio::join!(
        async {
            let floods = (0..4).map(|_| flood_stream(node.addr));
            futures_util::future::join_all(floods).await
        },
        async {
            huge_declared_bodies(node.addr).await;
            huge_heads(node.addr).await;
            deep_json_everywhere(&http, node).await;
            hostile_ids(&http, node).await;
            bad_event_ids(&http, node).await;
            large_messages(&http, node).await;
        },
    );
    let attacked = started.elapsed();
    stop.send(true).unwrap();
    let (mut latencies, failures) = within("the prober to stop", prober).await.unwrap();

    let (rss_after, cpu_after) = node.usage();
    assert!(failures.is_empty(), "unanswered probes: {failures:?}");
    for answer in ["/healthz", "/readyz"] {
        let status = http.get(node.url(answer)).send().await.unwrap().status();
        assert_eq!(status, StatusCode::OK, "{answer} after the attacks");
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    eprintln!(
        "attacks on {engine}: {:.1?} of attacks; {} probes, p50 {:.2?}, p99 {:.2?}, max {:.2?}; \
         node CPU {:.2?}; RSS {} KiB -> {} KiB; flooders cut after {:?} bytes",
        attacked,
        latencies.len(),
        at(0.5),
        at(0.99),
        at(1.0),
        cpu_after.saturating_sub(cpu_before),
        rss_before,
        rss_after,
        flooded,
    );
}

/// Asks `url` every 20 ms until `stop`; the latencies and the failures.
async fn probe(url: String, mut stop: watch::Receiver<bool>) -> (Vec<Duration>, Vec<String>) {
    let client = eric_tests::client::reqwest_builder()
        .timeout(PROBE_BOUND)
        .build()
        .unwrap();
    let (mut latencies, mut failures) = (Vec::new(), Vec::new());
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            _ = stop.changed() => return (latencies, failures),
            _ = tick.tick() => {}
        }
        let sent = Instant::now();
        match client.get(&url).send().await {
            Ok(r) if r.status() == StatusCode::OK => latencies.push(sent.elapsed()),
            Ok(r) => failures.push(format!("status {}", r.status())),
            Err(e) => failures.push(e.to_string()),
        }
    }
}

/// POSTs `body` as JSON through the suite's client; the answer must be `want`.
async fn post(node: &Node, path: &str, body: Value, want: u16) {
    let (status, answer) = Http::new().post(&node.url(path), body).await;
    assert_eq!(status.as_u16(), want, "POST {path}: {answer}");
}

/// Opens a stream, then sends zeros until the node cuts the connection;
/// how many bytes it took (panics if it never cuts within the bound). The
/// zeros start once the stream answered, so the head travels alone and the
/// stream runs on the direct path (zeros in the head's packet would send
/// it to hyper, which stops reading instead: `eric-server/tests/hostile.rs`).
async fn flood_stream(addr: SocketAddr) -> usize {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"GET /stream/c/l HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let line = status_line(&mut socket).await;
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let zeros = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < FLOOD_BOUND {
        match within("a flood write", socket.write(&zeros)).await {
            Ok(0) | Err(_) => return sent,
            Ok(n) => sent += n,
        }
    }
    panic!("a flooding stream client was never cut ({sent} bytes taken)");
}

/// The status line of the first answer on `socket`.
async fn status_line(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        match within("an answer", socket.read(&mut byte)).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).trim_end().to_owned()
}

/// A body declared far over the limit is refused at once, unread.
async fn huge_declared_bodies(addr: SocketAddr) {
    for path in ["/v1/channels/c/messages", "/broadcast?channel_id=c"] {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: 99999999999\r\n\r\n"
        );
        socket.write_all(head.as_bytes()).await.unwrap();
        let line = status_line(&mut socket).await;
        assert!(line.starts_with("HTTP/1.1 413"), "{path}: {line}");
    }
}

/// A head far over the limit gets 431 (or 414 for a long target).
async fn huge_heads(addr: SocketAddr) {
    let long_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let long_target = format!(
        "GET /v1/channels/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    for (request, want) in [(long_header, "431"), (long_target, "414")] {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        // The node may answer and close before taking it all.
        let _ = socket.write_all(request.as_bytes()).await;
        let line = status_line(&mut socket).await;
        assert!(
            line.starts_with("HTTP/1.1 431") || line.starts_with(&format!("HTTP/1.1 {want}")),
            "{line}"
        );
    }
}

/// JSON nested 10,000 deep, as a message and inside an ignored key, on
/// every route that reads a JSON body: refused alike.
async fn deep_json_everywhere(http: &reqwest::Client, node: &Node) {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies = [
        format!(r#"{{"type": "t", "payload": {deep}}}"#),
        format!(r#"{{"type": "t", "payload": 1, "ignored": {deep}}}"#),
    ];
    let routes = [
        "/v1/channels/c/messages",
        "/v1/channels/c/listeners/l/messages",
        "/dispatch?channel_id=c&listener_id=l",
        "/broadcast?channel_id=c",
    ];
    for body in &bodies {
        for route in routes {
            let response = http
                .post(node.url(route))
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 422, "{route}");
        }
    }
}

/// Ids that spell the names of global structures stay in their own
/// channel: created, used and deleted without touching the listing.
async fn hostile_ids(http: &reqwest::Client, node: &Node) {
    let listing = || async { Http::new().get(&node.url("/v1/channels")).await.1 };
    let before = listing().await;
    for id in [
        "channels",
        "kv",
        "leases",
        "index",
        "%",
        "{channels}",
        "a:b",
        "*",
    ] {
        post(node, "/v1/channels", json!({"id": id}), 201).await;
        let path: String = id
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<Vec<_>>()
            .concat();
        post(
            node,
            &format!("/v1/channels/{path}/listeners"),
            json!({"id": id}),
            201,
        )
        .await;
        post(
            node,
            &format!("/v1/channels/{path}/messages"),
            json!({"type": "t", "payload": id}),
            202,
        )
        .await;
        let status = http
            .delete(node.url(&format!("/v1/channels/{path}")))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::NO_CONTENT, "{id}");
    }
    assert_eq!(listing().await, before);
}

/// Event ids that are not plain decimal numbers are refused.
async fn bad_event_ids(http: &reqwest::Client, node: &Node) {
    for bad in ["+1", " 2x", "abc", "99999999999999999999999", "-1"] {
        let status = http
            .get(node.url("/v1/channels/c/listeners/l/events"))
            .header("last-event-id", bad)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
    }
}

/// 1 MB messages to one listener stop at its queue's bound long before
/// 300 of them: the node refuses instead of growing.
async fn large_messages(http: &reqwest::Client, node: &Node) {
    // Just under the default body limit (1 MiB) with its envelope.
    let payload = "x".repeat(1_000_000);
    let body = json!({"type": "t", "payload": payload}).to_string();
    let mut accepted = 0;
    for _ in 0..300 {
        let response = http
            .post(node.url("/v1/channels/c/listeners/big/messages"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            202 => accepted += 1,
            413 | 429 | 507 => break,
            other => panic!("a large dispatch answered {other}"),
        }
    }
    assert!(accepted < 300, "300 dispatches of 1 MB were all queued");
    eprintln!("large messages: {accepted} of 1 MB queued before the bound refused");
}
