//! Throughput of the Redis engine against a real, private `redis-server`
//! (or `REDIS_URL`), for comparison with the Python reference measured on the
//! same machine (figures in BENCHMARKS.md).
//!
//! Producers are 64 independent tasks and pullers keep 64 operations in
//! flight, as an async broker serving many clients does;
//! `dispatch_sequential` shows one producer.
//! Filling and draining queues between samples happens outside the clock.
//!
//! Run: `cargo bench -p eric-redis --bench redis`

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eric_core::{
    Channel, ChannelSettings, Listener, Message, Queue, RawAdapter, StreamItem, StreamOptions,
};
use eric_redis::test_support::TestRedis;
use eric_redis::{RedisConfig, RedisEngine};
use futures_util::{StreamExt, stream};
use tokio::runtime::Runtime;

const BATCH: usize = 10_000;
const IN_FLIGHT: usize = 64;
const FAN_OUT: usize = 1_000;
const BROADCASTS: usize = 10;
const CHANNELS: usize = 100;
const LISTENERS: usize = 10;

// The tests' fixtures, shared rather than copied.
#[path = "../tests/common/mod.rs"]
mod common;

use common::{RawChannel, bench_message as message, two_worker_runtime as runtime};

struct Setup {
    _redis: TestRedis,
    config: RedisConfig,
}

impl Setup {
    fn engine(&self) -> RedisEngine {
        RedisEngine::connect(RedisConfig {
            prefix: format!("b-{}", uuid::Uuid::new_v4().simple()),
            ..self.config.clone()
        })
        .unwrap()
    }
}

async fn listening(engine: &RedisEngine) -> (RawChannel, Listener) {
    let ch = Channel::new(engine, None, ChannelSettings::default()).unwrap();
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    (ch, l)
}

