//! Fixtures shared by this crate's test files.

#![allow(dead_code, unreachable_pub)]

use eric_core::channel::RawAdapter;
use eric_core::testing::{EngineFixture, PersistenceFixture};
use eric_core::{Channel, ChannelSettings, Persistence};
use eric_redis::test_support::TestRedis;
use eric_redis::{RedisConfig, RedisEngine};

/// The channels the tests use.
pub type RawChannel = Channel<RedisEngine, RawAdapter>;

/// Channel `id` on `engine`, with default settings.
pub fn channel(engine: &RedisEngine, id: &str) -> RawChannel {
    Channel::new(
        engine,
        Some(id.parse().unwrap()),
        ChannelSettings::default(),
    )
    .unwrap()
}

/// The benches' runtime: two workers, as the machine has two cores.
pub fn two_worker_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The small message the benches send.
pub fn bench_message() -> eric_core::Message {
    eric_core::Message::try_new("bench", serde_json::json!({"n": 1, "text": "hello"})).unwrap()
}

/// A private Redis (or `REDIS_URL` with a unique prefix) and one engine on it.
pub struct RedisFixture {
    pub redis: TestRedis,
    pub config: RedisConfig,
    pub engine: RedisEngine,
}

impl RedisFixture {
    pub async fn new() -> Self {
        Self::on(TestRedis::start().await)
    }

    /// The same on a private three-primary Redis Cluster, reached through
    /// one node's URL as a single server would be.
    pub async fn cluster() -> Self {
        Self::on(TestRedis::start_cluster().await)
    }

    fn on(redis: TestRedis) -> Self {
        let config = redis.config();
        let engine = RedisEngine::connect(config.clone()).unwrap();
        Self {
            redis,
            config,
            engine,
        }
    }

    /// Another node: its own engine (pool, subscriber, caches) on the same
    /// Redis and prefix, as a second broker process would have.
    pub fn node(&self) -> RedisEngine {
        RedisEngine::connect(self.config.clone()).unwrap()
    }
}

impl EngineFixture for RedisFixture {
    type Engine = RedisEngine;
    fn engine(&self) -> RedisEngine {
        self.engine.clone()
    }
}

impl PersistenceFixture for RedisFixture {
    type Engine = RedisEngine;
    fn node(&self) -> (RedisEngine, Persistence<RedisEngine, RawAdapter>) {
        let engine = RedisFixture::node(self);
        let persistence = engine.persistence();
        (engine, persistence)
    }
}

/// `INFO commandstats` of every server of `redis` (each cluster node):
/// (command, calls) pairs.
pub async fn all_command_calls(redis: &TestRedis) -> Vec<(String, u64)> {
    let mut all = Vec::new();
    for url in redis.urls() {
        all.extend(command_calls(&url).await);
    }
    all
}

/// `INFO commandstats` of the server at `url`: (command, calls) pairs.
pub async fn command_calls(url: &str) -> Vec<(String, u64)> {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(":calls=")?;
            let calls = rest.split(',').next()?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// `CONFIG SET <parameter> <value>` on the server at `url`.
pub async fn config_set(url: &str, parameter: &str, value: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(parameter)
        .arg(value)
        .query_async(&mut c)
        .await
        .unwrap();
}

/// The payloads published (`SPUBLISH`, sharded pub/sub) on `channel` of the
/// server at `url`, from the moment the subscription is confirmed. Keep the
/// connection: dropping it ends the subscription.
pub async fn sharded_notices(
    url: &str,
    channel: &str,
) -> (
    redis::aio::MultiplexedConnection,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (tx, mut pushes) = tokio::sync::mpsc::unbounded_channel::<redis::PushInfo>();
    let url = format!("{url}?protocol=resp3");
    let config = redis::AsyncConnectionConfig::new().set_push_sender(tx);
    let mut conn = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap();
    // A pipeline, so the one confirmation push counts as the answer.
    let mut pipe = redis::pipe();
    pipe.cmd("SSUBSCRIBE").arg(channel);
    let answer = redis::aio::ConnectionLike::req_packed_commands(&mut conn, &pipe, 0, 1)
        .await
        .unwrap();
    assert!(
        matches!(answer.as_slice(), [redis::Value::Push { .. }]),
        "{answer:?}"
    );
    let (payloads, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(push) = pushes.recv().await {
            if push.kind == redis::PushKind::SMessage
                && let Some(redis::Value::BulkString(payload)) = push.data.get(1)
                && payloads
                    .send(String::from_utf8_lossy(payload).into_owned())
                    .is_err()
            {
                return;
            }
        }
    });
    (conn, rx)
}
