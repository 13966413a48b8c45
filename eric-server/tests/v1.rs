//! The `/v1` API driven through the router: channels and listeners, settings,
//! the byte bounds, SSE framing, and malformed or hostile input on every
//! route.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use eric_core::{ChannelSettings, MemoryEngine};
use eric_server::config::HttpConfig;
use eric_server::http::{AppState, router};
use eric_server::{Broker, Metrics};
use http_body_util::BodyExt;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use common::{call, channel_c_with_listener_l, code};

/// Partial settings on create change only the keys given; the rest comes
/// from the configured defaults, not the built-in ones.
#[tokio::test]
async fn partial_settings_merge_over_the_configured_defaults() {
    let defaults = ChannelSettings {
        queue_capacity: 7,
        ..ChannelSettings::default()
    };
    let app = common::app_with_defaults(HttpConfig::default(), defaults);
    let body = r#"{"id": "c", "settings": {"retry_timeout_milliseconds": 100}}"#;
    let (_, info) = call(&app, "POST", "/v1/channels", Some(body)).await;
    assert_eq!(info["settings"]["retry_timeout_milliseconds"], json!(100));
    assert_eq!(info["settings"]["queue_capacity"], json!(7));
    let bad = r#"{"id": "d", "settings": {"queue_capacity": "many"}}"#;
    let (s, b) = call(&app, "POST", "/v1/channels", Some(bad)).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
}

