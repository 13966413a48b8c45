//! [`Error`]: everything a call or a stream of this crate can fail with,
//! and how a stream ends ([`StreamProblem`], [`EndReason`]).

use std::time::Duration;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Longest error body kept when it is not the API's error shape.
const MAX_QUOTED_BODY: usize = 300;

/// What a call to the server, or a stream from it, can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server could not be reached, or its answer not read (a refused
    /// connection, a certificate that is not trusted, a reset, a timeout, a
    /// body that is not what the route answers). The line gives the cause
    /// and the causes under it (`invalid peer certificate: UnknownIssuer`),
    /// which reqwest's own line leaves out.
    #[error("request to {url} failed: {}", causes(source))]
    Request {
        /// The URL.
        url: String,
        /// The cause (without the URL, which `url` holds).
        #[source]
        source: reqwest::Error,
    },

    /// The server refused the request: an error status with the API's error
    /// body (`{"error": {"code": ..., "message": ...}}`), or with another
    /// body (a proxy's page), kept whole in `message` with `code` `None`
    /// (the error line quotes it shortened).
    #[error("{url} answered {status}: {}", describe(code.as_deref(), message))]
    Api {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's stable error code (`channel_not_found`, ...): what
        /// a program branches on. `None` when the body was not eric's.
        code: Option<String>,
        /// The server's message for people, or the body as sent.
        message: String,
    },

    /// An SSE stream broke off or carried something it should not.
    #[error("stream {url}: {problem}")]
    Stream {
        /// The stream's URL.
        url: String,
        /// What went wrong.
        problem: StreamProblem,
    },

    /// A resuming stream could not reconnect within its give-up time; the
    /// last attempt's error is the source.
    #[error("could not reconnect for {} s: {last}", after.as_secs())]
    GaveUp {
        /// How long reconnecting was tried.
        after: Duration,
        /// The last attempt's failure.
        #[source]
        last: Box<Error>,
    },

    /// A message's payload could not be encoded as JSON.
    #[error("cannot encode the payload as JSON: {source}")]
    Encode {
        /// The cause.
        #[source]
        source: serde_json::Error,
    },

    /// An event's data is not the type it was decoded as.
    #[error("cannot decode the event: {source}")]
    Decode {
        /// The cause.
        #[source]
        source: serde_json::Error,
    },

    /// A blocking client could not start its runtime.
    #[error("cannot start the blocking client's runtime: {source}")]
    Runtime {
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The server URL cannot be used (no host, not `http(s)://`...).
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// The CA certificates to trust beyond the system's roots cannot be
    /// used: their file cannot be read, is not PEM, holds no certificate,
    /// or one that cannot be a trust anchor.
    #[error("CA certificates {}: {reason}", ca_origin(path.as_deref()))]
    InvalidCa {
        /// The file (`ClientBuilder::ca_file`, `--ca-file`); `None` for
        /// PEM given as bytes.
        path: Option<std::path::PathBuf>,
        /// What is wrong with them.
        reason: String,
    },

    /// The bearer token holds characters an HTTP header cannot.
    #[error("invalid token: it holds characters an HTTP header cannot")]
    InvalidToken,

    /// No event arrived within the time a subscriber's `get` was given.
    /// Nothing is lost: a later `get` receives what arrives after.
    #[error("no event within {after:?}")]
    Timeout {
        /// The time given.
        after: Duration,
    },

    /// A subscriber's stream was ended by the server: someone else stopped
    /// or removed its listener, or removed the channel. A later `get`
    /// opens it again (and reports the server's refusal if it is gone).
    #[error("the subscription's stream ended: {reason}")]
    Ended {
        /// Why the server ended it.
        reason: EndReason,
    },

    /// A subscription cannot be written as a filter (`TYPE[:TOPIC]`).
    #[error("invalid subscription {subscription:?}: {reason}")]
    InvalidSubscription {
        /// The subscription as given.
        subscription: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
}

/// Why the server ended a stream. A `failed` end arrives as an
/// [`Error::Stream`] instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndReason {
    /// The listener was stopped (its messages stay queued).
    #[error("the listener was stopped")]
    Stopped,
    /// The listener, or its channel, was removed.
    #[error("the listener was removed")]
    Removed,
    /// A reason this client does not know.
    #[error("reason {0:?}")]
    Other(String),
}

/// How an SSE stream went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamProblem {
    /// The server closed the stream without `eric-end` (a shutdown, a
    /// restart, a proxy's timeout).
    #[error("the server closed the stream")]
    Closed,
    /// Nothing arrived, not even a keep-alive comment, for this long.
    #[error("nothing received for {} s", .0.as_secs())]
    Idle(Duration),
    /// The server ended the stream with `eric-end` reason `failed`: a
    /// storage error that retrying cannot fix.
    #[error("eric-end: the server could not go on streaming (reason \"failed\")")]
    Failed,
}

