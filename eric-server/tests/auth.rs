//! Tokens through the router: admin and subscribe tokens guard every route
//! by role; probes and preflights stay open.

#![allow(clippy::unwrap_used)]

mod common;

use axum::Router;
use axum::http::{StatusCode, header};
use eric_server::config::HttpConfig;

use common::{allowed_origin, channel_c_with_listener_l, headers_of};

const ADMIN: &str = "admin-token-0123456789";
const READER: &str = "reader-token-0123456789";

fn app_with_tokens() -> Router {
    common::app_with(HttpConfig {
        admin_tokens: vec![eric_server::http::Token::new(ADMIN)],
        subscribe_tokens: vec![eric_server::http::Token::new(READER)],
        compat_routes_with_auth: true,
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
