//! The client over TLS, against a real server started in this process that
//! serves a certificate of a CA made at test time: trusted through
//! `ca_file` or `ca_pem` (merged with the system's roots), every call and a
//! stream work; without it, the call fails with a certificate error; CA
//! files that cannot be used are refused, naming the file. Nothing sleeps to
//! wait: each wait is a deadline on the event.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use eric_client::{Client, Error, Message, NewChannel, StreamItem, Write};
use eric_server::test_support::{TestCerts, TestServer, config_on};
use futures_util::StreamExt;
use tokio::time::timeout;

/// Longest wait for anything; a healthy run takes a fraction of it.
const DEADLINE: Duration = Duration::from_secs(20);

/// A memory server serving TLS with `certs`; its `https://` URL.
async fn tls_server(certs: &TestCerts) -> (TestServer, String) {
    let config = certs.serve_with(config_on("127.0.0.1:0".parse().unwrap()));
    let server = TestServer::start(config).await;
    let url = format!("https://localhost:{}", server.addr().port());
    (server, url)
}

/// Every cause of `error`, outermost first, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        line.push_str(" <- ");
        line.push_str(&next.to_string());
        cause = next.source();
    }
    line
}

#[tokio::test]
async fn a_trusted_ca_carries_calls_and_a_stream() {
    let certs = TestCerts::new();
    let (server, url) = tls_server(&certs).await;
    let client = Client::builder(&url)
        .ca_file(certs.ca_path())
        .build()
        .unwrap();
    client
        .create_channel(&NewChannel::new().id("c"))
        .await
        .unwrap();
    let listener = client.add_listener("c", Some("l")).await.unwrap();
    let mut events = client.listener_events("c", &listener).open().await.unwrap();
    let message = Message::json("greet", &"over TLS").unwrap();
    client
        .dispatch("c", &listener, &message, &Write::once("tls-1"))
        .await
        .unwrap();
    let event = loop {
        let item = timeout(DEADLINE, events.next())
            .await
            .expect("no event in time")
            .expect("the stream ended")
            .unwrap();
        if let StreamItem::Event(event) = item {
            break event;
        }
    };
    assert_eq!(event.event, "greet");
    assert_eq!(event.data, "\"over TLS\"");

    // The CA given as PEM text trusts the server as well.
    let from_pem = Client::builder(&url)
        .ca_pem(certs.ca_pem())
        .build()
        .unwrap();
    assert_eq!(from_pem.channels().await.unwrap(), ["c"]);
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_ca_fails_with_a_certificate_error() {
    let certs = TestCerts::new();
    let (server, url) = tls_server(&certs).await;
    let error = Client::new(&url).unwrap().channels().await.unwrap_err();
    assert!(matches!(error, Error::Request { .. }), "{error:?}");
    // The line a program prints names the cause, not only the URL.
    let line = error.to_string();
    assert!(
        line.to_lowercase().contains("certificate"),
        "{line} / {}",
        chain(&error)
    );
    assert!(chain(&error).contains("UnknownIssuer"), "{}", chain(&error));

    // Another CA's certificate is no better.
    let other = TestCerts::new();
    let client = Client::builder(&url)
        .ca_file(other.ca_path())
        .build()
        .unwrap();
    let error = client.channels().await.unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn a_ca_file_that_cannot_be_used_is_refused_naming_it() {
    let certs = TestCerts::new();
    let missing = certs.ca_path().with_file_name("missing.pem");
    let built = Client::builder("https://localhost:1")
        .ca_file(&missing)
        .build();
    let Err(error @ Error::InvalidCa { .. }) = built else {
        panic!("a missing CA file was accepted: {built:?}");
    };
    let line = error.to_string();
    assert!(line.contains(&missing.display().to_string()), "{line}");

    // A key is PEM, but no certificate.
    let built = Client::builder("https://localhost:1")
        .ca_file(certs.key_path())
        .build();
    let Err(error @ Error::InvalidCa { .. }) = built else {
        panic!("a key was taken for a CA: {built:?}");
    };
    let line = error.to_string();
    assert!(
        line.contains("key.pem") && line.contains("no PEM CERTIFICATE"),
        "{line}"
    );
}
