//! Redis goes away and comes back.

#![allow(clippy::unwrap_used)]

use eric_redis::test_support::TestRedis;
use eric_tests::{Http, Node, within};
use reqwest::StatusCode;
use serde_json::json;

/// Awaits a readiness change with the server's long-poll (`?wait=`).
async fn readiness_becomes(http: &Http, node: &Node, ready: bool) {
    let wait = if ready { "ready" } else { "unready" };
    let (status, body) = within(
        "readiness to change",
        http.get(&node.url(&format!("/readyz?wait={wait}"))),
    )
    .await;
    assert_eq!(status.is_success(), ready, "{body}");
}

/// `redis-server` stopped: requests get 503 (or 504 for a write that went
/// out on a connection that broke) with a clear error, `/readyz`
/// says so, nodes stay up. Redis started again (AOF on): service resumes
/// without restarting any node, and no queued message is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_ride_out_a_redis_outage_without_losing_messages() {
    let mut redis = TestRedis::start_durable().await;
    let prefix = redis.unique_prefix();
    let http = Http::new();
    let (a, b) = tokio::join!(
        Node::start(redis.url(), &prefix, &[]),
        Node::start(redis.url(), &prefix, &[])
    );
    http.create_channel(&a, "c", json!({})).await;
    http.subscribe(&a, "c", "l").await;
    for n in 0..5 {
        http.dispatch(&a, "c", "l", json!(n)).await;
    }

    redis.stop().await;
    for node in [&a, &b] {
        let url = node.url("/v1/channels/c/listeners/l/messages");
        let (status, body) = http.post(&url, json!({"type": "m", "payload": 99})).await;
        // 503 when the node knew Redis was gone before sending (no
        // connection could be had); 504 when the write went out on a
        // connection that then broke: Redis might have run it, so the
        // node cannot say "not applied". Either way it is refused here.
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(
            (status, code) == (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
                || (status, code) == (StatusCode::GATEWAY_TIMEOUT, "outcome_unknown"),
            "{status}: {body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains("redis"),
            "{body}"
        );
        readiness_becomes(&http, node, false).await;
        assert_eq!(
            http.get(&node.url("/healthz")).await.0,
            StatusCode::OK,
            "the node is up"
        );
    }

    redis.start_again().await;
    for node in [&a, &b] {
        readiness_becomes(&http, node, true).await;
    }
    for n in 5..8 {
        http.dispatch(&b, "c", "l", json!(n)).await;
    }
    let mut events = http.events(&b, "c", "l", None).await;
    for n in 0..8 {
        assert_eq!(events.next().await.expect("an event").data, json!(n));
    }
}
