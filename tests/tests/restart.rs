//! Restarts and crashes of nodes.

#![allow(clippy::unwrap_used)]

use eric_redis::test_support::TestRedis;
use eric_tests::{Http, Latencies, Node, latency, within};
use futures_util::StreamExt;
use serde_json::json;

/// Every node stopped with SIGTERM and new ones started: channels (with
/// their settings), listeners and queued messages are restored and streamable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_cluster_restores_channels_listeners_and_queued_messages() {
    let redis = TestRedis::start().await;
    let prefix = redis.unique_prefix();
    let http = Http::new();
    let (a, b) = tokio::join!(
        Node::start(redis.url(), &prefix, &[]),
        Node::start(redis.url(), &prefix, &[])
    );
    http.create_channel(&a, "kept", json!({"retry_timeout_milliseconds": 1500}))
        .await;
    http.subscribe(&a, "kept", "l1").await;
    http.subscribe(&b, "kept", "l2").await;
    for n in 0..3 {
        http.dispatch(&a, "kept", "l1", json!(n)).await;
    }
    http.broadcast(&b, "kept", json!("all")).await;
    tokio::join!(a.terminate(), b.terminate());

    let c = Node::start(redis.url(), &prefix, &[]).await;
    let (status, info) = http.get(&c.url("/v1/channels/kept")).await;
    assert!(status.is_success(), "{info}");
    assert_eq!(info["settings"]["retry_timeout_milliseconds"], json!(1500));
    assert_eq!(info["listeners"][0]["queued"], json!(4));
    assert_eq!(info["listeners"][1]["queued"], json!(1));
    let mut events = http.events(&c, "kept", "l1", None).await;
    for expected in [json!(0), json!(1), json!(2), json!("all")] {
        assert_eq!(events.next().await.expect("an event").data, expected);
    }
}

/// The node serving a stream is killed in the middle of a 10,000-message
/// burst; the client reconnects to another node with `Last-Event-ID` and
/// receives every message exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resumes_on_another_node_after_a_crash_mid_burst() {
    const TOTAL: u64 = 10_000;
    let redis = TestRedis::start().await;
    let prefix = redis.unique_prefix();
    let http = Http::new();
    let (a, b, c) = tokio::join!(
        Node::start(redis.url(), &prefix, &[]),
        Node::start(redis.url(), &prefix, &[]),
        Node::start(redis.url(), &prefix, &[]),
    );
    http.create_channel(&a, "burst", json!({})).await;
    http.subscribe(&a, "burst", "l").await;
    let mut events = http.events(&c, "burst", "l", None).await;
    let producer = {
        let (http, url) = (
            http.clone(),
            a.url("/v1/channels/burst/listeners/l/messages"),
        );
        tokio::spawn(async move {
            let sends = (0..TOTAL).map(|n| {
                let (http, url) = (http.clone(), url.clone());
                async move {
                    let body = json!({"type": "m", "payload": latency::stamp(n)});
                    http.ok(&url, body).await
                }
            });
            futures_util::stream::iter(sends)
                .buffer_unordered(16)
                .for_each(|_| async {})
                .await;
        })
    };
    let (mut ids, mut payloads) = (Vec::new(), Vec::new());
    let mut before_crash = Latencies::default();
    while ids.len() < 2_000 {
        let event = events.next().await.expect("an event before the crash");
        before_crash.record(&event.data);
        ids.push(event.id);
        payloads.push(latency::number(&event.data));
    }
    c.kill().await;
    // Whatever C took from Redis but the client never got is still there.
    while let Some(event) = events.next().await {
        ids.push(event.id);
        payloads.push(latency::number(&event.data));
    }
    let last = *ids.last().unwrap();
    let mut resumed = http.events(&b, "burst", "l", Some(last)).await;
    while (ids.len() as u64) < TOTAL {
        let event = resumed.next().await.expect("an event after the resume");
        ids.push(event.id);
        payloads.push(latency::number(&event.data));
    }
    within("the producer", producer).await.unwrap();
    assert_eq!(
        ids,
        (1..=TOTAL).collect::<Vec<_>>(),
        "lost, repeated or out of order"
    );
    let mut sent: Vec<u64> = payloads.into_iter().map(Option::unwrap).collect();
    sent.sort_unstable();
    assert_eq!(
        sent,
        (0..TOTAL).collect::<Vec<_>>(),
        "a payload lost or repeated"
    );
    before_crash.report("A -> C during a 16-way 10,000-message burst (first 2,000)");
}
