//! Bearer-token access to the HTTP API: static tokens
//! (`http.admin_tokens`, `http.subscribe_tokens`) and JWTs (`http.jwt_*`,
//! verified by `jwt`, whose `eric` claim scopes them to channels and
//! listeners: `grant`).
//!
//! Off until a token or a JWT key is configured (the default server listens
//! on loopback only, and the Unix socket has its file mode). Every decision
//! comes from one table, [`rules`] (route, the [`Right`] it needs, whether a
//! browser's ambient token counts), written out in `docs/HTTP.md`; its
//! stream rows come from the one list of stream routes (`routes`). A
//! request's right is checked against what its path names (the channel and
//! listener of the route's template), so a token for one listener opens
//! that listener's stream and no other. The handlers learn the caller from
//! the [`Caller`] extension. `/healthz` and `/readyz` stay open for probes,
//! the web console's files (`console`) for browsers, and
//! `/v1/openapi.json` for clients that read the API's description;
//! `/metrics`, whose labels name channels, needs admin.
//!
//! Where a token comes from: `Authorization: Bearer <token>` (the scheme in
//! any case) on every route; on the stream routes also `?access_token=` and
//! the cookie `http.auth_cookie`, as a browser's `EventSource` cannot set
//! headers (it sends cookies, with `withCredentials` across origins). Not
//! on other routes: a cookie the browser attaches to a `POST` from any page
//! would let that page publish as the user (CSRF). Sources that disagree
//! are refused (400 `conflicting_tokens`) rather than one picked. Static
//! tokens are compared with `subtle`'s constant-time equality. Refusals are
//! logged at debug with the reason and, for a verified JWT, its `jti`:
//! never the token.

use std::sync::Arc;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::console;
use super::error::ApiError;
pub(super) use super::grant::Right;
use super::grant::{Action, Grant};
use super::jwt::{Refusal, Verified};
use super::routes::{StreamRoute, Target, captures};
use super::state::AppState;
use crate::config::any_matches;

/// Who a request was let through for, as a request extension. Its absence
/// means authentication is off: everyone holds every right.
#[derive(Debug, Clone)]
pub(super) struct Caller {
    pub(super) grant: Arc<Grant>,
    /// Whose budget the rate limits draw on: the JWT's subject, else the
    /// token.
    pub(super) key: Arc<str>,
}

impl Caller {
    /// Whether the caller may start a stopped listener of `channel` (a
    /// stream route starts it only for one who may).
    pub(super) fn may_change_listener_state(caller: Option<&Self>, channel: &str) -> bool {
        caller.is_none_or(|c| c.grant.may_change_listener_state(channel))
    }
}

/// One row of the rights table (`docs/HTTP.md`, Authentication).
#[derive(Debug, Clone, Copy)]
pub(super) struct Rule {
    pub(super) method: &'static str,
    /// A route template: `{name}` is any one non-empty segment;
    /// `{channel}` and `{listener}` name what the right is checked on.
    pub(super) path: &'static str,
    /// The right needed.
    pub(super) right: Right,
    /// Whether a browser's ambient token (`?access_token=`, the cookie)
    /// counts: the stream routes only (see the module doc).
    pub(super) ambient: bool,
}

const fn rule(method: &'static str, path: &'static str, right: Right, ambient: bool) -> Rule {
    Rule {
        method,
        path,
        right,
        ambient,
    }
}

/// Who may call what: a row per stream route and method (from
/// [`StreamRoute::ALL`]: a listener's stream is [`Right::Read`], a
/// channel's [`Right::Watch`]), then [`RULES`], then the web console's
/// pages (open: they hold no data, and the calls they make carry the
/// user's token). Any request no row matches
/// (every other route, and paths no route knows: a 404 once allowed) needs
/// [`Right::Admin`] and a header token. Changing a listener's running
/// state is not a right of its own: that is admin everywhere; a stream
/// route starts a stopped listener only for an admin (see `sse`).
pub(super) fn rules() -> impl Iterator<Item = Rule> {
    StreamRoute::ALL
        .into_iter()
        .flat_map(|route| {
            let right = match route {
                StreamRoute::Channel => Right::Watch,
                StreamRoute::Compat | StreamRoute::Listener => Right::Read,
            };
            StreamRoute::METHODS.map(|method| rule(method, route.template(), right, true))
        })
        .chain(RULES.iter().copied())
        .chain(
            console::TEMPLATES.into_iter().flat_map(|path| {
                ["GET", "HEAD"].map(|method| rule(method, path, Right::Open, false))
            }),
        )
}

