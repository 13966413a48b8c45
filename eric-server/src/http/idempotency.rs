//! Idempotency keys on HTTP writes (see `eric_core::idempotency`).
//!
//! A dispatch or broadcast is named by its `Idempotency-Key` header or,
//! without one, by its message's `id`; a retry with the same name within
//! the channel's window is answered as the first was, with
//! `Idempotent-Replayed: true`, and applies nothing. So a client that got
//! no answer, or `504 outcome_unknown`, retries safely.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use eric_core::{Applied, IdempotencyKey, Message};

use super::error::ApiError;

/// The request header naming a write.
pub(super) const KEY_HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// The answer header saying a write was a repeat.
pub(super) const REPLAYED_HEADER: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The `Idempotency-Key` header, validated like an id (400
/// `invalid_idempotency_key` otherwise).
#[derive(Debug)]
pub(super) struct WriteKey(Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for WriteKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(&KEY_HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(Self(None));
        };
        if values.next().is_some() {
            return Err(invalid("give one Idempotency-Key header, not several"));
        }
        let text = value
            .to_str()
            .map_err(|_| invalid("the Idempotency-Key header is not visible ASCII"))?;
        text.parse()
            .map(|key| Self(Some(key)))
            .map_err(|e| invalid(&format!("Idempotency-Key: {e}")))
    }
}

impl WriteKey {
    /// The write's name: the header's, else the message's `id`.
    pub(super) fn for_message(self, message: &Message) -> Option<IdempotencyKey> {
        self.0.or_else(|| {
            message
                .id()
                .and_then(|id| IdempotencyKey::new(id.as_str()).ok())
        })
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::bad_request("invalid_idempotency_key", message)
}

/// `response`, marked when `applied` was a repeat.
pub(super) fn answer<T>(applied: &Applied<T>, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    if applied.replayed {
        response
            .headers_mut()
            .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    }
    response
}
