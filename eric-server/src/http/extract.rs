//! Extractors whose rejections use the [`ApiError`] shape.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use eric_core::{ChannelId, ListenerId, Message, Topic};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// Deepest nesting of arrays and objects in any JSON body: a message's
/// envelope and the deepest payload eric-core takes
/// ([`eric_core::message::MAX_PAYLOAD_DEPTH`]). One rule for every body,
/// including values in keys that are then ignored.
const MAX_BODY_DEPTH: usize = eric_core::message::MAX_PAYLOAD_DEPTH + 1;

/// Refuses a body nested deeper than [`MAX_BODY_DEPTH`] with 422
/// `invalid_body`, before serde sees it. Measured on the bytes in one pass
/// rather than counted by a wrapping deserializer, because serde_json walks
/// raw payloads and ignored values on its own (a wrapper never sees inside
/// them) and would refuse other depths with its own limit (128, as 400).
fn check_depth(bytes: &[u8]) -> Result<(), ApiError> {
    if eric_core::message::json_depth(bytes) > MAX_BODY_DEPTH {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("the body is nested deeper than {MAX_BODY_DEPTH} levels"),
        ));
    }
    Ok(())
}

/// A JSON body (`axum::Json` with our error shape): 400 for invalid JSON,
/// 422 for valid JSON of the wrong shape or nested too deep, 413 beyond the
/// size limit, 415 without a JSON content type.
#[derive(Debug)]
pub(super) struct JsonBody<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A message body: a [`JsonBody<Message>`] whose invalid `topic` is 400
/// `invalid_topic`, a refusal its publisher can act on, rather than a
/// shape error (422 `invalid_body`).
#[derive(Debug)]
pub(super) struct MessageJson(pub(super) Message);

impl<S: Send + Sync> FromRequest<S> for MessageJson {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        match axum::Json::<Message>::from_bytes(&bytes) {
            Ok(axum::Json(message)) => Ok(Self(message)),
            Err(rejection) => {
                Err(invalid_topic(&bytes).unwrap_or_else(|| json_rejection(rejection)))
            }
        }
    }
}

/// The refusal of a body's topic, when that is what is wrong with it. Read
/// only once the message failed, so a valid message is parsed once.
fn invalid_topic(bytes: &[u8]) -> Option<ApiError> {
    #[derive(Deserialize)]
    struct Probe {
        topic: Option<String>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    let error = Topic::new(probe.topic?).err()?;
    Some(ApiError::from(eric_core::Error::from(error)))
}

/// A request's body, refused unless it is declared JSON and nested at most
/// [`MAX_BODY_DEPTH`] deep.
async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if !json_content_type(req.headers()) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    let bytes = body_bytes(req, state).await?;
    check_depth(&bytes)?;
    Ok(bytes)
}

/// `application/json` or `application/<anything>+json`, with any
/// parameters, as `axum::Json` takes.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

/// The whole body, within the size limit.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "payload_too_large"
        } else {
            "unreadable_body"
        };
        ApiError::new(status, code, rejection.body_text())
    })
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", text)
        }
        _ => ApiError::bad_request("malformed_json", text),
    }
}

/// Query parameters with our error shape (422, as eric-api answered).
#[derive(Debug)]
pub(super) struct QueryParams<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_rejection(rejection)),
        }
    }
}

fn query_rejection(rejection: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_query",
        rejection.body_text(),
    )
}

/// Validates a channel id from a path or query (400 if it is not one).
pub(super) fn channel_id(raw: &str) -> Result<ChannelId, ApiError> {
    ChannelId::new(raw).map_err(|e| ApiError::from(eric_core::Error::from(e)))
}

/// Validates a listener id from a path or query (400 if it is not one).
pub(super) fn listener_id(raw: &str) -> Result<ListenerId, ApiError> {
    ListenerId::new(raw).map_err(|e| ApiError::from(eric_core::Error::from(e)))
}

/// Validates the `{channel}` and `{listener}` segments of a listener's path.
pub(super) fn listener_path(
    (channel, listener): (String, String),
) -> Result<(ChannelId, ListenerId), ApiError> {
    Ok((channel_id(&channel)?, listener_id(&listener)?))
}

/// A JSON body that may be absent (an empty body gives `T::default()`),
/// under the same depth rule.
#[derive(Debug)]
pub(super) struct OptionalJson<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        check_depth(&bytes)?;
        serde_json::from_slice(&bytes).map(Self).map_err(|e| {
            if e.is_data() {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_body",
                    e.to_string(),
                )
            } else {
                ApiError::bad_request("malformed_json", e.to_string())
            }
        })
    }
}

/// Path parameters with our error shape (axum answers a bad segment, such as
/// invalid percent-encoding, in plain text).
#[derive(Debug)]
pub(super) struct PathParams<T>(pub(super) T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request("invalid_path", rejection.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn json_content_types_are_those_axum_takes() {
        let is_json = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            json_content_type(&headers)
        };
        for yes in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/vnd.api+json",
        ] {
            assert!(is_json(yes), "{yes}");
        }
        for no in ["text/plain", "application/jsonx", "json", "text/json", ""] {
            assert!(!is_json(no), "{no}");
        }
        assert!(!json_content_type(&HeaderMap::new()));
    }
}
