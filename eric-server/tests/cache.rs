//! With Redis, the broker's channels are a cache of what Redis holds: no
//! cached channel outlives its record, even when Redis loses it without a
//! deletion notice (a restart without data, a `FLUSHALL`).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use eric_core::ChannelSettings;
use eric_redis::RedisEngine;
use eric_redis::test_support::TestRedis;
use eric_server::config::HttpConfig;
use eric_server::http::{AppState, router};
use eric_server::{Broker, Metrics};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

fn app(broker: Broker) -> Router {
    router(
        AppState::new(
            broker,
            HttpConfig::default(),
            Arc::new(Metrics::new()),
            CancellationToken::new(),
        )
        .unwrap(),
    )
}

async fn get(app: &Router, uri: &str) -> StatusCode {
    let request = Request::get(uri).body(Body::empty()).unwrap();
    app.clone().oneshot(request).await.unwrap().status()
}

async fn flushall(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("FLUSHALL").query_async(&mut c).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_channel_redis_lost_answers_not_found() {
    // A private server (never REDIS_URL's): the test flushes it.
    let redis = TestRedis::start_durable().await;
    let engine = RedisEngine::connect(redis.config()).unwrap();
    let broker = Broker::new(engine, ChannelSettings::default());
    let app = app(broker.clone());
    broker
        .create_channel(Some("c".parse().unwrap()), None)
        .await
        .unwrap();
    broker
        .subscribe(&"c".parse().unwrap(), Some("l".parse().unwrap()), None)
        .await
        .unwrap();
    assert_eq!(get(&app, "/v1/channels/c").await, StatusCode::OK);

    flushall(redis.url()).await;
    assert_eq!(get(&app, "/v1/channels/c").await, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/v1/channels/c").await, StatusCode::NOT_FOUND);
    broker.shutdown().await;
}
