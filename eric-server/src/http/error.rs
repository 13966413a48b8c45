//! [`ApiError`]: the one error shape of the HTTP API.
//!
//! Every failure, from a domain error to a malformed body, answers
//! `{"error": {"code": "...", "message": "..."}}` with a status a client can
//! branch on. Internal causes (storage errors, keys) are logged, never echoed.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use eric_core::{Error, NoMessagesReason, topic};
use serde::Serialize;
use utoipa::ToSchema;

/// An HTTP error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 for a request that is not well formed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            Error::InvalidChannel { .. } => (S::NOT_FOUND, "channel_not_found"),
            Error::InvalidListener { .. } => (S::NOT_FOUND, "listener_not_found"),
            Error::InvalidMember { .. } => (S::NOT_FOUND, "connection_not_found"),
            Error::ChannelExists { .. } => (S::CONFLICT, "channel_exists"),
            Error::ListenerExists { .. } => (S::CONFLICT, "listener_exists"),
            Error::NoMessages {
                reason: NoMessagesReason::Stopped,
                ..
            } => (S::CONFLICT, "listener_stopped"),
            Error::NoMessages { .. } => (S::NOT_FOUND, "no_messages"),
            Error::QueueFull { .. } => (S::TOO_MANY_REQUESTS, "queue_full"),
            Error::InvalidMessageFormat { .. } => (S::BAD_REQUEST, "invalid_message"),
            Error::InvalidId(id)
                if id.kind == topic::TOPIC_KIND || id.kind == topic::TOPIC_FILTER_KIND =>
            {
                (S::BAD_REQUEST, "invalid_topic")
            }
            Error::TooManySubscriptions { .. } => (S::BAD_REQUEST, "too_many_subscriptions"),
            Error::InvalidId(_) => (S::BAD_REQUEST, "invalid_id"),
            Error::ReservedAction { .. } => (S::BAD_REQUEST, "reserved_action"),
            Error::StorageFull {
                backend, operation, ..
            } => {
                tracing::warn!(error = %e, "storage full");
                return Self::new(
                    S::INSUFFICIENT_STORAGE,
                    "storage_full",
                    format!(
                        "{backend} is out of memory ({operation}); retry once consumers have drained queues"
                    ),
                );
            }
            Error::Unavailable {
                backend, operation, ..
            } => {
                tracing::warn!(error = %e, "storage unavailable");
                return Self::new(
                    S::SERVICE_UNAVAILABLE,
                    "storage_unavailable",
                    format!("{backend} is unavailable ({operation}); retry later"),
                );
            }
            // Not 503: that says "retry later", and a retry of a write that
            // was applied duplicates it. eric stands to its storage as a
            // gateway to an upstream that did not answer in time: 504.
            Error::OutcomeUnknown { backend, operation } => {
                tracing::warn!(error = %e, "storage did not confirm");
                return Self::new(
                    S::GATEWAY_TIMEOUT,
                    "outcome_unknown",
                    format!(
                        "{backend} did not confirm {operation}: it may or may not have taken effect; \
                         retry with the same Idempotency-Key to apply it at most once"
                    ),
                );
            }
            _ => {
                tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "internal error");
                return Self::new(S::INTERNAL_SERVER_ERROR, "internal", "internal error");
            }
        };
        Self::new(status, code, e.to_string())
    }
}

/// The body of every error answer.
// Borrowed from the `ApiError` it is written from; `Error` in the OpenAPI
// document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub(super) struct ErrorShape<'a> {
    error: ErrorDetail<'a>,
}

/// [`ErrorShape`] as the OpenAPI annotations name it.
pub(super) type ErrorBody = ErrorShape<'static>;

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct ErrorDetail<'a> {
    /// Stable, for programs to branch on (`docs/HTTP.md`, Errors).
    #[schema(example = "channel_not_found")]
    code: &'a str,
    /// For people; may change between versions.
    #[schema(example = "no channel with id c9")]
    message: &'a str,
}

impl ApiError {
    fn body(&self) -> ErrorShape<'_> {
        ErrorShape {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
            },
        }
    }

    /// The whole HTTP/1.1 answer as bytes, closing the connection: for the
    /// connection layer, which must answer a request hyper refused before
    /// any handler ran (`serve::refusals`).
    pub(crate) fn to_http1_bytes(&self) -> Vec<u8> {
        // Strings only: serialising cannot fail.
        let body = serde_json::to_string(&self.body()).unwrap_or_default();
        let reason = self.status.canonical_reason().unwrap_or("");
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let mut out = format!(
            "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\ndate: {date}\r\n\r\n",
            self.status.as_u16(),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body.as_bytes());
        out
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// `Result` with [`ApiError`].
pub(super) type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(e: Error) -> (StatusCode, &'static str, String) {
        let api = ApiError::from(e);
        (api.status, api.code, api.message)
    }

    #[test]
    fn storage_failures_name_the_backend_but_never_echo_the_cause() {
        let cause = || -> eric_core::BoxError { "OOM command not allowed; script: 98f9".into() };
        let (status, code, message) = answer(Error::StorageFull {
            backend: "redis",
            operation: "dispatching",
            source: cause(),
        });
        assert_eq!(
            (status, code),
            (StatusCode::INSUFFICIENT_STORAGE, "storage_full")
        );
        assert!(
            message.starts_with("redis is out of memory (dispatching)"),
            "{message}"
        );
        assert!(!message.contains("98f9"), "{message}");

        let (status, code, message) = answer(Error::Unavailable {
            backend: "redis",
            operation: "popping",
            source: cause(),
        });
        assert_eq!(
            (status, code),
            (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable")
        );
        assert!(!message.contains("98f9"), "{message}");

        let (status, code, message) = answer(Error::OutcomeUnknown {
            backend: "redis",
            operation: "dispatching",
        });
        assert_eq!(
            (status, code),
            (StatusCode::GATEWAY_TIMEOUT, "outcome_unknown")
        );
        assert!(message.contains("Idempotency-Key"), "{message}");

        let (status, code, message) = answer(Error::repository("loading", cause()));
        assert_eq!(
            (status, code),
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        );
        assert!(!message.contains("98f9"), "{message}");
    }
}
