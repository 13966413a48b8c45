//! `Last-Event-ID` (header, or `last_event_id` on `/v1`): plain decimal
//! digits only, at most a u64; an id above the last one sent means "nothing
//! to replay", so a client that reconnects keeps getting what is queued.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn post(app: &Router, uri: &str, body: &str) -> StatusCode {
    let request = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    app.clone().oneshot(request).await.unwrap().status()
}

/// Channel `c`, listener `l` with messages 1 and 2 queued.
async fn two_queued() -> Router {
    let app = common::app();
    post(&app, "/v1/channels", r#"{"id": "c"}"#).await;
    post(&app, "/v1/channels/c/listeners", r#"{"id": "l"}"#).await;
    for n in 1..=2 {
        let body = format!(r#"{{"type": "m", "payload": {n}}}"#);
        let status = post(&app, "/v1/channels/c/listeners/l/messages", &body).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    app
}

/// Opens `uri` with `Last-Event-ID: id` when given; the status, and for a
/// stream the text up to its second event, else the error code.
async fn open(app: &Router, uri: &str, id: Option<&[u8]>) -> (StatusCode, String) {
    let mut request = Request::get(uri);
    if let Some(id) = id {
        request = request.header("last-event-id", id);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let mut body = response.into_body();
    if status != StatusCode::OK {
        let bytes = body.collect().await.unwrap().to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        return (status, value["error"]["code"].as_str().unwrap().to_owned());
    }
    let mut text = String::new();
    while text.matches("data: ").count() < 2 {
        let frame = tokio::time::timeout(Duration::from_secs(20), body.frame())
            .await
            .expect("an event in time")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&frame.into_data().unwrap()));
    }
    (status, text)
}

#[tokio::test]
async fn only_plain_decimal_ids_are_taken() {
    for bad in [
        &b"+1"[..],
        b"-1",
        b" 2 ",
        b"2 ",
        b"00001",
        b"01",
        b"1e3",
        b"0x10",
        b"18446744073709551616",
        b"1_000",
        b"\xc2\xb2",
    ] {
        for uri in ["/v1/channels/c/listeners/l/events", "/stream/c/l"] {
            let app = two_queued().await;
            let (status, code) = open(&app, uri, Some(bad)).await;
            assert_eq!(
                (status, code.as_str()),
                (StatusCode::BAD_REQUEST, "invalid_last_event_id"),
                "{uri} {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
    for bad in ["%2B1", "%202%20", "00001"] {
        let app = two_queued().await;
        let uri = format!("/v1/channels/c/listeners/l/events?last_event_id={bad}");
        let (status, code) = open(&app, &uri, None).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "invalid_last_event_id"),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn good_ids_resume_and_an_id_past_the_last_replays_nothing() {
    for id in [&b""[..], b"0", b"18446744073709551615"] {
        let app = two_queued().await;
        let (status, text) = open(&app, "/stream/c/l", Some(id)).await;
        assert_eq!(status, StatusCode::OK, "{id:?}");
        // What is queued still comes, whatever the client last saw.
        assert!(
            text.contains("id: 1\n") && text.contains("id: 2\n"),
            "{text}"
        );
    }
}
