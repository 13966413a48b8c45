//! Dispatch on Redis: concurrent dispatches to one channel are combined into
//! few script calls, yet each caller gets its own answer; a caller that
//! gives up mid-flight strands nobody.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use eric_core::channel::RawAdapter;
use eric_core::testing::within;
use eric_core::{Channel, ChannelSettings, Error, Message};
use eric_redis::RedisEngine;
use eric_redis::test_support::TestRedis;
use futures_util::future::join_all;
use serde_json::json;

type RawChannel = Channel<RedisEngine, RawAdapter>;

fn msg(n: u64) -> Message {
    Message::try_new("t", json!(n)).unwrap()
}

async fn evalsha_calls(redis: &TestRedis) -> u64 {
    common::command_calls(redis.url())
        .await
        .into_iter()
        .find_map(|(name, calls)| (name == "evalsha").then_some(calls))
        .unwrap_or(0)
}

/// 600 dispatches at once, to five listeners, one that is not a member and
/// one whose queue is full: every caller gets the answer of its own
/// message, each listener's numbers are 1..=100 with none repeated, and far
/// fewer scripts than dispatches ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_dispatches_are_combined_and_answered_one_by_one() {
    let redis = TestRedis::start().await;
    let engine = RedisEngine::connect(redis.config()).unwrap();
    let settings = ChannelSettings {
        queue_capacity: 100,
        ..ChannelSettings::default()
    };
    let ch: RawChannel = Channel::new(&engine, Some("c".parse().unwrap()), settings).unwrap();
    let mut listeners = Vec::new();
    for _ in 0..5 {
        listeners.push(ch.add_listener().await.unwrap().id().clone());
    }
    let full = ch.add_listener().await.unwrap().id().clone();
    for n in 0..100 {
        ch.dispatch(&full, msg(n)).await.unwrap();
    }
    let stranger = "nobody".parse().unwrap();
    let before = evalsha_calls(&redis).await;

    let mut targets: Vec<_> = (0..500).map(|i| listeners[i % 5].clone()).collect();
    targets.extend(std::iter::repeat_n(full.clone(), 50));
    targets.extend(std::iter::repeat_n(stranger, 50));
    let answers = within(
        "the dispatches",
        join_all(targets.iter().map(|l| ch.dispatch(l, msg(0)))),
    )
    .await;

    let mut seqs: BTreeMap<_, Vec<u64>> = BTreeMap::new();
    for (target, answer) in targets.iter().zip(answers) {
        match answer {
            Ok(seq) => seqs.entry(target.clone()).or_default().push(seq),
            Err(Error::QueueFull { listener, .. }) => assert_eq!(&listener, target),
            Err(Error::InvalidListener { listener, .. }) => assert_eq!(&listener, target),
            Err(other) => panic!("{target}: {other}"),
        }
    }
    assert_eq!(seqs.len(), 5, "only the five members got numbers");
    // Numbers come from the channel's sequence: all apart, none skipped.
    let mut all: Vec<u64> = Vec::new();
    for (listener, got) in seqs {
        assert_eq!(got.len(), 100, "{listener}");
        all.extend(got);
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 500);
    assert_eq!(all[499] - all[0], 499);
    let scripts = evalsha_calls(&redis).await - before;
    assert!(scripts < 300, "{scripts} scripts for 600 dispatches");
}

/// A dispatch whose caller stops waiting mid-flight (a dropped future) does
/// not keep the channel's later dispatches from running, alone or together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_given_up_mid_flight_strands_nobody() {
    let redis = TestRedis::start().await;
    let engine = RedisEngine::connect(redis.config()).unwrap();
    let ch: RawChannel = Channel::new(
        &engine,
        Some("c".parse().unwrap()),
        ChannelSettings::default(),
    )
    .unwrap();
    let l = ch.add_listener().await.unwrap().id().clone();
    for n in 0..20 {
        // Polled once (the script is sent), then dropped.
        let given_up = ch.dispatch(&l, msg(n));
        tokio::select! {
            biased;
            _ = given_up => {}
            () = std::future::ready(()) => {}
        }
        within("a lone dispatch", ch.dispatch(&l, msg(100 + n)))
            .await
            .unwrap();
        let together = join_all((0..10).map(|k| ch.dispatch(&l, msg(200 + k))));
        for answer in within("concurrent dispatches", together).await {
            answer.unwrap();
        }
    }
}

