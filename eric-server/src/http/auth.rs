//! Bearer-token access to the HTTP API (`http.admin_tokens`,
//! `http.subscribe_tokens`).
//!
//! Off until a token is configured (the default server listens on loopback
//! only, and the Unix socket has its file mode). Two roles:
//! - an admin token may do everything;
//! - a subscribe token may do what a consumer does: open streams (`watch`
//!   included) and pull messages, nothing that creates, removes, starts,
//!   stops or sends. A stream route starts a stopped listener for an admin
//!   only; a subscriber gets 409 `listener_stopped`.
//!
//! Every decision comes from one table, [`rules`] (route, right needed,
//! whether the query token counts), written out in `docs/HTTP.md`; its
//! stream rows come from the one list of stream routes (`routes`). The
//! handlers learn the caller's right from the [`Caller`] extension.
//! `/healthz` and `/readyz` stay open for probes; `/metrics`, whose labels
//! name channels, needs an admin token. A token comes as `Authorization:
//! Bearer <token>` (the scheme in any case); stream routes also take
//! `?access_token=<token>`, as a browser's `EventSource` cannot set headers
//! (a URL can end up in proxy logs: prefer the header where the client can
//! send one). Tokens are compared with `subtle`'s constant-time equality.

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::ApiError;
use super::routes::{StreamRoute, fits};
use super::state::AppState;
use crate::config::{HttpConfig, any_matches};

/// Whether any token is configured, which turns authentication on.
pub(super) fn enabled(http: &HttpConfig) -> bool {
    !(http.admin_tokens.is_empty() && http.subscribe_tokens.is_empty())
}

/// A right a caller holds or a route needs, weakest first. A later issue
/// scopes tokens on top of these; keep every decision in [`rules`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Right {
    /// No token needed: the probes.
    Open,
    /// A consumer's: open streams, pull messages.
    Subscribe,
    /// Everything, changing a listener's running state included.
    Admin,
}

/// The right a request was let through with, as a request extension. Its
/// absence means authentication is off: everyone holds every right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Caller(pub(super) Right);

impl Caller {
    /// Whether the caller may start a stopped listener (a stream route
    /// starts it only for one who may).
    pub(super) fn may_change_listener_state(caller: Option<Self>) -> bool {
        caller.is_none_or(|Self(right)| right >= Right::Admin)
    }
}

/// One row of the rights table (`docs/HTTP.md`, Authentication).
#[derive(Debug, Clone, Copy)]
pub(super) struct Rule {
    pub(super) method: &'static str,
    /// A route template: `{name}` is any one non-empty segment.
    pub(super) path: &'static str,
    /// The right needed.
    pub(super) right: Right,
    /// Whether `?access_token=` counts (streams: `EventSource` cannot send
    /// headers; elsewhere a token has no business in a URL).
    pub(super) query_token: bool,
}

const fn rule(method: &'static str, path: &'static str, right: Right, query_token: bool) -> Rule {
    Rule {
        method,
        path,
        right,
        query_token,
    }
}

/// Who may call what: a row per stream route and method (from
/// [`StreamRoute::ALL`]: a subscribe token, also as `?access_token=`), then
/// [`RULES`]. Any request no row matches (every other route, and paths no
/// route knows: a 404 once allowed) needs [`Right::Admin`] and a header
/// token. Which routes change a listener's running state is not a right of
/// its own: that is [`Right::Admin`] everywhere; a stream route starts a
/// stopped listener only for an admin (see `sse`).
pub(super) fn rules() -> impl Iterator<Item = Rule> {
    StreamRoute::ALL
        .into_iter()
        .flat_map(|route| {
            StreamRoute::METHODS
                .map(|method| rule(method, route.template(), Right::Subscribe, true))
        })
        .chain(RULES.iter().copied())
}

