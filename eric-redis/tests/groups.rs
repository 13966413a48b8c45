//! Groups: the caught-up streams of a channel on a node share one position
//! in the log (`docs/REDIS.md`, "Groups"). Whatever takes a member out of
//! its group (a pull or a dispatch elsewhere, its stream ending, its node
//! dying), every broadcast reaches the listener exactly once, in order.

#![allow(clippy::unwrap_used)]

mod common;

use common::{RawChannel, RedisFixture, channel};
use eric_core::testing::within;
use eric_core::{Delivery, Error, ListenerId, Message, MessageStream, StreamItem, StreamOptions};
use eric_redis::test_support::TestRedis;
use eric_redis::{RedisConfig, RedisEngine};
use futures_util::StreamExt;
use serde_json::json;

fn msg(n: i64) -> Message {
    Message::try_new("t", json!(n)).unwrap()
}

fn payload(d: &Delivery) -> i64 {
    d.message.payload_value().as_i64().unwrap()
}

async fn next(stream: &mut MessageStream<Delivery>) -> Delivery {
    match within("a message on the stream", stream.next()).await {
        Some(StreamItem::Message(d)) => d,
        other => panic!("expected a message, got {other:?}"),
    }
}

/// The payloads of the next `n` messages of `stream`.
async fn take(stream: &mut MessageStream<Delivery>, n: usize) -> Vec<i64> {
    let mut got = Vec::with_capacity(n);
    for _ in 0..n {
        got.push(payload(&next(stream).await));
    }
    got
}

/// Pulls `listener` of `ch` until it has nothing: the payloads pulled.
async fn pull_all(ch: &RawChannel, listener: &ListenerId) -> Vec<i64> {
    let mut got = Vec::new();
    loop {
        match ch.deliver_next(listener).await {
            Ok(d) => got.push(payload(&d)),
            Err(Error::NoMessages { .. }) => return got,
            Err(e) => panic!("pulling: {e}"),
        }
    }
}

/// Redis as the test reads it: a connection and the channel's base key.
struct Raw {
    conn: redis::aio::MultiplexedConnection,
    base: String,
}

impl Raw {
    async fn new(url: &str, config: &RedisConfig) -> Self {
        let conn = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        Self {
            conn,
            base: format!("{}:{{c}}", config.prefix),
        }
    }

    async fn cursor(&mut self, listener: &ListenerId) -> String {
        redis::cmd("HGET")
            .arg(format!("{}:cursor", self.base))
            .arg(listener.key_segment().as_ref())
            .query_async::<Option<String>>(&mut self.conn)
            .await
            .unwrap()
            .unwrap_or_default()
    }

    async fn seq(&mut self) -> u64 {
        redis::cmd("HGET")
            .arg(format!("{}:logstate", self.base))
            .arg("seq")
            .query_async(&mut self.conn)
            .await
            .unwrap()
    }

    /// The position of the group `cursor` names.
    async fn group(&mut self, cursor: &str) -> Option<u64> {
        redis::cmd("HGET")
            .arg(format!("{}:group", self.base))
            .arg(&cursor[1..])
            .query_async(&mut self.conn)
            .await
            .unwrap()
    }
}

/// Awaits group steps of `engine` until `done` holds of what Redis shows.
async fn await_steps<F>(engine: &RedisEngine, raw: &mut Raw, what: &str, mut done: F)
where
    F: AsyncFnMut(&mut Raw) -> bool,
{
    let mut steps = engine.group_steps();
    within(what, async {
        loop {
            steps.borrow_and_update();
            if done(raw).await {
                return;
            }
            steps.changed().await.unwrap();
        }
    })
    .await;
}

/// Awaits `listener`'s joining its node's group.
async fn await_member(engine: &RedisEngine, raw: &mut Raw, listener: &ListenerId) {
    await_steps(engine, raw, "the listener joining the group", async |raw| {
        raw.cursor(listener).await.starts_with('g')
    })
    .await;
}

/// Awaits the group of `listener` claiming every broadcast so far.
async fn await_claimed(engine: &RedisEngine, raw: &mut Raw, listener: &ListenerId) {
    await_steps(
        engine,
        raw,
        "the group claiming the broadcasts",
        async |raw| {
            let cursor = raw.cursor(listener).await;
            let seq = raw.seq().await;
            cursor.starts_with('g') && raw.group(&cursor).await >= Some(seq)
        },
    )
    .await;
}

/// A listener streaming on node A, in A's group, with three broadcasts the
/// group claimed that its stream has not taken yet.
async fn claimed_three(
    f: &RedisFixture,
    raw: &mut Raw,
) -> (RawChannel, ListenerId, MessageStream<Delivery>) {
    let ch = channel(&f.engine, "c");
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    let mut s = ch.stream(l.id(), StreamOptions::default()).await.unwrap();
    ch.broadcast(&msg(1)).await.unwrap();
    assert_eq!(payload(&next(&mut s).await), 1);
    await_member(&f.engine, raw, l.id()).await;
    for n in 2..=4 {
        ch.broadcast(&msg(n)).await.unwrap();
    }
    await_claimed(&f.engine, raw, l.id()).await;
    (ch, l.id().clone(), s)
}

