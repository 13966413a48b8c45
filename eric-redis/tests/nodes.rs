//! Several nodes on one Redis: each test names the property it proves.
//!
//! A "node" is an independent `RedisEngine` (its own pool, subscriber task and
//! caches) on the same Redis and prefix, as a second broker process has.
//!
//! The cross-node tests run twice: on a single server, and (module
//! `cluster`) on a private three-primary Redis Cluster.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeSet, HashSet};

use common::{RawChannel, RedisFixture, channel};
use eric_core::channel::{RawAdapter, StreamEnd};
use eric_core::testing::within;
use eric_core::{
    Channel, ChannelId, ChannelSettings, Delivery, Listener, ListenerId, Message, MessageStream,
    StreamItem, StreamOptions,
};
use eric_redis::test_support::TestRedis;
use eric_redis::{RedisConfig, RedisEngine};
use futures_util::StreamExt;
use serde_json::json;

fn msg(n: i64) -> Message {
    Message::try_new("t", json!(n)).unwrap()
}

async fn next_message(stream: &mut MessageStream<Delivery>) -> Delivery {
    match within("a stream item", stream.next()).await {
        Some(StreamItem::Message(d)) => d,
        other => panic!("expected a message, got {other:?}"),
    }
}

fn payload(d: &Delivery) -> i64 {
    d.message.payload_value().as_i64().unwrap()
}

/// Commands run so far on every server (each cluster node), but for the
/// test's own probes (PING, INFO, CONFIG).
async fn command_calls(redis: &TestRedis) -> u64 {
    common::all_command_calls(redis)
        .await
        .into_iter()
        .filter(|(name, _)| !(name == "ping" || name == "info" || name.starts_with("config")))
        .map(|(_, calls)| calls)
        .sum()
}

async fn pings(redis: &redis::Client, n: usize) {
    let mut c = redis.get_multiplexed_async_connection().await.unwrap();
    for _ in 0..n {
        let _: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
    }
}

