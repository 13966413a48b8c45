//! Several nodes, one Redis.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use eric_redis::test_support::TestRedis;
use eric_tests::{Http, Latencies, Node, latency, within};
use serde_json::json;

async fn three_nodes(redis: &TestRedis) -> (Node, Node, Node) {
    let prefix = redis.unique_prefix();
    tokio::join!(
        Node::start(redis.url(), &prefix, &[]),
        Node::start(redis.url(), &prefix, &[]),
        Node::start(redis.url(), &prefix, &[]),
    )
}

/// A channel created on A, a listener added on B, its stream opened on C:
/// dispatches from A and broadcasts from B arrive at C, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_from_two_nodes_reach_a_stream_on_a_third_in_order() {
    let redis = TestRedis::start().await;
    let (a, b, c) = three_nodes(&redis).await;
    let http = Http::new();
    http.create_channel(&a, "room", json!({})).await;
    http.subscribe(&b, "room", "alice").await;
    let mut events = http.events(&c, "room", "alice", None).await;
    for n in 0..40 {
        if n % 2 == 0 {
            http.dispatch(&a, "room", "alice", json!(n)).await;
        } else {
            assert_eq!(http.broadcast(&b, "room", json!(n)).await, 1);
        }
    }
    for n in 0..40 {
        let event = events.next().await.expect("an event");
        assert_eq!(event.data, json!(n));
        assert_eq!(event.id, n + 1);
        assert_eq!(event.event, if n % 2 == 0 { "m" } else { "b" });
    }

    // One message at a time, A to C: the cross-node latency of a lone
    // message (reported with --nocapture, not asserted).
    let mut latencies = Latencies::default();
    for n in 0..500 {
        http.dispatch(&a, "room", "alice", latency::stamp(n)).await;
        let event = events.next().await.expect("an event");
        assert_eq!((event.id, latency::number(&event.data)), (41 + n, Some(n)));
        latencies.record(&event.data);
    }
    latencies.report("A -> C, one message at a time");
}

/// Three nodes add 300 listeners to one channel at once: every node lists
/// all 300, and one broadcast reaches all 300.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_subscriptions_from_three_nodes_all_survive() {
    let redis = TestRedis::start().await;
    let (a, b, c) = three_nodes(&redis).await;
    let http = Http::new();
    http.create_channel(&a, "busy", json!({})).await;
    let nodes = [&a, &b, &c];
    let adds = (0..300).map(|n| {
        let (http, node) = (http.clone(), nodes[n % 3]);
        async move { http.subscribe(node, "busy", &format!("l{n}")).await }
    });
    within("the subscriptions", futures_util::future::join_all(adds)).await;
    let expected: HashSet<String> = (0..300).map(|n| format!("l{n}")).collect();
    for node in nodes {
        let listed: HashSet<String> = http.listeners(node, "busy").await.into_iter().collect();
        assert_eq!(listed, expected, "as listed by {}", node.addr);
    }
    assert_eq!(http.broadcast(&b, "busy", json!("all")).await, 300);
}
