//! The first request on a connection: read once, and recognised when it
//! opens an SSE stream.
//!
//! An open stream is the one kind of connection a broker holds by the ten
//! thousand, and hyper keeps about 11 KiB per connection (two 8 KiB
//! buffers, which it cannot shrink) for the request that stream never
//! sends. So a connection's first read is looked at here: a complete
//! `GET` head for a stream route, with nothing after it, becomes an
//! [`http::Request`] the router answers and [`super::streamed`] writes out
//! by hand. Anything else (another route or method, a head split over
//! several reads, a body, an upgrade, HTTP/1.0, a malformed head) goes to
//! hyper with the bytes already read, so hyper's own parsing and errors
//! apply exactly as before.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Version};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// What one read takes at most; browsers' stream requests are well under
/// 1 KiB. A longer head goes to hyper, which takes heads of any size.
pub(super) const FIRST_READ: usize = 4096;
/// Headers parsed at most; more, and hyper handles the request.
const MAX_HEADERS: usize = 48;

/// Reads what the client sent first (empty: it closed without a word).
pub(super) async fn read(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(FIRST_READ);
    stream.read_buf(&mut bytes).await?;
    Ok(bytes)
}

/// `bytes` as a request for a stream route, if it is exactly one complete
/// `GET` head of HTTP/1.1 for one, with no body.
pub(super) fn stream_request(bytes: &[u8]) -> Option<Request<Body>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = parsed.parse(bytes).ok()? else {
        return None;
    };
    // Pipelined bytes after the head belong to hyper's parsing.
    if len != bytes.len() || parsed.method? != "GET" || parsed.version? != 1 {
        return None;
    }
    let path = parsed.path?;
    if !is_stream_path(path) {
        return None;
    }
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(path)
        .version(Version::HTTP_11);
    for header in parsed.headers.iter() {
        if needs_hyper(header) {
            return None;
        }
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(header.value).ok()?;
        request = request.header(name, value);
    }
    request.body(Body::empty()).ok()
}

/// Headers that give a `GET` a body, ask to switch protocols or expect an
/// interim answer: hyper's business.
fn needs_hyper(header: &httparse::Header<'_>) -> bool {
    let name = header.name;
    (name.eq_ignore_ascii_case("content-length") && header.value != b"0")
        || name.eq_ignore_ascii_case("transfer-encoding")
        || name.eq_ignore_ascii_case("upgrade")
        || name.eq_ignore_ascii_case("expect")
}

/// `/stream/{c}/{l}`, `/v1/channels/{c}/listeners/{l}/events` and
/// `/v1/channels/{c}/events`, with any query.
fn is_stream_path(target: &str) -> bool {
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return false;
    }
    matches!(
        segments.as_slice(),
        ["stream", _, _]
            | ["v1", "channels", _, "listeners", _, "events"]
            | ["v1", "channels", _, "events"]
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn head(lines: &[&str]) -> Vec<u8> {
        let mut text = lines.join("\r\n");
        text.push_str("\r\n\r\n");
        text.into_bytes()
    }

    #[test]
    fn stream_routes_are_recognised() {
        for path in [
            "/stream/c/l",
            "/v1/channels/c/listeners/l/events",
            "/v1/channels/c/events",
            "/v1/channels/c%20d/listeners/l/events?last_event_id=3",
        ] {
            let request = stream_request(&head(&[
                &format!("GET {path} HTTP/1.1"),
                "Host: x",
                "Last-Event-ID: 7",
            ]))
            .unwrap_or_else(|| panic!("{path} not recognised"));
            assert_eq!(request.uri(), path);
            assert_eq!(request.headers()["last-event-id"], "7");
        }
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        let cases = [
            head(&["GET /v1/channels HTTP/1.1", "Host: x"]),
            head(&["GET /stream/c HTTP/1.1", "Host: x"]),
            head(&["GET /stream/c/l/x HTTP/1.1", "Host: x"]),
            head(&["GET /stream//l HTTP/1.1", "Host: x"]),
            head(&["POST /stream/c/l HTTP/1.1", "Host: x"]),
            head(&["HEAD /stream/c/l HTTP/1.1", "Host: x"]),
            head(&["GET /stream/c/l HTTP/1.0", "Host: x"]),
            head(&["GET /stream/c/l HTTP/1.1", "Content-Length: 3"]),
            head(&["GET /stream/c/l HTTP/1.1", "Transfer-Encoding: chunked"]),
            head(&["GET /stream/c/l HTTP/1.1", "Upgrade: websocket"]),
            head(&["GET /stream/c/l HTTP/1.1", "Expect: 100-continue"]),
            head(&["GET /stream/c/l HTTP/1.1", "Bad Header: x"]),
            head(&["GET stream/c/l HTTP/1.1", "Host: x"]),
            b"GET /stream/c/l HTTP/1.1\r\nHost: x\r\n".to_vec(),
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
            b"\xff\xfe garbage".to_vec(),
            Vec::new(),
        ];
        for bytes in cases {
            assert!(
                stream_request(&bytes).is_none(),
                "{:?} taken",
                String::from_utf8_lossy(&bytes)
            );
        }
        // A pipelined second request after the head.
        let mut two = head(&["GET /stream/c/l HTTP/1.1", "Host: x"]);
        two.extend(head(&["GET /healthz HTTP/1.1", "Host: x"]));
        assert!(stream_request(&two).is_none());
        // Too many headers.
        let many: Vec<String> = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: v")).collect();
        let mut lines = vec!["GET /stream/c/l HTTP/1.1"];
        lines.extend(many.iter().map(String::as_str));
        assert!(stream_request(&head(&lines)).is_none());
    }
}
