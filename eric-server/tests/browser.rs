//! Real browsers' `EventSource`s against a real server: Debian's
//! `chromium`, headless, loads a page from a small server in the test,
//! opens streams from it and posts what it saw back to the test.
//!
//! - What the SSE wire format promises browsers: an event carrying eric's
//!   own `topic:` line reads as it would without it (type, data and id),
//!   and an event without one as before.
//! - Ten streams from one page to one origin, as an application with a
//!   stream per user or per room opens them: eric serves TLS (a
//!   certificate made at test time, which chromium is told to accept by
//!   its key's hash), so chromium speaks HTTP/2 to it and all ten open
//!   (over HTTP/1.1 a browser opens at most six connections per origin,
//!   and the rest would wait). The page, served over HTTPS from another
//!   port of the same host (same site), sets the JWT as a cookie
//!   (`SameSite=Lax`, chromium's default) that its `withCredentials`
//!   `EventSource`s carry to eric; no token is in a URL. Each listener
//!   gets its own message, a listener outside the token's grant is refused
//!   with 403 while the others stream, and the server's connection count
//!   shows the ten streams share a connection.
//!
//! Skipped, with a message, when no `chromium` is installed (`.ci/run`
//! installs it through `scripts/install-test-deps`).

#![allow(clippy::unwrap_used)]

#[path = "common/wire.rs"]
mod wire;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use eric_server::Config;
use eric_server::http::{Rights, Token, TokenClaims, mint};
use eric_server::test_support::TestCerts;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use wire::{H2, Running};

/// Longest wait for one of the browser's reports; a healthy run takes a
/// second or two (chromium's start included).
const DEADLINE: Duration = Duration::from_secs(60);

/// Said by a test that finds no browser to drive.
const SKIPPED: &str =
    "skipped: no chromium (install Debian's `chromium`, or set ERIC_TEST_CHROMIUM)";

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

/// A headless chromium showing one page, with a profile of its own;
/// killed on drop (a failing test leaves no browser behind).
struct Browser {
    process: Child,
    // Dropped after the process: chromium writes into it until killed.
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open(binary: &Path, url: &str, flags: &[String]) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let process = Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(flags)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self {
            process,
            _profile: profile,
        }
    }

    /// Kills chromium and waits until it is gone.
    async fn close(mut self) {
        let _ = self.process.kill().await;
    }
}

/// The test's page server: `html` at `GET /`, each `POST /report` body
/// (JSON) handed to the test. Each connection is served on a task of its
/// own, as a connection the browser opens ahead and never uses must not
/// hold up the others; one request per connection (`connection: close`).
struct Pages {
    reports: mpsc::Receiver<Value>,
}

impl Pages {
    /// Serves `listener`, over TLS when `tls` is set, until dropped.
    fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, html: String) -> Self {
        let (sender, reports) = mpsc::channel(16);
        let html: Arc<str> = html.into();
        tokio::spawn(async move {
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => accepted.unwrap().0,
                    () = sender.closed() => return,
                };
                let (tls, html, sender) = (tls.clone(), html.clone(), sender.clone());
                tokio::spawn(async move {
                    match tls {
                        None => answer(socket, &html, &sender).await,
                        Some(tls) => {
                            if let Ok(socket) = tls.accept(socket).await {
                                answer(socket, &html, &sender).await;
                            }
                        }
                    }
                });
            }
        });
        Self { reports }
    }

    /// The page's next report, within the deadline.
    async fn report(&mut self, what: &str) -> Value {
        tokio::time::timeout(DEADLINE, self.reports.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for the page to report {what}"))
            .expect("the page server is serving")
    }
}

/// Answers one request on `socket`.
async fn answer<S>(mut socket: S, html: &str, reports: &mpsc::Sender<Value>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let Some((head, body)) = read_request(&mut socket).await else {
        return;
    };
    let answer = if head.starts_with("POST /report ") {
        let report = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("the page's report is JSON ({e}): {body}"));
        let _ = reports.send(report).await;
        "HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n".to_owned()
    } else if head.starts_with("GET / ") {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{html}",
            html.len()
        )
    } else {
        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_owned()
    };
    let _ = socket.write_all(answer.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// One request: its head, and its body (by `content-length`); `None` when
/// the connection ends first.
async fn read_request<S: AsyncRead + Unpin>(socket: &mut S) -> Option<(String, String)> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        bytes.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&bytes);
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
                return Some((head.to_owned(), body.to_owned()));
            }
        }
    }
}

