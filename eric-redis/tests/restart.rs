//! A Redis that comes back without a node's channels: the node's caches of
//! them must not outlive them.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use eric_core::channel::RawAdapter;
use eric_core::persistence::{ChannelRecord, ChannelRepository};
use eric_core::testing::within;
use eric_core::{Channel, ChannelId, ChannelSettings};
use eric_redis::RedisEngine;
use eric_redis::test_support::TestRedis;

async fn create(engine: &RedisEngine, id: &str) -> Channel<RedisEngine, RawAdapter> {
    let id: ChannelId = id.parse().unwrap();
    let settings = ChannelSettings::default();
    engine
        .channel_repository()
        .create(&ChannelRecord {
            id: id.clone(),
            settings: settings.clone(),
        })
        .await
        .unwrap();
    Channel::new(engine, Some(id), settings).unwrap()
}

/// Deletes every key of channel `id` behind the node's back (what a Redis
/// restarting without the channel's data amounts to, for that channel).
async fn forget_behind_its_back(url: &str, prefix: &str, id: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:{{{id}}}:*"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut c)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_gone_from_a_restarted_redis_is_announced_deleted() {
    let mut redis = TestRedis::start_durable().await;
    let config = redis.config();
    let engine = RedisEngine::connect(config.clone()).unwrap();
    let mut deletions = engine.channel_deletions();
    let mut health = engine.pubsub_health();
    let _kept = create(&engine, "kept").await;
    let gone = create(&engine, "gone").await;
    let listener = gone.add_listener().await.unwrap();
    within("the subscriber", health.wait_for(|up| *up))
        .await
        .unwrap();

    forget_behind_its_back(redis.url(), &config.prefix, "gone").await;
    redis.stop().await;
    within("the subscriber to notice", health.wait_for(|up| !*up))
        .await
        .unwrap();
    redis.start_again().await;

    let mut announced = HashSet::new();
    while !announced.contains("gone") {
        let id = within("the deletion notice", deletions.recv())
            .await
            .unwrap();
        announced.insert(id.to_string());
    }
    assert!(!announced.contains("kept"), "{announced:?}");
    // The listener went with it: this node no longer serves it either.
    assert!(gone.member(listener.id()).await.is_err());
    engine.shutdown();
}