impl Error {
    /// The server's error code, when the server refused the request.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => code.as_deref(),
            Self::GaveUp { last, .. } => last.code(),
            _ => None,
        }
    }

    /// The HTTP status of a refusal.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::GaveUp { last, .. } => last.status(),
            _ => None,
        }
    }

    /// Whether this is a subscriber's [`Error::Timeout`]: no event in the
    /// time given, and nothing wrong.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// Whether trying the same request again later may succeed: the server
    /// was unreachable, or answered that it is busy, restarting or without
    /// storage. A 4xx other than 408/429 will say the same thing again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Request { .. } => true,
            Self::Api { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            _ => false,
        }
    }

    /// What went wrong, without the URL this error's line names: for an
    /// [`Error::Request`] the transport's failure and its causes
    /// (`error sending request: client error (Connect): invalid peer
    /// certificate: UnknownIssuer`), for an [`Error::Stream`] the problem,
    /// for others the whole line.
    pub fn detail(&self) -> String {
        match self {
            Self::Request { source, .. } => causes(source),
            Self::Stream { problem, .. } => problem.to_string(),
            other => other.to_string(),
        }
    }

    /// An [`Error::Request`] for `url`, for `map_err`.
    pub(crate) fn request(url: &reqwest::Url) -> impl FnOnce(reqwest::Error) -> Self {
        let url = url.to_string();
        // The line names the URL once, not again in reqwest's words.
        move |source| Self::Request {
            url,
            source: source.without_url(),
        }
    }

    /// An [`Error::Api`] from an error answer's status and body.
    pub(crate) fn api(url: &reqwest::Url, status: u16, body: &str) -> Self {
        #[derive(serde::Deserialize)]
        struct Shape {
            error: Inner,
        }
        #[derive(serde::Deserialize)]
        struct Inner {
            code: String,
            message: String,
        }
        let (code, message) = match serde_json::from_str::<Shape>(body) {
            Ok(Shape { error }) => (Some(error.code), error.message),
            Err(_) => (None, body.to_owned()),
        };
        Self::Api {
            url: url.to_string(),
            status,
            code,
            message,
        }
    }
}

/// `error` and each cause under it on one line, `: `-separated, as
/// [`Error::Request`] prints reqwest's errors (whose own line leaves out
/// the cause: `error sending request` but not `invalid peer certificate:
/// UnknownIssuer`); a cause that only repeats the one above it (an I/O
/// error wrapping a TLS error) is said once. For a program that reports
/// reqwest's errors itself, as the load tool's `peer` modes do.
///
/// ```
/// let io = std::io::Error::other("connection reset");
/// assert_eq!(eric_client::causes(&io), "connection reset");
/// ```
pub fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut last = line.clone();
    let mut cause = error.source();
    while let Some(next) = cause {
        let text = next.to_string();
        if text != last && !last.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        last = text;
        cause = next.source();
    }
    line
}

/// Where CA certificates came from, for an error line.
fn ca_origin(path: Option<&std::path::Path>) -> String {
    match path {
        Some(path) => format!("file {}", path.display()),
        None => "(PEM given)".to_owned(),
    }
}

/// `code: message`, or the message alone.
fn describe(code: Option<&str>, message: &str) -> String {
    match code {
        Some(code) => format!("{code}: {message}"),
        None => quote(message),
    }
}

/// A body that is not the API's shape, shortened for an error line.
fn quote(body: &str) -> String {
    let text = body.trim();
    if text.is_empty() {
        return "(no body)".to_owned();
    }
    match text.char_indices().nth(MAX_QUOTED_BODY) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn url() -> reqwest::Url {
        "http://127.0.0.1:1/v1/channels/x".parse().unwrap()
    }

    #[test]
    fn error_bodies_name_the_code() {
        let shaped = r#"{"error":{"code":"channel_not_found","message":"no channel with id x"}}"#;
        let error = Error::api(&url(), 404, shaped);
        assert_eq!(error.code(), Some("channel_not_found"));
        assert_eq!(
            error.to_string(),
            "http://127.0.0.1:1/v1/channels/x answered 404: channel_not_found: no channel with id x"
        );
        let blank = Error::api(&url(), 502, "  ");
        assert!(blank.to_string().ends_with("502: (no body)"), "{blank}");
        assert_eq!(blank.code(), None);
        let long = Error::api(&url(), 502, &"x".repeat(1000));
        let Error::Api { message, .. } = &long else {
            unreachable!()
        };
        assert_eq!(message.len(), 1000, "the body is kept whole");
        let line = long.to_string();
        assert!(
            line.ends_with(&format!("{}...", "x".repeat(MAX_QUOTED_BODY))),
            "{line}"
        );
    }

    #[test]
    fn transient_errors() {
        let answer = |status| Error::api(&url(), status, "");
        assert!(answer(503).is_transient());
        assert!(answer(504).is_transient());
        assert!(answer(429).is_transient());
        assert!(!answer(404).is_transient());
        assert!(!answer(400).is_transient());
        assert!(!Error::InvalidToken.is_transient());
    }
}
