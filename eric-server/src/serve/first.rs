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
//!
//! The same first bytes tell HTTP/2 with prior knowledge (h2c): a client
//! that starts with the connection preface goes to hyper's HTTP/2 server.

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request, Version};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::http::routes::StreamRoute;

/// What one read takes at most; browsers' stream requests are well under
/// 1 KiB. A longer head goes to hyper, which takes heads of any size.
pub(super) const FIRST_READ: usize = 4096;
/// Headers parsed at most; more, and hyper handles the request.
const MAX_HEADERS: usize = 48;

/// What a client speaking HTTP/2 with prior knowledge sends first
/// (RFC 9113, section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads what the client sent first (empty: it closed without a word).
/// The start of an HTTP/2 preface is read on until the preface is whole
/// (or the bytes stop matching it), so [`is_h2_preface`] can tell.
pub(super) async fn read<S: AsyncRead + Unpin>(stream: &mut S) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(FIRST_READ);
    stream.read_buf(&mut bytes).await?;
    while !bytes.is_empty() && bytes.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(&bytes) {
        if stream.read_buf(&mut bytes).await? == 0 {
            break;
        }
    }
    Ok(bytes)
}

/// Whether `bytes` open an HTTP/2 connection with prior knowledge.
pub(super) fn is_h2_preface(bytes: &[u8]) -> bool {
    bytes.starts_with(H2_PREFACE)
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

/// Whether `target` (a path, with any query) is a stream route's: the one
/// list, [`StreamRoute::ALL`], so the bypass cannot miss a route the
/// router streams on.
fn is_stream_path(target: &str) -> bool {
    StreamRoute::of_target(target).is_some()
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
    fn the_h2_preface_is_told_from_http1() {
        assert!(is_h2_preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04"));
        assert!(!is_h2_preface(b"PRI * HTTP/2.0\r\n\r\nSM"));
        assert!(!is_h2_preface(&head(&[
            "GET /stream/c/l HTTP/1.1",
            "Host: x"
        ])));
    }

    /// A preface that comes in pieces is read whole before it is judged.
    #[tokio::test]
    async fn a_preface_split_over_reads_is_read_whole() {
        use tokio::io::AsyncWriteExt;
        let (mut client, mut server) = tokio::io::duplex(64);
        let reading = tokio::spawn(async move { read(&mut server).await.unwrap() });
        for piece in [&b"PRI * HT"[..], b"TP/2.0\r\n\r\n", b"SM\r\n\r\n"] {
            client.write_all(piece).await.unwrap();
            client.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        assert!(is_h2_preface(&reading.await.unwrap()));
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

    /// Every route of the one list is taken, whatever its ids.
    #[test]
    fn every_stream_route_of_the_list_is_taken() {
        for route in StreamRoute::ALL {
            let path = route
                .template()
                .replace("{channel}", "c%2F1")
                .replace("{listener}", "l");
            let taken = stream_request(&head(&[&format!("GET {path} HTTP/1.1"), "Host: x"]));
            assert!(taken.is_some(), "{route:?}: {path}");
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

/// Properties of [`stream_request`] against hyper, the parser it stands in
/// for: whatever it takes, hyper reads as the same request.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod properties {
    use std::sync::{Arc, Mutex};

    use axum::http::{HeaderMap, Uri};
    use hyper::server::conn::http1;
    use hyper_util::rt::{TokioIo, TokioTimer};
    use proptest::prelude::*;
    use tokio::io::AsyncWriteExt;

    use super::*;

    /// What a request head says, as compared here.
    type Parsed = (Method, Uri, HeaderMap);

    /// `bytes` parsed by hyper, as the server's hyper path would (`None`:
    /// hyper refused them or found no complete request).
    fn hyper_parse(bytes: &[u8]) -> Option<Parsed> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (mut client, server) = tokio::io::duplex(64 * 1024);
            client.write_all(bytes).await.unwrap();
            client.shutdown().await.unwrap();
            let seen: Arc<Mutex<Option<Parsed>>> = Arc::default();
            let sink = seen.clone();
            let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                let (parts, _) = req.into_parts();
                *sink.lock().unwrap() = Some((parts.method, parts.uri, parts.headers));
                async { Ok::<_, std::convert::Infallible>(hyper::Response::new(String::new())) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(server), service)
                .await;
            // Answered and consumed: `seen` is the only clone left.
            seen.lock().unwrap().take()
        })
    }

    fn parsed(request: Request<Body>) -> Parsed {
        let (parts, _) = request.into_parts();
        (parts.method, parts.uri, parts.headers)
    }

    /// A path segment: unreserved and sub-delimiter characters, `:` and
    /// `@`, and percent-escapes.
    fn segment() -> impl Strategy<Value = String> {
        "([A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-F]{2}){1,12}"
    }

    /// A stream route's target, with an optional query.
    fn target() -> impl Strategy<Value = String> {
        let path = prop_oneof![
            (segment(), segment()).prop_map(|(c, l)| format!("/stream/{c}/{l}")),
            (segment(), segment())
                .prop_map(|(c, l)| format!("/v1/channels/{c}/listeners/{l}/events")),
            segment().prop_map(|c| format!("/v1/channels/{c}/events")),
        ];
        let query = proptest::option::of("[A-Za-z0-9._~=&%/?-]{0,16}");
        (path, query).prop_map(|(path, query)| match query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        })
    }

    /// A header the fast path takes: a token name (some common ones, so
    /// names repeat) and a value of visible ASCII, spaces and obs-text.
    fn header() -> impl Strategy<Value = (String, Vec<u8>)> {
        let name = prop_oneof![
            Just("Host".to_owned()),
            Just("Accept".to_owned()),
            Just("Last-Event-ID".to_owned()),
            "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}",
        ]
        .prop_filter("would need hyper", |n| {
            !["content-length", "transfer-encoding", "upgrade", "expect"]
                .contains(&n.to_ascii_lowercase().as_str())
        });
        let value =
            proptest::collection::vec(prop_oneof![0x21u8..=0x7e, Just(b' '), 0x80u8..=0xff], 0..24)
                .prop_map(|mut v| {
                    // Surrounding whitespace is not part of a field value.
                    while v.first() == Some(&b' ') {
                        v.remove(0);
                    }
                    while v.last() == Some(&b' ') {
                        v.pop();
                    }
                    v
                });
        (name, value)
    }

    /// A complete stream request head with optional whitespace around
    /// values, and the request it means.
    fn stream_head() -> impl Strategy<Value = (Vec<u8>, Parsed)> {
        let headers = proptest::collection::vec((header(), "[ \t]{0,2}", "[ \t]{0,2}"), 0..12);
        (target(), headers).prop_map(|(target, headers)| {
            let mut bytes = format!("GET {target} HTTP/1.1\r\n").into_bytes();
            let mut map = HeaderMap::new();
            for ((name, value), before, after) in headers {
                bytes.extend_from_slice(name.as_bytes());
                bytes.push(b':');
                bytes.extend_from_slice(before.as_bytes());
                bytes.extend_from_slice(&value);
                bytes.extend_from_slice(after.as_bytes());
                bytes.extend_from_slice(b"\r\n");
                map.append(
                    HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_bytes(&value).unwrap(),
                );
            }
            bytes.extend_from_slice(b"\r\n");
            (bytes, (Method::GET, target.parse().unwrap(), map))
        })
    }

    /// A header that gives the request a body or asks for an upgrade.
    fn hyper_header() -> impl Strategy<Value = String> {
        prop_oneof![
            (1u64..1 << 40).prop_map(|n| format!("Content-Length: {n}")),
            Just("Transfer-Encoding: chunked".to_owned()),
            Just("transfer-encoding: gzip, chunked".to_owned()),
            Just("Upgrade: websocket".to_owned()),
            Just("Expect: 100-continue".to_owned()),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = stream_request(&bytes);
        }

        #[test]
        fn stream_heads_parse_as_hyper_parses_them((bytes, meant) in stream_head()) {
            let ours = stream_request(&bytes).map(parsed);
            prop_assert_eq!(ours, Some(meant.clone()));
            prop_assert_eq!(hyper_parse(&bytes), Some(meant));
        }

        /// A stream head with a few bytes changed: taken or not, but if
        /// taken, hyper reads the same request from it.
        #[test]
        fn damaged_heads_are_taken_only_as_hyper_reads_them(
            (bytes, _) in stream_head(),
            changes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            let mut bytes = bytes;
            for (at, byte) in changes {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            if let Some(request) = stream_request(&bytes) {
                prop_assert_eq!(hyper_parse(&bytes), Some(parsed(request)));
            }
        }

        #[test]
        fn bodies_and_upgrades_go_to_hyper(
            (bytes, _) in stream_head(),
            extra in hyper_header(),
            at in any::<prop::sample::Index>(),
        ) {
            // Insert after any line of the head but the last (empty) one.
            let ends: Vec<usize> = bytes
                .windows(2)
                .enumerate()
                .filter(|(_, w)| w == b"\r\n")
                .map(|(i, _)| i + 2)
                .collect();
            let i = ends[at.index(ends.len() - 1)];
            let mut with = bytes[..i].to_vec();
            with.extend_from_slice(extra.as_bytes());
            with.extend_from_slice(b"\r\n");
            with.extend_from_slice(&bytes[i..]);
            prop_assert!(stream_request(&with).is_none());
        }

        #[test]
        fn anything_after_the_head_goes_to_hyper(
            (bytes, _) in stream_head(),
            extra in proptest::collection::vec(any::<u8>(), 1..64),
        ) {
            let mut with = bytes;
            with.extend_from_slice(&extra);
            prop_assert!(stream_request(&with).is_none());
        }
    }
}