/// The rows beside the stream routes'.
const RULES: &[Rule] = &[
    rule("GET", "/healthz", Right::Open, false),
    rule("GET", "/readyz", Right::Open, false),
    rule(
        "POST",
        "/v1/channels/{channel}/listeners/{listener}/next",
        Right::Subscribe,
        false,
    ),
];

/// What `request` needs under [`rules`].
pub(super) fn needs(method: &Method, path: &str) -> (Right, bool) {
    rules()
        .find(|r| r.method == method.as_str() && fits(r.path, path))
        .map_or((Right::Admin, false), |r| (r.right, r.query_token))
}

#[derive(Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

/// The token of an `Authorization` header: the `Bearer` scheme is matched
/// case-insensitively (RFC 9110, section 11.1).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// The token a request presents: its bearer header, or (where the route
/// takes one) its `access_token` query parameter.
pub(super) fn presented(request: &Request, query_token: bool) -> Option<String> {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer)
        .map(str::to_owned);
    if header.is_some() || !query_token {
        return header;
    }
    Query::<TokenQuery>::try_from_uri(request.uri())
        .ok()
        .and_then(|Query(q)| q.access_token)
}

/// The middleware: lets a request through (noting the caller's right) or
/// answers 401 / 403.
pub(super) async fn require(
    State(s): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let (admins, subscribers) = (&s.http.admin_tokens, &s.http.subscribe_tokens);
    let (need, query_token) = needs(request.method(), request.uri().path());
    if need == Right::Open {
        return next.run(request).await;
    }
    let Some(token) = presented(&request, query_token) else {
        return unauthorized("this route needs a bearer token (Authorization: Bearer ...)");
    };
    // Both lists every time: the role does not show in the time taken.
    let (admin, subscriber) = (
        any_matches(admins, &token),
        any_matches(subscribers, &token),
    );
    let held = match (admin, subscriber) {
        (true, _) => Right::Admin,
        (false, true) => Right::Subscribe,
        (false, false) => return unauthorized("the token is not valid"),
    };
    if held < need {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a subscribe token may open streams and pull messages only",
        )
        .into_response();
    }
    request.extensions_mut().insert(Caller(held));
    next.run(request).await
}

fn unauthorized(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_what_their_callers_are() {
        let (get, post, head) = (Method::GET, Method::POST, Method::HEAD);
        assert_eq!(needs(&get, "/healthz"), (Right::Open, false));
        assert_eq!(needs(&get, "/readyz"), (Right::Open, false));
        assert_eq!(needs(&get, "/metrics"), (Right::Admin, false));
        for path in [
            "/stream/c/l",
            "/v1/channels/c/events",
            "/v1/channels/c/listeners/l/events",
        ] {
            assert_eq!(needs(&get, path), (Right::Subscribe, true), "{path}");
            assert_eq!(needs(&head, path), (Right::Subscribe, true), "{path}");
        }
        assert_eq!(
            needs(&post, "/v1/channels/c/listeners/l/next"),
            (Right::Subscribe, false)
        );
        for (method, path) in [
            (&post, "/v1/channels/c/listeners/l/messages"),
            (&post, "/v1/channels/c/listeners/l/events"),
            (&post, "/v1/channels/c/listeners/l/start"),
            (&get, "/v1/channels"),
            (&post, "/dispatch"),
            (&get, "/stream/c/l/extra"),
            (&get, "/stream//l"),
            (&get, "/healthz/x"),
            (&head, "/healthz"),
            (&get, "/nowhere"),
        ] {
            assert_eq!(
                needs(method, path),
                (Right::Admin, false),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in [
            "Bearer 0123456789abcdef",
            "bearer 0123456789abcdef",
            "BEARER  0123456789abcdef ",
        ] {
            assert_eq!(bearer(value), Some("0123456789abcdef"), "{value:?}");
        }
        for value in ["Basic 0123456789abcdef", "Bearer", "Bearer ", "Bearer0123"] {
            assert_eq!(bearer(value), None, "{value:?}");
        }
    }
}
