//! Bearer-token access to the HTTP API (`http.admin_tokens`,
//! `http.subscribe_tokens`).
//!
//! Off until a token is configured (the default server listens on loopback
//! only, and the Unix socket has its file mode). Two roles:
//! - an admin token may do everything;
//! - a subscribe token may do what a consumer does: open streams (`watch`
//!   included) and pull messages, nothing that creates, removes, starts,
//!   stops or sends.
//!
//! `/healthz` and `/readyz` stay open for probes; `/metrics`, whose labels
//! name channels, needs an admin token. A token comes as `Authorization:
//! Bearer <token>`; stream routes also take `?access_token=<token>`, as a
//! browser's `EventSource` cannot set headers (a URL can end up in proxy
//! logs: prefer the header where the client can send one). Tokens are
//! compared in time independent of where they differ.

use std::fmt;

use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::state::AppState;
use crate::backend::Backend;
use crate::config::HttpConfig;

/// Fewest bytes a token may have: shorter ones can be guessed.
const MIN_TOKEN_BYTES: usize = 16;

/// A configured secret; `Debug` never shows it, so logging the
/// configuration cannot leak it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    /// A token (checked when the configuration is validated).
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    fn check(&self) -> Result<(), String> {
        if self.0.len() < MIN_TOKEN_BYTES {
            return Err(format!(
                "a token needs at least {MIN_TOKEN_BYTES} characters"
            ));
        }
        if !self.0.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("a token may hold visible ASCII characters only".into());
        }
        Ok(())
    }

    /// Whether `presented` is this token, in time that depends on the
    /// lengths only.
    fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// Why `tokens` cannot be used, if they cannot.
pub fn check_tokens(tokens: &[Token]) -> Result<(), String> {
    tokens.iter().try_for_each(Token::check)
}

/// Whether any token is configured, which turns authentication on.
pub(super) fn enabled(http: &HttpConfig) -> bool {
    !(http.admin_tokens.is_empty() && http.subscribe_tokens.is_empty())
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Nothing,
    Subscribe,
    Admin,
}

/// Streams and pulls are a subscriber's; probes are open; the rest, and any
/// path no route knows (it will be a 404 once allowed), is an admin's.
fn need(method: &Method, path: &str) -> Need {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::GET, ["healthz" | "readyz"]) => Need::Nothing,
        (&Method::GET, ["stream", _, _])
        | (&Method::GET, ["v1", "channels", _, "events"])
        | (&Method::GET, ["v1", "channels", _, "listeners", _, "events"])
        | (&Method::POST, ["v1", "channels", _, "listeners", _, "next"]) => Need::Subscribe,
        _ => Need::Admin,
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

/// The token a request presents: its bearer header, or (stream routes)
/// its `access_token` query parameter.
fn presented(request: &Request, need: Need) -> Option<String> {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(|token| token.trim().to_owned());
    if bearer.is_some() || need != Need::Subscribe {
        return bearer;
    }
    Query::<TokenQuery>::try_from_uri(request.uri())
        .ok()
        .and_then(|Query(q)| q.access_token)
}

fn any_matches(tokens: &[Token], presented: &str) -> bool {
    // No early exit: which token matched does not show in the time taken.
    tokens
        .iter()
        .fold(false, |found, t| found | t.matches(presented))
}

/// The middleware: lets a request through or answers 401 / 403.
pub(super) async fn require<E: Backend>(
    State(s): State<AppState<E>>,
    request: Request,
    next: Next,
) -> Response {
    let (admins, subscribers) = (&s.http.admin_tokens, &s.http.subscribe_tokens);
    let need = need(request.method(), request.uri().path());
    if need == Need::Nothing {
        return next.run(request).await;
    }
    let Some(token) = presented(&request, need) else {
        return unauthorized("this route needs a bearer token (Authorization: Bearer ...)");
    };
    let admin = any_matches(admins, &token);
    let subscriber = any_matches(subscribers, &token);
    match (need, admin, subscriber) {
        (_, true, _) | (Need::Subscribe, _, true) => next.run(request).await,
        (_, false, true) => ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a subscribe token may open streams and pull messages only",
        )
        .into_response(),
        _ => unauthorized("the token is not valid"),
    }
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
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(need(&get, "/healthz"), Need::Nothing);
        assert_eq!(need(&get, "/readyz"), Need::Nothing);
        assert_eq!(need(&get, "/metrics"), Need::Admin);
        assert_eq!(need(&get, "/stream/c/l"), Need::Subscribe);
        assert_eq!(need(&get, "/v1/channels/c/events"), Need::Subscribe);
        assert_eq!(
            need(&get, "/v1/channels/c/listeners/l/events"),
            Need::Subscribe
        );
        assert_eq!(
            need(&post, "/v1/channels/c/listeners/l/next"),
            Need::Subscribe
        );
        for (method, path) in [
            (&post, "/v1/channels/c/listeners/l/messages"),
            (&post, "/v1/channels/c/listeners/l/events"),
            (&get, "/v1/channels"),
            (&post, "/dispatch"),
            (&get, "/stream/c/l/extra"),
            (&get, "/nowhere"),
        ] {
            assert_eq!(need(method, path), Need::Admin, "{method} {path}");
        }
    }

    #[test]
    fn tokens_are_checked_and_never_shown() {
        assert!(check_tokens(&[Token::new("0123456789abcdef")]).is_ok());
        assert!(check_tokens(&[Token::new("short")]).is_err());
        assert!(check_tokens(&[Token::new("0123456789 abcdef")]).is_err());
        let token = Token::new("0123456789abcdef");
        assert_eq!(format!("{token:?}"), "Token(***)");
        assert!(token.matches("0123456789abcdef"));
        assert!(!token.matches("0123456789abcdeF"));
        assert!(!token.matches("0123456789abcde"));
    }
}
