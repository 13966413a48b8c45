//! What `docs/HTTP.md` says about ids and re-subscribing, checked: the ids
//! `.` and `..` are refused; subscribing an id that is registered keeps the
//! listener running and its open stream going.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(app: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn dot_ids_are_refused() {
    let app = common::app();
    for id in [".", ".."] {
        let body = json!({"id": id}).to_string();
        let (status, answer) = call(&app, "POST", "/v1/channels", &body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_id")),
            "{id}"
        );
        let (status, _) = call(&app, "PUT", &format!("/create?channel_id={id}"), "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{id}");
    }
}

#[tokio::test]
async fn resubscribing_keeps_the_listener_running_and_its_stream_open() {
    let app = common::app();
    call(&app, "POST", "/v1/channels", r#"{"id": "c"}"#).await;
    call(&app, "POST", "/v1/channels/c/listeners", r#"{"id": "l"}"#).await;
    let request = Request::get("/v1/channels/c/listeners/l/events")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, _) = call(&app, "POST", "/v1/channels/c/listeners", r#"{"id": "l"}"#).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, info) = call(&app, "GET", "/v1/channels/c/listeners/l", "").await;
    assert_eq!(info["running"], json!(true));
    let message = r#"{"type": "after", "payload": 1}"#;
    call(&app, "POST", "/v1/channels/c/listeners/l/messages", message).await;
    let mut body = response.into_body();
    let mut text = String::new();
    while !text.contains("event: after") {
        let frame = tokio::time::timeout(Duration::from_secs(20), body.frame())
            .await
            .expect("the message on the open stream")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&frame.into_data().unwrap()));
        assert!(!text.contains("eric-end"), "the stream ended: {text}");
    }
}
