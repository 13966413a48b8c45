//! What a socket stream gives back when its client goes: exactly the
//! messages it took but did not write into the socket, whatever the
//! channel's replay window, on both engines. A line written whole stays
//! delivered; a line cut by the failed write goes back with everything after.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use eric_redis::test_support::TestRedis;
use eric_server::{Config, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Interest};
use tokio::net::UnixStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long any one expected event may take.
const DEADLINE: Duration = Duration::from_secs(20);
/// Messages queued before the stream opens.
const QUEUED: u64 = 300;

#[derive(Clone, Copy, Debug)]
enum Engine {
    Memory,
    Redis,
}

struct TestServer {
    _dir: tempfile::TempDir,
    /// Kept alive for the server's lifetime.
    _redis: Option<TestRedis>,
    path: PathBuf,
    http: SocketAddr,
    client: reqwest::Client,
    token: CancellationToken,
    task: JoinHandle<eric_server::Result<()>>,
}

impl TestServer {
    async fn start(engine: Engine, tune: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("eric.sock");
        let mut config = Config::default();
        // In memory: no data directory to share.
        config.storage.engine = eric_server::StorageEngine::Memory;
        config.http.addr = "127.0.0.1:0".parse().unwrap();
        config.socket.path = Some(path.clone());
        let redis = match engine {
            Engine::Memory => None,
            Engine::Redis => Some(TestRedis::start().await),
        };
        config.redis = redis.as_ref().map(TestRedis::config);
        tune(&mut config);
        let server = Server::bind(config).await.unwrap();
        let http = server.http_addr().unwrap();
        let token = CancellationToken::new();
        let task = tokio::spawn(server.run(token.clone()));
        Self {
            _dir: dir,
            _redis: redis,
            path,
            http,
            client: eric_client::http_client_builder(None, false)
                .build()
                .unwrap(),
            token,
            task,
        }
    }