/// The tests that hold on any Redis, each on the fixture `$fixture` builds.
macro_rules! cross_node_tests {
    ($fixture:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn dispatch_on_one_node_reaches_a_stream_on_another() {
            let f = $fixture;
            let (a, b) = (f.engine.clone(), f.node());
            let on_a = channel(&a, "c");
            let listener = on_a.add_listener().await.unwrap();
            on_a.start_listener(listener.id()).await.unwrap();
            let on_b = channel(&b, "c");
            let mut stream = on_b
                .stream(listener.id(), StreamOptions::default())
                .await
                .unwrap();
            let reader = tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..3 {
                    got.push(payload(&next_message(&mut stream).await));
                }
                got
            });
            for n in 1..=3 {
                on_a.dispatch(listener.id(), msg(n)).await.unwrap();
            }
            assert_eq!(within("the stream on B", reader).await.unwrap(), [1, 2, 3]);
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_registrations_on_two_nodes_all_survive_and_a_broadcast_reaches_all() {
            let f = $fixture;
            let (a, b) = (channel(&f.engine, "busy"), channel(&f.node(), "busy"));
            let register = |ch: RawChannel| async move {
                let adds = (0..100).map(|_| ch.add_listener());
                futures_util::future::try_join_all(adds).await.unwrap()
            };
            let (from_a, from_b) = tokio::join!(register(a.clone()), register(b.clone()));
            let expected: HashSet<ListenerId> = from_a
                .iter()
                .chain(&from_b)
                .map(|l| l.id().clone())
                .collect();
            assert_eq!(expected.len(), 200);
            for ch in [&a, &b] {
                let listed: HashSet<ListenerId> = ch.listener_ids().await.unwrap().into_iter().collect();
                assert_eq!(listed, expected);
            }
            let outcome = b.broadcast(&msg(7)).await.unwrap();
            assert_eq!((outcome.delivered, outcome.full.len()), (200, 0));
            for id in &expected {
                a.start_listener(id).await.unwrap();
                assert_eq!(payload(&a.deliver_next(id).await.unwrap()), 7);
            }
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn removing_or_stopping_on_one_node_ends_streams_on_another() {
            let f = $fixture;
            let (a, b) = (channel(&f.engine, "c"), channel(&f.node(), "c"));
            let (x, y) = (
                a.add_listener().await.unwrap(),
                a.add_listener().await.unwrap(),
            );
            a.start_listener(x.id()).await.unwrap();
            a.start_listener(y.id()).await.unwrap();
            let mut sx = b.stream(x.id(), StreamOptions::default()).await.unwrap();
            let mut sy = b.stream(y.id(), StreamOptions::default()).await.unwrap();
            let ends = tokio::spawn(async move {
                let ex = within("x's end", sx.next()).await.unwrap();
                let ey = within("y's end", sy.next()).await.unwrap();
                (ex, ey)
            });
            a.remove_listener(x.id()).await.unwrap();
            a.stop_listener(y.id()).await.unwrap();
            let (ex, ey) = within("both ends", ends).await.unwrap();
            assert!(matches!(ex, StreamItem::End(StreamEnd::Removed)), "{ex:?}");
            assert!(matches!(ey, StreamItem::End(StreamEnd::Stopped)), "{ey:?}");
        }

        /// The streaming node dies after taking messages from Redis and before the
        /// client got them: a resume on another node with the last id the client saw
        /// delivers exactly the rest.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn resume_on_another_node_after_a_crash_between_pop_and_write_loses_and_repeats_nothing() {
            let f = $fixture;
            let a = channel(&f.engine, "c");
            let l = a.add_listener().await.unwrap();
            a.start_listener(l.id()).await.unwrap();
            for n in 1..=50 {
                a.dispatch(l.id(), msg(n)).await.unwrap();
            }
            let mut doomed = a.stream(l.id(), StreamOptions::default()).await.unwrap();
            let mut last_seen = 0;
            for _ in 0..10 {
                last_seen = next_message(&mut doomed).await.seq;
            }
            // A crash runs no destructor: what the stream took stays taken.
            std::mem::forget(doomed);
            assert_eq!(
                a.queue_len(l.id()).await.unwrap(),
                0,
                "the batch left Redis's queue"
            );
            for n in 51..=60 {
                a.dispatch(l.id(), msg(n)).await.unwrap();
            }

            let b = channel(&f.node(), "c");
            let resume = StreamOptions {
                last_event_id: Some(last_seen),
            };
            let mut resumed = b.stream(l.id(), resume).await.unwrap();
            let mut got = Vec::new();
            for _ in 0..50 {
                got.push(payload(&next_message(&mut resumed).await));
            }
            assert_eq!(got, (11..=60).collect::<Vec<_>>());
            assert_eq!(b.queue_len(l.id()).await.unwrap(), 0);
        }

        /// The reference issued about 12,500 `LPOP`/s per idle stream. Here, once
        /// the streams are asleep, Redis sees no command from them at all while the
        /// test keeps it busy for hundreds of round trips.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn idle_streams_issue_no_redis_commands() {
            let f = $fixture;
            let probe = redis::Client::open(f.redis.url()).unwrap();
            let ch = channel(&f.engine, "idle");
            let mut readers = Vec::new();
            for _ in 0..50 {
                let l = ch.add_listener().await.unwrap();
                ch.start_listener(l.id()).await.unwrap();
                let mut s = ch.stream(l.id(), StreamOptions::default()).await.unwrap();
                readers.push(tokio::spawn(async move { s.next().await.map(|_| ()) }));
            }
            // Steady state: two windows of round trips with no command in between.
            within("the streams to fall asleep", async {
                loop {
                    let before = command_calls(&f.redis).await;
                    pings(&probe, 50).await;
                    if command_calls(&f.redis).await == before {
                        break;
                    }
                }
            })
            .await;
            let before = command_calls(&f.redis).await;
            pings(&probe, 500).await;
            assert_eq!(
                command_calls(&f.redis).await,
                before,
                "idle streams talked to Redis"
            );
            assert!(readers.iter().all(|r| !r.is_finished()));
        }

        /// The probe that detects a silently dead subscriber connection must not
        /// itself end the session: several probes answered, still one session, and
        /// the stream that slept through them still wakes on the next dispatch.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn subscriber_probes_keep_one_session() {
            let f = $fixture;
            let config = RedisConfig {
                probe_interval_ms: 20,
                ..f.config.clone()
            };
            let engine = RedisEngine::connect(config).unwrap();
            let ch = channel(&engine, "probed");
            let l = ch.add_listener().await.unwrap();
            ch.start_listener(l.id()).await.unwrap();
            let mut stream = ch.stream(l.id(), StreamOptions::default()).await.unwrap();
            let mut activity = engine.pubsub_activity();
            let seen = within(
                "five probes",
                activity.wait_for(|a| a.probes >= 5 || a.sessions > 1),
            )
            .await
            .unwrap()
            .to_owned();
            assert_eq!(seen.sessions, 1, "a probe ended the session: {seen:?}");

            ch.dispatch(l.id(), msg(1)).await.unwrap();
            assert_eq!(payload(&next_message(&mut stream).await), 1);
        }

        /// Channel and listener ids with pattern, separator and brace characters, and
        /// ids that prefix one another, never reach each other's data (the Lua key
        /// escaping matches the Rust one).
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn ids_sharing_prefixes_or_pattern_characters_stay_apart_live() {
            let f = $fixture;
            let names = [
                "ab", "abc", "ab:x", "a*", "a?", "[ab]", "a{b}", "a%2A", "a\\",
            ];
            let listener = ListenerId::new("l:*?[]{}%").unwrap();
            for (n, name) in names.iter().enumerate() {
                let ch = channel(&f.engine, name);
                ch.register_listener(Listener::with_id(listener.clone()))
                    .await
                    .unwrap();
                ch.broadcast(&msg(n as i64)).await.unwrap();
                ch.dispatch(&listener, msg(100 + n as i64)).await.unwrap();
            }
            for (n, name) in names.iter().enumerate() {
                let ch = channel(&f.node(), name);
                assert_eq!(
                    ch.listener_ids().await.unwrap(),
                    std::slice::from_ref(&listener),
                    "{name}"
                );
                ch.start_listener(&listener).await.unwrap();
                let got: BTreeSet<i64> = [
                    payload(&ch.deliver_next(&listener).await.unwrap()),
                    payload(&ch.deliver_next(&listener).await.unwrap()),
                ]
                .into();
                assert_eq!(got, [n as i64, 100 + n as i64].into(), "channel {name}");
                assert!(
                    ch.deliver_next(&listener).await.is_err(),
                    "{name} saw another's message"
                );
            }
            let ids: Vec<ChannelId> = names.iter().map(|n| n.parse().unwrap()).collect();
            assert_eq!(ids.len(), names.len());
        }

        /// `load_persisted_data` in a fresh process restores channels with their
        /// settings, listeners with their flags, and queued messages.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn a_fresh_node_restores_everything_another_persisted() {
            let f = $fixture;
            let store = f.engine.persistence::<RawAdapter>();
            let settings = ChannelSettings {
                retry_ms: 3000,
                ..Default::default()
            };
            for c in 0..5 {
                let ch: RawChannel = Channel::new(
                    &f.engine,
                    Some(format!("room-{c}").parse().unwrap()),
                    settings.clone(),
                )
                .unwrap();
                for n in 0..3 {
                    let l = ch.add_listener().await.unwrap();
                    if n == 0 {
                        ch.start_listener(l.id()).await.unwrap();
                    }
                    ch.dispatch(l.id(), msg(n)).await.unwrap();
                }
                store.persist(&ch).await.unwrap();
            }
            drop(f.engine.clone());
            let fresh = f.node();
            let restored = fresh
                .persistence::<RawAdapter>()
                .load_persisted_data(None)
                .await
                .unwrap();
            assert_eq!(restored.len(), 5);
            for ch in restored {
                assert_eq!(ch.settings(), &settings);
                let members = ch.members().await.unwrap();
                assert_eq!(members.len(), 3);
                let running = members.iter().filter(|c| c.listener().is_running()).count();
                assert_eq!(running, 1);
                for c in members {
                    assert_eq!(ch.queue_len(c.listener_id()).await.unwrap(), 1);
                }
            }
        }

        /// A broadcast is one log entry that each node reads once: streams on
        /// another node get every broadcast their filters reach, in order, whether
        /// it was sent before their stream opened or while it runs, and nothing
        /// else.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn filtered_broadcasts_reach_streams_on_another_node_before_and_after_they_open() {
            use eric_core::{Subscription, Subscriptions};
            let f = $fixture;
            let (a, b) = (f.engine.clone(), f.node());
            let on_a = channel(&a, "c");
            let on_b = channel(&b, "c");
            let keep = Subscriptions::new([Subscription::new(
                "t".parse().unwrap(),
                Some("keep".parse().unwrap()),
            )]);
            let l = on_b.add_listener_with(keep).await.unwrap();
            on_b.start_listener(l.id()).await.unwrap();
            let topical = |n: i64| {
                let about = if n % 2 == 0 { "keep" } else { "drop" };
                msg(n).with_topic(format!("{about}.{n}").parse().unwrap())
            };
            for n in 0..40 {
                on_a.broadcast(&topical(n)).await.unwrap();
            }
            let mut stream = on_b.stream(l.id(), StreamOptions::default()).await.unwrap();
            let mut got = Vec::new();
            while got.len() < 20 {
                got.push(payload(&next_message(&mut stream).await));
            }
            for n in 40..80 {
                on_a.broadcast(&topical(n)).await.unwrap();
            }
            while got.len() < 40 {
                got.push(payload(&next_message(&mut stream).await));
            }
            assert_eq!(got, (0..80).step_by(2).collect::<Vec<_>>());
        }
    };
}

