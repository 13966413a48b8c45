//! Request rates per caller and streams per listener, through the router:
//! 429 with `Retry-After` past a caller's rate, each caller on its own
//! budget, and a listener's streams capped per node, the slot given back
//! when a stream ends. No test waits on the clock: a rate is exceeded by
//! asking faster than it refills, never by sleeping.

#![allow(clippy::unwrap_used)]

mod common;

use axum::Router;
use axum::http::{StatusCode, header};
use eric_server::config::HttpConfig;
use eric_server::http::{Rights, Token, TokenClaims, mint};
use http_body_util::BodyExt;

use common::{channel_c_with_listener_l, send};

/// Asks `uri` up to 1,000 times as `token`; the first refusal's status,
/// `Retry-After` and error code. At one request per second refilled, a
/// caller that asks this often is refused long before the end.
async fn first_refusal(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    token: &str,
) -> (usize, u64, String) {
    let auth = format!("Bearer {token}");
    for n in 0..1_000 {
        let response = send(app, method, uri, body, &[("authorization", auth.as_str())]).await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = response.headers()[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            return (n, retry, common::code(&body).to_owned());
        }
        assert!(
            response.status().is_success(),
            "{uri}: {}",
            response.status()
        );
    }
    panic!("{uri}: never refused");
}

const ALICE: &str = "alice-token-0123456789";
const BOB: &str = "bob-token-0123456789";

