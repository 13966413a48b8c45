#![allow(clippy::unwrap_used)]
//! Smoke tests of the load tool: the built `eric` binary runs each mode with
//! small parameters against a server started in this process, and must exit
//! cleanly with figures that make sense. Nothing here asserts a speed.

use std::path::PathBuf;

use eric_redis::test_support::TestRedis;
use eric_server::test_support::{TestCerts, TestServer, config_on};
use serde_json::Value;
use tempfile::TempDir;

/// A server on a free port with a socket in a temporary directory.
struct Running {
    url: String,
    socket: PathBuf,
    server: TestServer,
    _dir: TempDir,
}

impl Running {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("eric.sock");
        let mut config = config_on("127.0.0.1:0".parse().unwrap());
        config.socket.path = Some(socket.clone());
        let server = TestServer::start(config).await;
        Self {
            url: server.url(),
            socket,
            server,
            _dir: dir,
        }
    }

    /// Runs `eric --url URL load ARGS`; its output.
    async fn eric_load(&self, args: &[&str]) -> std::process::Output {
        eric_load(&self.url, args).await
    }

    /// Runs a mode with `--json`; the figures.
    async fn figures(&self, args: &[&str]) -> Value {
        figures(&self.url, args).await
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// Runs `eric --url URL load ARGS`; its output.
async fn eric_load(url: &str, args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_eric"))
        .arg("--url")
        .arg(url)
        .arg("load")
        .args(args)
        .output()
        .await
        .unwrap()
}

/// Runs a mode with `--json`; the figures.
async fn figures(url: &str, args: &[&str]) -> Value {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let output = eric_load(url, &with_json).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        output.status.success(),
        "eric load {args:?} failed:\n{stderr}\n{stdout}"
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Two nodes on one private Redis (two servers in this process, with the
/// same key prefix), as `bench/scale.sh` runs them as processes.
struct TwoNodes {
    nodes: [TestServer; 2],
    _redis: TestRedis,
}

impl TwoNodes {
    async fn start() -> Self {
        let redis = TestRedis::start().await;
        let mut config = config_on("127.0.0.1:0".parse().unwrap());
        config.redis = Some(redis.config());
        let a = TestServer::start(config.clone()).await;
        let b = TestServer::start(config).await;
        Self {
            nodes: [a, b],
            _redis: redis,
        }
    }

    /// `--NAME` followed by each node's URL for `path`, the pairs `eric
    /// load peer` takes to spread over the nodes.
    fn flags(&self, name: &str, path: &str) -> Vec<String> {
        let flag = format!("--{name}");
        self.nodes
            .iter()
            .flat_map(|node| [flag.clone(), format!("{}{path}", node.url())])
            .collect()
    }

    /// A counter of each node's `/metrics` (`eric_NAME_total`).
    async fn counters(&self, name: &str) -> [f64; 2] {
        let mut counts = [0.0; 2];
        for (count, node) in counts.iter_mut().zip(&self.nodes) {
            let text = eric_client::http_client_builder(None, false)
                .build()
                .unwrap()
                .get(format!("{}/metrics", node.url()))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let line = format!("eric_{name}_total ");
            *count = text
                .lines()
                .find_map(|l| l.strip_prefix(&line))
                .unwrap_or_else(|| panic!("no {line} in {text}"))
                .parse()
                .unwrap();
        }
        counts
    }

    async fn stop(self) {
        let [a, b] = self.nodes;
        a.stop().await;
        b.stop().await;
    }
}

fn number(figures: &Value, key: &str) -> f64 {
    figures[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no number {key} in {figures}"))
}

fn assert_latency(figures: &Value, key: &str) {
    let latency = &figures[key];
    let (p50, max) = (number(latency, "p50_us"), number(latency, "max_us"));
    assert!(number(latency, "count") > 0.0, "{figures}");
    assert!(p50 > 0.0 && p50 <= max, "{figures}");
    assert!(number(latency, "p999_us") <= max, "{figures}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_one_request_at_a_time_and_pipelined() {
    let server = Running::start().await;
    let figures = server
        .figures(&["dispatch", "--connections", "4", "--duration", "1"])
        .await;
    assert_eq!(figures["mode"], "dispatch");
    let dispatched = number(&figures, "dispatched");
    assert!(
        dispatched > 0.0 && number(&figures, "rate") > 0.0,
        "{figures}"
    );
    assert_eq!(number(&figures, "failed"), 0.0, "{figures}");
    // Nothing streams the listener: every message is still queued.
    assert_eq!(number(&figures, "queue_depth"), dispatched, "{figures}");
    assert_latency(&figures, "latency");

    let args = [
        "dispatch",
        "--connections",
        "2",
        "--duration",
        "1",
        "--batch",
        "--batch-size",
        "8",
    ];
    let figures = server
        .figures(&[&args[..], &["--listeners", "2", "--drain"]].concat())
        .await;
    assert!(number(&figures, "dispatched") > 0.0, "{figures}");
    assert_eq!(number(&figures, "failed"), 0.0, "{figures}");
    assert_latency(&figures, "latency");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_delivers_every_message_and_drains_a_backlog() {
    let server = Running::start().await;
    let args = [
        "stream",
        "--messages",
        "200",
        "--streams",
        "2",
        "--producers",
        "4",
    ];
    let figures = server.figures(&args).await;
    assert_eq!(figures["mode"], "stream");
    assert_eq!(number(&figures, "delivered"), 400.0, "{figures}");
    assert!(number(&figures, "delivery_rate") > 0.0, "{figures}");
    assert_latency(&figures, "end_to_end");
    assert_eq!(number(&figures, "backlog"), 200.0, "{figures}");
    assert!(number(&figures, "backlog_drain_rate") > 0.0, "{figures}");

    let batched = [
        "stream",
        "--messages",
        "200",
        "--batch",
        "--batch-size",
        "16",
        "--no-backlog",
    ];
    let figures = server.figures(&batched).await;
    assert_eq!(number(&figures, "delivered"), 200.0, "{figures}");
    assert!(figures.get("backlog").is_none(), "{figures}");

    // Fan-out: 50 broadcasts reach each of 3 streams.
    let broadcast = [
        "stream",
        "--messages",
        "50",
        "--streams",
        "3",
        "--broadcast",
        "--no-backlog",
    ];
    let figures = server.figures(&broadcast).await;
    assert_eq!(number(&figures, "delivered"), 150.0, "{figures}");
    server.stop().await;
}

/// The subscriber receives every event, durable and ephemeral, live and
/// from a backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_receives_every_event() {
    let server = Running::start().await;
    let args = ["subscribe", "--messages", "300", "--producers", "4"];
    let figures = server.figures(&args).await;
    assert_eq!(figures["mode"], "subscribe");
    assert_eq!(figures["subscriber"], "durable");
    assert!(number(&figures, "live_rate") > 0.0, "{figures}");
    assert_latency(&figures, "end_to_end");
    assert!(number(&figures, "backlog_rate") > 0.0, "{figures}");

    let ephemeral = ["subscribe", "--messages", "300", "--ephemeral", "--batch"];
    let figures = server.figures(&ephemeral).await;
    assert_eq!(figures["subscriber"], "ephemeral");
    assert!(number(&figures, "backlog_rate") > 0.0, "{figures}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_are_measured_in_the_server_process() {
    let server = Running::start().await;
    // The server runs in this process: its /proc files are ours.
    let pid = std::process::id().to_string();
    let args = [
        "idle",
        "--streams",
        "20",
        "--server-pid",
        &pid,
        "--window",
        "1",
    ];
    let figures = server.figures(&args).await;
    assert_eq!(figures["mode"], "idle");
    assert_eq!(number(&figures, "streams"), 20.0);
    assert!(number(&figures, "rss_with_streams_kib") > 0.0, "{figures}");
    assert!(number(&figures, "server_cpu_percent") >= 0.0, "{figures}");
    assert_eq!(number(&figures, "streams_lost"), 0.0, "{figures}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_dispatches_are_acked() {
    let server = Running::start().await;
    let path = server.socket.display().to_string();
    let args = [
        "socket",
        "--path",
        &path,
        "--requests",
        "100",
        "--concurrency",
        "4",
    ];
    let figures = server.figures(&args).await;
    assert_eq!(figures["mode"], "socket");
    assert_eq!(number(&figures, "acked"), 100.0, "{figures}");
    assert_eq!(number(&figures, "failed"), 0.0, "{figures}");
    assert!(number(&figures, "rate") > 0.0, "{figures}");
    assert_latency(&figures, "latency");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_is_readable_and_failures_exit_non_zero() {
    let server = Running::start().await;
    let output = server
        .eric_load(&["dispatch", "--connections", "1", "--duration", "1"])
        .await;
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("eric load dispatch\n"), "{text}");
    assert!(text.contains("dispatches/s"), "{text}");

    let missing = server.socket.with_file_name("missing.sock");
    let path = missing.display().to_string();
    let output = server
        .eric_load(&["socket", "--path", &path, "--requests", "1"])
        .await;
    assert!(!output.status.success());
    let error = String::from_utf8(output.stderr).unwrap();
    assert!(
        error.starts_with("eric: ") && error.contains("missing.sock"),
        "{error}"
    );
    server.stop().await;
}

/// `peer fanout` counts every stream's every message, driving eric only
/// through the URLs it is given (the channel is made here, as
/// bench/peers.sh does with curl).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_fanout_counts_every_delivery() {
    let server = Running::start().await;
    let client = eric_client::Client::new(&server.url).unwrap();
    let channel = eric_client::NewChannel::new().id("fan");
    client.create_channel(&channel).await.unwrap();
    // Over HTTP/1.1, then over HTTP/2 (h2c), two streams per connection.
    fanout_both_ways(&server.url, &[], "fan").await;
    server.stop().await;
}

/// `peer fanout` of 30 messages to 5 streams on `channel` at `base`, over
/// HTTP/1.1 and then HTTP/2 (two streams per connection), `global` going
/// before the mode (`--ca-file`): every stream gets every message, and
/// nothing stale. The arguments of the HTTP/1.1 run.
async fn fanout_both_ways(base: &str, global: &[&str], channel: &str) -> Vec<String> {
    let mut args: Vec<String> = global.iter().map(|a| (*a).to_owned()).collect();
    args.extend(
        [
            "peer",
            "fanout",
            "--publish-url",
            &format!("{base}/v1/channels/{channel}/messages"),
            "--stream-url",
            &format!("{base}/v1/channels/{channel}/events"),
            "--streams",
            "5",
            "--messages",
            "30",
        ]
        .map(str::to_owned),
    );
    for http2 in [None, Some("2")] {
        let mut run: Vec<&str> = args.iter().map(String::as_str).collect();
        if let Some(per) = http2 {
            run.extend(["--http2-streams-per-connection", per]);
        }
        let figures = figures(base, &run).await;
        assert_eq!(figures["mode"], "peer fanout");
        assert_eq!(number(&figures, "delivered"), 150.0, "{figures}");
        assert_eq!(number(&figures, "stale"), 0.0, "{figures}");
        assert!(number(&figures, "delivery_rate") > 0.0, "{figures}");
        assert_latency(&figures, "end_to_end");
    }
    args
}

/// `peer fanout` over TLS: `https://` URLs, a server certificate of a CA
/// made here and trusted through `--ca-file`; over HTTP/1.1 (ALPN
/// `http/1.1`), then HTTP/2 (ALPN `h2`, two streams per connection). Each
/// client offers only its one protocol and speaks only it, so a run that
/// delivers every message spoke it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_fanout_over_tls() {
    let (server, base, certs) = tls_server().await;
    let client = eric_client::Client::builder(&base)
        .ca_file(certs.ca_path())
        .build()
        .unwrap();
    let channel = eric_client::NewChannel::new().id("fan-tls");
    client.create_channel(&channel).await.unwrap();
    let ca = certs.ca_path();
    let args = fanout_both_ways(&base, &["--ca-file", ca.to_str().unwrap()], "fan-tls").await;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // Without the CA, the first stream fails on the certificate.
    let output = eric_load(&base, &args[2..]).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("certificate"), "{stderr}");
    server.stop().await;
}

/// The `/v1` modes over TLS (here `stream`): eric-client's clients with
/// the CA of `--ca-file`, HTTP/1.1 as over `http:`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_over_tls() {
    let (server, base, certs) = tls_server().await;
    let ca = certs.ca_path();
    let args = [
        "--ca-file",
        ca.to_str().unwrap(),
        "stream",
        "--messages",
        "50",
        "--streams",
        "2",
        "--no-backlog",
    ];
    let figures = figures(&base, &args).await;
    assert_eq!(number(&figures, "delivered"), 100.0, "{figures}");
    assert_latency(&figures, "end_to_end");
    server.stop().await;
}

/// A memory server serving TLS with a certificate of a CA made here; its
/// `https://` URL (the certificate names `localhost`), and the CA.
async fn tls_server() -> (TestServer, String, TestCerts) {
    let certs = TestCerts::new();
    let config = certs.serve_with(config_on("127.0.0.1:0".parse().unwrap()));
    let server = TestServer::start(config).await;
    let base = format!("https://localhost:{}", server.addr().port());
    (server, base, certs)
}

/// `peer per-stream` counts one message per stream per round, and tells
/// a message sent before the run (queued for one listener) from the run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_per_stream_counts_rounds_and_stale_events() {
    let server = Running::start().await;
    let client = eric_client::Client::new(&server.url).unwrap();
    let channel = eric_client::NewChannel::new().id("ps");
    client.create_channel(&channel).await.unwrap();
    for i in 0..3 {
        let id = format!("l{i}");
        client.add_listener("ps", Some(&id)).await.unwrap();
    }
    // Sent at 1 µs after the epoch: long before the run.
    let old = eric_client::Message::json("peer", &1u64).unwrap();
    let write = eric_client::Write::new();
    client.dispatch("ps", "l0", &old, &write).await.unwrap();
    let base = &server.url;
    let args = [
        "peer",
        "per-stream",
        "--publish-url",
        &format!("{base}/v1/channels/ps/listeners/l{{i}}/messages"),
        "--stream-url",
        &format!("{base}/v1/channels/ps/listeners/l{{i}}/events"),
        "--streams",
        "3",
        "--rounds",
        "10",
    ];
    let figures = server.figures(&args).await;
    assert_eq!(figures["mode"], "peer per-stream");
    assert_eq!(number(&figures, "delivered"), 30.0, "{figures}");
    assert_eq!(number(&figures, "stale"), 1.0, "{figures}");
    assert_eq!(number(&figures["round"], "count"), 10.0, "{figures}");
    assert_latency(&figures, "end_to_end");
    server.stop().await;
}

/// `peer idle` holds the streams and reads the server's processes (here,
/// this one); a stream URL that is not a stream fails the run, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_idle_holds_streams_and_wrong_urls_fail() {
    let server = Running::start().await;
    let client = eric_client::Client::new(&server.url).unwrap();
    let channel = eric_client::NewChannel::new().id("idle");
    client.create_channel(&channel).await.unwrap();
    let pid = std::process::id().to_string();
    let stream = format!("{}/v1/channels/idle/events", server.url);
    let args = [
        "peer",
        "idle",
        "--stream-url",
        &stream,
        "--streams",
        "10",
        "--pid",
        &pid,
        "--backend-pid",
        &pid,
        "--window",
        "1",
    ];
    let figures = server.figures(&args).await;
    assert_eq!(figures["mode"], "peer idle");
    assert_eq!(number(&figures, "streams"), 10.0, "{figures}");
    assert_eq!(number(&figures, "processes"), 1.0, "{figures}");
    assert!(number(&figures, "rss_with_streams_kib") > 0.0, "{figures}");
    assert!(number(&figures, "backend_cpu_percent") >= 0.0, "{figures}");
    assert_eq!(number(&figures, "streams_lost"), 0.0, "{figures}");

    let missing = format!("{}/v1/channels/missing/events", server.url);
    let output = server
        .eric_load(&[
            "peer",
            "idle",
            "--stream-url",
            &missing,
            "--streams",
            "2",
            "--pid",
            &pid,
        ])
        .await;
    assert!(!output.status.success());
    let error = String::from_utf8(output.stderr).unwrap();
    assert!(
        error.contains("missing/events") && error.contains("404"),
        "{error}"
    );
    server.stop().await;
}

/// Given each node's URLs, `peer fanout` spreads its streams and its
/// publishes over two nodes on one Redis, and every stream gets every
/// message whichever node it was published on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_fanout_spreads_over_two_nodes() {
    let nodes = TwoNodes::start().await;
    let client = eric_client::Client::new(&nodes.nodes[0].url()).unwrap();
    let channel = eric_client::NewChannel::new().id("fan");
    client.create_channel(&channel).await.unwrap();
    let mut args: Vec<String> = ["peer", "fanout", "--streams", "6", "--messages", "30"]
        .map(String::from)
        .into();
    args.extend(nodes.flags("publish-url", "/v1/channels/fan/messages"));
    args.extend(nodes.flags("stream-url", "/v1/channels/fan/events"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let figures = figures(&nodes.nodes[0].url(), &args).await;
    assert_eq!(number(&figures, "delivered"), 180.0, "{figures}");
    assert_eq!(number(&figures, "stale"), 0.0, "{figures}");
    assert_latency(&figures, "end_to_end");
    // Three streams on each node, each with every message.
    assert_eq!(nodes.counters("messages_delivered").await, [90.0; 2]);
    nodes.stop().await;
}

/// With `--channels`, `peer fanout` sends each message to one of the
/// channels (`{k}`) and each stream waits for its channel's share; the
/// CPU use of given processes, and its own, comes with the figures.
/// Without `{k}` in a URL, several channels are refused before anything
/// is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_fanout_spreads_messages_over_channels() {
    let nodes = TwoNodes::start().await;
    let client = eric_client::Client::new(&nodes.nodes[0].url()).unwrap();
    for k in 0..3 {
        let channel = eric_client::NewChannel::new().id(format!("c{k}"));
        client.create_channel(&channel).await.unwrap();
    }
    // The servers run in this process: its /proc files are theirs.
    let pid = std::process::id().to_string();
    let mut args: Vec<String> = [
        "peer",
        "fanout",
        "--channels",
        "3",
        "--streams",
        "6",
        "--messages",
        "31",
        "--publishers",
        "8",
        "--cpu-pid",
        &pid,
    ]
    .map(String::from)
    .into();
    args.extend(nodes.flags("publish-url", "/v1/channels/c{k}/messages"));
    args.extend(nodes.flags("stream-url", "/v1/channels/c{k}/events"));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let url = nodes.nodes[0].url();
    let figures = figures(&url, &args).await;
    // Channel 0 gets 11 messages, channels 1 and 2 get 10; two streams each.
    assert_eq!(number(&figures, "delivered"), 62.0, "{figures}");
    assert_eq!(number(&figures, "channels"), 3.0, "{figures}");
    assert!(number(&figures, "message_rate") > 0.0, "{figures}");
    let cpu = &figures["cpu_percent"];
    assert!(
        number(cpu, "self") >= 0.0 && number(cpu, &pid) >= 0.0,
        "{figures}"
    );
    // Each channel has a stream on each node.
    assert_eq!(nodes.counters("messages_delivered").await, [31.0; 2]);

    let one_url = format!("{url}/v1/channels/c0/events");
    let output = eric_load(
        &url,
        &[
            "peer",
            "fanout",
            "--channels",
            "3",
            "--streams",
            "3",
            "--publish-url",
            &format!("{url}/v1/channels/c{{k}}/messages"),
            "--stream-url",
            &one_url,
        ],
    )
    .await;
    assert!(!output.status.success());
    let error = String::from_utf8(output.stderr).unwrap();
    assert!(
        error.contains("--stream-url") && error.contains("has no {k}"),
        "{error}"
    );
    nodes.stop().await;
}
