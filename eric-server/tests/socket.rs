//! eric's Unix-socket protocol, against a whole server started in-process:
//! the reference's byte sequences, its error
//! texts, the fixed weaknesses (bounded reads, hostile input, streams whose
//! client left, removed listeners), the socket file's life, channels shared
//! with HTTP, and the reference's Python `SocketClient` unchanged.

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use eric_server::{Config, Server};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long any one expected event may take.
const DEADLINE: Duration = Duration::from_secs(10);

struct TestServer {
    /// Holds the socket's directory.
    _dir: tempfile::TempDir,
    path: PathBuf,
    http: SocketAddr,
    token: CancellationToken,
    task: JoinHandle<eric_server::Result<()>>,
}

impl TestServer {
    async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    async fn start_with(tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eric.sock");
        Self::start_at(dir, path, tune).await
    }

    async fn start_at(
        dir: tempfile::TempDir,
        path: PathBuf,
        tune: impl FnOnce(&mut Config),
    ) -> Self {
        let server = Server::bind(config(&path, tune)).await.unwrap();
        let http = server.http_addr().unwrap();
        let token = CancellationToken::new();
        let task = tokio::spawn(server.run(token.clone()));
        Self {
            _dir: dir,
            path,
            http,
            token,
            task,
        }
    }

    async fn call(&self, request: &str) -> String {
        call(&self.path, request.as_bytes()).await
    }

    /// Opens a stream (`l` or `w`): the request is sent and half-closed.
    async fn stream(&self, request: &str) -> BufReader<UnixStream> {
        let mut socket = within(UnixStream::connect(&self.path)).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        socket.shutdown().await.unwrap();
        BufReader::new(socket)
    }

    async fn stop(self) {
        self.token.cancel();
        within(self.task).await.unwrap().unwrap();
    }
}

fn config(path: &Path, tune: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".parse().unwrap();
    config.socket.path = Some(path.to_owned());
    // The default engine, on disk, in the test's own directory.
    config.storage.data_dir = path.with_extension("data");
    tune(&mut config);
    config
}

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .expect("the expected event did not happen in time")
}

/// Sends one request, half-closes, reads the answer to end of file.
async fn call(path: &Path, request: &[u8]) -> String {
    within(async {
        let mut socket = UnixStream::connect(path).await.unwrap();
        socket.write_all(request).await.unwrap();
        socket.shutdown().await.unwrap();
        let mut answer = Vec::new();
        socket.read_to_end(&mut answer).await.unwrap();
        String::from_utf8(answer).unwrap()
    })
    .await
}

async fn next_line(stream: &mut BufReader<UnixStream>) -> String {
    let mut line = String::new();
    within(stream.read_line(&mut line)).await.unwrap();
    line
}

async fn rest(stream: &mut BufReader<UnixStream>) -> String {
    let mut rest = String::new();
    within(stream.read_to_string(&mut rest)).await.unwrap();
    rest
}

