//! Retried writes over HTTP: a dispatch or broadcast named by an
//! `Idempotency-Key` header (or its message's `id`) is applied once and its
//! repeats are answered as the first was, marked `Idempotent-Replayed`, on
//! `/v1` and on eric-api's routes. Bad keys are refused and apply nothing.

#![allow(clippy::unwrap_used)]

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use eric_server::config::HttpConfig;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// What one request got: status, whether it was a replay, JSON body.
async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, bool, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, replayed, value)
}

async fn queued(app: &Router, listener: &str) -> u64 {
    let uri = format!("/v1/channels/c/listeners/{listener}");
    let (status, _, info) = call(app, "GET", &uri, "", &[]).await;
    assert_eq!(status, StatusCode::OK);
    info["queued"].as_u64().unwrap()
}

async fn channel_with(app: &Router, listeners: &[&str]) {
    let (status, ..) = call(app, "POST", "/v1/channels", r#"{"id": "c"}"#, &[]).await;
    assert_eq!(status, StatusCode::CREATED);
    for l in listeners {
        let body = format!(r#"{{"id": "{l}"}}"#);
        let (status, ..) = call(app, "POST", "/v1/channels/c/listeners", &body, &[]).await;
        assert_eq!(status, StatusCode::CREATED);
    }
}

const MESSAGE: &str = r#"{"type": "t", "payload": 1}"#;

#[tokio::test]
async fn a_v1_dispatch_retried_with_its_key_is_applied_once() {
    let app = common::app();
    channel_with(&app, &["l"]).await;
    let uri = "/v1/channels/c/listeners/l/messages";
    let key = [("idempotency-key", "order-17")];
    let first = call(&app, "POST", uri, MESSAGE, &key).await;
    assert_eq!((first.0, first.1), (StatusCode::ACCEPTED, false));
    let again = call(&app, "POST", uri, MESSAGE, &key).await;
    assert_eq!((again.0, again.1), (StatusCode::ACCEPTED, true));
    assert_eq!(again.2, first.2);
    assert_eq!(queued(&app, "l").await, 1);
    // Without a key every call applies.
    call(&app, "POST", uri, MESSAGE, &[]).await;
    call(&app, "POST", uri, MESSAGE, &[]).await;
    assert_eq!(queued(&app, "l").await, 3);
}

#[tokio::test]
async fn a_v1_broadcast_named_by_its_message_id_is_applied_once() {
    let app = common::app();
    channel_with(&app, &["a", "b"]).await;
    let body = r#"{"type": "t", "payload": 1, "id": "m-1"}"#;
    let first = call(&app, "POST", "/v1/channels/c/messages", body, &[]).await;
    assert_eq!((first.0, first.1), (StatusCode::ACCEPTED, false));
    assert_eq!(first.2["delivered"], 2);
    let again = call(&app, "POST", "/v1/channels/c/messages", body, &[]).await;
    assert_eq!(
        (again.0, again.1, &again.2),
        (StatusCode::ACCEPTED, true, &first.2)
    );
    // The header names the write when both are given.
    let key = [("idempotency-key", "other")];
    let third = call(&app, "POST", "/v1/channels/c/messages", body, &key).await;
    assert!(!third.1);
    assert_eq!(queued(&app, "a").await, 2);
    assert_eq!(queued(&app, "b").await, 2);
}

#[tokio::test]
async fn eric_api_writes_take_the_key_too() {
    let app = common::app();
    channel_with(&app, &["l"]).await;
    let key = [("idempotency-key", "k")];
    for uri in [
        "/dispatch?channel_id=c&listener_id=l",
        "/broadcast?channel_id=c",
    ] {
        let first = call(&app, "POST", uri, MESSAGE, &key).await;
        assert_eq!((first.0, first.1), (StatusCode::OK, false), "{uri}");
        let again = call(&app, "POST", uri, MESSAGE, &key).await;
        assert_eq!((again.0, again.1), (StatusCode::OK, true), "{uri}");
        assert_eq!(again.2, Value::Null);
    }
    assert_eq!(queued(&app, "l").await, 2);
}

#[tokio::test]
async fn malformed_keys_are_refused_and_apply_nothing() {
    let app = common::app();
    channel_with(&app, &["l"]).await;
    let long = "k".repeat(200);
    let uri = "/v1/channels/c/listeners/l/messages";
    for bad in [
        &[("idempotency-key", "two words")][..],
        &[("idempotency-key", "")],
        &[("idempotency-key", long.as_str())],
    ] {
        let (status, _, body) = call(&app, "POST", uri, MESSAGE, bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(body["error"]["code"], "invalid_idempotency_key", "{bad:?}");
    }
    // Two keys for one write: which one is meant is unclear.
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .body(Body::from(MESSAGE))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Not visible ASCII.
    let request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            "idempotency-key",
            axum::http::HeaderValue::from_bytes(b"k\xff").unwrap(),
        )
        .body(Body::from(MESSAGE))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(queued(&app, "l").await, 0);
}

#[tokio::test]
async fn pages_on_allowed_origins_may_send_keys_and_see_replays() {
    let app = common::app_with(HttpConfig {
        cors_origins: vec!["https://app.example".into()],
        ..HttpConfig::default()
    });
    channel_with(&app, &["l"]).await;
    let preflight = Request::builder()
        .method("OPTIONS")
        .uri("/v1/channels/c/listeners/l/messages")
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, idempotency-key",
        )
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(preflight).await.unwrap();
    let allowed = response.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(allowed.contains("idempotency-key"), "{allowed}");
    let request = Request::post("/v1/channels/c/listeners/l/messages")
        .header("origin", "https://app.example")
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", "k")
        .body(Body::from(MESSAGE))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(exposed.contains("idempotent-replayed"), "{exposed}");
}
