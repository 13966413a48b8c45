//! [`Api`]: a small typed client of the `/v1` API over `reqwest`.
//!
//! Paths are built from segments with the `url` crate, which
//! percent-encodes each one: ids may hold `/`, `?` or `#` and still name one
//! path segment. The server's URL may carry a path prefix (a reverse proxy's
//! `/eric/`); segments are appended to it.
//!
//! Failures map onto [`Error`]: [`Error::Request`] when the server could not
//! be reached or its answer not read, [`Error::Answer`] for an error answer,
//! whose body becomes `code: message` from the API's error shape
//! (`{"error": {"code": ..., "message": ...}}`), so the one line `main`
//! prints names the server's code.

use std::time::Duration;

use reqwest::{Client, Method, RequestBuilder, Response, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// How long connecting may take: a server that does not answer a SYN in
/// this time is as good as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a non-streaming request may take in all; longer than the
/// server's own default request timeout (30 s), so its 503 arrives first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);
/// TCP keep-alive probes, so a stream to a vanished host fails eventually
/// even if the idle timeout is set very high.
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);
/// Longest error body quoted in an error line when it is not our shape.
const MAX_QUOTED_BODY: usize = 300;

/// A client of one server's `/v1` API (cheap to clone).
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: Client,
    base: Url,
}

impl Api {
    /// A client for the server at `url` (`http://host:port`, optionally
    /// with a path prefix), sending `token` as a bearer token on every
    /// request. An unusable URL is an [`Error::Request`].
    pub(crate) fn new(url: &str, token: Option<&str>) -> Result<Self> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(token) = token {
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| Error::InvalidToken)?;
            value.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, value);
        }
        let http = Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_keepalive(TCP_KEEPALIVE)
            .user_agent(concat!("eric/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::request(url))?;
        // reqwest's own parsing, so a bad URL reads like any request error;
        // it also refuses URLs without a host, which are the only ones that
        // cannot take path segments.
        let base = http
            .get(url)
            .build()
            .map_err(Error::request(url))?
            .url()
            .clone();
        Ok(Self { http, base })
    }

    /// The URL of `segments` under the server's URL, each segment
    /// percent-encoded. Callers pass validated ids, never `.` or `..`
    /// (which the `url` crate would drop).
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // `new` checked the URL has a host, so it can take segments.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// `GET` a JSON answer.
    pub(crate) async fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T> {
        let url = self.url(segments);
        let response = self.send(Method::GET, &url, None::<&()>).await?;
        decode(&url, response).await
    }

    /// `POST` `body` (or nothing) and decode the JSON answer.
    pub(crate) async fn post<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: Option<&impl Serialize>,
    ) -> Result<T> {
        let url = self.url(segments);
        let response = self.send(Method::POST, &url, body).await?;
        decode(&url, response).await
    }

    /// `POST` a write named by an idempotency `key` (see `docs/HTTP.md`,
    /// "Retrying writes") and decode the answer. Because the server applies
    /// a named write at most once, a transient failure (no answer, 503,
    /// 504 `outcome_unknown`...) is retried, up to `retries` times with a
    /// doubling pause: the write is then applied exactly once.
    pub(crate) async fn post_once<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &impl Serialize,
        key: &str,
        retries: u32,
    ) -> Result<T> {
        let url = self.url(segments);
        let response = retrying(retries, || {
            let request = self
                .http
                .post(url.clone())
                .timeout(REQUEST_TIMEOUT)
                .header("idempotency-key", key)
                .json(body);
            answer(&url, request)
        })
        .await?;
        decode(&url, response).await
    }

    /// `POST` with no body and an answer without one (`204`).
    pub(crate) async fn post_empty(&self, segments: &[&str]) -> Result<()> {
        let url = self.url(segments);
        self.send(Method::POST, &url, None::<&()>).await.map(drop)
    }

    /// `POST` with no body: `None` for `204 No Content`, else the decoded
    /// JSON answer.
    pub(crate) async fn post_maybe<T: DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<Option<T>> {
        let url = self.url(segments);
        let response = self.send(Method::POST, &url, None::<&()>).await?;
        if response.status() == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        decode(&url, response).await.map(Some)
    }

    /// `DELETE`; the answer carries no body.
    pub(crate) async fn delete(&self, segments: &[&str]) -> Result<()> {
        let url = self.url(segments);
        self.send(Method::DELETE, &url, None::<&()>).await.map(drop)
    }

    /// Opens an SSE stream at `url`, resuming after `last_event_id` (sent as
    /// the `Last-Event-ID` header). No overall timeout: the stream is meant
    /// to stay open; the caller watches for silence.
    pub(crate) async fn open_stream(
        &self,
        url: &Url,
        last_event_id: Option<u64>,
    ) -> Result<Response> {
        let mut request = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .header(reqwest::header::CACHE_CONTROL, "no-cache");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        answer(url, request).await
    }

    async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<&impl Serialize>,
    ) -> Result<Response> {
        let mut request = self
            .http
            .request(method, url.clone())
            .timeout(REQUEST_TIMEOUT);
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(url, request).await
    }
}

