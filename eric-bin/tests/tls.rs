//! `eric serve` with TLS, as a real process: a real SIGHUP reloads the
//! certificate for new connections while a stream opened before goes on,
//! and SIGTERM still ends it cleanly.
//!
//! Nothing sleeps to wait: every wait is a deadline on a real signal (a log
//! line, bytes on a connection, the process exiting).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use eric_server::test_support::TestCerts;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(20);

/// A running `eric serve` and its log, one JSON entry per line.
struct Serving {
    child: Child,
    log: mpsc::UnboundedReceiver<Value>,
}

impl Serving {
    fn spawn(certs: &TestCerts) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_eric"))
            .args(["serve", "--http", "127.0.0.1:0", "--log-json"])
            .env("ERIC__HTTP__TLS_CERT", certs.cert_path())
            .env("ERIC__HTTP__TLS_KEY", certs.key_path())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (tx, log) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let entry = serde_json::from_str(&line).unwrap_or(Value::String(line));
                let _ = tx.send(entry);
            }
        });
        Self { child, log }
    }

    /// Waits for the log entry whose message is `message`.
    async fn logged(&mut self, message: &str) -> Value {
        let wait = async {
            while let Some(entry) = self.log.recv().await {
                if entry["fields"]["message"] == message {
                    return entry;
                }
            }
            panic!("eric's log ended before {message:?}");
        };
        timeout(DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("no {message:?} in eric's log"))
    }

    async fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let kill = Command::new("kill").args([name, &pid]).status();
        assert!(timeout(DEADLINE, kill).await.unwrap().unwrap().success());
    }
}

/// Reads until `text` has come; all read so far.
async fn read_until<R: AsyncRead + Unpin>(r: &mut R, text: &str) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(text) {
        let n = timeout(DEADLINE, r.read(&mut buf)).await.unwrap().unwrap();
        assert!(
            n > 0,
            "closed before {text:?}: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// One HTTP/1.1 request over a new TLS connection; the answer's head.
async fn call(certs: &TestCerts, addr: SocketAddr, method: &str, path: &str, body: &str) {
    let mut tls = certs.connect(addr, &[b"http/1.1"]).await;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let head = read_until(&mut tls, "\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 2"), "{method} {path}: {head}");
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_streams_go_on() {
    let certs = TestCerts::new();
    let mut eric = Serving::spawn(&certs);
    let serving = eric.logged("eric is serving").await;
    let addr: SocketAddr = serving["fields"]["addr"].as_str().unwrap().parse().unwrap();
    let seen = |tls: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>| {
        tls.get_ref().1.peer_certificates().unwrap()[0].clone()
    };

    call(&certs, addr, "POST", "/v1/channels", r#"{"id":"c"}"#).await;
    call(
        &certs,
        addr,
        "POST",
        "/v1/channels/c/listeners",
        r#"{"id":"l"}"#,
    )
    .await;
    let mut stream = certs.connect(addr, &[b"http/1.1"]).await;
    let old = seen(&stream);
    let head = "GET /v1/channels/c/listeners/l/events HTTP/1.1\r\nHost: localhost\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    read_until(&mut stream, ": connected").await;

    let new = certs.issue();
    assert_ne!(new, old);
    eric.signal("-HUP").await;
    eric.logged("SIGHUP: TLS certificate reloaded").await;
    let after = certs.connect(addr, &[b"http/1.1"]).await;
    assert_eq!(seen(&after), new);

    let message = r#"{"type":"n","payload":"after SIGHUP"}"#;
    call(
        &certs,
        addr,
        "POST",
        "/v1/channels/c/listeners/l/messages",
        message,
    )
    .await;
    read_until(&mut stream, "after SIGHUP").await;

    eric.signal("-TERM").await;
    let status = timeout(DEADLINE, eric.child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
}
