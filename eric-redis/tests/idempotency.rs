//! Writes under a slow Redis: the configured command timeout holds (no
//! shorter one hidden in the connection), a write Redis did not confirm is
//! an unknown outcome (never "not applied"), and a retry with its
//! idempotency key applies it at most once. Plus `eric-core`'s idempotency
//! suite on Redis.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use eric_core::channel::RawAdapter;
use eric_core::testing::within;
use eric_core::{Channel, ChannelSettings, Error, IdempotencyKey, Message};
use eric_redis::test_support::TestRedis;
use eric_redis::{RedisConfig, RedisEngine};
use redis::AsyncConnectionConfig;
use redis::aio::MultiplexedConnection;
use serde_json::json;

eric_core::idempotency_suite!(common::RedisFixture::new().await);

type RawChannel = Channel<RedisEngine, RawAdapter>;

fn msg(n: u64) -> Message {
    Message::try_new("t", json!(n)).unwrap()
}

fn key(s: &str) -> IdempotencyKey {
    s.parse().unwrap()
}

/// A connection of the test's own that waits as long as Redis takes.
async fn raw(url: &str) -> MultiplexedConnection {
    let config = AsyncConnectionConfig::new().set_response_timeout(None);
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}

/// Holds every write command (scripts included) for `ms` milliseconds.
async fn pause_writes(conn: &mut MultiplexedConnection, ms: u64) {
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(ms)
        .arg("WRITE")
        .query_async(conn)
        .await
        .unwrap();
}

/// Resolves when the pause is over: a write of our own waits it out.
async fn pause_over(conn: &mut MultiplexedConnection) {
    let _: () = redis::cmd("SET")
        .arg("pause-probe")
        .arg("1")
        .query_async(conn)
        .await
        .unwrap();
}

async fn setup(config: RedisConfig) -> (RawChannel, eric_core::ListenerId) {
    let engine = RedisEngine::connect(config).unwrap();
    let ch: RawChannel = Channel::new(&engine, None, ChannelSettings::default()).unwrap();
    let l = ch.add_listener().await.unwrap().id().clone();
    (ch, l)
}

/// Redis stalls for a second; the command timeout is five: the dispatch
/// waits and succeeds. (redis-rs's own 500 ms response timeout used to cut
/// it, answering "retry later" for a write Redis then applied.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_write_is_waited_for_up_to_the_command_timeout() {
    let redis = TestRedis::start_private().await;
    let mut config = redis.config();
    config.command_timeout_ms = 5_000;
    let (ch, l) = setup(config).await;
    let mut conn = raw(redis.url()).await;
    pause_writes(&mut conn, 1_000).await;
    let seq = within("a dispatch during a pause", ch.dispatch(&l, msg(1))).await;
    assert_eq!(seq.unwrap(), 1);
    let b = within("a broadcast after it", ch.broadcast(&msg(2))).await;
    assert_eq!(b.unwrap().delivered, 1);
    assert_eq!(ch.queue_len(&l).await.unwrap(), 2);
}

/// Redis stalls longer than the command timeout: the dispatch is answered
/// `OutcomeUnknown` (it was sent; Redis may run it when the pause ends), and
/// its retry with the same key, once Redis answers, leaves exactly one copy
/// queued whichever way the first one went. Same for a broadcast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_write_is_an_unknown_outcome_and_its_keyed_retry_applies_once() {
    let redis = TestRedis::start_private().await;
    let mut config = redis.config();
    config.command_timeout_ms = 300;
    let (ch, l) = setup(config).await;
    let mut conn = raw(redis.url()).await;

    pause_writes(&mut conn, 1_500).await;
    let first = within(
        "a dispatch during a pause",
        ch.dispatch_once(&l, msg(1), &key("d")),
    )
    .await;
    assert!(
        matches!(first, Err(Error::OutcomeUnknown { .. })),
        "{first:?}"
    );
    within("the pause's end", pause_over(&mut conn)).await;
    // The connection it went out on stays busy until then, so a second
    // write in the same pause might never leave (that is `Unavailable`):
    // one pause per write.
    pause_writes(&mut conn, 1_500).await;
    let first = within(
        "a broadcast during a pause",
        ch.broadcast_once(&msg(2), &key("b")),
    )
    .await;
    assert!(
        matches!(first, Err(Error::OutcomeUnknown { .. })),
        "{first:?}"
    );
    within("the pause's end", pause_over(&mut conn)).await;

    let retry = ch.dispatch_once(&l, msg(1), &key("d")).await.unwrap();
    let retry_b = ch.broadcast_once(&msg(2), &key("b")).await.unwrap();
    assert_eq!(retry_b.value.delivered, 1);
    assert_eq!(ch.queue_len(&l).await.unwrap(), 2);
    // The two retries of the same writes change nothing more.
    let again = ch.dispatch_once(&l, msg(1), &key("d")).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.value, retry.value);
    assert!(
        ch.broadcast_once(&msg(2), &key("b"))
            .await
            .unwrap()
            .replayed
    );
    assert_eq!(ch.queue_len(&l).await.unwrap(), 2);
}

/// Records live in Redis for the channel's window and no longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_expire_with_the_channels_window() {
    let redis = TestRedis::start().await;
    let config = redis.config();
    let prefix = config.prefix.clone();
    let engine = RedisEngine::connect(config).unwrap();
    let settings = ChannelSettings {
        idempotency_window: Duration::from_secs(90),
        ..ChannelSettings::default()
    };
    let ch: RawChannel = Channel::new(&engine, None, settings).unwrap();
    let l = ch.add_listener().await.unwrap().id().clone();
    ch.dispatch_once(&l, msg(1), &key("d")).await.unwrap();
    ch.broadcast_once(&msg(1), &key("b")).await.unwrap();
    let mut conn = raw(redis.url()).await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*once*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 90_000, "{k}: {ttl}");
    }
}
