//! Listeners' subscriptions on `/v1`, driven through the router: created
//! with a listener, read, replaced, edited; broadcasts filtered by them and
//! dispatches not; malformed, oversized and hostile lists refused with a
//! typed error and nothing changed.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use eric_core::ChannelSettings;
use eric_server::config::HttpConfig;
use serde_json::{Value, json};

use common::{call, code};

const SUBS: &str = "/v1/channels/c/listeners/l/subscriptions";

async fn channel_c(app: &axum::Router) {
    let (s, _) = call(app, "POST", "/v1/channels", Some(r#"{"id": "c"}"#)).await;
    assert_eq!(s, StatusCode::CREATED);
}

async fn publish(app: &axum::Router, body: Value) -> Value {
    let (s, b) = call(
        app,
        "POST",
        "/v1/channels/c/messages",
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    b
}

/// Payloads pulled from listener `l` until its queue is empty.
async fn pull(app: &axum::Router, listener: &str) -> Vec<Value> {
    call(
        app,
        "POST",
        &format!("/v1/channels/c/listeners/{listener}/start"),
        None,
    )
    .await;
    let mut got = Vec::new();
    loop {
        let uri = format!("/v1/channels/c/listeners/{listener}/next");
        let (s, b) = call(app, "POST", &uri, None).await;
        if s == StatusCode::NO_CONTENT {
            return got;
        }
        got.push(b["message"]["payload"].clone());
    }
}

/// A listener created with subscriptions holds them from the start; a
/// broadcast reaches it when one matches and reports how many it reached;
/// a dispatch to it ignores them.
#[tokio::test]
async fn a_listener_created_with_subscriptions_gets_only_matching_broadcasts() {
    let app = common::app();
    channel_c(&app).await;
    let body = json!({"id": "l", "subscriptions": [
        {"type": "KernelStatusChanged", "topic": "q1"},
        {"type": "Heartbeat"},
    ]});
    let (s, b) = call(
        &app,
        "POST",
        "/v1/channels/c/listeners",
        Some(&body.to_string()),
    )
    .await;
    assert_eq!((s, b), (StatusCode::CREATED, json!({"id": "l"})));
    let (_, b) = call(&app, "GET", SUBS, None).await;
    assert_eq!(b, json!({"subscriptions": body["subscriptions"]}));

    let reached = |b: Value| b["delivered"].as_u64().unwrap();
    let kernel =
        |n: i64, topic: &str| json!({"type": "KernelStatusChanged", "payload": n, "topic": topic});
    assert_eq!(reached(publish(&app, kernel(1, "q1")).await), 1);
    assert_eq!(reached(publish(&app, kernel(2, "q1.sub")).await), 1);
    assert_eq!(reached(publish(&app, kernel(3, "q10")).await), 0);
    assert_eq!(reached(publish(&app, kernel(4, "q2")).await), 0);
    let beat = json!({"type": "Heartbeat", "payload": 5});
    assert_eq!(reached(publish(&app, beat).await), 1);
    let other = json!({"type": "Other", "payload": 6});
    assert_eq!(reached(publish(&app, other).await), 0);
    let direct = json!({"type": "Other", "payload": 7}).to_string();
    let (s, _) = call(
        &app,
        "POST",
        "/v1/channels/c/listeners/l/messages",
        Some(&direct),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(
        pull(&app, "l").await,
        [json!(1), json!(2), json!(5), json!(7)]
    );
}

/// PUT replaces, PATCH removes then adds in one step, `[]` means every
/// broadcast again; each answers the set now held. Creating an existing id
/// with subscriptions replaces its set and keeps its queue.
#[tokio::test]
async fn subscriptions_are_replaced_and_edited() {
    let app = common::app();
    channel_c(&app).await;
    call(
        &app,
        "POST",
        "/v1/channels/c/listeners",
        Some(r#"{"id": "l"}"#),
    )
    .await;
    let (_, b) = call(&app, "GET", SUBS, None).await;
    assert_eq!(b, json!({"subscriptions": []}));

    let put = json!({"subscriptions": [{"type": "a"}, {"type": "b", "topic": "x"}, {"type": "a"}]});
    let (s, b) = call(&app, "PUT", SUBS, Some(&put.to_string())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b,
        json!({"subscriptions": [{"type": "a"}, {"type": "b", "topic": "x"}]}),
        "repeats are dropped"
    );
    let patch = json!({"remove": [{"type": "a"}, {"type": "zz"}], "add": [{"type": "c"}, {"type": "b", "topic": "x"}]});
    let (s, b) = call(&app, "PATCH", SUBS, Some(&patch.to_string())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        b,
        json!({"subscriptions": [{"type": "b", "topic": "x"}, {"type": "c"}]})
    );
    publish(&app, json!({"type": "c", "payload": 1})).await;
    publish(&app, json!({"type": "a", "payload": 2})).await;

    let again = json!({"id": "l", "subscriptions": [{"type": "a"}]}).to_string();
    let (s, _) = call(&app, "POST", "/v1/channels/c/listeners", Some(&again)).await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, b) = call(&app, "GET", SUBS, None).await;
    assert_eq!(b, json!({"subscriptions": [{"type": "a"}]}));
    publish(&app, json!({"type": "a", "payload": 3})).await;

    let (_, b) = call(&app, "PUT", SUBS, Some(r#"{"subscriptions": []}"#)).await;
    assert_eq!(b, json!({"subscriptions": []}));
    publish(&app, json!({"type": "anything", "payload": 4})).await;
    assert_eq!(pull(&app, "l").await, [json!(1), json!(3), json!(4)]);
}

/// Bad types and filters, unknown keys, wrong shapes, an unknown listener
/// or channel, and lists over the channel's bound: each a typed error, the
/// set unchanged.
#[tokio::test]
async fn bad_subscriptions_are_refused_and_change_nothing() {
    let defaults = ChannelSettings {
        max_subscriptions: 2,
        ..ChannelSettings::default()
    };
    let app = common::app_with_defaults(HttpConfig::default(), defaults);
    channel_c(&app).await;
    let create = json!({"id": "l", "subscriptions": [{"type": "keep"}]}).to_string();
    call(&app, "POST", "/v1/channels/c/listeners", Some(&create)).await;
    let long = "x".repeat(257);
    let cases = [
        (
            json!({"subscriptions": [{"type": ""}]}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            json!({"subscriptions": [{"type": "a\nb"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            json!({"subscriptions": [{"type": "t", "topic": ""}]}),
            StatusCode::BAD_REQUEST,
            "invalid_topic",
        ),
        (
            json!({"subscriptions": [{"type": "t", "topic": long}]}),
            StatusCode::BAD_REQUEST,
            "invalid_topic",
        ),
        (
            json!({"subscriptions": [{"type": "t", "topic": "a\u{0}"}]}),
            StatusCode::BAD_REQUEST,
            "invalid_topic",
        ),
        (
            json!({"subscriptions": [{"type": "t", "topc": "a"}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"subscriptions": [{"type": 1}]}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"subscriptions": {"type": "t"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"subs": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"subscriptions": [{"type": "a"}, {"type": "b"}, {"type": "c"}]}),
            StatusCode::BAD_REQUEST,
            "too_many_subscriptions",
        ),
    ];
    for (body, status, expected) in &cases {
        let (s, b) = call(&app, "PUT", SUBS, Some(&body.to_string())).await;
        assert_eq!((s, code(&b)), (*status, *expected), "PUT {body}");
    }
    let (s, b) = call(&app, "PUT", SUBS, Some("{not json")).await;
    assert_eq!((s, code(&b)), (StatusCode::BAD_REQUEST, "malformed_json"));
    let over = json!({"add": [{"type": "a"}, {"type": "b"}]}).to_string();
    let (s, b) = call(&app, "PATCH", SUBS, Some(&over)).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "too_many_subscriptions"),
        "the result counts, not the request: keep + a + b is three"
    );
    let create_over = json!({"subscriptions": [{"type": "a"}, {"type": "b"}, {"type": "c"}]});
    let (s, b) = call(
        &app,
        "POST",
        "/v1/channels/c/listeners",
        Some(&create_over.to_string()),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "too_many_subscriptions")
    );
    let (_, b) = call(&app, "GET", SUBS, None).await;
    assert_eq!(b, json!({"subscriptions": [{"type": "keep"}]}), "unchanged");

    for (method, uri, expected) in [
        (
            "GET",
            "/v1/channels/c/listeners/ghost/subscriptions",
            "listener_not_found",
        ),
        (
            "PUT",
            "/v1/channels/c/listeners/ghost/subscriptions",
            "listener_not_found",
        ),
        (
            "PATCH",
            "/v1/channels/c/listeners/ghost/subscriptions",
            "listener_not_found",
        ),
        (
            "GET",
            "/v1/channels/nope/listeners/l/subscriptions",
            "channel_not_found",
        ),
    ] {
        let fine = if method == "PATCH" {
            "{}"
        } else {
            r#"{"subscriptions": []}"#
        };
        let (s, b) = call(&app, method, uri, Some(fine)).await;
        assert_eq!(
            (s, code(&b)),
            (StatusCode::NOT_FOUND, expected),
            "{method} {uri}"
        );
    }
    let (s, b) = call(&app, "DELETE", SUBS, None).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

/// A list longer than any channel allows is refused before any work, and
/// the server goes on serving.
#[tokio::test]
async fn a_huge_list_is_refused_cheaply() {
    let app = common::app_with(HttpConfig {
        max_body_bytes: 16 * 1024 * 1024,
        ..HttpConfig::default()
    });
    channel_c(&app).await;
    call(
        &app,
        "POST",
        "/v1/channels/c/listeners",
        Some(r#"{"id": "l"}"#),
    )
    .await;
    let list: Vec<Value> = (0..100_001)
        .map(|n| json!({"type": format!("t{n}")}))
        .collect();
    let body = json!({ "subscriptions": list }).to_string();
    let (s, b) = call(&app, "PUT", SUBS, Some(&body)).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::BAD_REQUEST, "too_many_subscriptions")
    );
    let (s, _) = call(&app, "GET", SUBS, None).await;
    assert_eq!(s, StatusCode::OK);
}

/// A body nested deeper than the one limit is 422 `invalid_body` on the
/// subscription routes too, wherever the depth sits.
#[tokio::test]
async fn deep_bodies_get_the_one_answer() {
    let app = common::app();
    channel_c(&app).await;
    call(
        &app,
        "POST",
        "/v1/channels/c/listeners",
        Some(r#"{"id": "l"}"#),
    )
    .await;
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    for (method, uri, body) in [
        ("PUT", SUBS, format!(r#"{{"subscriptions": {deep}}}"#)),
        (
            "PATCH",
            SUBS,
            format!(r#"{{"add": [], "ignored": {deep}}}"#),
        ),
        (
            "POST",
            "/v1/channels/c/listeners",
            format!(r#"{{"id": "m", "subscriptions": [{{"type": {deep}}}]}}"#),
        ),
    ] {
        let (s, b) = call(&app, method, uri, Some(&body)).await;
        assert_eq!(
            (s, code(&b)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body"),
            "{method} {uri}"
        );
    }
}
