//! The access log (`eric::access`) of a running server, in the JSON format
//! `log.format = "json"` selects: a line per request with its route
//! template, status and bytes; a stream's line when it ends; never the
//! query, which may hold a token.

#![allow(clippy::unwrap_used)]

mod common;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eric_server::test_support::TestServer;
use serde_json::Value;

const SECRET: &str = "never-logged-token-value";

/// What the subscriber wrote, shared with the test.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Lines {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The access lines' fields so far.
    fn access(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|l| l["target"] == "eric::access")
            .map(|l| l["fields"].clone())
            .collect()
    }

    /// Waits for an access line on `path`.
    async fn wait_for(&self, path: &str) -> Value {
        let found = async {
            loop {
                if let Some(line) = self.access().into_iter().find(|l| l["path"] == path) {
                    return line;
                }
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), found)
            .await
            .unwrap_or_else(|_| panic!("no access line for {path}:\n{}", self.text()))
    }
}

// The default (current-thread) runtime: the server's tasks run on this
// thread, under the subscriber set for it.
#[tokio::test]
async fn requests_and_streams_are_logged_without_their_query() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("info")
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let server = TestServer::memory().await;
    let http = eric_client::http_client_builder(None, false)
        .build()
        .unwrap();
    let base = server.url();
    common::channel_c_with_listener_l_and_a_broadcast(&http, &base).await;
    let created = lines.wait_for("/v1/channels").await;
    assert_eq!(created["method"], "POST");
    assert_eq!(created["route"], "/v1/channels");
    assert_eq!(created["status"], 201);
    assert_eq!(created["stream"], false);
    assert_eq!(created["complete"], true);
    assert!(created["bytes"].as_u64().unwrap() > 0, "{created}");
    assert!(created["duration_ms"].as_f64().is_some(), "{created}");

    let path = "/v1/channels/c/listeners/l/events";
    let mut stream = http
        .get(format!("{base}{path}?access_token={SECRET}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
        .await
        .expect("the stream sends its message")
        .unwrap()
        .unwrap();
    assert!(
        lines.access().iter().all(|l| l["path"] != path),
        "a stream is logged when it ends"
    );
    drop(stream);
    let ended = lines.wait_for(path).await;
    assert_eq!(
        ended["route"],
        "/v1/channels/{channel}/listeners/{listener}/events"
    );
    assert_eq!(ended["status"], 200);
    assert_eq!(ended["stream"], true);
    assert!(
        ended["bytes"].as_u64().unwrap() >= first.len() as u64,
        "{ended}"
    );

    // The stream's life went into its histogram before its line was written.
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lifetimes = "eric_sse_stream_duration_seconds_count{method=\"GET\",\
                     route=\"/v1/channels/{channel}/listeners/{listener}/events\"} 1";
    assert!(metrics.lines().any(|l| l == lifetimes), "{metrics}");

    let missing = http.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(lines.wait_for("/nope").await["route"], "unmatched");

    server.stop().await;
    assert!(!lines.text().contains(SECRET), "{}", lines.text());
}
