//! The Redis engine on a Redis Cluster (three primaries, private to each
//! test): `eric-core`'s suites unchanged, then what only a cluster can get
//! wrong: channels on every shard notify, list, restore and lapse across
//! shards; a list of seed URLs works as one URL does. (The cross-node tests
//! of `nodes.rs` run on a cluster too.)

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::{RedisFixture, channel};
use eric_core::channel::RawAdapter;
use eric_core::testing::within;
use eric_core::{Message, StreamItem, StreamOptions};
use eric_redis::test_support::TestRedis;
use eric_redis::{RedisConfig, RedisEngine};
use futures_util::StreamExt;
use serde_json::json;

mod behaviour {
    use super::common;

    eric_core::behaviour_suite!(common::RedisFixture::cluster().await);
    eric_core::bounds_suite!(common::RedisFixture::cluster().await);
    eric_core::topics_suite!(common::RedisFixture::cluster().await);
}

mod persistence {
    use super::common;

    eric_core::persistence_suite!(common::RedisFixture::cluster().await);
}

mod idempotency {
    use super::common;

    eric_core::idempotency_suite!(common::RedisFixture::cluster().await);
}

/// Enough channels that every shard serves several (about ten each).
const CHANNELS: usize = 30;

fn msg(n: usize) -> Message {
    Message::try_new("t", json!(n)).unwrap()
}

/// Keys stored on each node.
async fn keys_per_node(redis: &TestRedis) -> Vec<u64> {
    let mut sizes = Vec::new();
    for url in redis.urls() {
        let client = redis::Client::open(url).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        sizes.push(redis::cmd("DBSIZE").query_async(&mut c).await.unwrap());
    }
    sizes
}

/// Channels on all three shards: a dispatch on one node wakes a stream on
/// another for every one of them (each shard's notifications reach the
/// subscriber's link to it), in one subscriber session; a fresh node lists
/// and restores them all from the index in the global slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_on_every_shard_notify_and_restore_across_nodes() {
    let f = RedisFixture::cluster().await;
    let (a, b) = (f.engine.clone(), f.node());
    let store = a.persistence::<RawAdapter>();
    let mut streams = Vec::new();
    for c in 0..CHANNELS {
        let on_a = channel(&a, &format!("room-{c}"));
        let listener = on_a.add_listener().await.unwrap();
        on_a.start_listener(listener.id()).await.unwrap();
        store.persist(&on_a).await.unwrap();
        let on_b = channel(&b, &format!("room-{c}"));
        let stream = on_b
            .stream(listener.id(), StreamOptions::default())
            .await
            .unwrap();
        streams.push((on_a, listener.id().clone(), stream));
    }
    let sizes = keys_per_node(&f.redis).await;
    assert!(sizes.iter().all(|n| *n > 0), "keys per node: {sizes:?}");

    let readers: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(c, (on_a, id, mut stream))| async move {
            let (dispatched, received) = tokio::join!(on_a.dispatch(&id, msg(c)), async {
                within("a stream on another node", stream.next()).await
            });
            dispatched.unwrap();
            match received {
                Some(StreamItem::Message(d)) => d.message.payload_value().as_u64(),
                other => panic!("channel {c}: {other:?}"),
            }
        })
        .collect();
    let got: Vec<Option<u64>> = futures_util::future::join_all(readers).await;
    assert_eq!(got, (0..CHANNELS as u64).map(Some).collect::<Vec<_>>());
    assert_eq!(b.pubsub_activity().borrow().sessions, 1);

    let fresh = f.node();
    let restored = fresh
        .persistence::<RawAdapter>()
        .load_persisted_data(None)
        .await
        .unwrap();
    let ids: HashSet<String> = restored.iter().map(|c| c.id().to_string()).collect();
    assert_eq!(ids.len(), CHANNELS);
    for ch in restored {
        assert_eq!(ch.members().await.unwrap().len(), 1, "{}", ch.id());
    }
}

/// A node killed with temporary listeners on channels of every shard:
/// another node's sweep removes them all (one removal per slot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lapsed_leases_on_every_shard_are_swept() {
    let redis = TestRedis::start_cluster().await;
    let config = RedisConfig {
        lease_ms: 300,
        ..redis.config()
    };
    let dead = RedisEngine::connect(config.clone()).unwrap();
    let mut channels = Vec::new();
    for c in 0..CHANNELS {
        let ch = channel(&dead, &format!("watched-{c}"));
        std::mem::forget(ch.watch().await.unwrap());
        channels.push(format!("watched-{c}"));
    }
    dead.shutdown();
    let alive = RedisEngine::connect(config).unwrap();
    // A lease of its own, so each of its rounds (renewal, then sweep) counts.
    let _held = channel(&alive, "holder").watch().await.unwrap();
    let mut rounds = alive.lease_renewals();
    within("every lapsed listener removed", async {
        loop {
            let mut left = 0;
            for id in &channels {
                left += channel(&alive, id).listener_ids().await.unwrap().len();
            }
            if left == 0 {
                return;
            }
            // The next round, not a clock.
            rounds.changed().await.unwrap();
        }
    })
    .await;
}

/// `url` may list several cluster nodes, comma-separated: any of them is
/// a place to start from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_of_seed_urls_reaches_the_cluster() {
    let redis = TestRedis::start_cluster().await;
    let config = RedisConfig::with_url(redis.seeds()).with_prefix(redis.unique_prefix());
    assert!(config.url.contains(','));
    let engine = RedisEngine::connect(config).unwrap();
    engine.ping().await.unwrap();
    let ch = channel(&engine, "seeded");
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    let mut stream = ch.stream(l.id(), StreamOptions::default()).await.unwrap();
    ch.dispatch(l.id(), msg(7)).await.unwrap();
    assert!(matches!(
        within("the stream", stream.next()).await,
        Some(StreamItem::Message(_))
    ));
    assert_eq!(engine.eviction_policy().await.unwrap(), "noeviction");
}
