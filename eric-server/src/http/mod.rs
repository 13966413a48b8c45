//! The HTTP API: eric-api's routes, the `/v1` resource API, SSE streams and
//! the operations endpoints, as one axum [`Router`].
//!
//! ## Layout
//!
//! - `compat`: eric-api's routes.
//! - `cors`: which web origins may call the API (`http.cors_origins`).
//! - `auth`: where tokens come from, the rights table, the check.
//! - `grant`: what a token grants (static roles, a JWT's patterns) and
//!   the right each request needs.
//! - `jwt`: JWT keys and verification, and minting for `eric token`.
//!
//! Tokens and origins are configuration, checked there
//! ([`crate::config::Token`]); these modules enforce them.
//! - `v1`: the resource API (`docs/HTTP.md`).
//! - `subscriptions`: listeners' subscriptions on `/v1`: their JSON, the
//!   channel stream's `filter` parameters, and their routes.
//! - `routes`: the stream routes, declared once for the router, the hyper
//!   bypass (`serve`) and the rights table (`auth`).
//! - `sse`: SSE responses (producer task, keep-alive, stall and shutdown).
//! - `ops`: `/healthz`, `/readyz`, `/metrics`.
//! - `console`: the web console at `/ui` (files in `eric-server/console/`,
//!   compiled in).
//! - `openapi`: the OpenAPI 3.1 document of all of the above, generated
//!   from the handlers' annotations and types, at `/v1/openapi.json`.
//! - `access`: the access log and per-route request metrics (outermost).
//! - `error`, `extract`: the one error shape and the extractors that use it.
//! - `idempotency`: `Idempotency-Key` on writes, `Idempotent-Replayed` answers.
//! - `limits`: request rates per caller, streams per listener.
//! - `state`: [`AppState`] and [`ConnectionContext`].

mod access;
mod auth;
mod compat;
mod console;
mod cors;
mod error;
mod extract;
mod grant;
mod idempotency;
mod jwt;
mod limits;
mod openapi;
mod ops;
pub(crate) mod routes;
mod sse;
mod state;
mod subscriptions;
mod v1;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

// Where they were first: the public paths stay.
pub use crate::config::{Token, check_cors_origins, check_tokens};
pub use error::ApiError;
pub use jwt::{Rights, TokenClaims, mint, signature_library};
pub use state::{AppState, ConnectionContext};

use self::routes::StreamRoute;

/// The whole API on `state`. Tests drive it without a socket.
pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    let cors = cors::layer(&state.http.cors_origins, state.http.auth_cookie.is_some());
    // eric-api's routes are off when authentication is on, unless kept:
    // their writes name channels in the query, beyond the rights table's
    // reach, and their clients send no token anyway.
    let compat = !state.http.auth_enabled() || state.http.compat_routes_with_auth;
    let mut router = Router::new();
    if compat {
        router = router.merge(compat::routes());
    }
    let mut router = router
        .merge(v1::routes())
        .merge(stream_routes(compat))
        .merge(console::routes())
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/v1/openapi.json", get(openapi::document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.http.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), time_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            declared_length,
        ));
    // Inside the token check (a refused caller spends no budget), and only
    // where a limit is set.
    if let Some(limits) = limits::Limits::new(&state.http) {
        router = router.layer(middleware::from_fn_with_state(limits, limits::limit));
    }
    // Only where tokens are configured: without, a request pays nothing.
    if state.http.auth_enabled() {
        router = router.layer(middleware::from_fn_with_state(state.clone(), auth::require));
    }
    // Outside the token check: a target this long is refused unread.
    let router = router
        .layer(middleware::from_fn(uri_limit))
        .with_state(state);
    // Outside the other layers, so error answers and preflights carry the
    // headers too.
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    // Around everything, so every answer (refusals, preflights) is counted
    // and logged with its final status.
    router.layer(middleware::from_fn_with_state(metrics, access::track))
}

/// The stream routes, one per [`StreamRoute`], each with its handlers
/// (eric-api's only with `compat`).
fn stream_routes(compat: bool) -> Router<AppState> {
    StreamRoute::ALL
        .into_iter()
        .filter(|route| compat || *route != StreamRoute::Compat)
        .fold(Router::new(), |router, route| {
            let handlers = match route {
                StreamRoute::Compat => compat::stream_route(),
                StreamRoute::Channel => v1::channel_stream(),
                StreamRoute::Listener => v1::listener_stream(),
            };
            router.route(route.template(), handlers)
        })
}

/// Refuses a body declared (`Content-Length`) larger than the limit before
/// any of it is read. The limit on the body itself only trips once the
/// bytes arrive, so a client declaring gigabytes and sending nothing would
/// hold the connection for the whole time limit and get a 503.
async fn declared_length(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = s.http.max_body_bytes;
    match declared {
        Some(len) if len > limit as u64 => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body ({len} bytes) is over the limit of {limit} bytes"),
        )
        .into_response(),
        _ => next.run(req).await,
    }
}

/// Longest request target (path and query) taken; longer: 414
/// `uri_too_long`. Ids are 128 bytes at most, so real targets are far
/// shorter; hyper's own limit (64 KiB) is beyond the head size limit.
const MAX_URI_BYTES: usize = 8 * 1024;

async fn uri_limit(req: Request, next: Next) -> Response {
    let len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if len > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the request target is {len} bytes; at most {MAX_URI_BYTES} are taken"),
        )
        .into_response();
    }
    next.run(req).await
}

/// Bounds the time to produce a response head. SSE bodies stream on after
/// the head, so they are not cut by this.
async fn time_limit(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(s.http.request_timeout(), next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long",
        )
        .into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
}
