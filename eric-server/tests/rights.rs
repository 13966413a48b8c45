//! Who may do what: every route walked with no token, a subscribe token (in
//! the header and in the query) and an admin token, against the rights table
//! of `docs/HTTP.md` (Authentication). Written out here, not derived from the
//! code's table, so the two are checked against each other.

#![allow(clippy::unwrap_used)]

mod common;

use axum::Router;
use axum::http::{StatusCode, header};
use eric_server::config::HttpConfig;
use eric_server::http::Token;
use serde_json::Value;

const ADMIN: &str = "admin-token-0123456789";
const READER: &str = "reader-token-0123456789";

/// The right a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Right {
    Open,
    Subscribe,
    Admin,
}

/// What a route does to listener `l`'s running flag (it starts stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Leaves it as it is.
    Keeps,
    /// Starts it for an admin; a subscriber gets 409 `listener_stopped`.
    StartsForAdmin,
}

/// One row of the table: method, target, body, right, query token taken.
struct Row {
    method: &'static str,
    uri: &'static str,
    body: Option<&'static str>,
    right: Right,
    query_token: bool,
    effect: Effect,
}

const M: Option<&str> = Some(r#"{"type": "t", "payload": 1}"#);

const fn row(
    method: &'static str,
    uri: &'static str,
    body: Option<&'static str>,
    right: Right,
) -> Row {
    Row {
        method,
        uri,
        body,
        right,
        query_token: false,
        effect: Effect::Keeps,
    }
}

const fn stream(method: &'static str, uri: &'static str, effect: Effect) -> Row {
    Row {
        method,
        uri,
        body: None,
        right: Right::Subscribe,
        query_token: true,
        effect,
    }
}

fn table() -> Vec<Row> {
    use Effect::{Keeps, StartsForAdmin};
    use Right::{Admin, Open, Subscribe};
    vec![
        row("GET", "/healthz", None, Open),
        row("GET", "/readyz", None, Open),
        row("GET", "/v1/openapi.json", None, Open),
        row("GET", "/metrics", None, Admin),
        // The web console's page and files: no data in them.
        row("GET", "/ui", None, Open),
        row("GET", "/ui/", None, Open),
        row("GET", "/ui/console.js", None, Open),
        // eric-api's routes.
        row("GET", "/", None, Admin),
        row("GET", "/channels", None, Admin),
        row("PUT", "/create?channel_id=new", None, Admin),
        row("POST", "/subscribe?channel_id=c", None, Admin),
        row("POST", "/dispatch?channel_id=c&listener_id=l", M, Admin),
        row("POST", "/broadcast?channel_id=c", M, Admin),
        stream("GET", "/stream/c/l", StartsForAdmin),
        stream("HEAD", "/stream/c/l", Keeps),
        row("DELETE", "/listener/c/l", None, Admin),
        row("DELETE", "/channel/c", None, Admin),
        // /v1.
        row("GET", "/v1/channels", None, Admin),
        row("POST", "/v1/channels", Some(r#"{"id": "new"}"#), Admin),
        row("GET", "/v1/channels/c", None, Admin),
        row("DELETE", "/v1/channels/c", None, Admin),
        row("POST", "/v1/channels/c/messages", M, Admin),
        stream("GET", "/v1/channels/c/events", Keeps),
        stream("HEAD", "/v1/channels/c/events", Keeps),
        row("GET", "/v1/channels/c/listeners", None, Admin),
        row("POST", "/v1/channels/c/listeners", None, Admin),
        row("GET", "/v1/channels/c/listeners/l", None, Admin),
        row("DELETE", "/v1/channels/c/listeners/l", None, Admin),
        row("POST", "/v1/channels/c/listeners/l/start", None, Admin),
        row("POST", "/v1/channels/c/listeners/l/stop", None, Admin),
        row("POST", "/v1/channels/c/listeners/l/messages", M, Admin),
        row("POST", "/v1/channels/c/listeners/l/next", None, Subscribe),
        stream("GET", "/v1/channels/c/listeners/l/events", StartsForAdmin),
        stream("HEAD", "/v1/channels/c/listeners/l/events", Keeps),
        row(
            "GET",
            "/v1/channels/c/listeners/l/subscriptions",
            None,
            Admin,
        ),
        row(
            "PUT",
            "/v1/channels/c/listeners/l/subscriptions",
            Some(r#"{"subscriptions": [{"type": "t"}]}"#),
            Admin,
        ),
        row(
            "PATCH",
            "/v1/channels/c/listeners/l/subscriptions",
            Some(r#"{"add": [{"type": "u"}]}"#),
            Admin,
        ),
        stream("GET", "/v1/channels/c/events?filter=t:a.b", Keeps),
        // Unknown routes are an admin's (a 404 once allowed).
        row("GET", "/nowhere", None, Admin),
    ]
}

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Nobody,
    ReaderHeader,
    ReaderQuery,
    AdminHeader,
    AdminQuery,
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    authorization: Option<&str>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let headers: Vec<(&str, &str)> = authorization
        .map(|v| ("authorization", v))
        .into_iter()
        .collect();
    common::exchange(app, method, uri, body, &headers).await
}

/// Channel `c` with a stopped listener `l`, made with the admin token.
async fn setup(app: &Router) {
    let admin = format!("Bearer {ADMIN}");
    for (uri, body) in [
        ("/v1/channels", r#"{"id": "c"}"#),
        ("/v1/channels/c/listeners", r#"{"id": "l"}"#),
    ] {
        let (status, _, _) = send(app, "POST", uri, Some(body), Some(&admin)).await;
        assert_eq!(status, StatusCode::CREATED, "{uri}");
    }
}

/// `l`'s running flag, or `None` once it is gone.
async fn running(app: &Router) -> Option<bool> {
    let admin = format!("Bearer {ADMIN}");
    let (status, _, info) =
        send(app, "GET", "/v1/channels/c/listeners/l", None, Some(&admin)).await;
    (status == StatusCode::OK).then(|| info["running"].as_bool().unwrap())
}

fn with_query_token(uri: &str, token: &str) -> String {
    let joiner = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{joiner}access_token={token}")
}

/// The right a caller holds, for this route (a query token counts only
/// where the route takes one).
fn holds(caller: Caller, row: &Row) -> Right {
    match caller {
        Caller::Nobody => Right::Open,
        Caller::ReaderHeader => Right::Subscribe,
        Caller::AdminHeader => Right::Admin,
        Caller::ReaderQuery if row.query_token => Right::Subscribe,
        Caller::AdminQuery if row.query_token => Right::Admin,
        Caller::ReaderQuery | Caller::AdminQuery => Right::Open,
    }
}

fn rank(right: Right) -> u8 {
    match right {
        Right::Open => 0,
        Right::Subscribe => 1,
        Right::Admin => 2,
    }
}

/// Records a mismatch instead of stopping at the first, so one run lists
/// every route that disagrees with the table.
fn check(failures: &mut Vec<String>, ok: bool, what: String) {
    if !ok {
        failures.push(what);
    }
}

#[tokio::test]
async fn every_route_answers_its_rights_table_row() {
    let callers = [
        Caller::Nobody,
        Caller::ReaderHeader,
        Caller::ReaderQuery,
        Caller::AdminHeader,
        Caller::AdminQuery,
    ];
    let mut failures = Vec::new();
    let f = &mut failures;
    for row in table() {
        for caller in callers {
            // A fresh broker per case: routes that delete or start must not
            // change what the next case sees.
            let app = app();
            setup(&app).await;
            let (uri, authorization) = match caller {
                Caller::Nobody => (row.uri.to_owned(), None),
                Caller::ReaderHeader => (row.uri.to_owned(), Some(format!("Bearer {READER}"))),
                Caller::AdminHeader => (row.uri.to_owned(), Some(format!("Bearer {ADMIN}"))),
                Caller::ReaderQuery => (with_query_token(row.uri, READER), None),
                Caller::AdminQuery => (with_query_token(row.uri, ADMIN), None),
            };
            let case = format!("{} {uri} as {caller:?}", row.method);
            let (status, headers, body) =
                send(&app, row.method, &uri, row.body, authorization.as_deref()).await;
            let after = running(&app).await;
            let held = holds(caller, &row);
            let said = format!("{case}: {status} {body}, running {after:?}");
            if rank(held) < rank(row.right) {
                let expected = if held == Right::Open {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::FORBIDDEN
                };
                check(f, status == expected, format!("{said}; want {expected}"));
                check(
                    f,
                    after == Some(false),
                    format!("{said}; refused but changed"),
                );
                if expected == StatusCode::UNAUTHORIZED {
                    let challenge = headers.get(header::WWW_AUTHENTICATE);
                    check(
                        f,
                        challenge.is_some_and(|v| v == "Bearer"),
                        format!("{said}; no challenge"),
                    );
                }
                continue;
            }
            let allowed = status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN;
            check(f, allowed, format!("{said}; want allowed"));
            match row.effect {
                Effect::StartsForAdmin if held == Right::Admin => {
                    check(
                        f,
                        status == StatusCode::OK && after == Some(true),
                        format!("{said}; want 200 and started"),
                    );
                }
                Effect::StartsForAdmin => {
                    let stopped = status == StatusCode::CONFLICT
                        && body["error"]["code"] == "listener_stopped";
                    check(
                        f,
                        stopped && after == Some(false),
                        format!("{said}; want 409 listener_stopped, still stopped"),
                    );
                }
                Effect::Keeps if row.method == "HEAD" => {
                    let sse = headers
                        .get(header::CONTENT_TYPE)
                        .is_some_and(|v| v == "text/event-stream");
                    check(
                        f,
                        status == StatusCode::OK && sse && after == Some(false),
                        format!("{said}; want 200 SSE head, no effect"),
                    );
                }
                Effect::Keeps => {
                    if row.method == "GET" {
                        // Reads and streams leave `l` as it was.
                        check(f, after == Some(false), format!("{said}; want no effect"));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A stream of a running listener is a subscriber's to open; a stop by an
/// admin ends it, and reopening it with the subscribe token does not
/// restart it.
#[tokio::test]
async fn a_subscriber_streams_a_running_listener_but_never_restarts_it() {
    let app = app();
    setup(&app).await;
    let (admin, reader) = (format!("Bearer {ADMIN}"), format!("Bearer {READER}"));
    let events = "/v1/channels/c/listeners/l/events";
    let start = "/v1/channels/c/listeners/l/start";
    let stop = "/v1/channels/c/listeners/l/stop";
    let (status, _, _) = send(&app, "POST", start, None, Some(&admin)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = send(&app, "GET", events, None, Some(&reader)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(&app, "POST", stop, None, Some(&admin)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let uri = with_query_token(events, READER);
    let (status, _, body) = send(&app, "GET", &uri, None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("listener_stopped"))
    );
    assert_eq!(running(&app).await, Some(false));
}

/// With authentication off everyone holds every right: streams start
/// listeners as eric-api's did, and HEAD still changes nothing.
#[tokio::test]
async fn without_tokens_streams_start_and_head_changes_nothing() {
    let app = common::app();
    for (uri, body) in [
        ("/v1/channels", r#"{"id": "c"}"#),
        ("/v1/channels/c/listeners", r#"{"id": "l"}"#),
    ] {
        assert_eq!(
            send(&app, "POST", uri, Some(body), None).await.0,
            StatusCode::CREATED
        );
    }
    let info = "/v1/channels/c/listeners/l";
    let is_running =
        |app: Router| async move { send(&app, "GET", info, None, None).await.2["running"].clone() };
    for uri in ["/stream/c/l", "/v1/channels/c/listeners/l/events"] {
        let (status, headers, _) = send(&app, "HEAD", uri, None, None).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
        assert_eq!(is_running(app.clone()).await, Value::Bool(false), "{uri}");
    }
    let (status, headers, _) = send(&app, "HEAD", "/v1/channels/c/events", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
    // No watch listener was made, not even for a moment.
    let (_, _, listeners) = send(&app, "GET", "/v1/channels/c/listeners", None, None).await;
    assert_eq!(listeners.as_array().map(Vec::len), Some(1), "{listeners}");
    let (status, _, _) = send(&app, "HEAD", "/stream/c/nobody", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(&app, "GET", "/stream/c/l", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(is_running(app.clone()).await, Value::Bool(true));
}

/// RFC 9110 (11.1): the auth scheme is case-insensitive.
#[tokio::test]
async fn the_bearer_scheme_is_matched_in_any_case() {
    let app = app();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let authorization = format!("{scheme} {ADMIN}");
        let (status, _, _) = send(&app, "GET", "/v1/channels", None, Some(&authorization)).await;
        assert_eq!(status, StatusCode::OK, "{scheme}");
    }
    for authorization in [format!("Basic {ADMIN}"), format!("Bearer{ADMIN}")] {
        let (status, _, _) = send(&app, "GET", "/v1/channels", None, Some(&authorization)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization}");
    }
}

fn app() -> Router {
    common::app_with(HttpConfig {
        admin_tokens: vec![Token::new(ADMIN)],
        subscribe_tokens: vec![Token::new(READER)],
        compat_routes_with_auth: true,
        ..HttpConfig::default()
    })
}