/// A pull on another node takes the member out at the group's position:
/// the stream still gets what the group claimed, the pull what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_elsewhere_takes_a_member_out_and_nothing_is_lost_or_repeated() {
    let f = RedisFixture::new().await;
    let mut raw = Raw::new(f.redis.url(), &f.config).await;
    let (_ch, l, mut s) = claimed_three(&f, &mut raw).await;
    let other = channel(&f.node(), "c");
    // Everything so far was claimed for the stream: nothing to pull.
    assert_eq!(pull_all(&other, &l).await, Vec::<i64>::new());
    assert!(!raw.cursor(&l).await.starts_with('g'));
    other.broadcast(&msg(5)).await.unwrap();
    assert_eq!(pull_all(&other, &l).await, vec![5]);
    other.broadcast(&msg(6)).await.unwrap();
    // The claimed three, then 6 taken alone (5 went to the pull).
    assert_eq!(take(&mut s, 4).await, vec![2, 3, 4, 6]);
    assert_eq!(pull_all(&other, &l).await, Vec::<i64>::new());
}

/// A member whose stream ends leaves at what it took: what the group
/// claimed beyond goes to the next consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_stream_ends_leaves_the_claimed_broadcasts_to_the_next_consumer() {
    let f = RedisFixture::new().await;
    let mut raw = Raw::new(f.redis.url(), &f.config).await;
    let (_ch, l, s) = claimed_three(&f, &mut raw).await;
    drop(s);
    await_steps(&f.engine, &mut raw, "the member leaving", async |raw| {
        !raw.cursor(&l).await.starts_with('g')
    })
    .await;
    let other = channel(&f.node(), "c");
    assert_eq!(pull_all(&other, &l).await, vec![2, 3, 4]);
}

/// Taken out by a pull elsewhere, then its stream ends before taking what
/// the group had claimed: that goes into the listener's queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_member_taken_out_never_took_is_given_back() {
    let f = RedisFixture::new().await;
    let mut raw = Raw::new(f.redis.url(), &f.config).await;
    let (_ch, l, s) = claimed_three(&f, &mut raw).await;
    let other = channel(&f.node(), "c");
    assert_eq!(pull_all(&other, &l).await, Vec::<i64>::new());
    drop(s);
    let queue = format!("{}:q:{}", raw.base, l.key_segment());
    await_steps(
        &f.engine,
        &mut raw,
        "the claimed broadcasts given back",
        async |raw| {
            redis::cmd("LLEN")
                .arg(&queue)
                .query_async::<u64>(&mut raw.conn)
                .await
                .unwrap()
                == 3
        },
    )
    .await;
    assert_eq!(pull_all(&other, &l).await, vec![2, 3, 4]);
}

/// A dispatch to a member takes it out of the group before the group's
/// position can pass the message: the stream gets everything in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatch_to_a_member_arrives_in_order_after_the_claimed_broadcasts() {
    let f = RedisFixture::new().await;
    let mut raw = Raw::new(f.redis.url(), &f.config).await;
    let (_ch, l, mut s) = claimed_three(&f, &mut raw).await;
    let other = channel(&f.node(), "c");
    other.dispatch(&l, msg(5)).await.unwrap();
    other.broadcast(&msg(6)).await.unwrap();
    let mut got = Vec::new();
    let mut last = 0;
    for _ in 0..5 {
        let d = next(&mut s).await;
        assert!(d.seq > last, "ids must increase: {} after {last}", d.seq);
        last = d.seq;
        got.push(payload(&d));
    }
    assert_eq!(got, vec![2, 3, 4, 5, 6]);
}

/// A node that dies with members: once its group's lease lapses, another
/// node dissolves the group, and a pull there goes on from its position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_group_is_dissolved_when_its_lease_lapses() {
    let redis = TestRedis::start().await;
    let config = RedisConfig {
        lease_ms: 300,
        ..redis.config()
    };
    let dead = RedisEngine::connect(config.clone()).unwrap();
    let mut raw = Raw::new(redis.url(), &config).await;
    let ch = channel(&dead, "c");
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    let mut s = ch.stream(l.id(), StreamOptions::default()).await.unwrap();
    ch.broadcast(&msg(1)).await.unwrap();
    assert_eq!(payload(&next(&mut s).await), 1);
    await_member(&dead, &mut raw, l.id()).await;
    let group = raw.cursor(l.id()).await;
    // The node dies: its tasks stop, nothing of it runs its clean-up.
    dead.shutdown();
    std::mem::forget((s, ch, dead));

    let alive = RedisEngine::connect(config).unwrap();
    let on_alive = channel(&alive, "c");
    // Holding a lease makes the node tick (renew, then sweep) on its own.
    let _watch = on_alive.watch().await.unwrap();
    let mut renewals = alive.lease_renewals();
    within("the dead group's dissolution", async {
        loop {
            if !raw.cursor(l.id()).await.starts_with('g') {
                return;
            }
            renewals.changed().await.unwrap();
        }
    })
    .await;
    assert_eq!(raw.group(&group).await, None);
    on_alive.broadcast(&msg(2)).await.unwrap();
    assert_eq!(payload(&on_alive.deliver_next(l.id()).await.unwrap()), 2);
    alive.shutdown();
}
