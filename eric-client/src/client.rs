//! [`Client`] and [`ClientBuilder`]: one server's `/v1` API over `reqwest`,
//! and the plumbing every call shares (URLs, error answers, retries).
//!
//! Paths are built from segments with the `url` crate, which
//! percent-encodes each one: ids may hold `/`, `?` or `#` and still name one
//! path segment. The server's URL may carry a path prefix (a reverse proxy's
//! `/eric/`); segments are appended to it.
//!
//! Over `https:` the server's certificate must chain to the system's roots
//! or to the CA certificates given ([`ClientBuilder::ca_file`]); ALPN
//! settles HTTP/2 or HTTP/1.1 with the server. Over `http:` requests are
//! HTTP/1.1.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backoff::Backoff;
use crate::error::{Error, Result};
use crate::tls::{CaCertificates, http_client_builder};

/// How long connecting may take by default: a server that does not answer
/// a SYN in this time is as good as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a non-streaming request may take in all by default; longer
/// than the server's own default request timeout (30 s), so its 503
/// arrives first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);
/// TCP keep-alive probes, so a stream to a vanished host fails eventually
/// even if the idle timeout is set very high.
const TCP_KEEPALIVE: Duration = Duration::from_secs(30);
/// The header naming a write (see `docs/HTTP.md`, "Retrying writes").
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The header on the answer to a write the server had applied already.
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// A client of one server's `/v1` API. Cheap to clone: clones share their
/// connection pool.
///
/// ```
/// # fn main() -> eric_client::Result<()> {
/// let client = eric_client::Client::new("http://127.0.0.1:8080/eric/")?;
/// assert_eq!(client.base_url().path(), "/eric/");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    /// The overall limit of a non-streaming request (streams have none:
    /// they are meant to stay open; their idle timeout watches them).
    request_timeout: Duration,
}

/// Settings of a [`Client`]; [`Client::builder`] makes one.
#[derive(Debug)]
pub struct ClientBuilder {
    url: String,
    token: Option<String>,
    connect_timeout: Duration,
    request_timeout: Duration,
    no_proxy: bool,
    pool_max_idle_per_host: Option<usize>,
    /// A private CA to trust beyond the system's roots, read when the
    /// client is built.
    ca: Option<CaSource>,
}

/// Where [`ClientBuilder`]'s CA certificates come from.
#[derive(Debug)]
enum CaSource {
    File(PathBuf),
    Pem(Vec<u8>),
    Read(CaCertificates),
}

impl ClientBuilder {
    /// Sends `token` as a bearer token on every request (for a server with
    /// `http.admin_tokens` or `http.subscribe_tokens`). The header is
    /// marked sensitive, so it is never logged.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// How long connecting may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a non-streaming request may take in all (default 45 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Trusts, beyond the system's roots, the CA certificates in the PEM
    /// file at `path` (a private CA that signed the server's certificate).
    /// The file is read by [`build`](Self::build), which fails with
    /// [`Error::InvalidCa`] naming it if it cannot be read or holds no
    /// certificate.
    pub fn ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca = Some(CaSource::File(path.into()));
        self
    }

    /// As [`ca_file`](Self::ca_file), with the PEM text given.
    pub fn ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca = Some(CaSource::Pem(pem.into()));
        self
    }

    /// As [`ca_file`](Self::ca_file), with the certificates read already
    /// (one read for many clients).
    pub fn ca_certificates(mut self, ca: CaCertificates) -> Self {
        self.ca = Some(CaSource::Read(ca));
        self
    }

    /// Ignores the environment's proxy settings (a benchmark must not be
    /// rerouted), and speaks HTTP/1.1 only (over TLS too: ALPN offers
    /// `http/1.1` alone), with Nagle off.
    pub fn no_proxy(mut self) -> Self {
        self.no_proxy = true;
        self
    }

    /// Keeps at most `max` idle connections per host; 0 opens a new
    /// connection for every request, as a browser's `EventSource` opens
    /// its stream.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = Some(max);
        self
    }

    /// The client. Fails if the URL cannot take path segments (no host),
    /// the token cannot be a header, or the CA certificates cannot be used.
    pub fn build(self) -> Result<Client> {
        let mut headers = HeaderMap::new();
        if let Some(token) = &self.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| Error::InvalidToken)?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let base = Url::parse(&self.url).map_err(|e| Error::InvalidUrl {
            url: self.url.clone(),
            reason: e.to_string(),
        })?;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(Error::InvalidUrl {
                url: self.url,
                reason: "not an http:// or https:// URL with a host".to_owned(),
            });
        }
        let ca = match self.ca {
            None => None,
            Some(CaSource::File(path)) => Some(CaCertificates::read(path)?),
            Some(CaSource::Pem(pem)) => Some(CaCertificates::from_pem(&pem)?),
            Some(CaSource::Read(ca)) => Some(ca),
        };
        let mut builder = http_client_builder(ca.as_ref(), base.scheme() == "https")
            .default_headers(headers)
            .connect_timeout(self.connect_timeout)
            .tcp_keepalive(TCP_KEEPALIVE)
            .user_agent(concat!("eric/", env!("CARGO_PKG_VERSION")));
        if self.no_proxy {
            builder = builder.no_proxy().http1_only().tcp_nodelay(true);
        }
        if let Some(max) = self.pool_max_idle_per_host {
            builder = builder.pool_max_idle_per_host(max);
        }
        let http = builder.build().map_err(Error::request(&base))?;
        Ok(Client {
            http,
            base,
            request_timeout: self.request_timeout,
        })
    }
}

