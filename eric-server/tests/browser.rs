//! A real browser's `EventSource` against a real server: Debian's
//! `chromium`, headless, opens a listener's stream from a page and posts
//! what it read back to the test. It checks what the SSE wire format
//! promises browsers: an event carrying eric's own `topic:` line reads as
//! it would without it (type, data and id), and an event without one as
//! before.
//!
//! Skipped, with a message, when no `chromium` is installed (`.ci/run`
//! installs it through `scripts/install-test-deps`).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use eric_server::{Config, Server};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Longest wait for the browser's report; a healthy run takes a second.
const DEADLINE: Duration = Duration::from_secs(60);

/// The browser binary: `ERIC_TEST_CHROMIUM`, else `chromium` on the PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ERIC_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|candidate| candidate.is_file())
    })
}

/// The page: opens the stream, and once it has read two `status` events
/// posts them (last event id, type, data) to the page's own server.
fn page(stream_url: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><script>
const seen = [];
const source = new EventSource({stream_url:?});
source.addEventListener("status", (e) => {{
  seen.push([e.lastEventId, e.type, e.data]);
  if (seen.length === 2) {{
    source.close();
    fetch("/report", {{method: "POST", body: JSON.stringify(seen)}});
  }}
}});
source.onerror = () => fetch("/report", {{method: "POST", body: JSON.stringify({{error: seen}})}});
</script>"#
    )
}

/// Serves `html` at any GET and returns the body of the first POST.
async fn serve_page(listener: TcpListener, html: String) -> String {
    loop {
        let (mut socket, _) = listener.accept().await.unwrap();
        let (head, body) = read_request(&mut socket).await;
        if head.starts_with("POST") {
            let _ = socket
                .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                .await;
            return body;
        }
        let answer = if head.starts_with("GET / ") {
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
                html.len()
            )
        } else {
            "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
        };
        let _ = socket.write_all(answer.as_bytes()).await;
    }
}

/// One request: its head, and its body (by `content-length`).
async fn read_request(socket: &mut TcpStream) -> (String, String) {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.unwrap();
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                return (head.to_owned(), body.to_owned());
            }
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (text, String::new())
}

#[tokio::test]
async fn event_source_reads_events_with_and_without_a_topic_alike() {
    let Some(browser) = chromium() else {
        eprintln!("skipped: no chromium (install Debian's `chromium`, or set ERIC_TEST_CHROMIUM)");
        return;
    };
    let pages = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page_origin = format!("http://{}", pages.local_addr().unwrap());

    let mut config = Config::default();
    config.http.addr = "127.0.0.1:0".parse().unwrap();
    config.http.cors_origins = vec![page_origin.clone()];
    let server = Server::bind(config).await.unwrap();
    let base = format!("http://{}", server.http_addr().unwrap());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));

    let http = reqwest::Client::new();
    for (path, body) in [
        ("/v1/channels", json!({"id": "c"})),
        ("/v1/channels/c/listeners", json!({"id": "l"})),
        (
            "/v1/channels/c/listeners/l/messages",
            json!({"type": "status", "payload": "idle", "topic": "kernel.q1"}),
        ),
        (
            "/v1/channels/c/listeners/l/messages",
            json!({"type": "status", "payload": "busy"}),
        ),
    ] {
        let response = http.post(format!("{base}{path}")).json(&body).send().await;
        assert!(response.unwrap().status().is_success(), "{path}");
    }

    let html = page(&format!("{base}/v1/channels/c/listeners/l/events"));
    let report = tokio::spawn(serve_page(pages, html));
    let profile = tempfile::tempdir().unwrap();
    let mut chromium = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("{page_origin}/"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let body = tokio::time::timeout(DEADLINE, report)
        .await
        .expect("the browser reported in time")
        .unwrap();
    let _ = chromium.kill().await;
    let seen: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        seen,
        json!([["1", "status", "\"idle\""], ["2", "status", "\"busy\""]])
    );
    shutdown.cancel();
    tokio::time::timeout(DEADLINE, task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
