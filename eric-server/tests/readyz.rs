//! `/readyz` against a Redis nobody listens on: a fixed reason for the
//! (unauthenticated) caller, never the cause's text.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use eric_core::ChannelSettings;
use eric_redis::{RedisConfig, RedisEngine};
use eric_server::config::HttpConfig;
use eric_server::http::{AppState, router};
use eric_server::{Broker, Metrics};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// A port that was free a moment ago: bound, then released.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn readyz_names_the_state_not_the_cause() {
    let url = format!("redis://127.0.0.1:{}", free_port());
    let config = RedisConfig::with_url(url).with_prefix("readyz-free-port");
    let engine = RedisEngine::connect(config).unwrap();
    let app = router(
        AppState::new(
            Broker::new(engine, ChannelSettings::default()),
            HttpConfig::default(),
            Arc::new(Metrics::new()),
            CancellationToken::new(),
        )
        .unwrap(),
    );
    let request = Request::get("/readyz").body(Body::empty()).unwrap();
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body, json!({"ready": false, "reason": "redis unavailable"}));
}
