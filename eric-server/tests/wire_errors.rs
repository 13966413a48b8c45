//! Requests hyper refuses before any handler runs (a malformed head, a URI
//! or header section too long) get the API's one JSON error shape, over a
//! real socket, and the server goes on serving.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use eric_server::{Config, Server};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(20);
/// The most a request head may take (`serve`'s limit).
const MAX_HEAD_BYTES: usize = 64 * 1024;

async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn start() -> (SocketAddr, CancellationToken) {
    let mut config = Config::default();
    // In memory: no data directory to share.
    config.storage.engine = eric_server::StorageEngine::Memory;
    config.http.addr = "127.0.0.1:0".parse().unwrap();
    let server = Server::bind(config).await.unwrap();
    let (addr, token) = (server.http_addr().unwrap(), CancellationToken::new());
    tokio::spawn(server.run(token.clone()));
    (addr, token)
}

/// An answer split into status, head and body.
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

/// Reads one response with a `content-length` from `raw`.
async fn read_answer(raw: &mut TcpStream) -> Answer {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        within("a response head", raw.read_exact(&mut byte))
            .await
            .unwrap();
        bytes.push(byte[0]);
    }
    let head = String::from_utf8(bytes).unwrap().to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap_or_else(|| panic!("no content-length in {head:?}"))
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; length];
    within("a response body", raw.read_exact(&mut body))
        .await
        .unwrap();
    Answer { status, head, body }
}

/// Asserts `answer` is `status` with the JSON error shape and `code`.
fn assert_json_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.head);
    assert!(
        answer.head.contains("content-type: application/json"),
        "{}",
        answer.head
    );
    let body: Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&answer.body)));
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

/// Sends `request` on a new connection and reads the one answer.
async fn refused(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(request).await.unwrap();
    read_answer(&mut raw).await
}

/// A head of exactly `MAX_HEAD_BYTES` with no end: all of it is read before
/// the server answers, so closing does not reset the connection.
fn endless_head(path: &str) -> Vec<u8> {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Big: ").into_bytes();
    head.resize(MAX_HEAD_BYTES, b'a');
    head
}

#[tokio::test]
async fn refused_heads_answer_in_json_and_the_server_goes_on() {
    let (addr, token) = start().await;
    let long_uri = format!(
        "GET /v1/channels?x={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(9000)
    );
    let many: String = (0..120).map(|i| format!("X-{i}: v\r\n")).collect();
    let many = format!("GET /v1/channels HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (long_uri.into_bytes(), 414, "uri_too_long"),
        (many.into_bytes(), 431, "headers_too_large"),
        (endless_head("/v1/channels"), 431, "headers_too_large"),
        (endless_head("/stream/c/l"), 431, "headers_too_large"),
        (
            b"GET /v1/channels HTTP/1.1\r\nBad Header: x\r\n\r\n".to_vec(),
            400,
            "malformed_request",
        ),
        (
            b"\xff\xfe\xfd garbage\r\n\r\n".to_vec(),
            400,
            "malformed_request",
        ),
    ];
    for (request, status, code) in cases {
        let answer = refused(addr, &request).await;
        assert_json_error(&answer, status, code);
    }
    // On a connection that already served a request, too.
    let mut raw = TcpStream::connect(addr).await.unwrap();
    raw.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_answer(&mut raw).await.status, 200);
    raw.write_all(&endless_head("/healthz")).await.unwrap();
    assert_json_error(&read_answer(&mut raw).await, 431, "headers_too_large");
    // And the server still answers.
    let answer = refused(addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(answer.status, 200);
    token.cancel();
}