/// Subscribing an id that exists changes nothing: its queue, running flag
/// and streams stay under control.
#[tokio::test]
async fn subscribing_an_existing_listener_is_idempotent() {
    let app = common::app();
    channel_c_with_listener_l(&app, &[]).await;
    call(&app, "POST", "/v1/channels/c/listeners/l/start", None).await;
    call(
        &app,
        "POST",
        "/v1/channels/c/listeners/l/messages",
        Some(r#"{"type": "t"}"#),
    )
    .await;
    let (s, b) = call(
        &app,
        "POST",
        "/v1/channels/c/listeners",
        Some(r#"{"id": "l"}"#),
    )
    .await;
    assert_eq!((s, b), (StatusCode::CREATED, json!({"id": "l"})));
    let (_, info) = call(&app, "GET", "/v1/channels/c/listeners/l", None).await;
    assert_eq!(info, json!({"id": "l", "running": true, "queued": 1}));
}

/// Dispatches of 1 MiB (the default body limit) stop at the queue's byte
/// bound (`queue_max_bytes`) with 429 `queue_full` naming it, and, across
/// channels, at the node's memory budget (`memory.max_bytes`) with 507
/// `storage_full`. A refused dispatch queues nothing; a pop makes room.
#[tokio::test]
async fn one_mib_dispatches_stop_at_the_byte_bounds() {
    let metrics = Arc::new(Metrics::new());
    let engine = MemoryEngine::with_observer(metrics.clone()).with_budget(12 << 20);
    let app = router(
        AppState::new(
            Broker::new(engine, ChannelSettings::default()),
            HttpConfig::default(),
            metrics,
            CancellationToken::new(),
        )
        .unwrap(),
    );
    let payload = "x".repeat((1 << 20) - 64);
    let body = format!(r#"{{"type":"big","payload":"{payload}"}}"#);
    // Stored as sent: each message counts its body's length.
    let fits = |bound: usize| bound / body.len();
    for (uri, setup) in [
        (
            "/v1/channels",
            r#"{"id": "a", "settings": {"queue_max_bytes": 8388608}}"#,
        ),
        ("/v1/channels/a/listeners", r#"{"id": "l"}"#),
        ("/v1/channels", r#"{"id": "b"}"#),
        ("/v1/channels/b/listeners", r#"{"id": "l"}"#),
    ] {
        assert_eq!(
            call(&app, "POST", uri, Some(setup)).await.0,
            StatusCode::CREATED
        );
    }
    // Until the first refusal; how many were accepted, and the refusal.
    let dispatch_until_refused = |channel: &'static str| {
        let (app, body) = (app.clone(), body.clone());
        async move {
            let uri = format!("/v1/channels/{channel}/listeners/l/messages");
            for accepted in 0..100 {
                let (s, b) = call(&app, "POST", &uri, Some(&body)).await;
                if s != StatusCode::ACCEPTED {
                    return (accepted, s, b);
                }
            }
            panic!("100 MiB accepted by {channel}");
        }
    };

    let (accepted, s, b) = dispatch_until_refused("a").await;
    assert_eq!(accepted, fits(8 << 20));
    assert_eq!((s, code(&b)), (StatusCode::TOO_MANY_REQUESTS, "queue_full"));
    let message = b["error"]["message"].as_str().unwrap();
    assert!(message.contains("full (8388608 bytes)"), "{message}");
    let (_, info) = call(&app, "GET", "/v1/channels/a/listeners/l", None).await;
    assert_eq!(
        info["queued"],
        json!(accepted),
        "the refused one is not queued"
    );

    // Channel b's own bound (64 MiB) is far, but the node's is near.
    let (more, s, b) = dispatch_until_refused("b").await;
    assert_eq!(accepted + more, fits(12 << 20));
    assert_eq!(
        (s, code(&b)),
        (StatusCode::INSUFFICIENT_STORAGE, "storage_full")
    );
    let (s, b) = call(&app, "POST", "/v1/channels/a/messages", Some(&body)).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
        "a broadcast too"
    );
    // A pop on channel a makes room on channel b.
    call(&app, "POST", "/v1/channels/a/listeners/l/start", None).await;
    let (s, _) = call(&app, "POST", "/v1/channels/a/listeners/l/next", None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = call(
        &app,
        "POST",
        "/v1/channels/b/listeners/l/messages",
        Some(&body),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn v1_channels_and_listeners_lifecycle() {
    let app = common::app();
    let settings =
        r#"{"id": "room", "settings": {"retry_timeout_milliseconds": 2000, "queue_capacity": 2}}"#;
    let (s, b) = call(&app, "POST", "/v1/channels", Some(settings)).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(b["settings"]["retry_timeout_milliseconds"], json!(2000));
    let (s, b) = call(&app, "POST", "/v1/channels", Some(r#"{"id": "room"}"#)).await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "channel_exists"));
    let (s, b) = call(&app, "POST", "/v1/channels", None).await;
    assert_eq!(s, StatusCode::CREATED, "no body: a fresh id and defaults");
    assert_eq!(b["id"].as_str().unwrap().len(), 36);

    let (s, _) = call(
        &app,
        "POST",
        "/v1/channels/room/listeners",
        Some(r#"{"id": "l1"}"#),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let m = r#"{"type": "greet", "payload": {"a": 1}}"#;
    let (s, b) = call(
        &app,
        "POST",
        "/v1/channels/room/listeners/l1/messages",
        Some(m),
    )
    .await;
    assert_eq!((s, b), (StatusCode::ACCEPTED, json!({"seq": 1})));
    // Registering the same id again keeps the queue.
    call(
        &app,
        "POST",
        "/v1/channels/room/listeners",
        Some(r#"{"id": "l1"}"#),
    )
    .await;
    let (s, b) = call(&app, "POST", "/v1/channels/room/listeners/l1/next", None).await;
    assert_eq!((s, code(&b)), (StatusCode::CONFLICT, "listener_stopped"));
    assert_eq!(
        call(&app, "POST", "/v1/channels/room/listeners/l1/start", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (s, b) = call(&app, "POST", "/v1/channels/room/listeners/l1/next", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (b["seq"].clone(), b["message"]["type"].clone()),
        (json!(1), json!("greet"))
    );
    assert_eq!(
        call(&app, "POST", "/v1/channels/room/listeners/l1/next", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );

    call(
        &app,
        "POST",
        "/v1/channels/room/listeners",
        Some(r#"{"id": "l2"}"#),
    )
    .await;
    for _ in 0..2 {
        let (s, _) = call(
            &app,
            "POST",
            "/v1/channels/room/listeners/l2/messages",
            Some(m),
        )
        .await;
        assert_eq!(s, StatusCode::ACCEPTED);
    }
    let (s, b) = call(
        &app,
        "POST",
        "/v1/channels/room/listeners/l2/messages",
        Some(m),
    )
    .await;
    assert_eq!((s, code(&b)), (StatusCode::TOO_MANY_REQUESTS, "queue_full"));
    let (s, b) = call(&app, "POST", "/v1/channels/room/messages", Some(m)).await;
    assert_eq!(
        (s, b),
        (
            StatusCode::ACCEPTED,
            json!({"delivered": 1, "full": ["l2"]})
        )
    );

    let (_, b) = call(&app, "GET", "/v1/channels/room", None).await;
    assert_eq!(
        b["listeners"][1],
        json!({"id": "l2", "running": false, "queued": 2})
    );
    assert_eq!(
        call(&app, "DELETE", "/v1/channels/room/listeners/l2", None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, "GET", "/v1/channels/room/listeners/l2", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, "DELETE", "/v1/channels/room", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, "GET", "/v1/channels/room", None).await.0,
        StatusCode::NOT_FOUND
    );
}

/// Every route refuses what it cannot take, with a typed error, and the
/// server keeps serving.
#[tokio::test]
async fn hostile_input_gets_typed_errors_and_the_server_keeps_serving() {
    let app = common::app_with(HttpConfig {
        max_body_bytes: 4096,
        ..HttpConfig::default()
    });
    channel_c_with_listener_l(&app, &[]).await;
    let big = format!(r#"{{"type": "t", "payload": "{}"}}"#, "x".repeat(5000));
    let deep = format!(
        r#"{{"type": "t", "payload": {}1{}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let long_type = format!(r#"{{"type": "{}", "payload": 1}}"#, "t".repeat(300));
    let long_id = "a".repeat(200);
    let dispatch = "/v1/channels/c/listeners/l/messages";
    let cases: Vec<(&str, String, Option<String>, StatusCode)> = vec![
        (
            "POST",
            dispatch.into(),
            Some(big),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "POST",
            dispatch.into(),
            Some(deep),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            dispatch.into(),
            Some(long_type),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            dispatch.into(),
            Some("[]".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            dispatch.into(),
            Some("\"just a string\"".into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            dispatch.into(),
            Some(r#"{"type": "", "payload": 1}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            format!("/v1/channels/{long_id}/listeners"),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/v1/channels".into(),
            Some(r#"{"id": "c2", "bogus": 1}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "POST",
            "/v1/channels".into(),
            Some(r#"{"settings": {"queue_capacity": 0}}"#.into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            "POST",
            "/v1/channels".into(),
            Some(r#"{"settings": {"stream_delay_seconds": -1}}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "GET",
            "/v1/channels/c/listeners/l/events?last_event_id=abc".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        ("GET", "/no/such/route".into(), None, StatusCode::NOT_FOUND),
        (
            "DELETE",
            "/healthz".into(),
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (method, uri, body, status) in cases {
        let (s, b) = call(&app, method, &uri, body.as_deref()).await;
        assert_eq!(s, status, "{method} {uri}: {b}");
        assert!(b["error"]["code"].is_string(), "{method} {uri}: {b}");
    }
    // Non-UTF-8 bytes as a body.
    let request = Request::post(dispatch)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(vec![0xff, 0xfe, 0x00]))
        .unwrap();
    assert_eq!(
        app.clone().oneshot(request).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    // No JSON content type.
    let request = Request::post(dispatch).body(Body::from("{}")).unwrap();
    assert_eq!(
        app.clone().oneshot(request).await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // Still serving.
    let (s, _) = call(
        &app,
        "POST",
        dispatch,
        Some(r#"{"type": "ok", "payload": 1}"#),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
}

/// SSE framing: headers, `retry` once, `id`/`event`/JSON `data`.
#[tokio::test]
async fn sse_response_is_framed_to_spec() {
    let app = common::app();
    channel_c_with_listener_l(&app, &[]).await;
    let m = r#"{"type": "greet", "payload": {"a": [1, "x"]}}"#;
    call(&app, "POST", "/v1/channels/c/listeners/l/messages", Some(m)).await;
    let request = Request::get("/v1/channels/c/listeners/l/events")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let h = response.headers();
    assert_eq!(h[header::CONTENT_TYPE], "text/event-stream");
    assert_eq!(h[header::CACHE_CONTROL], "no-cache");
    assert_eq!(h["x-accel-buffering"], "no");
    let mut body = response.into_body();
    let mut text = String::new();
    while !text.contains("data: ") {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&frame.into_data().unwrap()));
    }
    assert_eq!(
        text,
        "retry: 5\n: connected\n\nid: 1\nevent: greet\ndata: {\"a\": [1, \"x\"]}\n\n"
    );
}

/// A message may carry a topic; a pulled delivery returns it. An invalid
/// topic is 400 `invalid_topic` on dispatch and broadcast and queues
/// nothing; a topic of the wrong JSON type is a shape error like any other.
#[tokio::test]
async fn a_topic_travels_with_its_message_and_an_invalid_one_is_refused() {
    let app = common::app();
    channel_c_with_listener_l(&app, &[]).await;
    call(&app, "POST", "/v1/channels/c/listeners/l/start", None).await;
    let dispatch = "/v1/channels/c/listeners/l/messages";
    let body = r#"{"type": "t", "payload": 1, "topic": "kernel.q1"}"#;
    let (s, _) = call(&app, "POST", dispatch, Some(body)).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, delivery) = call(&app, "POST", "/v1/channels/c/listeners/l/next", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(delivery["message"]["topic"], json!("kernel.q1"));
    assert_eq!(delivery["message"]["payload"], json!(1));

    let long = "a".repeat(257);
    let bad_topics = ["", long.as_str(), "a\nb", "a\rb", "a\u{0}b"];
    for route in [dispatch, "/v1/channels/c/messages"] {
        for topic in bad_topics {
            let body = json!({"type": "t", "topic": topic}).to_string();
            let (s, b) = call(&app, "POST", route, Some(&body)).await;
            assert_eq!(
                (s, code(&b)),
                (StatusCode::BAD_REQUEST, "invalid_topic"),
                "{route} {topic:?}"
            );
        }
        let wrong_type = r#"{"type": "t", "topic": 7}"#;
        let (s, b) = call(&app, "POST", route, Some(wrong_type)).await;
        assert_eq!(
            (s, code(&b)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
        );
    }
    let (s, _) = call(&app, "POST", "/v1/channels/c/listeners/l/next", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "nothing refused was queued");
}