/// How a write (dispatch, broadcast) is sent.
///
/// Named by an idempotency key, the server applies it at most once within
/// the channel's idempotency window, so a transient failure (no answer,
/// 503, 504 `outcome_unknown`...) is retried, up to `retries` times with a
/// growing pause: the write is then applied exactly once. An unnamed write
/// is sent once (retrying it could apply it twice).
#[derive(Debug, Clone, Default)]
pub struct Write {
    key: Option<String>,
    retries: u32,
}

impl Write {
    /// A write sent once, without a key.
    pub fn new() -> Self {
        Self::default()
    }

    /// A write named by `key` (1 to 128 printable ASCII bytes, e.g. an
    /// order number), retried up to 5 times.
    pub fn once(key: impl Into<String>) -> Self {
        Self {
            key: Some(key.into()),
            retries: 5,
        }
    }

    /// How many times a named write is retried before giving up.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }
}

/// The answer to a write.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Written<T> {
    /// What the server answered.
    pub value: T,
    /// Whether the server had applied this write before (its key was seen
    /// within the window): the answer is the first one's, replayed.
    pub replayed: bool,
}

impl Client {
    /// A client for the server at `url` (`http://host:port`, optionally with
    /// a path prefix) with the default settings.
    pub fn new(url: &str) -> Result<Self> {
        Self::builder(url).build()
    }

    /// Settings for a client of the server at `url`.
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            url: url.into(),
            token: None,
            connect_timeout: CONNECT_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            no_proxy: false,
            pool_max_idle_per_host: None,
            ca: None,
        }
    }

    /// The server's URL, as given.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The URL of `segments` under the server's URL, each segment
    /// percent-encoded. Ids `.` and `..` cannot be sent (the server refuses
    /// them, and URL clients drop them as dot segments).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // `build` checked the URL can be a base, so it takes segments.
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

    /// `method` (`PUT`, `PATCH`...) with the JSON `body`, and decode the
    /// JSON answer.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &impl Serialize,
    ) -> Result<T> {
        let url = self.url(segments);
        let response = self.send(method, &url, Some(body)).await?;
        decode(&url, response).await
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

    /// A request with no answer body (`204`): `POST` or `DELETE`.
    pub(crate) async fn call(&self, method: Method, segments: &[&str]) -> Result<()> {
        let url = self.url(segments);
        self.send(method, &url, None::<&()>).await.map(drop)
    }

    /// `POST`s the write `body` as `write` says (see [`Write`]).
    pub(crate) async fn write<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &impl Serialize,
        write: &Write,
    ) -> Result<Written<T>> {
        let url = self.url(segments);
        let attempt = || {
            let mut request = self
                .http
                .post(url.clone())
                .timeout(self.request_timeout)
                .json(body);
            if let Some(key) = &write.key {
                request = request.header(IDEMPOTENCY_KEY, key);
            }
            answer(&url, request)
        };
        let retries = if write.key.is_some() {
            write.retries
        } else {
            0
        };
        let response = retrying(retries, attempt).await?;
        let replayed = response
            .headers()
            .get(IDEMPOTENT_REPLAYED)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let value = decode(&url, response).await?;
        Ok(Written { value, replayed })
    }

    /// `GET` on a stream route: the response once its head has arrived. No
    /// overall timeout: the stream is meant to stay open.
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

    /// A bare `GET` of an operations route (`/readyz`...), query included.
    pub(crate) async fn probe(&self, path: &str, query: Option<&str>) -> Result<()> {
        let mut url = self.url(&[path]);
        url.set_query(query);
        self.send(Method::GET, &url, None::<&()>).await.map(drop)
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
            .timeout(self.request_timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(url, request).await
    }
}

/// Sends `request`; an error status becomes [`Error::Api`].
async fn answer(url: &Url, request: RequestBuilder) -> Result<Response> {
    let response = request.send().await.map_err(Error::request(url))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    // The body explains the error; if it cannot be read, the status alone
    // still says what happened.
    let text = response.text().await.unwrap_or_default();
    Err(Error::api(url, status.as_u16(), &text))
}

async fn decode<T: DeserializeOwned>(url: &Url, response: Response) -> Result<T> {
    response.json().await.map_err(Error::request(url))
}

/// Runs `attempt` until it succeeds, fails for good, or `retries` retries
/// of transient failures are spent (the last failure is returned).
async fn retrying<T, F, Fut>(retries: u32, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut backoff = Backoff::default();
    let mut left = retries;
    loop {
        match attempt().await {
            Err(error) if left > 0 && error.is_transient() => {
                let pause = backoff.next_delay();
                tracing::debug!(%error, retry_in = ?pause, "write failed; retrying with its key");
                tokio::time::sleep(pause).await;
                left -= 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn failure(status: u16) -> Error {
        let url: Url = "http://x/".parse().unwrap();
        Error::api(&url, status, r#"{"error":{"code":"x","message":"x"}}"#)
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
        assert_eq!(outcome.unwrap_err().status(), Some(504));
        assert_eq!(calls.load(Ordering::Relaxed), 3, "one try and two retries");
    }

    #[test]
    fn segments_are_encoded_and_appended_to_a_prefix() {
        let client = Client::new("http://127.0.0.1:1/eric/").unwrap();
        let url = client.url(&["v1", "channels", "a/b?c#d", "x y"]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:1/eric/v1/channels/a%2Fb%3Fc%23d/x%20y"
        );
        let client = Client::new("http://127.0.0.1:1").unwrap();
        assert_eq!(client.url(&["v1", "channels"]).path(), "/v1/channels");
    }

    #[test]
    fn a_bad_url_or_token_is_refused() {
        for url in ["not a url", "mailto:someone", "ftp://host/"] {
            assert!(
                matches!(Client::new(url), Err(Error::InvalidUrl { .. })),
                "{url}"
            );
        }
        let built = Client::builder("http://127.0.0.1:1").token("a\nb").build();
        assert!(matches!(built, Err(Error::InvalidToken)));
    }
}