#[tokio::test]
async fn publishes_past_a_callers_rate_get_429_with_retry_after_and_other_callers_go_on() {
    // Callers are told apart by the tokens the check lets through.
    let app = common::app_with(HttpConfig {
        publish_per_second: 1,
        publish_burst: 3,
        admin_tokens: vec![Token::new(ALICE), Token::new(BOB)],
        compat_routes_with_auth: true,
        ..HttpConfig::default()
    });
    channel_c_with_listener_l(&app, &[("authorization", "Bearer bob-token-0123456789")]).await;
    let message = Some(r#"{"type": "t", "payload": 1}"#);
    let (granted, retry, code) =
        first_refusal(&app, "POST", "/v1/channels/c/messages", message, ALICE).await;
    assert!(granted >= 3, "the burst is granted first ({granted})");
    assert!(retry >= 1);
    assert_eq!(code, "rate_limited");
    // Dispatches and eric-api's publishes draw on the same budget.
    let auth = [("authorization", "Bearer alice-token-0123456789")];
    let dispatch = send(
        &app,
        "POST",
        "/v1/channels/c/listeners/l/messages",
        message,
        &auth,
    )
    .await;
    assert_eq!(dispatch.status(), StatusCode::TOO_MANY_REQUESTS);
    let compat = send(&app, "POST", "/broadcast?channel_id=c", message, &auth).await;
    assert_eq!(compat.status(), StatusCode::TOO_MANY_REQUESTS);
    // Another caller has a budget of its own, and reading is not a publish.
    let bob = [("authorization", "Bearer bob-token-0123456789")];
    let broadcast = send(&app, "POST", "/v1/channels/c/messages", message, &bob).await;
    assert!(broadcast.status().is_success());
    let listing = send(&app, "GET", "/v1/channels/c", None, &auth).await;
    assert_eq!(listing.status(), StatusCode::OK);
}

/// With authentication off, a token is not checked, so it is not who the
/// caller is: a made-up one draws on the same budget as none.
#[tokio::test]
async fn unchecked_tokens_do_not_open_fresh_budgets() {
    let app = common::app_with(HttpConfig {
        publish_per_second: 1,
        publish_burst: 2,
        ..HttpConfig::default()
    });
    channel_c_with_listener_l(&app, &[]).await;
    let message = Some(r#"{"type": "t", "payload": 1}"#);
    let (granted, _, _) = first_refusal(
        &app,
        "POST",
        "/v1/channels/c/messages",
        message,
        "made-up-1",
    )
    .await;
    assert!(granted >= 2);
    let other = [("authorization", "Bearer made-up-2")];
    let again = send(&app, "POST", "/v1/channels/c/messages", message, &other).await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// A JWT's subject is the caller: two tokens for one subject share its
/// budget, another subject has its own.
#[tokio::test]
async fn jwts_of_one_subject_share_its_budget() {
    let http = HttpConfig {
        publish_per_second: 1,
        publish_burst: 2,
        jwt_secret: Some(Token::new("a-test-secret-of-at-least-32-bytes!!")),
        ..HttpConfig::default()
    };
    let token = |subject: &str, id: &str| {
        let claims = TokenClaims {
            sub: Some(subject.into()),
            exp: u64::MAX / 2,
            iat: 0,
            jti: id.into(),
            aud: None,
            iss: None,
            eric: Rights {
                admin: true,
                ..Rights::default()
            },
        };
        mint(&http, &claims).unwrap()
    };
    let app = common::app_with(http.clone());
    let first = token("app-1", "a");
    let admin = format!("Bearer {first}");
    channel_c_with_listener_l(&app, &[("authorization", &admin)]).await;
    let message = Some(r#"{"type": "t", "payload": 1}"#);
    let (granted, _, _) =
        first_refusal(&app, "POST", "/v1/channels/c/messages", message, &first).await;
    assert!(granted >= 2);
    let same = format!("Bearer {}", token("app-1", "b"));
    let again = send(
        &app,
        "POST",
        "/v1/channels/c/messages",
        message,
        &[("authorization", &same)],
    )
    .await;
    assert_eq!(again.status(), StatusCode::TOO_MANY_REQUESTS);
    let other = format!("Bearer {}", token("app-2", "c"));
    let theirs = send(
        &app,
        "POST",
        "/v1/channels/c/messages",
        message,
        &[("authorization", &other)],
    )
    .await;
    assert!(theirs.status().is_success(), "{}", theirs.status());
}

#[tokio::test]
async fn stream_openings_past_a_callers_rate_get_429() {
    let app = common::app_with(HttpConfig {
        streams_per_second: 1,
        streams_burst: 2,
        ..HttpConfig::default()
    });
    channel_c_with_listener_l(&app, &[]).await;
    // Each granted stream is dropped at once: only the rate is at stake.
    let (granted, retry, code) =
        first_refusal(&app, "GET", "/v1/channels/c/events", None, "carol-token").await;
    assert!(granted >= 2);
    assert!(retry >= 1);
    assert_eq!(code, "rate_limited");
}

#[tokio::test]
async fn a_listener_has_at_most_its_cap_of_streams_and_an_ended_stream_frees_its_slot() {
    let app = common::app_with(HttpConfig {
        max_streams_per_listener: 2,
        ..HttpConfig::default()
    });
    channel_c_with_listener_l(&app, &[]).await;
    let open = |uri: &'static str| {
        let app = app.clone();
        async move { send(&app, "GET", uri, None, &[]).await }
    };
    let first = open("/v1/channels/c/listeners/l/events").await;
    assert_eq!(first.status(), StatusCode::OK);
    // The same listener however its path spells it, and on eric-api's route.
    let second = open("/stream/c/%6C").await;
    assert_eq!(second.status(), StatusCode::OK);
    let third = open("/v1/channels/c/listeners/l/events").await;
    assert_eq!(third.status(), StatusCode::TOO_MANY_REQUESTS);
    let bytes = third.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(common::code(&body), "too_many_streams");
    // A refused or failed opening holds no slot: an unknown listener is 404.
    let missing = open("/v1/channels/c/listeners/nobody/events").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // The first stream ends: its slot is free again.
    drop(first);
    let again = open("/v1/channels/c/listeners/l/events").await;
    assert_eq!(again.status(), StatusCode::OK);
    // Channel streams make a listener each and are not capped.
    for _ in 0..3 {
        assert_eq!(open("/v1/channels/c/events").await.status(), StatusCode::OK);
    }
}

/// Over a real connection, a caller without a token is counted by its
/// address (the router-only tests above have none).
#[tokio::test]
async fn callers_without_a_token_are_counted_by_their_address() {
    let mut config = eric_server::Config::default();
    config.http.addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    // In memory: no data directory to share.
    config.storage.engine = eric_server::StorageEngine::Memory;
    config.http.publish_per_second = 1;
    config.http.publish_burst = 2;
    let server = eric_server::Server::bind(config).await.unwrap();
    let url = format!("http://{}", server.http_addr().unwrap());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(server.run(shutdown.clone()));
    let client = eric_client::http_client_builder(None, false)
        .build()
        .unwrap();
    let created = client
        .post(format!("{url}/v1/channels"))
        .json(&serde_json::json!({"id": "c"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let mut refused = None;
    for _ in 0..1_000 {
        let response = client
            .post(format!("{url}/v1/channels/c/messages"))
            .json(&serde_json::json!({"type": "t", "payload": 1}))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert!(response.status().is_success());
    }
    let refused = refused.expect("publishes past the rate are refused");
    assert!(refused.headers().contains_key(header::RETRY_AFTER));
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