/// The rows beside the stream routes'. eric-api's write routes name their
/// channel in the query, not the path: they stay admin's.
const RULES: &[Rule] = &[
    rule("GET", "/healthz", Right::Open, false),
    rule("GET", "/readyz", Right::Open, false),
    rule("GET", "/v1/openapi.json", Right::Open, false),
    rule(
        "POST",
        "/v1/channels/{channel}/listeners/{listener}/next",
        Right::Read,
        false,
    ),
    rule(
        "POST",
        "/v1/channels/{channel}/listeners",
        Right::Listeners,
        false,
    ),
    rule(
        "POST",
        "/v1/channels/{channel}/messages",
        Right::Broadcast,
        false,
    ),
    rule(
        "DELETE",
        "/v1/channels/{channel}/listeners/{listener}",
        Right::Listeners,
        false,
    ),
    rule(
        "POST",
        "/v1/channels/{channel}/listeners/{listener}/start",
        Right::Listeners,
        false,
    ),
    rule(
        "POST",
        "/v1/channels/{channel}/listeners/{listener}/stop",
        Right::Listeners,
        false,
    ),
    rule(
        "GET",
        "/v1/channels/{channel}/listeners/{listener}/subscriptions",
        Right::Listeners,
        false,
    ),
    rule(
        "PUT",
        "/v1/channels/{channel}/listeners/{listener}/subscriptions",
        Right::Listeners,
        false,
    ),
    rule(
        "PATCH",
        "/v1/channels/{channel}/listeners/{listener}/subscriptions",
        Right::Listeners,
        false,
    ),
    rule(
        "POST",
        "/v1/channels/{channel}/listeners/{listener}/messages",
        Right::Dispatch,
        false,
    ),
];

/// What `request` needs under [`rules`]: its rule, and what its path names.
pub(super) fn needs(method: &Method, path: &str) -> (Rule, Target) {
    rules()
        .filter(|r| r.method == method.as_str())
        .find_map(|r| captures(r.path, path).map(|target| (r, target)))
        .unwrap_or_else(|| (rule("", "", Right::Admin, false), Target::default()))
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

/// The values of cookie `name` in `Cookie` headers (RFC 6265, 5.4: `a=1;
/// b=2`). Split by hand: a cookie crate would parse attributes a request
/// never carries.
fn cookies<'a>(request: &'a Request, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    request
        .headers()
        .get_all(header::COOKIE)
        .into_iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name)
                .then(|| value.trim_matches('"'))
                .filter(|v| !v.is_empty())
        })
}

/// Why a request's token cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unusable {
    /// Two sources named different tokens.
    Conflict,
    /// An `Authorization` header of another scheme than `Bearer`.
    NotBearer,
}

/// The token a request presents: its bearer header, and where the route
/// takes them the `access_token` query parameter and the cookie
/// `cookie`; all that are present must agree.
pub(super) fn presented(
    request: &Request,
    ambient: bool,
    cookie: Option<&str>,
) -> Result<Option<String>, Unusable> {
    let mut found: Vec<String> = Vec::new();
    for value in request.headers().get_all(header::AUTHORIZATION) {
        // An `Authorization` header that is not a bearer token: refused
        // rather than skipped, so no other source stands in for it.
        let token = value
            .to_str()
            .ok()
            .and_then(bearer)
            .ok_or(Unusable::NotBearer)?;
        found.push(token.to_owned());
    }
    if ambient {
        let query = Query::<TokenQuery>::try_from_uri(request.uri())
            .ok()
            .and_then(|Query(q)| q.access_token);
        found.extend(query);
        let named = cookie.into_iter().flat_map(|name| cookies(request, name));
        found.extend(named.map(str::to_owned));
    }
    match found.split_first() {
        None => Ok(None),
        Some((first, rest)) if rest.iter().all(|t| t == first) => Ok(Some(first.clone())),
        Some(_) => Err(Unusable::Conflict),
    }
}

/// The middleware: lets a request through (noting the caller) or answers
/// 400 / 401 / 403.
pub(super) async fn require(
    State(s): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let (rule, target) = needs(request.method(), request.uri().path());
    if rule.right == Right::Open {
        return next.run(request).await;
    }
    let token = match presented(&request, rule.ambient, s.http.auth_cookie.as_deref()) {
        Ok(Some(token)) => token,
        Ok(None) if rule.ambient => {
            return unauthorized(
                "this route needs a token (Authorization: Bearer ..., ?access_token=, or the auth cookie)",
            );
        }
        Ok(None) => {
            return unauthorized("this route needs a bearer token (Authorization: Bearer ...)");
        }
        Err(Unusable::NotBearer) => {
            return unauthorized("the Authorization header must use the Bearer scheme");
        }
        Err(Unusable::Conflict) => {
            tracing::debug!("request refused: its token sources disagree");
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "conflicting_tokens",
                "the request carries different tokens (Authorization header, access_token, cookie)",
            )
            .into_response();
        }
    };
    let caller = match identify(&s, &token) {
        Ok(caller) => caller,
        Err(refusal) => {
            tracing::debug!(reason = refusal.message(), "token refused");
            return unauthorized(refusal.message());
        }
    };
    let action = Action {
        right: rule.right,
        channel: target.channel.as_deref(),
        listener: target.listener.as_deref(),
    };
    if !caller.0.grant.allows(action) {
        tracing::debug!(
            token_id = caller.1.as_deref(),
            right = rule.right.name(),
            "request forbidden"
        );
        let on = match (action.channel, action.listener) {
            (Some(c), Some(l)) => format!(" on listener {l} of channel {c}"),
            (Some(c), None) => format!(" on channel {c}"),
            _ => String::new(),
        };
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this token does not grant {}{on}", rule.right.name()),
        )
        .into_response();
    }
    request.extensions_mut().insert(caller.0);
    next.run(request).await
}