/// The `l` request for a listener.
fn listen(channel: &str, listener: &str) -> String {
    format!(r#"{{"v": "l", "c": "{channel}", "r": "{listener}"}}"#)
}

/// The `rc` request for a channel.
fn remove_channel(channel: &str) -> String {
    format!(r#"{{"v": "rc", "c": "{channel}"}}"#)
}

/// A stream line as the reference writes it (`data` given as its text).
fn line(event: &str, data: &str) -> String {
    format!("{{\"event\": \"{event}\", \"retry\": 5, \"data\": {data}}}\n")
}

/// A channel with one listener: `(channel, listener)`.
async fn channel_with_listener(server: &TestServer) -> (String, String) {
    let channel = server.call(r#"{"v": "c"}"#).await;
    let listener = server
        .call(&format!(r#"{{"v": "r", "c": "{channel}"}}"#))
        .await;
    (channel, listener)
}

#[tokio::test]
async fn the_reference_byte_sequences() {
    let server = TestServer::start().await;
    let channel = server.call(r#"{"v": "c"}"#).await;
    assert_eq!(channel.len(), 36, "{channel:?}");
    let listener = server
        .call(&format!(r#"{{"v": "r", "c": "{channel}"}}"#))
        .await;
    assert_eq!(listener.len(), 36, "{listener:?}");
    let dispatch = format!(
        r#"{{"v": "d", "c": "{channel}", "r": "{listener}", "t": "greet", "p": {{"a": 1}}}}"#
    );
    assert_eq!(server.call(&dispatch).await, "ack");
    let all = format!(r#"{{"v": "b", "c": "{channel}", "t": "all", "p": "hi"}}"#);
    assert_eq!(server.call(&all).await, "ack");
    let nop = format!(r#"{{"v": "b", "c": "{channel}", "t": "nop"}}"#);
    assert_eq!(server.call(&nop).await, "ack");

    let mut stream = server
        .stream(&format!(
            r#"{{"v": "l", "c": "{channel}", "r": "{listener}"}}"#
        ))
        .await;
    assert_eq!(
        next_line(&mut stream).await,
        "{\"event\": \"greet\", \"retry\": 5, \"data\": {\"a\": 1}}\n"
    );
    assert_eq!(
        next_line(&mut stream).await,
        "{\"event\": \"all\", \"retry\": 5, \"data\": \"hi\"}\n"
    );
    assert_eq!(
        next_line(&mut stream).await,
        "{\"event\": \"nop\", \"retry\": 5, \"data\": null}\n"
    );

    assert_eq!(
        server.call(r#"{"v": "r", "c": "nope"}"#).await,
        "InvalidChannelException('No channel with id nope')"
    );
    drop(stream);
    server.stop().await;
}

#[tokio::test]
async fn non_ascii_is_escaped_as_python_does() {
    let server = TestServer::start().await;
    let (channel, listener) = channel_with_listener(&server).await;
    let request =
        format!(r#"{{"v": "d", "c": "{channel}", "r": "{listener}", "t": "ü", "p": "é€"}}"#);
    assert_eq!(server.call(&request).await, "ack");
    let payload =
        "{\"k\":[1.0,1e16,-0,\"😀\\n\"],\"k\":{\"z\":true}, \"a\" : 12345678901234567890123}";
    let request =
        format!(r#"{{"v": "d", "c": "{channel}", "r": "{listener}", "t": "x", "p": {payload}}}"#);
    assert_eq!(server.call(&request).await, "ack");
    let mut stream = server.stream(&listen(&channel, &listener)).await;
    assert_eq!(
        next_line(&mut stream).await,
        "{\"event\": \"\\u00fc\", \"retry\": 5, \"data\": \"\\u00e9\\u20ac\"}\n"
    );
    // `json.dumps(json.loads(payload))` in CPython 3.11.
    assert_eq!(
        next_line(&mut stream).await,
        "{\"event\": \"x\", \"retry\": 5, \"data\": {\"k\": {\"z\": true}, \"a\": 12345678901234567890123}}\n"
    );
    server.stop().await;
}

#[tokio::test]
async fn malformed_and_hostile_requests_get_error_texts_and_the_server_goes_on() {
    let server = TestServer::start().await;
    let long_id = "x".repeat(200);
    let cases: Vec<(Vec<u8>, String)> = vec![
        (b"".to_vec(), "JSONDecodeError('Expecting value: line 1 column 1 (char 0)')".into()),
        (b"hello".to_vec(), "JSONDecodeError('Expecting value: line 1 column 1 (char 0)')".into()),
        (b"{\"v\": \"c\"".to_vec(), "JSONDecodeError(\"Expecting ',' delimiter: line 1 column 10 (char 9)\")".into()),
        (b"[1, 2]".to_vec(), "TypeError('list indices must be integers or slices, not str')".into()),
        (
            b"\xff\xfe{}".to_vec(),
            "UnicodeDecodeError('utf-8', b'\\xff\\xfe{}', 0, 1, 'invalid start byte')".into(),
        ),
        (br#"{"c": "x"}"#.to_vec(), r#"InvalidMessageFormat('{"c": "x"}')"#.into()),
        (
            br#"{"v": "d", "c": "x", "r": "y"}"#.to_vec(),
            r#"InvalidMessageFormat('{"v": "d", "c": "x", "r": "y"}')"#.into(),
        ),
        (
            br#"{"v": "zz", "c": "x"}"#.to_vec(),
            "InvalidMessageFormat('unknown verb \"zz\" (expected c, r, d, b, l, w, rl or rc)')".into(),
        ),
        (
            br#"{"v": "r", "c": "a b"}"#.to_vec(),
            "InvalidChannelException('No channel with id a b')".into(),
        ),
        (
            format!(r#"{{"v": "r", "c": "{long_id}"}}"#).into_bytes(),
            format!("InvalidChannelException('No channel with id {long_id}')"),
        ),
        (
            br#"{"v": "c", "c": "a b"}"#.to_vec(),
            "InvalidMessageFormat(\"invalid channel id: it contains the forbidden character ' '\")".into(),
        ),
        (
            format!(r#"{{"v": "c", "c": "{long_id}"}}"#).into_bytes(),
            "InvalidMessageFormat('invalid channel id: it is 200 bytes long')".into(),
        ),
        (
            br#"{"v": "b", "c": "x", "t": "x", "p": NaN}"#.to_vec(),
            "InvalidMessageFormat('request is not strict JSON: expected value at line 1 column 37')".into(),
        ),
        (
            br#"{"v": "b", "c": "x", "t": "x", "p": "\ud800"}"#.to_vec(),
            r"InvalidMessageFormat('request is not strict JSON: lone surrogate \\ud800 at line 1 column 38')".into(),
        ),
        (
            "[".repeat(100_000).into_bytes(),
            "JSONDecodeError('Expecting value: line 1 column 100001 (char 100000)')".into(),
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(
            call(&server.path, &request).await,
            expected,
            "{:?}",
            String::from_utf8_lossy(&request)
        );
        assert_eq!(
            server.call(r#"{"v": "c"}"#).await.len(),
            36,
            "the server still answers"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn oversized_and_unfinished_requests_do_not_block_the_server() {
    let server = TestServer::start_with(|c| c.socket.max_request_bytes = 1024).await;
    let big = format!(r#"{{"v": "c", "pad": "{}"}}"#, "x".repeat(100_000));
    assert_eq!(
        call(&server.path, big.as_bytes()).await,
        "InvalidMessageFormat('request larger than 1024 bytes')"
    );
    // A client that never half-closes holds only its own connection.
    let mut stuck = within(UnixStream::connect(&server.path)).await.unwrap();
    stuck.write_all(br#"{"v": "c""#).await.unwrap();
    assert_eq!(server.call(r#"{"v": "c"}"#).await.len(), 36);
    drop(stuck);
    server.stop().await;
}

#[tokio::test]
async fn each_verb_keeps_the_reference_error_texts() {
    let server = TestServer::start().await;
    let (channel, listener) = channel_with_listener(&server).await;
    let d = format!(r#"{{"v": "d", "c": "{channel}", "r": "nobody", "t": "x"}}"#);
    assert_eq!(
        server.call(&d).await,
        "InvalidListenerException('Invalid listener nobody')"
    );
    let d = format!(r#"{{"v": "d", "c": "{channel}", "t": "x"}}"#);
    assert_eq!(
        server.call(&d).await,
        "InvalidListenerException('Invalid listener None')"
    );
    let rl = format!(r#"{{"v": "rl", "c": "{channel}", "r": "nobody"}}"#);
    assert_eq!(server.call(&rl).await, "InvalidListenerException('nobody')");
    let rl = format!(r#"{{"v": "rl", "c": "{channel}"}}"#);
    assert_eq!(server.call(&rl).await, "InvalidListenerException(None)");
    let l = format!(r#"{{"v": "l", "c": "{channel}", "r": "nobody"}}"#);
    assert_eq!(server.call(&l).await, "InvalidListenerException()");
    assert_eq!(
        server.call(r#"{"v": "b", "t": "x"}"#).await,
        "InvalidChannelException('No channel with id None')"
    );
    assert_eq!(
        server.call(r#"{"v": "rc", "c": "nope"}"#).await,
        "InvalidChannelException('No channel with id nope')"
    );
    assert_eq!(
        server.call(r#"{"v": "w", "c": "nope"}"#).await,
        "InvalidChannelException('No channel with id nope')"
    );
    // The server's notice types are reserved (a deviation, so no producer
    // can forge a notice), on both verbs, with an error text.
    let d = format!(r#"{{"v": "d", "c": "{channel}", "r": "{listener}", "t": "eric-end"}}"#);
    let b = format!(r#"{{"v": "b", "c": "{channel}", "t": "eric-gap"}}"#);
    for request in [d, b] {
        let answer = server.call(&request).await;
        assert!(
            answer.starts_with("InvalidMessageFormat") && answer.contains("reserved"),
            "{answer}"
        );
    }
    // `c` with an id creates that id (the reference ignored it), once.
    assert_eq!(server.call(r#"{"v": "c", "c": "mine"}"#).await, "mine");
    assert_eq!(
        server.call(r#"{"v": "c", "c": "mine"}"#).await,
        "InvalidChannelException('Channel with id mine already exists')"
    );
    let rl = format!(r#"{{"v": "rl", "c": "{channel}", "r": "{listener}"}}"#);
    assert_eq!(server.call(&rl).await, "ack");
    assert_eq!(server.call(&remove_channel(&channel)).await, "ack");
    server.stop().await;
}

#[tokio::test]
async fn an_abandoned_stream_stops_consuming_and_loses_nothing() {
    let server = TestServer::start().await;
    let (channel, listener) = channel_with_listener(&server).await;
    let dispatch = |n: u32| {
        format!(r#"{{"v": "d", "c": "{channel}", "r": "{listener}", "t": "m", "p": {n}}}"#)
    };
    assert_eq!(server.call(&dispatch(1)).await, "ack");
    let mut first = server.stream(&listen(&channel, &listener)).await;
    assert_eq!(next_line(&mut first).await, line("m", "1"));
    drop(first);
    // The first stream takes this one, fails to write it and puts it back.
    assert_eq!(server.call(&dispatch(2)).await, "ack");
    let mut second = server.stream(&listen(&channel, &listener)).await;
    assert_eq!(next_line(&mut second).await, line("m", "2"));
    assert_eq!(server.call(&dispatch(3)).await, "ack");
    assert_eq!(next_line(&mut second).await, line("m", "3"));
    server.stop().await;
}

#[tokio::test]
async fn removing_a_streamed_listener_ends_its_stream_with_one_error_text() {
    let server = TestServer::start().await;
    let (channel, listener) = channel_with_listener(&server).await;
    let mut stream = server.stream(&listen(&channel, &listener)).await;
    let b = format!(r#"{{"v": "b", "c": "{channel}", "t": "x", "p": 1}}"#);
    assert_eq!(server.call(&b).await, "ack");
    assert_eq!(next_line(&mut stream).await, line("x", "1"));
    let rl = format!(r#"{{"v": "rl", "c": "{channel}", "r": "{listener}"}}"#);
    assert_eq!(server.call(&rl).await, "ack");
    let ended = format!("InvalidListenerException('{listener}')");
    assert_eq!(rest(&mut stream).await, ended);

    // `rc` removes the channel's listeners: their streams end too. The
    // stream is open once a broadcast arrives on it.
    let (channel, listener) = channel_with_listener(&server).await;
    let mut stream = server.stream(&listen(&channel, &listener)).await;
    let b = format!(r#"{{"v": "b", "c": "{channel}", "t": "x", "p": 2}}"#);
    assert_eq!(server.call(&b).await, "ack");
    assert_eq!(next_line(&mut stream).await, line("x", "2"));
    assert_eq!(server.call(&remove_channel(&channel)).await, "ack");
    let ended = format!("InvalidListenerException('{listener}')");
    assert_eq!(rest(&mut stream).await, ended);
    server.stop().await;
}

#[tokio::test]
async fn watch_streams_broadcasts_and_ends_with_its_channel() {
    let server = TestServer::start().await;
    let (channel, listener) = channel_with_listener(&server).await;
    let mut watch = server
        .stream(&format!(r#"{{"v": "w", "c": "{channel}"}}"#))
        .await;
    // Its listener is there once the channel lists two: broadcasts reach it.
    let http = eric_client::http_client_builder(None, false)
        .build()
        .unwrap();
    within(async {
        loop {
            let url = format!("http://{}/", server.http);
            let listing: serde_json::Value =
                http.get(url).send().await.unwrap().json().await.unwrap();
            if listing[&channel].as_array().map_or(0, Vec::len) == 2 {
                break;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    let d = format!(r#"{{"v": "d", "c": "{channel}", "r": "{listener}", "t": "private"}}"#);
    assert_eq!(server.call(&d).await, "ack");
    let b = format!(r#"{{"v": "b", "c": "{channel}", "t": "all", "p": [1, 2]}}"#);
    assert_eq!(server.call(&b).await, "ack");
    assert_eq!(next_line(&mut watch).await, line("all", "[1, 2]"));
    assert_eq!(server.call(&remove_channel(&channel)).await, "ack");
    let ended = format!("InvalidChannelException('No channel with id {channel}')");
    assert_eq!(rest(&mut watch).await, ended);
    server.stop().await;
}

#[tokio::test]
async fn channels_are_shared_with_http() {
    let server = TestServer::start().await;
    let channel = server.call(r#"{"v": "c"}"#).await;
    let http = eric_client::http_client_builder(None, false)
        .build()
        .unwrap();
    let base = format!("http://{}", server.http);
    let listed: Vec<String> = http
        .get(format!("{base}/channels"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed.contains(&channel), "{listed:?}");
    let created = http
        .put(format!("{base}/create?channel_id=from-http"))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success());
    assert_eq!(
        server.call(r#"{"v": "r", "c": "from-http"}"#).await.len(),
        36
    );
    server.stop().await;
}

#[tokio::test]
async fn the_socket_file_is_private_and_removed_at_shutdown() {
    let server = TestServer::start().await;
    let path = server.path.clone();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // It was bound in a private directory (so it was never reachable with
    // the umask's mode) that is gone once the socket is in place.
    let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        [path.file_name().unwrap()],
        "only the socket remains"
    );
    assert_eq!(server.call(r#"{"v": "c"}"#).await.len(), 36);
    let dir = server._dir.path().to_owned();
    let TestServer {
        _dir, token, task, ..
    } = server;
    token.cancel();
    within(task).await.unwrap().unwrap();
    assert!(!path.exists(), "the socket file is gone");
    assert!(dir.exists());
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced_but_nothing_else_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eric.sock");
    // A socket file nobody listens on: what a crashed server leaves.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let server = TestServer::start_at(dir, path.clone(), |_| {}).await;
    assert_eq!(server.call(r#"{"v": "c"}"#).await.len(), 36);
    // A live socket is not taken over.
    let taken = Server::bind(config(&path, |_| {})).await;
    assert!(
        matches!(taken, Err(eric_server::Error::Socket { .. })),
        "{taken:?}"
    );
    assert_eq!(server.call(r#"{"v": "c"}"#).await.len(), 36);
    server.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    let refused = Server::bind(config(&file, |_| {})).await;
    assert!(
        matches!(refused, Err(eric_server::Error::Socket { .. })),
        "{refused:?}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
}

/// The reference's `SocketClient` (eric-sse 2.1.1.2), unchanged, against
/// eric: `tests/python/socket_client.py`.
#[tokio::test]
async fn the_python_socket_client_works_unchanged() {
    let probe = tokio::process::Command::new("python3")
        .args(["-c", "import eric_sse.clients"])
        .output()
        .await;
    if !probe.as_ref().is_ok_and(|out| out.status.success()) {
        panic!(
            "this test needs python3 with eric-sse 2.1.1.2 (`python3 -m pip install eric-sse==2.1.1.2`): \
             run scripts/install-test-deps ({probe:?})"
        );
    }
    let server = TestServer::start().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/socket_client.py");
    let run = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(&server.path)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .unwrap()
        .unwrap();
    assert!(
        out.status.success(),
        "the Python client failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    server.stop().await;
}
