//! The operations endpoints through the router: `/healthz`, `/readyz` and
//! `/metrics`.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use serde_json::{Value, json};

use common::{call, channel_c_with_listener_l};

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