cross_node_tests!(RedisFixture::new().await);

/// The same on a Redis Cluster, reached through one node's URL.
mod cluster {
    use super::*;

    cross_node_tests!(RedisFixture::cluster().await);
}

/// Redis stopped and restarted (AOF on) while a stream runs: the stream
/// picks up again by itself and no queued message is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_survives_a_redis_restart_without_losing_queued_messages() {
    let mut redis = TestRedis::start_durable().await;
    let config = RedisConfig {
        command_timeout_ms: 1_000,
        ..redis.config()
    };
    let engine = RedisEngine::connect(config).unwrap();
    let mut health = engine.pubsub_health();
    within("the subscriber", health.wait_for(|up| *up))
        .await
        .unwrap();
    let ch = channel(&engine, "c");
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    for n in 1..=20 {
        ch.dispatch(l.id(), msg(n)).await.unwrap();
    }
    let mut stream = ch.stream(l.id(), StreamOptions::default()).await.unwrap();
    for n in 1..=5 {
        assert_eq!(payload(&next_message(&mut stream).await), n);
    }

    redis.stop().await;
    within("the subscriber to notice", health.wait_for(|up| !*up))
        .await
        .unwrap();
    assert!(
        ch.dispatch(l.id(), msg(0))
            .await
            .unwrap_err()
            .is_transient()
    );
    redis.start_again().await;
    within("the subscriber to come back", health.wait_for(|up| *up))
        .await
        .unwrap();

    for n in 21..=30 {
        ch.dispatch(l.id(), msg(n)).await.unwrap();
    }
    let mut got = Vec::new();
    for _ in 6..=30 {
        got.push(payload(&next_message(&mut stream).await));
    }
    assert_eq!(got, (6..=30).collect::<Vec<_>>());
}