    /// One request on its own connection; the answer.
    async fn call(&self, request: &str) -> String {
        within(async {
            let mut socket = UnixStream::connect(&self.path).await.unwrap();
            socket.write_all(request.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
            let mut answer = String::new();
            socket.read_to_string(&mut answer).await.unwrap();
            answer
        })
        .await
    }

    /// Opens `l` on `listener`: the request is sent and half-closed.
    async fn listen(&self, channel: &str, listener: &str) -> UnixStream {
        let mut socket = within(UnixStream::connect(&self.path)).await.unwrap();
        let request = format!(r#"{{"v": "l", "c": "{channel}", "r": "{listener}"}}"#);
        socket.write_all(request.as_bytes()).await.unwrap();
        socket.shutdown().await.unwrap();
        socket
    }

    fn url(&self, channel: &str, listener: &str) -> String {
        format!(
            "http://{}/v1/channels/{channel}/listeners/{listener}",
            self.http
        )
    }

    async fn dispatch(&self, channel: &str, listener: &str, payload: Value) {
        let url = format!("{}/messages", self.url(channel, listener));
        let body = json!({"type": "m", "payload": payload});
        let answer = self.client.post(url).json(&body).send().await.unwrap();
        assert!(answer.status().is_success(), "{}", answer.status());
    }

    async fn queued(&self, channel: &str, listener: &str) -> u64 {
        let info: Value = self
            .client
            .get(self.url(channel, listener))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        info["queued"].as_u64().unwrap()
    }

    /// Polls `queued` until `done` accepts it; the last value seen. Each poll
    /// is a real HTTP round trip: the loop yields, it never sleeps.
    async fn queued_when(&self, channel: &str, listener: &str, done: impl Fn(u64) -> bool) -> u64 {
        let mut last = None;
        let wait = async {
            loop {
                let queued = self.queued(channel, listener).await;
                last = Some(queued);
                if done(queued) {
                    return queued;
                }
                tokio::task::yield_now().await;
            }
        };
        match tokio::time::timeout(DEADLINE, wait).await {
            Ok(queued) => queued,
            Err(_) => panic!("the queue never settled: last seen {last:?}"),
        }
    }

    async fn stop(self) {
        self.token.cancel();
        within(self.task).await.unwrap().unwrap();
    }
}

async fn within<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .expect("the expected event did not happen in time")
}

/// A channel with one listener, made over the socket: `(channel, listener)`.
async fn channel_with_listener(server: &TestServer) -> (String, String) {
    let channel = server.call(r#"{"v": "c"}"#).await;
    let listener = server
        .call(&format!(r#"{{"v": "r", "c": "{channel}"}}"#))
        .await;
    (channel, listener)
}

/// The `n` of a stream line's payload.
fn number(line: &str) -> u64 {
    let line: Value = serde_json::from_str(line).unwrap();
    line["data"]["n"].as_u64().unwrap()
}

/// Reads `count` lines: their numbers.
async fn read_numbers(stream: &mut BufReader<UnixStream>, count: u64) -> Vec<u64> {
    let mut numbers = Vec::new();
    for _ in 0..count {
        let mut line = String::new();
        within(stream.read_line(&mut line)).await.unwrap();
        numbers.push(number(&line));
    }
    numbers
}

/// (a) A client reads 5 lines and closes while the server is writing the
/// 6th (a line larger than any socket buffer, so it cannot have been
/// written whole): messages 6 to 300 are back in the queue, 1 to 5 are not.
async fn a_client_that_closes_leaves_what_it_did_not_get(engine: Engine, window: usize) {
    let server = TestServer::start(engine, |config| {
        config.channels.replay_window = window;
    })
    .await;
    let (channel, listener) = channel_with_listener(&server).await;
    for n in 1..=QUEUED {
        let payload = if n == 6 {
            json!({"n": n, "pad": "x".repeat(900_000)})
        } else {
            json!({"n": n})
        };
        server.dispatch(&channel, &listener, payload).await;
    }
    let mut stream = BufReader::new(server.listen(&channel, &listener).await);
    assert_eq!(read_numbers(&mut stream, 5).await, [1, 2, 3, 4, 5]);
    drop(stream);

    let queued = server
        .queued_when(&channel, &listener, |q| q == QUEUED - 5)
        .await;
    assert_eq!(queued, QUEUED - 5);
    // In order, from the first message the client did not get.
    let mut again = BufReader::new(server.listen(&channel, &listener).await);
    assert_eq!(read_numbers(&mut again, 2).await, [6, 7]);
    server.stop().await;
}

/// (b) A client stops reading: the server's write blocks until the write
/// timeout, then it gives up and closes. The client then reads what its
/// socket holds. Every message is either read (whole lines) or queued,
/// never both, never neither.
async fn a_stalled_client_and_the_queue_share_each_message_once(engine: Engine, window: usize) {
    let server = TestServer::start(engine, |config| {
        config.channels.replay_window = window;
        // The stall is the point of the test: no need to wait 30 s for it.
        config.socket.write_timeout_ms = 200;
    })
    .await;
    let (channel, listener) = channel_with_listener(&server).await;
    // 1.2 MB in all: more than a socket buffer holds.
    for n in 1..=QUEUED {
        let payload = json!({"n": n, "pad": "x".repeat(4000)});
        server.dispatch(&channel, &listener, payload).await;
    }
    let socket = server.listen(&channel, &listener).await;
    // Not reading: wait for the server's half-close after its failed write
    // (seen as read hang-up, while the data still sits in the socket).
    within(async {
        loop {
            let ready = socket.ready(Interest::READABLE).await.unwrap();
            if ready.is_read_closed() {
                return;
            }
            // Readable, not closed: forget it so the next wait lasts until
            // the socket changes.
            let _ = socket.try_io(Interest::READABLE, || {
                Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
            });
        }
    })
    .await;
    let mut held = Vec::new();
    let mut socket = socket;
    within(socket.read_to_end(&mut held)).await.unwrap();
    let held = String::from_utf8(held).unwrap();
    // Whole lines only: a cut last line was not delivered.
    let read: Vec<u64> = held
        .split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(number)
        .collect();
    let read_count = read.len() as u64;
    assert!(read_count > 0 && read_count < QUEUED, "{read_count} read");

    let queued = server
        .queued_when(&channel, &listener, |q| q >= QUEUED - read_count)
        .await;
    assert_eq!(
        read_count + queued,
        QUEUED,
        "{read_count} read by the client + {queued} queued"
    );
    let mut rest = BufReader::new(server.listen(&channel, &listener).await);
    let drained = read_numbers(&mut rest, queued).await;
    let read_set: BTreeSet<u64> = read.iter().copied().collect();
    let drained_set: BTreeSet<u64> = drained.iter().copied().collect();
    assert_eq!(read_set.len(), read.len(), "the client read one twice");
    assert!(
        read_set.is_disjoint(&drained_set),
        "read and queued both: {:?}",
        read_set.intersection(&drained_set).collect::<Vec<_>>()
    );
    let all: BTreeSet<u64> = read_set.union(&drained_set).copied().collect();
    assert_eq!(all, (1..=QUEUED).collect());
    server.stop().await;
}

#[tokio::test]
async fn memory_window_0_a_closed_client_leaves_the_rest_queued() {
    a_client_that_closes_leaves_what_it_did_not_get(Engine::Memory, 0).await;
}

#[tokio::test]
async fn memory_default_window_a_closed_client_leaves_the_rest_queued() {
    a_client_that_closes_leaves_what_it_did_not_get(Engine::Memory, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_window_0_a_closed_client_leaves_the_rest_queued() {
    a_client_that_closes_leaves_what_it_did_not_get(Engine::Redis, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_default_window_a_closed_client_leaves_the_rest_queued() {
    a_client_that_closes_leaves_what_it_did_not_get(Engine::Redis, 10_000).await;
}

#[tokio::test]
async fn memory_default_window_a_stalled_client_gets_each_message_once() {
    a_stalled_client_and_the_queue_share_each_message_once(Engine::Memory, 10_000).await;
}

#[tokio::test]
async fn memory_window_0_a_stalled_client_gets_each_message_once() {
    a_stalled_client_and_the_queue_share_each_message_once(Engine::Memory, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_default_window_a_stalled_client_gets_each_message_once() {
    a_stalled_client_and_the_queue_share_each_message_once(Engine::Redis, 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_window_0_a_stalled_client_gets_each_message_once() {
    a_stalled_client_and_the_queue_share_each_message_once(Engine::Redis, 0).await;
}
