//! The testcontainers source of `TestRedis`, on its own (feature `docker`;
//! `.ci/run` runs it when a Docker engine answers, with
//! `ERIC_TEST_REDIS_IMAGE=eric-redis:local` from `scripts/local-images.sh`).

#![allow(clippy::unwrap_used)]

use eric_core::channel::RawAdapter;
use eric_core::{Channel, ChannelSettings, Message};
use eric_redis::RedisEngine;
use eric_redis::test_support::TestRedis;
use serde_json::json;

/// A container Redis serves the engine like any other: dispatch, then read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a Docker engine and a local Redis image; run by .ci/run"]
async fn a_container_redis_serves_the_engine() {
    let redis = TestRedis::start_container().await;
    assert_eq!(redis.source(), "docker");
    let engine = RedisEngine::connect(redis.config()).unwrap();
    engine.ping().await.unwrap();
    let channel: Channel<RedisEngine, RawAdapter> = Channel::new(
        &engine,
        Some("c".parse().unwrap()),
        ChannelSettings::default(),
    )
    .unwrap();
    let listener = channel.add_listener().await.unwrap();
    channel.start_listener(listener.id()).await.unwrap();
    channel
        .dispatch(listener.id(), Message::try_new("t", json!(1)).unwrap())
        .await
        .unwrap();
    let delivered = channel.deliver_next(listener.id()).await.unwrap();
    assert_eq!(delivered.message.payload_value(), json!(1));
}
