//! Fixtures shared by this crate's test files.

#![allow(dead_code, unreachable_pub)]

use eric_core::Persistence;
use eric_core::channel::RawAdapter;
use eric_core::testing::{EngineFixture, PersistenceFixture};
use eric_redis::test_support::TestRedis;
use eric_redis::{RedisConfig, RedisEngine};

/// A private Redis (or `REDIS_URL` with a unique prefix) and one engine on it.
pub struct RedisFixture {
    pub redis: TestRedis,
    pub config: RedisConfig,
    pub engine: RedisEngine,
}

impl RedisFixture {
    pub async fn new() -> Self {
        let redis = TestRedis::start().await;
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
