//! Throughput of the in-memory engine's hot paths, for comparison with the
//! Python reference measured on the same machine (figures in BENCHMARKS.md):
//! dispatch, `deliver_next`, draining a stream, and broadcast to 1,000
//! listeners. Each measurement times only the operation: filling and
//! draining queues between samples happens outside the clock.
//!
//! Run: `cargo bench -p eric-core --bench channel`

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eric_core::{
    Adapter, Channel, ChannelSettings, Listener, MemoryEngine, Message, RawAdapter, SseAdapter,
    StreamItem, StreamOptions,
};
use futures_util::StreamExt;
use serde_json::json;
use tokio::runtime::Runtime;

const BATCH: usize = 10_000;
const FAN_OUT: usize = 1_000;
const BROADCASTS: usize = 10;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn message() -> Message {
    Message::try_new("bench", json!({"n": 1, "text": "hello"})).unwrap()
}

async fn channel_with_listener<A: Adapter>() -> (Channel<MemoryEngine, A>, Listener) {
    let ch = Channel::new(&MemoryEngine::new(), None, ChannelSettings::default()).unwrap();
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    (ch, l)
}

async fn fill<A: Adapter>(ch: &Channel<MemoryEngine, A>, l: &Listener, m: &Message) {
    for _ in 0..BATCH {
        ch.dispatch(l.id(), m.clone()).await.unwrap();
    }
}

fn dispatch(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("memory");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("dispatch", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let (ch, l) = channel_with_listener::<RawAdapter>().await;
            let member = ch.member(l.id()).await.unwrap();
            let m = message();
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                fill(&ch, &l, &m).await;
                total += start.elapsed();
                eric_core::Queue::pop_batch(member.queue(), BATCH)
                    .await
                    .unwrap();
            }
            total
        })
    });
    g.bench_function("deliver_next", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let (ch, l) = channel_with_listener::<RawAdapter>().await;
            let m = message();
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                fill(&ch, &l, &m).await;
                let start = Instant::now();
                for _ in 0..BATCH {
                    black_box(ch.deliver_next(l.id()).await.unwrap());
                }
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn drain<A: Adapter>(c: &mut Criterion, name: &str) {
    let rt = runtime();
    let mut g = c.benchmark_group("memory");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function(name, |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let (ch, l) = channel_with_listener::<A>().await;
            let mut stream = ch.stream(l.id(), StreamOptions::default()).await.unwrap();
            let m = message();
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                fill(&ch, &l, &m).await;
                let start = Instant::now();
                for _ in 0..BATCH {
                    match stream.next().await {
                        Some(StreamItem::Message(out)) => {
                            black_box(out);
                        }
                        other => panic!("unexpected {:?}", other.map(|_| ())),
                    }
                }
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

/// The SSE channel's stream drained and every event encoded to wire bytes:
/// the per-message work of an SSE response.
fn drain_encoded(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("memory");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("stream_drain_sse_encoded", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let (ch, l) = channel_with_listener::<SseAdapter>().await;
            let mut stream = ch.stream(l.id(), StreamOptions::default()).await.unwrap();
            let m = message();
            let mut wire = Vec::with_capacity(BATCH * 128);
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                fill(&ch, &l, &m).await;
                wire.clear();
                let start = Instant::now();
                for _ in 0..BATCH {
                    let Some(StreamItem::Message(event)) = stream.next().await else {
                        panic!("stream ended");
                    };
                    event.encode_into(&mut wire);
                }
                total += start.elapsed();
                black_box(&wire);
            }
            total
        })
    });
    g.finish();
}

fn stream_drain(c: &mut Criterion) {
    drain::<RawAdapter>(c, "stream_drain_raw");
    drain::<SseAdapter>(c, "stream_drain_sse");
    drain_encoded(c);
}

fn broadcast(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("memory");
    g.throughput(Throughput::Elements((FAN_OUT * BROADCASTS) as u64));
    g.bench_function("broadcast_1000_listeners", |b| {
        b.to_async(&rt).iter_custom(|iters| async move {
            let ch: Channel<MemoryEngine, RawAdapter> =
                Channel::new(&MemoryEngine::new(), None, ChannelSettings::default()).unwrap();
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
    ch: &Channel<MemoryEngine, RawAdapter>,
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
            eric_core::Queue::pop_batch(member.queue(), BROADCASTS)
                .await
                .unwrap();
        }
    }
    total
}

/// A broadcast to 1,000 listeners holding ten subscriptions each, one in
/// ten of them matching (100 deliveries), against an unfiltered broadcast
/// to 100 listeners (the same 100 deliveries): what filtering costs.
fn broadcast_filtered(c: &mut Criterion) {
    use eric_core::testing::subscriptions::{audience_message, audience_subscriptions};
    let rt = runtime();
    let mut g = c.benchmark_group("memory");
    g.throughput(Throughput::Elements((FAN_OUT / 10 * BROADCASTS) as u64));
    for (name, listeners, filtered) in [
        ("broadcast_100_listeners", FAN_OUT / 10, false),
        ("broadcast_1000x10_subscriptions_10pct_match", FAN_OUT, true),
    ] {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let ch: Channel<MemoryEngine, RawAdapter> =
                    Channel::new(&MemoryEngine::new(), None, ChannelSettings::default()).unwrap();
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

/// Broadcasts to listeners each streamed by its own task, timed until every
/// stream yielded every broadcast: the in-process ceiling for the Redis
/// engine's `fan_out` bench (same shape, same two-worker runtime).
fn fan_out(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("memory");
    g.sample_size(10);
    for (listeners, broadcasts) in [(FAN_OUT, 100), (10 * FAN_OUT, 20)] {
        g.throughput(Throughput::Elements((listeners * broadcasts) as u64));
        g.bench_function(format!("fan_out_{listeners}_streams"), |b| {
            b.to_async(&rt).iter_custom(|iters| async move {
                let ch: Channel<MemoryEngine, RawAdapter> =
                    Channel::new(&MemoryEngine::new(), None, ChannelSettings::default()).unwrap();
                eric_core::testing::fan_out::timed(&ch, listeners, broadcasts, 1, &message(), iters)
                    .await
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    dispatch,
    stream_drain,
    broadcast,
    broadcast_filtered,
    fan_out
);
criterion_main!(benches);
