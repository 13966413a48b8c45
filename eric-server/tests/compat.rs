//! eric-api's routes (`/create`, `/subscribe`, `/dispatch`, ...) driven
//! through the router: its e2e script, its error cases with our one error
//! shape, and the deviations from it.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::{call, code};

/// eric-api's e2e script, step by step.
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
