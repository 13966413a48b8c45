//! Temporary listeners (`watch` streams) hold a lease: when their node dies
//! without removing them, another node removes them once the lease lapses.

#![allow(clippy::unwrap_used)]

mod common;

use common::channel;

use eric_core::StreamItem;
use eric_core::testing::within;
use eric_redis::test_support::TestRedis;
use eric_redis::{RedisConfig, RedisEngine};
use futures_util::StreamExt;

/// A short lease, so the test waits a fraction of a second for it to lapse.
fn short_lease(redis: &TestRedis) -> RedisConfig {
    RedisConfig {
        lease_ms: 300,
        ..redis.config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_watch_listener_is_removed_by_another_node_when_its_lease_lapses() {
    let redis = TestRedis::start().await;
    let config = short_lease(&redis);
    let dead = RedisEngine::connect(config.clone()).unwrap();
    let on_dead = channel(&dead, "c");
    let watch = on_dead.watch().await.unwrap();
    let temporary = on_dead.listener_ids().await.unwrap();
    assert_eq!(temporary.len(), 1);
    // The node dies: its tasks stop and the stream's clean-up never runs.
    dead.shutdown();
    std::mem::forget(watch);

    // Every node hears the removal notice (`r <listener>`), so this node's
    // streams of the orphan would end: await that notice.
    let notify = format!("{}:{{c}}:notify", config.prefix);
    let (_subscriber, mut notices) = common::sharded_notices(redis.url(), &notify).await;
    let alive = RedisEngine::connect(config).unwrap();
    let on_alive = channel(&alive, "c");
    let removal = format!("r {}", temporary[0].key_segment());
    within("the lapsed listener's removal", async {
        while let Some(payload) = notices.recv().await {
            if payload == removal {
                return;
            }
        }
        panic!("the notice connection closed");
    })
    .await;
    assert!(on_alive.listener_ids().await.unwrap().is_empty());
    alive.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_nodes_watch_listener_outlives_many_leases() {
    let redis = TestRedis::start().await;
    let config = short_lease(&redis);
    let holder = RedisEngine::connect(config.clone()).unwrap();
    let sweeper = RedisEngine::connect(config).unwrap();
    let on_holder = channel(&holder, "c");
    let mut watch = on_holder.watch().await.unwrap();
    let id = on_holder.listener_ids().await.unwrap().remove(0);
    let on_sweeper = channel(&sweeper, "c");
    // Ten leases long, counted by the renewals the holder makes, not by a clock.
    let mut renewals = holder.lease_renewals();
    within("ten renewals", renewals.wait_for(|n| *n >= 30))
        .await
        .unwrap();
    assert_eq!(on_sweeper.listener_ids().await.unwrap(), [id]);
    let message = eric_core::Message::try_new("t", serde_json::json!(1)).unwrap();
    on_sweeper.broadcast(&message).await.unwrap();
    assert!(matches!(
        within("the broadcast", watch.next()).await,
        Some(StreamItem::Message(_))
    ));
    watch.close().await.unwrap();
    assert!(on_sweeper.listener_ids().await.unwrap().is_empty());
}
