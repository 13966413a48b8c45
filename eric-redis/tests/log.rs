//! The broadcast log as Redis holds it: bounded without a scan, and read by
//! channels stored before it existed.

#![allow(clippy::unwrap_used)]

mod common;

use common::RedisFixture;
use eric_core::channel::RawAdapter;
use eric_core::persistence::ChannelRepository;
use eric_core::testing::within;
use eric_core::{Channel, ChannelSettings, Delivery, Message, StreamItem, StreamOptions};
use eric_redis::RedisEngine;
use futures_util::StreamExt;
use serde_json::json;

type RawChannel = Channel<RedisEngine, RawAdapter>;

fn msg(n: i64) -> Message {
    Message::try_new("t", json!(n)).unwrap()
}

async fn connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The log keeps `queue_capacity` entries whatever the traffic: trimmed as
/// it grows, and gone with its channel.
#[tokio::test]
async fn the_log_stays_within_its_bound_and_leaves_with_its_channel() {
    let f = RedisFixture::new().await;
    let settings = ChannelSettings {
        queue_capacity: 5,
        ..ChannelSettings::default()
    };
    let ch: RawChannel = Channel::new(&f.engine, Some("c".parse().unwrap()), settings).unwrap();
    ch.add_listener().await.unwrap();
    for n in 0..50 {
        ch.broadcast(&msg(n)).await.unwrap();
    }
    let log = format!("{}:{{c}}:log", f.config.prefix);
    let mut c = connection(f.redis.url()).await;
    let len: usize = redis::cmd("XLEN")
        .arg(&log)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(len, 5);
    f.engine.channel_repository().delete(ch.id()).await.unwrap();
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:{{c}}:*", f.config.prefix))
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

/// A channel written before the log: queues numbered apart (`seq` per
/// listener) with broadcasts already in them. Its sequence starts above
/// every old number, its listeners read the log from there, and what was
/// queued comes first with its numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_stored_before_the_log_goes_on_numbering_above_it() {
    let f = RedisFixture::new().await;
    let ch: RawChannel = Channel::new(
        &f.engine,
        Some("c".parse().unwrap()),
        ChannelSettings::default(),
    )
    .unwrap();
    let (a, b) = (
        ch.add_listener().await.unwrap(),
        ch.add_listener().await.unwrap(),
    );
    let base = format!("{}:{{c}}", f.config.prefix);
    let mut c = connection(f.redis.url()).await;
    // Back to the old layout: no sequence, no cursors, numbers per queue.
    let _: () = redis::pipe()
        .del(format!("{base}:logstate"))
        .del(format!("{base}:cursor"))
        .del(format!("{base}:since"))
        .hset(format!("{base}:seq"), a.id().as_str(), 5)
        .hset(format!("{base}:seq"), b.id().as_str(), 7)
        .rpush(
            format!("{base}:q:{}", a.id().as_str()),
            &[
                r#"{"seq":4,"message":{"type":"t","payload":4}}"#,
                r#"{"seq":5,"message":{"type":"t","payload":5}}"#,
            ],
        )
        .query_async(&mut c)
        .await
        .unwrap();
    // A node started on the old data.
    let node = f.node();
    let ch: RawChannel = Channel::new(
        &node,
        Some("c".parse().unwrap()),
        ChannelSettings::default(),
    )
    .unwrap();
    assert_eq!(ch.dispatch(a.id(), msg(8)).await.unwrap(), 8);
    assert_eq!(ch.broadcast(&msg(9)).await.unwrap().delivered, 2);
    ch.start_listener(a.id()).await.unwrap();
    let mut s = ch.stream(a.id(), StreamOptions::default()).await.unwrap();
    let mut got = Vec::new();
    while got.len() < 4 {
        match within("a message", s.next()).await {
            Some(StreamItem::Message(Delivery { seq, message })) => {
                got.push((seq, message.payload_value().as_i64().unwrap()))
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(got, [(4, 4), (5, 5), (8, 8), (9, 9)]);
    ch.start_listener(b.id()).await.unwrap();
    assert_eq!(ch.deliver_next(b.id()).await.unwrap().seq, 9);
}