/// A page reporting the first two `status` events of `stream_url` (last
/// event id, type, data).
fn topic_page(stream_url: &str) -> String {
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

#[tokio::test]
async fn event_source_reads_events_with_and_without_a_topic_alike() {
    let Some(binary) = chromium() else {
        eprintln!("{SKIPPED}");
        return;
    };
    let pages = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page_origin = format!("http://{}", pages.local_addr().unwrap());
    let server = Running::start(Config::default(), |c| {
        c.http.cors_origins = vec![page_origin.clone()];
    })
    .await;
    let mut api = H2::handshake(TcpStream::connect(server.addr).await.unwrap()).await;
    api.channel_with_listeners(&["l"]).await;
    for message in [
        json!({"type": "status", "payload": "idle", "topic": "kernel.q1"}),
        json!({"type": "status", "payload": "busy"}),
    ] {
        api.ok("POST", "/v1/channels/c/listeners/l/messages", Some(message))
            .await;
    }

    let stream_url = format!("http://{}/v1/channels/c/listeners/l/events", server.addr);
    let mut pages = Pages::serve(pages, None, topic_page(&stream_url));
    let browser = Browser::open(&binary, &format!("{page_origin}/"), &[]);
    let seen = pages.report("the events it read").await;
    browser.close().await;
    assert_eq!(
        seen,
        json!([["1", "status", "\"idle\""], ["2", "status", "\"busy\""]])
    );
    server.stop().await;
}

/// The cookie the page sets, and the `http.auth_cookie` eric reads.
const COOKIE: &str = "eric_token";
/// The listeners of channel `c` the page opens.
const LISTENERS: usize = 10;

/// A page that sets `token` as a cookie and, after one request to `base`,
/// opens listeners `l0..l9` of channel `c` there with credentials, and
/// `d/l0` (outside the token's grant). Reports, in order: `{opened,
/// outside}` once all ten are open and `d/l0` failed (its `readyState`
/// then, and the status a credentialed `fetch` of it gets); `{got}` once
/// every listener read its first `n` event (last event id, type, data).
/// Anything else that goes wrong is reported as `{error}` at once.
fn ten_streams_page(base: &str, token: &str) -> String {
    format!(
        r#"<!doctype html><meta charset="utf-8"><script>
const base = {base:?};
const report = (body) => fetch("/report", {{method: "POST", body: JSON.stringify(body)}});
// Schemeful same-site (https, same host): a SameSite=Lax cookie goes with
// the EventSources' requests to eric's port.
document.cookie = "{COOKIE}=" + {token:?} + "; path=/; Secure";
const stream = (c, l) =>
  new EventSource(`${{base}}/v1/channels/${{c}}/listeners/${{l}}/events`, {{withCredentials: true}});
const listeners = [...Array({LISTENERS}).keys()].map((i) => "l" + i);
const opened = new Set();
const got = {{}};
let outside = null;
const allOpen = () => {{
  if (opened.size === listeners.length && outside !== null) {{
    report({{opened: [...opened].sort(), outside}});
  }}
}};
const openAll = () => {{
  for (const l of listeners) {{
    const source = stream("c", l);
    source.onopen = () => {{ opened.add(l); allOpen(); }};
    source.addEventListener("n", (e) => {{
      got[l] = [e.lastEventId, e.type, e.data];
      if (Object.keys(got).length === listeners.length) report({{got}});
    }});
    source.onerror = () => report({{error: `c/${{l}} failed, readyState ${{source.readyState}}`}});
  }}
  const denied = stream("d", "l0");
  denied.onopen = () => report({{error: "d/l0 opened"}});
  denied.onerror = async () => {{
    const readyState = denied.readyState;
    denied.close();
    const answer = await fetch(`${{base}}/v1/channels/d/listeners/l0/events`, {{credentials: "include"}});
    outside = {{readyState, status: answer.status}};
    allOpen();
  }};
}};
// One request first, as a page that talked to its API before: once
// chromium knows the origin speaks h2, every stream joins that connection.
// A fresh profile otherwise races several handshakes for the first
// requests at once, and keeps the spares open.
fetch(`${{base}}/healthz`, {{credentials: "include"}})
  .then(openAll, (e) => report({{error: `healthz: ${{e}}`}}));
</script>"#
    )
}

/// A token valid for an hour granting `eric`, signed with `http`'s secret.
fn token(http: &eric_server::config::HttpConfig, subject: &str, eric: Rights) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = TokenClaims {
        sub: Some(subject.into()),
        exp: now + 3600,
        iat: now,
        jti: format!("{subject}-token"),
        aud: None,
        iss: None,
        eric,
    };
    mint(http, &claims).unwrap()
}

/// What chromium must accept for `certs`' server certificate: the base64
/// SHA-256 of its SubjectPublicKeyInfo.
fn spki_pin(certs: &TestCerts) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(certs.server_spki()))
}