/// At `maxmemory`, dispatch and broadcast fail with `StorageFull` (HTTP
/// 507), not an internal error; the scripts are refused before their first
/// write, so once memory is available the numbering goes on without a gap
/// and the queue holds exactly what was accepted. The engine reads the
/// eviction policy the server warns about.
#[tokio::test]
async fn a_full_redis_refuses_writes_whole_and_recovers() {
    // A private server: the test changes its memory limit.
    let redis = TestRedis::start_durable().await;
    let engine = RedisEngine::connect(redis.config()).unwrap();
    let ch: RawChannel = Channel::new(&engine, None, ChannelSettings::default()).unwrap();
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    assert_eq!(ch.dispatch(l.id(), msg(1)).await.unwrap(), 1);
    assert_eq!(engine.eviction_policy().await.unwrap(), "noeviction");

    common::config_set(redis.url(), "maxmemory", "1").await;
    let refused = ch.dispatch(l.id(), msg(2)).await.unwrap_err();
    assert!(
        matches!(
            refused,
            Error::StorageFull {
                backend: "redis",
                ..
            }
        ),
        "{refused:?}"
    );
    assert!(refused.is_transient());
    let refused = ch.broadcast(&msg(2)).await.unwrap_err();
    assert!(matches!(refused, Error::StorageFull { .. }), "{refused:?}");

    common::config_set(redis.url(), "maxmemory", "0").await;
    assert_eq!(ch.dispatch(l.id(), msg(2)).await.unwrap(), 2);
    for n in 1..=2 {
        let delivery = ch.deliver_next(l.id()).await.unwrap();
        assert_eq!(
            (delivery.seq, delivery.message.payload_value()),
            (n, json!(n))
        );
    }
    assert!(matches!(
        ch.deliver_next(l.id()).await,
        Err(Error::NoMessages { .. })
    ));

    // The policy under which the server warns at start.
    common::config_set(redis.url(), "maxmemory-policy", "allkeys-lru").await;
    assert_eq!(engine.eviction_policy().await.unwrap(), "allkeys-lru");
}

/// `HGET` of `field` in the hash `key` on the server at `url`.
async fn hget(url: &str, key: &str, field: &str) -> Option<usize> {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query_async(&mut c)
        .await
        .unwrap()
}

/// The byte count behind `queue_max_bytes` lives in Redis, next to the
/// queue: the sum of the stored sizes of what is queued, gone once the
/// queue is empty or its listener removed. A queue written before byte
/// counting existed (no count) floors at zero instead of going negative,
/// and counts exactly again once drained.
#[tokio::test]
async fn the_byte_count_is_kept_in_redis_and_leaves_with_the_listener() {
    let redis = TestRedis::start().await;
    let config = redis.config();
    let key = format!("{}:{{c}}:bytes", config.prefix);
    let engine = RedisEngine::connect(config).unwrap();
    let ch: RawChannel = Channel::new(
        &engine,
        Some("c".parse().unwrap()),
        ChannelSettings::default(),
    )
    .unwrap();
    let a = ch.add_listener().await.unwrap().id().clone();
    let b = ch.add_listener().await.unwrap().id().clone();
    let size = eric_core::queue::stored_size(&msg(1));

    ch.dispatch(&a, msg(1)).await.unwrap();
    ch.dispatch(&a, msg(2)).await.unwrap();
    // A broadcast is logged once for the channel: no queue counts it.
    ch.broadcast(&msg(2)).await.unwrap();
    assert_eq!(hget(redis.url(), &key, a.as_str()).await, Some(2 * size));
    assert_eq!(hget(redis.url(), &key, b.as_str()).await, None);
    ch.start_listener(&a).await.unwrap();
    ch.deliver_next(&a).await.unwrap();
    assert_eq!(hget(redis.url(), &key, a.as_str()).await, Some(size));
    ch.deliver_next(&a).await.unwrap();
    assert_eq!(
        hget(redis.url(), &key, a.as_str()).await,
        None,
        "an empty queue has no count"
    );

    // As if written before byte counting: two messages, no count.
    ch.dispatch(&b, msg(3)).await.unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("HDEL")
        .arg(&key)
        .arg(b.as_str())
        .query_async(&mut c)
        .await
        .unwrap();
    ch.start_listener(&b).await.unwrap();
    ch.deliver_next(&b).await.unwrap();
    assert_eq!(
        hget(redis.url(), &key, b.as_str()).await,
        None,
        "floored at zero, not negative"
    );
    ch.deliver_next(&b).await.unwrap();
    ch.dispatch(&b, msg(4)).await.unwrap();
    assert_eq!(
        hget(redis.url(), &key, b.as_str()).await,
        Some(size),
        "exact again once drained"
    );

    // What a stream takes moves to the replay window's count.
    let window_key = key.replace(":bytes", ":dbytes");
    let member = ch.member(&b).await.unwrap();
    eric_core::Queue::take(member.queue(), 10).await.unwrap();
    assert_eq!(hget(redis.url(), &key, b.as_str()).await, None);
    assert_eq!(hget(redis.url(), &window_key, b.as_str()).await, Some(size));

    ch.remove_listener(&b).await.unwrap();
    for key in [&key, &window_key] {
        assert_eq!(
            hget(redis.url(), key, b.as_str()).await,
            None,
            "removed with its listener"
        );
    }
}
