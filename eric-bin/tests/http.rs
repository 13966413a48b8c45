//! The HTTP API driven through the router, without a socket: eric-api's
//! routes, the `/v1` API, the error shape, and malformed or hostile input on
//! every route.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use eric_bin::config::HttpConfig;
use eric_bin::http::{AppState, router};
use eric_bin::{Broker, Metrics};
use eric_core::{ChannelSettings, MemoryEngine};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// One request with `headers`, and a JSON body when one is given.
async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> axum::response::Response {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    app.clone().oneshot(request).await.unwrap()
}

/// One request; the status and the body (JSON when it parses, else a string).
async fn call(app: &Router, method: &str, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
    let response = send(app, method, uri, body, &[]).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Channel `c` with listener `l`, made through the `/v1` API.
async fn channel_c_with_listener_l(app: &Router, headers: &[(&str, &str)]) {
    for (uri, body) in [
        ("/v1/channels", r#"{"id": "c"}"#),
        ("/v1/channels/c/listeners", r#"{"id": "l"}"#),
    ] {
        let response = send(app, "POST", uri, Some(body), headers).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{uri}");
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// eric-api's e2e script, step by step (eric-python.md section 6.5).
#[tokio::test]
async fn eric_api_routes_answer_as_eric_api_does() {
    let app = common::app();
    let (s, b) = call(&app, "PUT", "/create?channel_id=ch1", None).await;
    assert_eq!((s, b), (StatusCode::OK, json!({"channel_id": "ch1"})));
    let (_, b) = call(&app, "POST", "/subscribe?channel_id=ch1", None).await;
    let l1 = b["listener_id"].as_str().unwrap().to_owned();
    let (_, b) = call(&app, "POST", "/subscribe?channel_id=ch1", None).await;
    let l2 = b["listener_id"].as_str().unwrap().to_owned();
    let body = r#"{"type": "test", "payload": {"a": 1}}"#;
    let (s, b) = call(
        &app,
        "POST",
        &format!("/dispatch?channel_id=ch1&listener_id={l1}"),
        Some(body),
    )
    .await;
    assert_eq!((s, b), (StatusCode::OK, Value::Null));
    call(&app, "PUT", "/create?channel_id=ch2", None).await;
    let (_, b) = call(&app, "POST", "/subscribe?channel_id=ch2", None).await;
    let l3 = b["listener_id"].as_str().unwrap().to_owned();
    for ch in ["ch1", "ch2"] {
        let body = r#"{"type": "stop", "payload": "stop"}"#;
        let (s, _) = call(
            &app,
            "POST",
            &format!("/broadcast?channel_id={ch}"),
            Some(body),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (_, b) = call(&app, "GET", "/", None).await;
    assert_eq!(b, json!({"ch1": [l1, l2], "ch2": [l3]}));
    let (_, b) = call(&app, "GET", "/channels", None).await;
    assert_eq!(b, json!(["ch1", "ch2"]));
    let (s, b) = call(&app, "DELETE", &format!("/listener/ch1/{l2}"), None).await;
    assert_eq!((s, b), (StatusCode::OK, Value::Null));
    let (s, _) = call(&app, "DELETE", "/channel/ch2", None).await;
    assert_eq!(s, StatusCode::OK);
    let (_, b) = call(&app, "GET", "/", None).await;
    assert_eq!(b, json!({"ch1": [l1]}));
}

/// Deviation: unknown channels and listeners are 404 in every mode (eric-api
/// answered 400, or 500 in memory mode), with one JSON error shape.
#[tokio::test]
async fn eric_api_routes_reject_bad_requests_with_one_error_shape() {
    let app = common::app();
    call(&app, "PUT", "/create?channel_id=c", None).await;
    let msg = r#"{"type": "t", "payload": 1}"#;
    let deep = format!(
        r#"{{"type": "t", "payload": {}1{}}}"#,
        "[".repeat(70),
        "]".repeat(70)
    );
    let cases: Vec<(&str, String, Option<&str>, StatusCode, &str)> = vec![
        (
            "PUT",
            "/create?channel_id=c".into(),
            None,
            StatusCode::CONFLICT,
            "channel_exists",
        ),
        (
            "POST",
            "/subscribe".into(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_query",
        ),
        (
            "POST",
            "/subscribe?channel_id=nope".into(),
            None,
            StatusCode::NOT_FOUND,
            "channel_not_found",
        ),
        (
            "POST",
            "/dispatch?channel_id=c&listener_id=zz".into(),
            Some(msg),
            StatusCode::NOT_FOUND,
            "listener_not_found",
        ),
        (
            "POST",
            "/broadcast?channel_id=nope".into(),
            Some(msg),
            StatusCode::NOT_FOUND,
            "channel_not_found",
        ),
        (
            "POST",
            "/broadcast?channel_id=c".into(),
            Some(r#"{"type": "t"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "POST",
            "/broadcast?channel_id=c".into(),
            Some(r#"{"type": "a\nb", "payload": 1}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "POST",
            "/broadcast?channel_id=c".into(),
            Some("{nope"),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "PUT",
            "/create?channel_id=has%20space".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            "DELETE",
            "/listener/c/nope".into(),
            None,
            StatusCode::NOT_FOUND,
            "listener_not_found",
        ),
        (
            "DELETE",
            "/channel/nope".into(),
            None,
            StatusCode::NOT_FOUND,
            "channel_not_found",
        ),
        (
            "GET",
            "/stream/c/nope".into(),
            None,
            StatusCode::NOT_FOUND,
            "listener_not_found",
        ),
        (
            "DELETE",
            "/channel/%FF".into(),
            None,
            StatusCode::BAD_REQUEST,
            "invalid_path",
        ),
        (
            "POST",
            "/broadcast?channel_id=c".into(),
            Some(&deep),
            // As on /v1: one depth rule for every body.
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "POST",
            "/broadcast?channel_id=c".into(),
            Some(r#"{"type": "eric-end", "payload": 1}"#),
            StatusCode::BAD_REQUEST,
            "invalid_message",
        ),
    ];
    for (method, uri, body, status, expected) in cases {
        let (s, b) = call(&app, method, &uri, body).await;
        assert_eq!((s, code(&b)), (status, expected), "{method} {uri}");
        assert!(
            b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
}

/// Deviation: a boolean payload stays a boolean (pydantic made it 1).
#[tokio::test]
async fn payloads_keep_their_json_types() {
    let app = common::app();
    call(&app, "PUT", "/create?channel_id=c", None).await;
    let (_, b) = call(
        &app,
        "POST",
        "/v1/channels/c/listeners",
        Some(r#"{"id": "l"}"#),
    )
    .await;
    assert_eq!(b, json!({"id": "l"}));
    call(&app, "POST", "/v1/channels/c/listeners/l/start", None).await;
    let body = r#"{"type": "t", "payload": true}"#;
    call(
        &app,
        "POST",
        "/dispatch?channel_id=c&listener_id=l",
        Some(body),
    )
    .await;
    let (_, b) = call(&app, "POST", "/v1/channels/c/listeners/l/next", None).await;
    assert_eq!(b["message"]["payload"], json!(true));
}

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
    let app = router(AppState {
        broker: Broker::new(engine, ChannelSettings::default()),
        http: Arc::new(HttpConfig::default()),
        metrics,
        shutdown: CancellationToken::new(),
    });
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

#[tokio::test]
async fn operations_endpoints_answer() {
    let app = common::app();
    assert_eq!(
        call(&app, "GET", "/healthz", None).await,
        (StatusCode::OK, json!({"status": "ok"}))
    );
    assert_eq!(
        call(&app, "GET", "/readyz", None).await,
        (StatusCode::OK, json!({"ready": true}))
    );
    channel_c_with_listener_l(&app, &[]).await;
    call(
        &app,
        "POST",
        "/v1/channels/c/messages",
        Some(r#"{"type": "t"}"#),
    )
    .await;
    let (s, Value::String(text)) = call(&app, "GET", "/metrics", None).await else {
        panic!("metrics are text");
    };
    assert_eq!(s, StatusCode::OK);
    for line in [
        "eric_messages_dispatched_total 1",
        "eric_channels 1",
        "eric_listeners 1",
        "eric_queue_depth{channel=\"c\"} 1",
        "eric_sse_streams 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text.ends_with("# EOF\n"));
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

/// A request with extra headers; the status and the response headers.
async fn headers_of(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap) {
    let response = send(app, method, uri, None, headers).await;
    (response.status(), response.headers().clone())
}

fn allowed_origin(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn cors_allows_the_configured_origins_only() {
    let page = [("origin", "https://app.example")];
    // Not configured: no CORS header, so browsers keep to same-origin pages.
    let (status, headers) = headers_of(&common::app(), "GET", "/channels", &page).await;
    assert_eq!((status, allowed_origin(&headers)), (StatusCode::OK, None));

    let app = common::app_with(HttpConfig {
        cors_origins: vec!["https://app.example".into()],
        ..HttpConfig::default()
    });
    let (_, headers) = headers_of(&app, "GET", "/channels", &page).await;
    assert_eq!(allowed_origin(&headers), Some("https://app.example"));
    // Error answers carry it too, or the page could not read the error.
    let (status, headers) = headers_of(&app, "GET", "/v1/channels/nope", &page).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(allowed_origin(&headers), Some("https://app.example"));
    let other = [("origin", "https://evil.example")];
    let (_, headers) = headers_of(&app, "GET", "/channels", &other).await;
    assert_eq!(allowed_origin(&headers), None);

    // The preflight of a cross-origin dispatch with a JSON body.
    let preflight = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "content-type"),
    ];
    let uri = "/v1/channels/c/listeners/l/messages";
    let (status, headers) = headers_of(&app, "OPTIONS", uri, &preflight).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(allowed_origin(&headers), Some("https://app.example"));
    let methods = headers[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap();
    assert!(allowed.contains("content-type"), "{allowed}");

    let any = common::app_with(HttpConfig {
        cors_origins: vec!["*".into()],
        ..HttpConfig::default()
    });
    let (_, headers) = headers_of(&any, "GET", "/channels", &other).await;
    assert_eq!(allowed_origin(&headers), Some("*"));
}

const ADMIN: &str = "admin-token-0123456789";
const READER: &str = "reader-token-0123456789";

fn app_with_tokens() -> Router {
    common::app_with(HttpConfig {
        admin_tokens: vec![eric_bin::http::Token::new(ADMIN)],
        subscribe_tokens: vec![eric_bin::http::Token::new(READER)],
        cors_origins: vec!["https://app.example".into()],
        ..HttpConfig::default()
    })
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn tokens_guard_every_route_by_role() {
    let app = app_with_tokens();
    let (admin, reader) = (bearer(ADMIN), bearer(READER));
    let as_admin = [("authorization", admin.as_str())];
    let as_reader = [("authorization", reader.as_str())];
    let wrong = [("authorization", "Bearer wrong-token-0123456789")];

    // Probes stay open; metrics name channels, so they are an admin's.
    for path in ["/healthz", "/readyz"] {
        assert_eq!(headers_of(&app, "GET", path, &[]).await.0, StatusCode::OK);
    }
    let (status, headers) = headers_of(&app, "GET", "/metrics", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
    let (status, _) = headers_of(&app, "GET", "/metrics", &as_admin).await;
    assert_eq!(status, StatusCode::OK);

    // Changing things: an admin's only.
    let (status, _) = headers_of(&app, "PUT", "/create?channel_id=c", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = headers_of(&app, "PUT", "/create?channel_id=c", &wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = headers_of(&app, "PUT", "/create?channel_id=c", &as_reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = headers_of(&app, "PUT", "/create?channel_id=c", &as_admin).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = headers_of(&app, "POST", "/v1/channels/c/listeners", &as_admin).await;
    assert_eq!(status, StatusCode::CREATED);

    // A token in the query counts on stream routes only (EventSource).
    let uri = format!("/v1/channels/c/events?access_token={READER}");
    let (status, _) = headers_of(&app, "GET", &uri, &[]).await;
    assert_eq!(status, StatusCode::OK);
    let uri = format!("/v1/channels?access_token={ADMIN}");
    let (status, _) = headers_of(&app, "GET", &uri, &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A reader pulls; an unknown route is still refused before it is a 404.
    let (status, _) = headers_of(&app, "GET", "/v1/channels", &as_reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = headers_of(&app, "GET", "/nowhere", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Preflights carry no credentials and are answered before the check.
    let preflight = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "GET"),
        ("access-control-request-headers", "authorization"),
    ];
    let (status, headers) = headers_of(&app, "OPTIONS", "/v1/channels", &preflight).await;
    assert!(status.is_success(), "{status}");
    assert_eq!(allowed_origin(&headers), Some("https://app.example"));
}

#[tokio::test]
async fn a_subscribe_token_streams_and_pulls() {
    let app = app_with_tokens();
    let (admin, reader) = (bearer(ADMIN), bearer(READER));
    let as_admin = [("authorization", admin.as_str())];
    let as_reader = [("authorization", reader.as_str())];
    channel_c_with_listener_l(&app, &as_admin).await;
    let start = "/v1/channels/c/listeners/l/start";
    let (status, _) = headers_of(&app, "POST", start, &as_admin).await;
    assert!(status.is_success(), "{status}");
    let uri = "/v1/channels/c/listeners/l/next";
    let (status, _) = headers_of(&app, "POST", uri, &as_reader).await;
    assert!(
        matches!(status, StatusCode::NOT_FOUND | StatusCode::NO_CONTENT),
        "{status}"
    );
    let uri = "/v1/channels/c/listeners/l/events";
    let (status, _) = headers_of(&app, "GET", uri, &as_reader).await;
    assert_eq!(status, StatusCode::OK);
    let uri = "/v1/channels/c/listeners/l/messages";
    let (status, _) = headers_of(&app, "POST", uri, &as_reader).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = headers_of(&app, "GET", "/v1/channels/c", &as_admin).await;
    assert_eq!(status, StatusCode::OK);
}