#[tokio::test]
async fn ten_event_sources_share_an_http2_connection_with_a_cookie_token() {
    let Some(binary) = chromium() else {
        eprintln!("{SKIPPED}");
        return;
    };
    let certs = TestCerts::new();
    let pages = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // 127.0.0.1 for both: one site (a cookie ignores the port), and no
    // IPv6 attempt for `localhost` first.
    let page_origin = format!("https://{}", pages.local_addr().unwrap());
    let mut config = certs.serve_with(Config::default());
    config.http.cors_origins = vec![page_origin.clone()];
    config.http.jwt_secret = Some(Token::new("the browser test's secret, 32 bytes+"));
    config.http.auth_cookie = Some(COOKIE.to_owned());
    // The admin's HTTP/2 connection idles while chromium starts; were it
    // closed for that (the head timeout), the connection count would lose
    // its baseline.
    config.http.request_timeout_secs = 2 * DEADLINE.as_secs();
    let admin = token(
        &config.http,
        "admin",
        Rights {
            admin: true,
            ..Rights::default()
        },
    );
    let reader = token(
        &config.http,
        "reader",
        Rights {
            subscribe: vec!["c/l*".to_owned()],
            ..Rights::default()
        },
    );
    let server = Running::start(config, |_| {}).await;

    let mut api = H2::handshake(certs.connect(server.addr, &[b"h2"]).await).await;
    api.bearer = Some(admin);
    let listeners: Vec<String> = (0..LISTENERS).map(|i| format!("l{i}")).collect();
    let names: Vec<&str> = listeners.iter().map(String::as_str).collect();
    api.channel_with_listeners(&names).await;
    api.ok("POST", "/v1/channels", Some(json!({"id": "d"})))
        .await;
    api.ok(
        "POST",
        "/v1/channels/d/listeners",
        Some(json!({"id": "l0"})),
    )
    .await;
    api.ok("POST", "/v1/channels/d/listeners/l0/start", None)
        .await;
    let alone = server.metrics.connections.get();
    assert_eq!(alone, 1, "the admin's connection only");

    let base = format!("https://127.0.0.1:{}", server.addr.port());
    let page_tls = TlsAcceptor::from(Arc::new(certs.server_config(&[b"http/1.1"])));
    let mut pages = Pages::serve(pages, Some(page_tls), ten_streams_page(&base, &reader));
    // Trusts this one key, not every certificate (chromium honours the
    // list only with `--user-data-dir`, which `Browser` always sets).
    let trust = format!("--ignore-certificate-errors-spki-list={}", spki_pin(&certs));
    let browser = Browser::open(&binary, &format!("{page_origin}/"), &[trust]);

    let opened = pages.report("its streams open").await;
    assert_eq!(opened.get("error"), None, "{opened}");
    assert_eq!(opened["opened"], json!(listeners), "{opened}");
    // CLOSED, not CONNECTING: an answer that was not a stream, not a
    // network error it would retry; and 403, the cookie's token read and
    // refused (no cookie would be 401).
    assert_eq!(opened["outside"], json!({"readyState": 2, "status": 403}));
    let (streams, _) = *server.metrics.stream_events().borrow();
    assert_eq!(streams, LISTENERS as i64, "d/l0 has no stream");
    // HTTP/2, counted by the server: every request of the page to eric is
    // credentialed, so chromium puts them on the connection the page's
    // first request opened. (Opened at once, the streams' own first
    // requests raced up to five handshakes, and the count, of open
    // connections rather than of those carrying streams, went from one
    // to five.) Over HTTP/1.1 (`--disable-http2`) six streams open on six
    // connections and the other four wait, so the page never reports.
    // Two are allowed, as nothing here stops chromium from opening a
    // spare (it has opened none in 25 runs). The page cannot tell the
    // protocol: Resource Timing lists a fetch once it ends (an open stream
    // never), and hides `nextHopProtocol` across origins.
    let browsers = server.metrics.connections.get() - alone;
    assert!(
        (1..=2).contains(&browsers),
        "ten streams on {browsers} connections: not multiplexed"
    );

    let mut expected = serde_json::Map::new();
    for l in &listeners {
        let path = format!("/v1/channels/c/listeners/{l}/messages");
        let message = json!({"type": "n", "payload": format!("for {l}")});
        let seq = api.ok("POST", &path, Some(message)).await["seq"].clone();
        expected.insert(
            l.clone(),
            json!([seq.to_string(), "n", format!("\"for {l}\"")]),
        );
    }
    let got = pages.report("its events").await;
    browser.close().await;
    assert_eq!(got, json!({"got": expected}));
    server.stop().await;
}
