//! A node killed while serving channel streams (`GET /v1/channels/{c}/events`)
//! leaves temporary listeners behind; the other nodes remove them once their
//! lease lapses.

#![allow(clippy::unwrap_used)]

use eric_redis::test_support::TestRedis;
use eric_tests::{Http, Node};
use reqwest::StatusCode;
use serde_json::json;

/// Short, so the test waits a fraction of a second for a lease to lapse.
const LEASE: (&str, &str) = ("ERIC__REDIS__LEASE_MS", "300");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_channel_stream_listeners_are_removed_by_the_others() {
    let redis = TestRedis::start().await;
    let prefix = redis.unique_prefix();
    let http = Http::new();
    let (a, b) = tokio::join!(
        Node::start(redis.url(), &prefix, &[LEASE]),
        Node::start(redis.url(), &prefix, &[LEASE])
    );
    http.create_channel(&a, "news", json!({})).await;
    http.subscribe(&a, "news", "kept").await;
    // A channel stream registers its temporary listener before answering.
    let response = eric_tests::client::reqwest_builder()
        .build()
        .unwrap()
        .get(a.url("/v1/channels/news/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let listeners = http.listeners(&b, "news").await;
    assert_eq!(listeners.len(), 2, "{listeners:?}");
    let orphan = listeners.into_iter().find(|l| l != "kept").unwrap();

    a.kill().await;
    drop(response);
    // B streams the orphan: its stream ends when the orphan is removed.
    let mut events = http.events(&b, "news", &orphan, None).await;
    loop {
        match events.next().await {
            Some(event) if event.event == "eric-end" => {
                assert_eq!(event.data, json!({"reason": "removed"}));
                break;
            }
            Some(_) => {}
            None => panic!("the orphan's stream broke without eric-end"),
        }
    }
    assert_eq!(http.listeners(&b, "news").await, ["kept"]);
}
