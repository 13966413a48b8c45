//! TLS on the HTTP port, with certificates made at test time: ALPN picks
//! HTTP/2 or HTTP/1.1 (whose stream requests still take the hand-written
//! path), a reload serves new connections the new certificate while open
//! streams go on, files that cannot be used stop the start, and what is
//! not a TLS handshake is closed while the server goes on serving.

#![allow(clippy::unwrap_used)]

#[path = "common/wire.rs"]
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use eric_server::test_support::TestCerts;
use eric_server::{Config, Error, Server};
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use wire::{H2, Running, within};

async fn start(certs: &TestCerts, tune: impl FnOnce(&mut Config)) -> Running {
    Running::start(certs.serve_with(Config::default()), tune).await
}

/// HTTP/2 over TLS, as ALPN chose it.
async fn h2(certs: &TestCerts, addr: SocketAddr) -> H2 {
    let tls = certs.connect(addr, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    H2::handshake(tls).await
}

/// Reads until `text` has come (or the connection ends); all read so far.
async fn read_until<R: AsyncRead + Unpin>(r: &mut R, text: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(text) {
        let n = within(text, r.read(&mut buf)).await.unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn alpn_h2_streams_events() {
    let certs = TestCerts::new();
    let server = start(&certs, |_| {}).await;
    let mut client = h2(&certs, server.addr).await;
    client.channel_with_listeners(&["l"]).await;
    let mut events = client.events("l").await;
    client.dispatch("l", json!("over h2")).await;
    assert!(events.event().await.contains("over h2"));
    server.stop().await;
}

/// A client offering only HTTP/1.1 gets it; a stream request as its first
/// request is written by the server's own writer (`connection: close`),
/// and any other request goes through hyper.
#[tokio::test]
async fn http1_over_tls_keeps_the_stream_fast_path() {
    let certs = TestCerts::new();
    let server = start(&certs, |_| {}).await;
    let mut setup = h2(&certs, server.addr).await;
    setup.channel_with_listeners(&["l"]).await;
    setup.dispatch("l", json!("over http/1.1")).await;

    let mut tls = certs.connect(server.addr, &[b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let head = "GET /v1/channels/c/listeners/l/events HTTP/1.1\r\nHost: localhost\r\n\r\n";
    tls.write_all(head.as_bytes()).await.unwrap();
    let seen = read_until(&mut tls, "over http/1.1").await;
    assert!(seen.starts_with("HTTP/1.1 200 OK\r\n"), "{seen}");
    assert!(
        seen.contains("connection: close\r\n"),
        "not the fast path: {seen}"
    );
    assert!(seen.contains("over http/1.1"), "{seen}");

    let mut tls = certs.connect(server.addr, &[]).await;
    let head = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    tls.write_all(head.as_bytes()).await.unwrap();
    let seen = read_until(&mut tls, "\r\n\r\n").await;
    assert!(seen.starts_with("HTTP/1.1 200 OK\r\n"), "{seen}");
    server.stop().await;
}

/// A reload serves the new certificate to new connections; a stream opened
/// before goes on. A reload that fails keeps the certificate in use.
#[tokio::test]
async fn reload_serves_new_connections_the_new_certificate() {
    let certs = TestCerts::new();
    let server = start(&certs, |_| {}).await;
    let first_seen = |tls: &tokio_rustls::client::TlsStream<TcpStream>| {
        tls.get_ref().1.peer_certificates().unwrap()[0].clone()
    };
    let before = certs.connect(server.addr, &[b"h2"]).await;
    let old = first_seen(&before);
    let mut client = H2::handshake(before).await;
    client.channel_with_listeners(&["l"]).await;
    let mut events = client.events("l").await;

    let new = certs.issue();
    assert_ne!(new, old);
    server.tls.as_ref().unwrap().reload().await.unwrap();
    let after = certs.connect(server.addr, &[b"h2"]).await;
    assert_eq!(first_seen(&after), new);
    client.dispatch("l", json!("after the reload")).await;
    assert!(events.event().await.contains("after the reload"));

    std::fs::write(certs.key_path(), "not a key").unwrap();
    let error = server.tls.as_ref().unwrap().reload().await.unwrap_err();
    assert!(
        matches!(&error, Error::Tls { path, .. } if *path == certs.key_path()),
        "{error}"
    );
    let later = certs.connect(server.addr, &[b"h2"]).await;
    assert_eq!(first_seen(&later), new);
    server.stop().await;
}

/// Files that cannot be used stop the start, and the error names the file.
#[tokio::test]
async fn unusable_files_stop_the_start() {
    let certs = TestCerts::new();
    let bind = |tune: &dyn Fn(&mut Config)| {
        let mut config = certs.serve_with(Config::default());
        config.http.addr = "127.0.0.1:0".parse().unwrap();
        config.storage.engine = eric_server::StorageEngine::Memory;
        tune(&mut config);
        Server::bind(config)
    };
    let names = |error: &Error, file: &std::path::Path| matches!(error, Error::Tls { path, .. } if path == file);
    let missing = certs.cert_path().with_file_name("missing.pem");
    let error = bind(&|c| c.http.tls_cert = Some(missing.clone()))
        .await
        .unwrap_err();
    assert!(names(&error, &missing), "{error}");
    assert!(error.to_string().contains("missing.pem"), "{error}");

    let garbage = certs.cert_path().with_file_name("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN PRIVATE KEY-----\nnot base64\n").unwrap();
    let error = bind(&|c| c.http.tls_key = Some(garbage.clone()))
        .await
        .unwrap_err();
    assert!(names(&error, &garbage), "{error}");
    let error = bind(&|c| c.http.tls_cert = Some(garbage.clone()))
        .await
        .unwrap_err();
    assert!(names(&error, &garbage), "{error}");

    // A key of another certificate.
    let other = TestCerts::new();
    let error = bind(&|c| c.http.tls_key = Some(other.key_path()))
        .await
        .unwrap_err();
    assert!(names(&error, &other.key_path()), "{error}");

    let error = bind(&|c| c.http.tls_key = None).await.unwrap_err();
    assert!(matches!(error, Error::Config { .. }), "{error}");
}

/// Whatever is not a TLS handshake ends with the connection closed (an
/// alert at most), and a handshake that stops halfway with the head
/// timeout; the server goes on serving.
#[tokio::test]
async fn what_is_not_a_handshake_is_closed() {
    let certs = TestCerts::new();
    let server = start(&certs, |c| c.http.request_timeout_secs = 1).await;
    // A ClientHello's record header, then nothing more: waits for the rest
    // until the head timeout.
    let truncated = &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00][..];
    let cases: [&[u8]; 3] = [
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\x16\x03\x01\x00\x05garbage that is no ClientHello",
        truncated,
    ];
    for bytes in cases {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(bytes).await.unwrap();
        let mut rest = Vec::new();
        // Closed: the end of the stream, or a reset.
        let _ = within("the connection to close", tcp.read_to_end(&mut rest)).await;
        assert!(
            !String::from_utf8_lossy(&rest).contains("HTTP/1.1"),
            "answered in clear text: {rest:?}"
        );
    }
    let mut client = h2(&certs, server.addr).await;
    let (status, _) = client.call("GET", "/healthz", None).await;
    assert!(status.is_success());
    server.stop().await;
}

/// A client that chose HTTP/2 and then sends nothing (no preface) is
/// closed after the head timeout, as a silent HTTP/1.1 client is.
#[tokio::test]
async fn a_silent_h2_client_is_closed() {
    let certs = TestCerts::new();
    let server = start(&certs, |c| c.http.request_timeout_secs = 1).await;
    let mut tls = certs.connect(server.addr, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut rest = Vec::new();
    let _ = within("the connection to close", tls.read_to_end(&mut rest)).await;
    server.stop().await;
}

/// The certificate covers the loopback address too: a client that names
/// the server by address is served.
#[tokio::test]
async fn a_client_naming_the_address_is_served() {
    let certs = TestCerts::new();
    let server = start(&certs, |_| {}).await;
    let config = Arc::new(certs.client_config(&[b"h2"]));
    let connector = tokio_rustls::TlsConnector::from(config);
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = within("a handshake by address", connector.connect(name, tcp))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    server.stop().await;
}