/// The caller `token` is (with the JWT's id, for the logs): a static token
/// first (both lists every time: the role does not show in the time
/// taken), else a JWT.
fn identify(s: &AppState, token: &str) -> Result<(Caller, Option<String>), Refusal> {
    let (admin, subscriber) = (
        any_matches(&s.http.admin_tokens, token),
        any_matches(&s.http.subscribe_tokens, token),
    );
    let fixed = |grant| Caller {
        grant: Arc::new(grant),
        key: Arc::from(format!("t {token}")),
    };
    match (admin, subscriber) {
        (true, _) => return Ok((fixed(Grant::All), None)),
        (false, true) => return Ok((fixed(Grant::Reader), None)),
        (false, false) => {}
    }
    let Some(verifier) = &s.jwt else {
        return Err(Refusal::Unknown);
    };
    let Verified { grant, subject, id } = verifier.verify(token)?;
    let key = match &subject {
        Some(subject) => format!("s {subject}"),
        None => format!("t {token}"),
    };
    Ok((
        Caller {
            grant,
            key: Arc::from(key),
        },
        id,
    ))
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
        let needs = |method: &Method, path: &str| {
            let (rule, target) = needs(method, path);
            (rule.right, rule.ambient, target.channel, target.listener)
        };
        let (c, l) = (Some("c".to_owned()), Some("l".to_owned()));
        assert_eq!(needs(&get, "/healthz"), (Right::Open, false, None, None));
        assert_eq!(needs(&get, "/readyz"), (Right::Open, false, None, None));
        assert_eq!(
            needs(&get, "/v1/openapi.json"),
            (Right::Open, false, None, None)
        );
        assert_eq!(needs(&get, "/metrics"), (Right::Admin, false, None, None));
        for path in ["/ui", "/ui/", "/ui/console.js", "/ui/nothing"] {
            assert_eq!(
                needs(&get, path),
                (Right::Open, false, None, None),
                "{path}"
            );
        }
        assert_eq!(
            needs(&get, "/ui/a/b"),
            (Right::Admin, false, None, None),
            "below the console's files"
        );
        for path in ["/stream/c/l", "/v1/channels/c/listeners/l/events"] {
            for method in [&get, &head] {
                let want = (Right::Read, true, c.clone(), l.clone());
                assert_eq!(needs(method, path), want, "{method} {path}");
            }
        }
        for method in [&get, &head] {
            let want = (Right::Watch, true, c.clone(), None);
            assert_eq!(needs(method, "/v1/channels/c/events"), want);
        }
        // Decoded as the router decodes them.
        assert_eq!(
            needs(&get, "/stream/a%2Fb/l%20")
                .2
                .zip(needs(&get, "/stream/a%2Fb/l%20").3),
            Some(("a/b".to_owned(), "l ".to_owned()))
        );
        for (path, right, listener) in [
            ("/v1/channels/c/listeners/l/next", Right::Read, l.clone()),
            ("/v1/channels/c/listeners", Right::Listeners, None),
            (
                "/v1/channels/c/listeners/l/start",
                Right::Listeners,
                l.clone(),
            ),
            ("/v1/channels/c/messages", Right::Broadcast, None),
            (
                "/v1/channels/c/listeners/l/messages",
                Right::Dispatch,
                l.clone(),
            ),
        ] {
            assert_eq!(
                needs(&post, path),
                (right, false, c.clone(), listener),
                "{path}"
            );
        }
        for (method, path) in [
            (&post, "/v1/channels/c/listeners/l/events"),
            (&post, "/dispatch"),
            (&post, "/broadcast"),
            (&get, "/v1/channels/c/listeners/l"),
            (&get, "/v1/channels"),
            (&get, "/stream/c/l/extra"),
            (&get, "/stream//l"),
            (&get, "/healthz/x"),
            (&head, "/healthz"),
            (&get, "/nowhere"),
        ] {
            assert_eq!(
                needs(method, path),
                (Right::Admin, false, None, None),
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
