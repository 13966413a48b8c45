//! CORS through the router: the configured origins only, on errors and
//! preflights too.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{StatusCode, header};
use eric_server::config::HttpConfig;

use common::{allowed_origin, headers_of};

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

/// With a token cookie configured, listed origins may send it
/// (`withCredentials`); `*` never may, and without the cookie setting no
/// origin is told it may.
#[tokio::test]
async fn listed_origins_may_send_the_token_cookie() {
    let page = [("origin", "https://app.example")];
    let credentials = |headers: &axum::http::HeaderMap| {
        headers
            .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    for (origins, cookie, expected) in [
        (
            vec!["https://app.example"],
            Some("eric_token"),
            Some("true"),
        ),
        (vec!["https://app.example"], None, None),
        (vec!["*"], Some("eric_token"), None),
    ] {
        let app = common::app_with(HttpConfig {
            cors_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            auth_cookie: cookie.map(str::to_owned),
            ..HttpConfig::default()
        });
        let (_, headers) = headers_of(&app, "GET", "/v1/channels", &page).await;
        assert_eq!(
            credentials(&headers).as_deref(),
            expected,
            "{origins:?} {cookie:?}"
        );
        assert!(allowed_origin(&headers).is_some());
    }
}
