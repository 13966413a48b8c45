//! CORS: which web origins may call the API and open streams.
//!
//! `EventSource` from a page on another origin is a CORS request, so a
//! broker whose clients are browsers on an application's own domain needs
//! it. Origins are listed exactly (scheme, host and port, as browsers send
//! them in `Origin`); `*` allows any page, without credentials. Listed
//! origins may send credentials when a token cookie is configured
//! (`http.auth_cookie`): an `EventSource` with `withCredentials` sends the
//! cookie only if the answer allows it. Nothing configured adds no header,
//! so browsers keep to same-origin pages.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::idempotency;

/// How long browsers may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(3600);

/// The layer for `origins` (already checked); `None` when the list is empty.
/// `cookies`: whether listed origins may send credentials (a token cookie
/// is configured).
pub(super) fn layer(origins: &[String], cookies: bool) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let any = origins.iter().any(|o| o == "*");
    let allow = if any {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let layer = CorsLayer::new()
        .allow_origin(allow)
        // Never with `*`: any page could then read with the user's cookie
        // (and the CORS rules forbid the pair).
        .allow_credentials(cookies && !any)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("last-event-id"),
            idempotency::KEY_HEADER,
        ])
        // Else a page's script cannot see that its retry was a repeat.
        .expose_headers([idempotency::REPLAYED_HEADER])
        .max_age(PREFLIGHT_MAX_AGE);
    Some(layer)
}