/// `producers` independent tasks (as HTTP requests would be), each
/// dispatching its share one after another.
async fn fill(ch: &RawChannel, l: &Listener, producers: usize) {
    let tasks: Vec<_> = (0..producers)
        .map(|p| {
            let (ch, id, m) = (ch.clone(), l.id().clone(), message());
            let share = BATCH / producers + usize::from(p < BATCH % producers);
            tokio::spawn(async move {
                for _ in 0..share {
                    ch.dispatch(&id, m.clone()).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

async fn drain(ch: &RawChannel, l: &Listener) {
    let member = ch.member(l.id()).await.unwrap();
    while !member.queue().pop_batch(1_000).await.unwrap().is_empty() {}
}

fn dispatch(c: &mut Criterion, rt: &Runtime, setup: &Setup) {
    let mut g = c.benchmark_group("redis");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    for (name, in_flight) in [("dispatch", IN_FLIGHT), ("dispatch_sequential", 1)] {
        g.bench_function(name, |b| {
            b.to_async(rt).iter_custom(|iters| async move {
                let (ch, l) = listening(&setup.engine()).await;
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    fill(&ch, &l, in_flight).await;
                    total += start.elapsed();
                    drain(&ch, &l).await;
                }
                total
            })
        });
    }
    g.finish();
}

fn deliver(c: &mut Criterion, rt: &Runtime, setup: &Setup) {
    let mut g = c.benchmark_group("redis");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    g.bench_function("deliver_next", |b| {
        b.to_async(rt).iter_custom(|iters| async move {
            let (ch, l) = listening(&setup.engine()).await;
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                fill(&ch, &l, IN_FLIGHT).await;
                let start = Instant::now();
                stream::iter(0..BATCH)
                    .map(|_| ch.deliver_next(l.id()))
                    .buffer_unordered(IN_FLIGHT)
                    .for_each(|r| async move {
                        black_box(r.unwrap());
                    })
                    .await;
                total += start.elapsed();
            }
            total
        })
    });
    g.bench_function("stream_drain", |b| {
        b.to_async(rt).iter_custom(|iters| async move {
            let (ch, l) = listening(&setup.engine()).await;
            let mut s = ch.stream(l.id(), StreamOptions::default()).await.unwrap();
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                fill(&ch, &l, IN_FLIGHT).await;
                let start = Instant::now();
                for _ in 0..BATCH {
                    match s.next().await {
                        Some(StreamItem::Message(d)) => {
                            black_box(d);
                        }
                        other => panic!("unexpected stream item {other:?}"),
                    }
                }
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn broadcast(c: &mut Criterion, rt: &Runtime, setup: &Setup) {
    let mut g = c.benchmark_group("redis");
    g.throughput(Throughput::Elements((FAN_OUT * BROADCASTS) as u64));
    g.sample_size(10);
    g.bench_function("broadcast_1000_listeners", |b| {
        b.to_async(rt).iter_custom(|iters| async move {
            let ch: RawChannel =
                Channel::new(&setup.engine(), None, ChannelSettings::default()).unwrap();
            for _ in 0..FAN_OUT {
                ch.add_listener().await.unwrap();
            }
            timed_broadcasts(&ch, &message(), None, iters).await
        })
    });
    g.finish();
}

/// Times `iters` rounds of `BROADCASTS` broadcasts of `m` on `ch` (each
/// reaching `reach` listeners when given), emptying every queue between
/// rounds off the clock.
async fn timed_broadcasts(
    ch: &RawChannel,
    m: &Message,
    reach: Option<usize>,
    iters: u64,
) -> Duration {
    let members = ch.members().await.unwrap();
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        for _ in 0..BROADCASTS {
            let outcome = ch.broadcast(m).await.unwrap();
            debug_assert!(reach.is_none_or(|n| n == outcome.delivered));
            black_box(outcome);
        }
        total += start.elapsed();
        for member in &members {
            member.queue().pop_batch(BROADCASTS).await.unwrap();
        }
    }
    total
}

/// Broadcasts to listeners that all stream on this node: the time from the
/// first broadcast until every stream has yielded every message. Each
/// broadcast is one log entry, read once by the node and fanned out in
/// process, so what this measures is the node, not Redis. With one
/// publisher each broadcast is awaited before the next: its round trip,
/// slowed by the node's own fan-out work, then bounds the rate; with four
/// in flight (as `eric load peer fanout` publishes) the fan-out does.
fn fan_out(c: &mut Criterion, rt: &Runtime, setup: &Setup) {
    let mut g = c.benchmark_group("redis");
    g.sample_size(10);
    for (listeners, broadcasts) in [(FAN_OUT, 100), (10 * FAN_OUT, 20)] {
        g.throughput(Throughput::Elements((listeners * broadcasts) as u64));
        for publishers in [1, 4] {
            let name = match publishers {
                1 => format!("fan_out_{listeners}_streams"),
                n => format!("fan_out_{listeners}_streams_{n}_publishers"),
            };
            g.bench_function(name, |b| {
                b.to_async(rt).iter_custom(|iters| async move {
                    let ch: RawChannel =
                        Channel::new(&setup.engine(), None, ChannelSettings::default()).unwrap();
                    eric_core::testing::fan_out::timed(
                        &ch,
                        listeners,
                        broadcasts,
                        publishers,
                        &message(),
                        iters,
                    )
                    .await
                })
            });
        }
    }
    g.finish();
}

/// A broadcast to 1,000 listeners holding ten subscriptions each, one in
/// ten of them matching (100 deliveries), against an unfiltered broadcast
/// to 100 listeners (the same 100 deliveries): what filtering costs.
fn broadcast_filtered(c: &mut Criterion, rt: &Runtime, setup: &Setup) {
    use eric_core::testing::subscriptions::{audience_message, audience_subscriptions};
    let mut g = c.benchmark_group("redis");
    g.throughput(Throughput::Elements((FAN_OUT / 10 * BROADCASTS) as u64));
    g.sample_size(10);
    for (name, listeners, filtered) in [
        ("broadcast_100_listeners", FAN_OUT / 10, false),
        ("broadcast_1000x10_subscriptions_10pct_match", FAN_OUT, true),
    ] {
        g.bench_function(name, |b| {
            b.to_async(rt).iter_custom(|iters| async move {
                let ch: RawChannel =
                    Channel::new(&setup.engine(), None, ChannelSettings::default()).unwrap();
                for i in 0..listeners {
                    let subs = if filtered {
                        audience_subscriptions(i)
                    } else {
                        Default::default()
                    };
                    ch.add_listener_with(subs).await.unwrap();
                }
                timed_broadcasts(&ch, &audience_message(), Some(FAN_OUT / 10), iters).await
            })
        });
    }
    g.finish();
}

fn restore(c: &mut Criterion, rt: &Runtime, setup: &Setup) {
    let mut g = c.benchmark_group("redis");
    g.throughput(Throughput::Elements(CHANNELS as u64));
    g.sample_size(20);
    let engine = rt.block_on(async { setup.engine() });
    rt.block_on(async {
        let store = engine.persistence::<RawAdapter>();
        for _ in 0..CHANNELS {
            let ch: RawChannel = Channel::new(&engine, None, ChannelSettings::default()).unwrap();
            for _ in 0..LISTENERS {
                let l = ch.add_listener().await.unwrap();
                ch.dispatch(l.id(), message()).await.unwrap();
            }
            store.persist(&ch).await.unwrap();
        }
    });
    let config = Arc::new(engine.config().clone());
    g.bench_function("restore_100x10", |b| {
        b.to_async(rt).iter_custom(|iters| {
            let config = config.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    // A fresh node each time: nothing cached.
                    let fresh = RedisEngine::connect((*config).clone()).unwrap();
                    let start = Instant::now();
                    let restored = fresh
                        .persistence::<RawAdapter>()
                        .load_persisted_data(None)
                        .await
                        .unwrap();
                    total += start.elapsed();
                    assert_eq!(restored.len(), CHANNELS);
                }
                total
            }
        })
    });
    g.finish();
}

fn all(c: &mut Criterion) {
    let rt = runtime();
    let setup = rt.block_on(async {
        let redis = TestRedis::start().await;
        let config = redis.config();
        Setup {
            _redis: redis,
            config,
        }
    });
    dispatch(c, &rt, &setup);
    deliver(c, &rt, &setup);
    broadcast(c, &rt, &setup);
    broadcast_filtered(c, &rt, &setup);
    fan_out(c, &rt, &setup);
    restore(c, &rt, &setup);
    rt.block_on(async move { drop(setup) });
}

criterion_group!(benches, all);
criterion_main!(benches);
