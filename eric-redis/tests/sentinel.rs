//! Behind Redis Sentinel: nodes follow a failover. A private primary, its
//! replica and three sentinels (`TestSentinel`); the primary is killed
//! while a producer dispatches and a stream on another node reads; once the
//! replica is promoted, both nodes serve again, and with `wait_replicas`
//! no dispatch confirmed before the crash is lost. Every wait is on an
//! event (a log line, a reconnected subscriber, a message), never on a
//! clock. Plus what `wait_replicas` does without a replica.

#![allow(clippy::unwrap_used)]

mod common;

use common::channel;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use eric_core::testing::within;
use eric_core::{Error, Message, StreamItem, StreamOptions};
use eric_redis::test_support::{TestRedis, TestSentinel};
use eric_redis::{RedisConfig, RedisEngine};
use futures_util::StreamExt;
use serde_json::json;

fn msg(n: u64) -> Message {
    Message::try_new("t", json!(n)).unwrap()
}

/// A write on a connection of its own, then `WAIT 1`: the replica has
/// applied everything written before it (replication is one ordered stream).
async fn replicated(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("SET")
        .arg("replicated")
        .arg(1)
        .query_async(&mut c)
        .await
        .unwrap();
    let acked: u64 = redis::cmd("WAIT")
        .arg(1)
        .arg(5_000)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(acked >= 1, "no replica acknowledged");
}

/// Waits until `engine`'s subscriber has started a session after the
/// first: it lost the old primary and reached the new one.
async fn reconnected(engine: &RedisEngine) {
    let mut activity = engine.pubsub_activity();
    within(
        "the subscriber to reach the new primary",
        activity.wait_for(|a| a.sessions >= 2),
    )
    .await
    .unwrap();
}

/// Two nodes on `set`: a producer dispatches on A while a stream reads on
/// B; the primary is killed mid-traffic and a replica promoted; then both
/// nodes serve again. Answers the dispatches confirmed meanwhile and what
/// the stream received (up to a last message sent after the failover).
async fn failover_mid_traffic(set: &mut TestSentinel, config: RedisConfig) -> (Vec<u64>, Vec<u64>) {
    let (a, b) = (
        RedisEngine::connect(config.clone()).unwrap(),
        RedisEngine::connect(config).unwrap(),
    );
    let on_a = channel(&a, "c");
    let listener = on_a.add_listener().await.unwrap();
    on_a.start_listener(listener.id()).await.unwrap();
    let mut stream = channel(&b, "c")
        .stream(listener.id(), StreamOptions::default())
        .await
        .unwrap();
    on_a.dispatch(listener.id(), msg(0)).await.unwrap();
    assert!(matches!(
        within("the first message", stream.next()).await,
        Some(StreamItem::Message(_))
    ));
    // Without `wait_replicas`, make sure the set-up itself survives.
    replicated(&set.primary_url().await).await;

    // Traffic while the primary dies: dispatches until told to stop; one
    // that fails waits for the node's subscriber to be up again (an event,
    // so no busy loop while Redis is away).
    let stop = Arc::new(AtomicBool::new(false));
    let (progress, mut flowing) = tokio::sync::watch::channel(0_usize);
    let producer = tokio::spawn({
        let (on_a, id, stop) = (on_a.clone(), listener.id().clone(), stop.clone());
        let mut health = a.pubsub_health();
        async move {
            let (mut confirmed, mut failed) = (Vec::new(), 0_u64);
            for n in 1_000.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match on_a.dispatch(&id, msg(n)).await {
                    Ok(_) => {
                        confirmed.push(n);
                        progress.send_replace(confirmed.len());
                    }
                    Err(e) => {
                        assert!(e.is_transient(), "{e:?}");
                        failed += 1;
                        let _ = health.wait_for(|up| *up).await;
                    }
                }
            }
            (confirmed, failed)
        }
    });
    within("traffic", flowing.wait_for(|n| *n >= 20))
        .await
        .unwrap();
    set.kill_primary_and_await_promotion().await;
    reconnected(&a).await;
    reconnected(&b).await;
    stop.store(true, Ordering::Relaxed);
    let (confirmed, failed) = within("the producer", producer).await.unwrap();
    assert!(
        failed > 0,
        "no dispatch met the failover ({} confirmed)",
        confirmed.len()
    );

    // Both nodes serve again: a dispatch on A reaches the stream on B,
    // which went on by itself.
    const LAST: u64 = 1_000_000;
    on_a.dispatch(listener.id(), msg(LAST)).await.unwrap();
    let received = within("the message after the failover", async {
        let mut received = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                StreamItem::Message(d) => {
                    let n = d.message.payload_value().as_u64().unwrap();
                    if n == LAST {
                        return received;
                    }
                    received.push(n);
                }
                other => panic!("the stream ended: {other:?}"),
            }
        }
        panic!("the stream closed");
    })
    .await;
    assert_eq!(
        channel(&b, "c").listener_ids().await.unwrap(),
        [listener.id().clone()]
    );
    (confirmed, received)
}

/// A primary, one replica, three sentinels, asynchronous replication: the
/// nodes follow the failover and serve again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_keep_dispatching_and_streaming_after_a_failover() {
    let mut set = TestSentinel::start().await;
    let config = RedisConfig {
        command_timeout_ms: 2_000,
        ..set.config()
    };
    failover_mid_traffic(&mut set, config).await;
}

/// Two replicas and `wait_replicas = 1`: every dispatch confirmed before
/// the crash reached a replica, the sentinels promote the most advanced
/// one, and the stream receives every confirmed dispatch. (With one
/// replica, writes could not be confirmed once it is promoted: nothing
/// would be left to acknowledge them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_replicas_a_failover_loses_no_confirmed_dispatch() {
    let mut set = TestSentinel::with_replicas(2).await;
    let config = RedisConfig {
        command_timeout_ms: 2_000,
        wait_replicas: 1,
        ..set.config()
    };
    let (confirmed, received) = failover_mid_traffic(&mut set, config).await;
    let lost: Vec<&u64> = confirmed.iter().filter(|n| !received.contains(n)).collect();
    assert!(
        lost.is_empty(),
        "confirmed then lost: {lost:?} of {} confirmed",
        confirmed.len()
    );
}

/// `wait_replicas` with no replica to acknowledge: a write is applied on the
/// primary but not confirmed (an unknown outcome, after `wait_timeout_ms`);
/// reads do not wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_no_replica_acknowledged_is_an_unknown_outcome() {
    let redis = TestRedis::start_private().await;
    let engine = RedisEngine::connect(RedisConfig {
        wait_replicas: 1,
        wait_timeout_ms: 20,
        ..redis.config()
    })
    .unwrap();
    let ch = channel(&engine, "c");
    let refused = ch.add_listener().await.unwrap_err();
    assert!(
        matches!(refused, Error::OutcomeUnknown { .. }),
        "{refused:?}"
    );
    // Applied on the primary all the same; reading waits for nothing.
    let listeners = ch.listener_ids().await.unwrap();
    assert_eq!(listeners.len(), 1);
}
