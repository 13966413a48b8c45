//! The router on the in-memory engine, as the router tests build it, and
//! the requests they send it (through the router, without a socket).

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use eric_core::{ChannelSettings, MemoryEngine};
use eric_server::config::HttpConfig;
use eric_server::http::{AppState, router};
use eric_server::{Broker, Metrics};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The whole API with default settings.
pub fn app() -> Router {
    app_with(HttpConfig::default())
}

/// The whole API with `http`.
pub fn app_with(http: HttpConfig) -> Router {
    app_with_defaults(http, ChannelSettings::default())
}

/// The whole API with `http`, channels created with `defaults`.
pub fn app_with_defaults(http: HttpConfig, defaults: ChannelSettings) -> Router {
    let metrics = Arc::new(Metrics::new());
    let engine = MemoryEngine::with_observer(metrics.clone());
    router(
        AppState::new(
            Broker::new(engine, defaults),
            http,
            metrics,
            CancellationToken::new(),
        )
        .unwrap(),
    )
}

/// One request with `headers`, and a JSON body when one is given.
pub async fn send(
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

/// One request with `headers`; the status, the headers and the body as JSON
/// (`null` when it is none). A stream's body never ends: for an event
/// stream only the head is read.
pub async fn exchange(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = send(app, method, uri, body, headers).await;
    let (status, headers) = (response.status(), response.headers().clone());
    if headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()) == Some(b"text/event-stream") {
        return (status, headers, Value::Null);
    }
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, value)
}

/// One request; the status and the body (JSON when it parses, else a string).
pub async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let response = send(app, method, uri, body, &[]).await;
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Channel `c` with listener `l`, made through the `/v1` API.
pub async fn channel_c_with_listener_l(app: &Router, headers: &[(&str, &str)]) {
    for (uri, body) in [
        ("/v1/channels", r#"{"id": "c"}"#),
        ("/v1/channels/c/listeners", r#"{"id": "l"}"#),
    ] {
        let response = send(app, "POST", uri, Some(body), headers).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{uri}");
    }
}

/// The typed error code of an error body.
pub fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// A request with extra headers; the status and the response headers.
pub async fn headers_of(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap) {
    let response = send(app, method, uri, None, headers).await;
    (response.status(), response.headers().clone())
}

/// The `Access-Control-Allow-Origin` an answer carries, if any.
pub fn allowed_origin(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .and_then(|v| v.to_str().ok())
}

/// A private key made by `openssl` (PKCS#8 PEM) and its public key (SPKI
/// PEM), in `dir` as `NAME.pem` and `NAME.pub.pem`; `args` choose the key
/// (`-algorithm RSA ...`, `-algorithm EC ...`).
pub fn openssl_key(dir: &std::path::Path, name: &str, args: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let made = std::process::Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&private)
        .output()
        .expect("openssl is installed (scripts/install-test-deps)");
    assert!(made.status.success(), "{made:?}");
    let made = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    (
        std::fs::read(private).unwrap(),
        std::fs::read(public).unwrap(),
    )
}

/// Channel `c`, its listener `l` and one broadcast `t`, made through the
/// `/v1` API of the server at `base` (a real socket, unlike the router
/// helpers above).
pub async fn channel_c_with_listener_l_and_a_broadcast(http: &reqwest::Client, base: &str) {
    for (uri, body) in [
        ("/v1/channels", r#"{"id": "c"}"#),
        ("/v1/channels/c/listeners", r#"{"id": "l"}"#),
        ("/v1/channels/c/messages", r#"{"type": "t"}"#),
    ] {
        let response = http
            .post(format!("{base}{uri}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{uri}: {response:?}");
    }
}
