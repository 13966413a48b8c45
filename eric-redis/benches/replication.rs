//! The cost of `redis.wait_replicas`: dispatch throughput against a private
//! primary with one replica (started with three sentinels by
//! `TestSentinel`; the bench talks to the primary directly), with each
//! write confirmed at once (`wait_replicas = 0`, Redis's asynchronous
//! replication) and only once the replica acknowledged it (`= 1`: `WAIT 1`
//! pipelined after each write script). Figures in BENCHMARKS.md.
//!
//! On a shared machine consecutive criterion groups see different loads, so
//! the bench also runs the two settings interleaved, round after round, and
//! prints each round's ratio (the median is the figure to trust).
//!
//! Run: `cargo bench -p eric-redis --bench replication`

#![allow(clippy::unwrap_used, missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eric_core::{Channel, ChannelSettings, Listener, Queue};
use eric_redis::test_support::TestSentinel;
use eric_redis::{RedisConfig, RedisEngine};
use tokio::runtime::Runtime;

const BATCH: usize = 10_000;
const IN_FLIGHT: usize = 64;

// The tests' fixtures, shared rather than copied.
#[path = "../tests/common/mod.rs"]
mod common;

use common::{RawChannel, bench_message as message, two_worker_runtime as runtime};

async fn listening(engine: &RedisEngine) -> (RawChannel, Listener) {
    let ch = Channel::new(engine, None, ChannelSettings::default()).unwrap();
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    (ch, l)
}

/// `producers` independent tasks, each dispatching its share in turn.
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

/// A node on `primary` waiting for `replicas` replicas, on its own prefix.
fn engine(primary: &str, replicas: u32) -> RedisEngine {
    RedisEngine::connect(RedisConfig {
        wait_replicas: replicas,
        prefix: format!("b-{}", uuid::Uuid::new_v4().simple()),
        ..RedisConfig::with_url(primary)
    })
    .unwrap()
}

/// Rounds of the interleaved comparison.
const ROUNDS: usize = 10;

/// Both settings in turn (the order alternating), `ROUNDS` times: the
/// median rate of each and the median ratio of the rounds.
#[allow(clippy::print_stderr)]
fn interleaved(rt: &Runtime, primary: &str) {
    for (name, producers) in [("64 producers", IN_FLIGHT), ("one producer", 1)] {
        let (rates, ratios) = rt.block_on(async {
            let mut nodes = Vec::new();
            for replicas in [0, 1] {
                let (ch, l) = listening(&engine(primary, replicas)).await;
                nodes.push((ch, l));
            }
            let (mut rates, mut ratios) = ([Vec::new(), Vec::new()], Vec::new());
            for round in 0..ROUNDS {
                let mut rate = [0.0; 2];
                for i in [round % 2, 1 - round % 2] {
                    let (ch, l) = &nodes[i];
                    let start = Instant::now();
                    fill(ch, l, producers).await;
                    rate[i] = BATCH as f64 / start.elapsed().as_secs_f64();
                    drain(ch, l).await;
                    rates[i].push(rate[i]);
                }
                ratios.push(rate[1] / rate[0]);
            }
            (rates, ratios)
        });
        eprintln!(
            "interleaved, {name}: wait_replicas 0 {:.1} k/s, 1 {:.1} k/s (medians); \
             ratio per round {:.2} median, {:.2} – {:.2}",
            median(&rates[0]) / 1e3,
            median(&rates[1]) / 1e3,
            median(&ratios),
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            ratios.iter().copied().fold(0.0, f64::max),
        );
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn dispatch(c: &mut Criterion, rt: &Runtime, primary: &str) {
    let mut g = c.benchmark_group("replication");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    for replicas in [0, 1] {
        for (producers, in_flight) in [("64", IN_FLIGHT), ("sequential", 1)] {
            let name = format!("dispatch_{producers}_wait_{replicas}");
            g.bench_function(name, |b| {
                b.to_async(rt).iter_custom(|iters| async move {
                    let (ch, l) = listening(&engine(primary, replicas)).await;
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
    }
    g.finish();
}

fn all(c: &mut Criterion) {
    let rt = runtime();
    let set = rt.block_on(TestSentinel::start());
    let primary = rt.block_on(set.primary_url());
    dispatch(c, &rt, &primary);
    interleaved(&rt, &primary);
    rt.block_on(async move { drop(set) });
}

criterion_group!(benches, all);
criterion_main!(benches);
