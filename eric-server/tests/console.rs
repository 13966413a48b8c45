//! The web console's files through the router: the page at `/ui` and
//! `/ui/`, each file with its content type and the console's headers
//! (CSP, nosniff, revalidation by `ETag`), 404 for a file it does not
//! have, and all of it open with authentication on (the page holds no
//! data; its API calls carry the token). A real browser drives the
//! console in `clients/python/tests/test_console.py`.

#![allow(clippy::unwrap_used)]

mod common;

use axum::http::{HeaderMap, StatusCode};
use eric_server::config::HttpConfig;
use eric_server::http::Token;
use http_body_util::BodyExt;

const ADMIN: &str = "admin-token-0123456789";

/// Each file the page loads, with the content type it must be served as
/// (browsers refuse a module script of another type under nosniff).
const FILES: &[(&str, &str)] = &[
    ("/ui/console.css", "text/css; charset=utf-8"),
    ("/ui/console.js", "text/javascript; charset=utf-8"),
    ("/ui/api.js", "text/javascript; charset=utf-8"),
    ("/ui/stream.js", "text/javascript; charset=utf-8"),
    ("/ui/metrics.js", "text/javascript; charset=utf-8"),
    ("/ui/favicon.svg", "image/svg+xml"),
];

async fn get(
    app: &axum::Router,
    uri: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, String) {
    let response = common::send(app, "GET", uri, None, headers).await;
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

/// The headers every console answer carries.
fn assert_console_headers(uri: &str, headers: &HeaderMap) {
    let csp = header(headers, "content-security-policy");
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{uri}: {part} not in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{uri}: {csp}");
    assert_eq!(
        header(headers, "x-content-type-options"),
        "nosniff",
        "{uri}"
    );
    assert_eq!(header(headers, "cache-control"), "no-cache", "{uri}");
    assert!(header(headers, "etag").starts_with('"'), "{uri}");
}

#[tokio::test]
async fn the_page_and_its_files_are_served_with_their_types_and_headers() {
    let app = common::app();
    for uri in ["/ui", "/ui/"] {
        let (status, headers, body) = get(&app, uri, &[]).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(header(&headers, "content-type"), "text/html; charset=utf-8");
        assert_console_headers(uri, &headers);
        assert!(body.contains("<title>eric console</title>"), "{uri}");
        // The other scripts are modules console.js imports.
        for file in ["/ui/console.css", "/ui/console.js", "/ui/favicon.svg"] {
            assert!(body.contains(file), "the page does not load {file}");
        }
    }
    for (uri, content_type) in FILES {
        let (status, headers, body) = get(&app, uri, &[]).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(header(&headers, "content-type"), *content_type, "{uri}");
        assert_console_headers(uri, &headers);
        assert!(!body.is_empty(), "{uri}");
    }
}

#[tokio::test]
async fn a_file_the_browser_holds_is_not_sent_again() {
    let app = common::app();
    let (_, headers, _) = get(&app, "/ui/console.js", &[]).await;
    let tag = header(&headers, "etag").to_owned();
    let (status, headers, body) = get(&app, "/ui/console.js", &[("if-none-match", &tag)]).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty());
    assert_eq!(header(&headers, "etag"), tag);
    let (status, _, _) = get(&app, "/ui/console.js", &[("if-none-match", "\"other\"")]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, page, _) = get(&app, "/ui", &[]).await;
    assert_ne!(header(&page, "etag"), tag, "each file has its own tag");
}

#[tokio::test]
async fn unknown_files_are_404_in_erics_error_shape() {
    let app = common::app();
    for uri in [
        "/ui/nothing.js",
        "/ui/index.html",
        "/ui/..%2Fconsole.js",
        "/ui/console.js/x",
    ] {
        let (status, _, body) = get(&app, uri, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(common::code(&body), "not_found", "{uri}");
    }
}

#[tokio::test]
async fn a_name_that_is_no_utf_8_is_refused_in_erics_error_shape() {
    let (status, _, body) = get(&common::app(), "/ui/%FF.js", &[]).await;
    assert!(status.is_client_error(), "{status}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(body["error"]["code"].is_string(), "{body}");
}

#[tokio::test]
async fn with_authentication_on_the_console_is_open_and_the_api_is_not() {
    let app = common::app_with(HttpConfig {
        admin_tokens: vec![Token::new(ADMIN)],
        ..HttpConfig::default()
    });
    for uri in ["/ui", "/ui/"]
        .into_iter()
        .chain(FILES.iter().map(|(uri, _)| *uri))
    {
        let (status, headers, _) = get(&app, uri, &[]).await;
        assert_eq!(status, StatusCode::OK, "{uri} without a token");
        assert_console_headers(uri, &headers);
    }
    let (status, _) = common::headers_of(&app, "HEAD", "/ui/console.js", &[]).await;
    assert_eq!(status, StatusCode::OK, "HEAD without a token");
    // An unknown file is no longer the console's: like any unknown path,
    // an admin's.
    let (status, _, _) = get(&app, "/ui/console.js/x", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // What the page then calls needs the token it asks for.
    for uri in ["/v1/channels", "/metrics"] {
        let (status, _, body) = get(&app, uri, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(common::code(&body), "unauthorized");
        let bearer = format!("Bearer {ADMIN}");
        let (status, _, _) = get(&app, uri, &[("authorization", &bearer)]).await;
        assert_eq!(status, StatusCode::OK, "{uri} with the token");
    }
}
