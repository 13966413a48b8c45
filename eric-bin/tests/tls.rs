//! `eric serve` with TLS, as a real process: a real SIGHUP reloads the
//! certificate for new connections while a stream opened before goes on,
//! and SIGTERM still ends it cleanly. And the `eric` client commands over
//! TLS, against a server started in this process: with `--ca-file` (or
//! `ERIC_CA_FILE`) they reach it, without they fail on its certificate,
//! in one line.
//!
//! Nothing sleeps to wait: every wait is a deadline on a real signal (a log
//! line, bytes on a connection, the process exiting).
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::process::Stdio;

use eric_server::test_support::{TestCerts, TestServer, config_on};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::timeout;

use common::{DEADLINE, Run};

/// A running `eric serve` and its log, one JSON entry per line.
struct Serving {
    child: Child,
    log: mpsc::UnboundedReceiver<Value>,
}

impl Serving {
    fn spawn(certs: &TestCerts) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_eric"))
            .args(["serve", "--http", "127.0.0.1:0", "--log-json", "--memory"])
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

/// A memory server serving TLS with `certs`, in this process; its
/// `https://` URL (the certificate names `localhost`).
async fn tls_server(certs: &TestCerts) -> (TestServer, String) {
    let config = certs.serve_with(config_on("127.0.0.1:0".parse().unwrap()));
    let server = TestServer::start(config).await;
    let url = format!("https://localhost:{}", server.addr().port());
    (server, url)
}

/// `eric --url URL ARGS...` run to completion, with no `ERIC_*` settings
/// from the environment but `env`: its exit code, stdout and stderr.
async fn eric(url: &str, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut command = common::command(url, args);
    command.envs(env.iter().copied());
    let Run {
        code,
        stdout,
        stderr,
    } = common::run(command).await;
    (code, stdout, stderr)
}

/// Runs a command that must succeed; its stdout, trimmed.
async fn ok(url: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let (code, stdout, stderr) = eric(url, args, env).await;
    assert_eq!(code, Some(0), "eric {args:?} failed: {stderr}");
    stdout.trim_end().to_owned()
}

/// Runs a command that must fail with status 1 and one line on stderr,
/// not a panic; that line.
async fn fails(url: &str, args: &[&str]) -> String {
    let (code, stdout, stderr) = eric(url, args, &[]).await;
    assert_eq!(
        code,
        Some(1),
        "eric {args:?} should fail: {stdout} {stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[tokio::test]
async fn client_commands_reach_a_tls_server_through_the_ca_file() {
    let certs = TestCerts::new();
    let (server, url) = tls_server(&certs).await;
    let ca = certs.ca_path();
    let ca = ca.to_str().unwrap();
    let with = |args: &[&'static str]| -> Vec<&str> {
        let mut all = vec!["--ca-file", ca];
        all.extend_from_slice(args);
        all
    };

    assert_eq!(ok(&url, &with(&["create", "--id", "c"]), &[]).await, "c");
    let added = ok(&url, &with(&["add-listener", "c", "--id", "l"]), &[]).await;
    assert_eq!(added, "l");
    let dispatch = ["dispatch", "c", "l", "greet", r#""over TLS""#];
    assert_eq!(ok(&url, &with(&dispatch), &[]).await, "1");
    // The variable does what the flag does.
    let listen = ["listen", "c", "l", "--max-events", "1"];
    let line = ok(&url, &listen, &[("ERIC_CA_FILE", ca)]).await;
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        event,
        serde_json::json!({"id": 1, "event": "greet", "data": "over TLS"})
    );
    server.stop().await;
}

#[tokio::test]
async fn without_the_ca_file_commands_fail_on_the_certificate() {
    let certs = TestCerts::new();
    let (server, url) = tls_server(&certs).await;
    let stderr = fails(&url, &["create", "--id", "c"]).await;
    assert!(stderr.contains("certificate"), "{stderr}");
    assert!(stderr.contains(&url), "{stderr}");
    let stderr = fails(&url, &["health"]).await;
    assert!(stderr.contains("certificate"), "{stderr}");

    // A CA file that is not there is named, before any request.
    let missing = certs.ca_path().with_file_name("missing.pem");
    let missing = missing.to_str().unwrap();
    let stderr = fails(&url, &["--ca-file", missing, "channels"]).await;
    assert!(stderr.contains(missing), "{stderr}");
    server.stop().await;
}

#[tokio::test]
async fn health_waits_for_a_tls_server() {
    let certs = TestCerts::new();
    let (server, url) = tls_server(&certs).await;
    let ca = certs.ca_path();
    let args = ["--ca-file", ca.to_str().unwrap(), "health", "--wait"];
    assert_eq!(ok(&url, &args, &[]).await, "");
    server.stop().await;
}