/// Sends `request`; an error status becomes [`Error::Answer`].
async fn answer(url: &Url, request: RequestBuilder) -> Result<Response> {
    let response = request.send().await.map_err(Error::request(url.as_str()))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    // The body explains the error; if it cannot be read, the status alone
    // still says what happened.
    let text = response.text().await.unwrap_or_default();
    Err(Error::Answer {
        url: url.to_string(),
        status: status.as_u16(),
        body: describe_error_body(&text),
    })
}

/// `code: message` from the API's error shape, else the body as sent
/// (shortened), else a placeholder.
fn describe_error_body(text: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Shape {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: String,
        message: String,
    }
    if let Ok(Shape { error }) = serde_json::from_str::<Shape>(text) {
        return format!("{}: {}", error.code, error.message);
    }
    let text = text.trim();
    if text.is_empty() {
        return "(no body)".to_owned();
    }
    match text.char_indices().nth(MAX_QUOTED_BODY) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

async fn decode<T: DeserializeOwned>(url: &Url, response: Response) -> Result<T> {
    response.json().await.map_err(Error::request(url.as_str()))
}

/// First pause between two tries of a named write; it doubles each time.
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// Longest pause between two tries.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Runs `attempt` until it succeeds, fails for good, or `retries` retries
/// of transient failures are spent (the last failure is returned).
async fn retrying<T, F, Fut>(retries: u32, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut pause = RETRY_FIRST;
    let mut left = retries;
    loop {
        match attempt().await {
            Err(error) if left > 0 && is_transient(&error) => {
                tracing::debug!(%error, retry_in = ?pause, "write failed; retrying with its key");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RETRY_MAX);
                left -= 1;
            }
            other => return other,
        }
    }
}

/// Whether trying the same request again later may succeed: the server was
/// unreachable, or answered that it is busy, restarting or without storage.
/// A 4xx other than 408/429 will say the same thing again.
pub(crate) fn is_transient(error: &Error) -> bool {
    match error {
        Error::Request { .. } => true,
        Error::Answer { status, .. } => {
            *status >= 500
                || *status == StatusCode::REQUEST_TIMEOUT.as_u16()
                || *status == StatusCode::TOO_MANY_REQUESTS.as_u16()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn failure(status: u16) -> Error {
        Error::Answer {
            url: "http://x/".into(),
            status,
            body: "storage_unavailable: x".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn named_writes_retry_transient_failures_only() {
        let calls = AtomicU32::new(0);
        let outcome = retrying(5, || async {
            match calls.fetch_add(1, Ordering::Relaxed) {
                0 => Err(failure(504)),
                1 => Err(failure(503)),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(outcome.unwrap(), 7);
        assert_eq!(calls.load(Ordering::Relaxed), 3);

        let calls = AtomicU32::new(0);
        let outcome: Result<()> = retrying(5, || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err(failure(400))
        })
        .await;
        assert!(outcome.is_err());
        assert_eq!(calls.load(Ordering::Relaxed), 1, "a 4xx is not retried");

        let calls = AtomicU32::new(0);
        let outcome: Result<()> = retrying(2, || async {
            calls.fetch_add(1, Ordering::Relaxed);
            Err(failure(504))
        })
        .await;
        assert!(matches!(outcome, Err(Error::Answer { status: 504, .. })));
        assert_eq!(calls.load(Ordering::Relaxed), 3, "one try and two retries");
    }

    #[test]
    fn segments_are_encoded_and_appended_to_a_prefix() {
        let api = Api::new("http://127.0.0.1:1/eric/", None).unwrap();
        let url = api.url(&["v1", "channels", "a/b?c#d", "x y"]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/eric/v1/channels/a%2Fb%3Fc%23d/x%20y"
        );
        let api = Api::new("http://127.0.0.1:1", None).unwrap();
        assert_eq!(api.url(&["v1", "channels"]).path(), "/v1/channels");
    }

    #[test]
    fn a_bad_url_is_a_request_error() {
        assert!(matches!(
            Api::new("not a url", None),
            Err(Error::Request { .. })
        ));
        assert!(matches!(
            Api::new("mailto:someone", None),
            Err(Error::Request { .. })
        ));
    }

    #[test]
    fn error_bodies_name_the_code() {
        let shaped = r#"{"error":{"code":"channel_not_found","message":"no channel with id x"}}"#;
        assert_eq!(
            describe_error_body(shaped),
            "channel_not_found: no channel with id x"
        );
        assert_eq!(describe_error_body("  "), "(no body)");
        let long = "x".repeat(1000);
        assert_eq!(describe_error_body(&long).len(), MAX_QUOTED_BODY + 3);
    }

    #[test]
    fn transient_errors() {
        let answer = |status| Error::Answer {
            url: String::new(),
            status,
            body: String::new(),
        };
        assert!(is_transient(&answer(503)));
        assert!(is_transient(&answer(429)));
        assert!(!is_transient(&answer(404)));
        assert!(!is_transient(&answer(400)));
    }
}
