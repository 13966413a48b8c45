//! `eric serve` on a Redis Cluster: the same `--redis` flag, one node's URL
//! for one eric node and the list of every cluster node for the other.

#![allow(clippy::unwrap_used)]

use eric_redis::test_support::TestRedis;
use eric_tests::{Http, Node};
use serde_json::json;

/// Channels on every shard, created and fed on one eric node, streamed
/// from the other; a third node started afterwards restores them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_channels_spread_over_a_redis_cluster() {
    const CHANNELS: usize = 12;
    let redis = TestRedis::start_cluster().await;
    let prefix = redis.unique_prefix();
    let (http, seeds) = (Http::new(), redis.seeds());
    let (a, b) = tokio::join!(
        Node::start(redis.url(), &prefix, &[]),
        Node::start(&seeds, &prefix, &[]),
    );
    for c in 0..CHANNELS {
        let id = format!("room-{c}");
        http.create_channel(&a, &id, json!({})).await;
        http.subscribe(&a, &id, "alice").await;
        let mut events = http.events(&b, &id, "alice", None).await;
        http.dispatch(&a, &id, "alice", json!(c)).await;
        assert_eq!(events.next().await.expect("an event").data, json!(c));
    }
    let c = Node::start(redis.url(), &prefix, &[]).await;
    let (status, listed) = http.get(&c.url("/v1/channels")).await;
    assert!(status.is_success(), "{listed}");
    let listed = listed["channels"].as_array().map(Vec::len);
    assert_eq!(listed, Some(CHANNELS));
}
