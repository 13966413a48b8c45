//! Redis commands per broadcast, as Redis counts them (`INFO commandstats`,
//! which counts the commands a script calls as well as the script itself),
//! with 10, 1,000 and 10,000 listeners streaming on one node. Each
//! broadcast must cost the same whatever its audience: one log entry, read
//! once by the node, whose caught-up streams share one position in Redis
//! (their group's). Two rounds of broadcasts are counted: the first while
//! the streams join their group (once each, batched), the second after.
//!
//! A count, not a timing: the figures are the same on a busy machine.
//! Against a private `redis-server` (never `REDIS_URL`: the counts must be
//! this run's alone).
//!
//! Run: `cargo bench -p eric-redis --bench commands`

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::collections::BTreeMap;

use eric_core::{Channel, ChannelSettings, Message};
use eric_redis::RedisEngine;
use eric_redis::test_support::TestRedis;
use serde_json::json;

const BROADCASTS: usize = 50;

// The tests' reading of `INFO commandstats`, shared rather than copied.
#[path = "../tests/common/mod.rs"]
mod common;

use common::RawChannel;

async fn reset_stats(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut c)
        .await
        .unwrap();
}

/// Commands per broadcast with `listeners` streams on one node: the first
/// round of broadcasts and the second, each with its calls by command.
async fn measure(redis: &TestRedis, listeners: usize) -> [(f64, BTreeMap<String, u64>); 2] {
    let engine = RedisEngine::connect(redis.config()).unwrap();
    let ch: RawChannel = Channel::new(&engine, None, ChannelSettings::default()).unwrap();
    let (mut finished, readers) = eric_core::testing::fan_out::streaming(&ch, listeners, 1).await;
    let message = Message::try_new("bench", json!({"n": 1})).unwrap();
    // One broadcast first, so every stream has made its first take.
    ch.broadcast(&message).await.unwrap();
    for _ in 0..listeners {
        finished.recv().await.unwrap();
    }
    let mut rounds = Vec::new();
    for _ in 0..2 {
        reset_stats(redis.url()).await;
        for _ in 0..BROADCASTS {
            ch.broadcast(&message).await.unwrap();
        }
        for _ in 0..listeners * BROADCASTS {
            finished.recv().await.unwrap();
        }
        let mut calls: BTreeMap<String, u64> = common::command_calls(redis.url())
            .await
            .into_iter()
            .collect();
        // The measurement's own commands.
        for own in ["info", "config|resetstat"] {
            calls.remove(own);
        }
        let total: u64 = calls.values().sum();
        rounds.push((total as f64 / BROADCASTS as f64, calls));
    }
    for reader in readers {
        reader.abort();
    }
    let second = rounds.pop().unwrap();
    [rounds.pop().unwrap(), second]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let redis = TestRedis::start_private().await;
        println!("Redis commands per broadcast ({BROADCASTS} broadcasts, streams on one node)");
        println!(
            "{:>10}  {:>6}  {:>13}  calls by command",
            "listeners", "round", "per broadcast"
        );
        for listeners in [10, 1_000, 10_000] {
            for (round, (per, calls)) in measure(&redis, listeners).await.iter().enumerate() {
                let detail: Vec<String> = calls
                    .iter()
                    .map(|(name, n)| format!("{name}={:.1}", *n as f64 / BROADCASTS as f64))
                    .collect();
                println!(
                    "{listeners:>10}  {:>6}  {per:>13.1}  {}",
                    round + 1,
                    detail.join(" ")
                );
            }
        }
    });
}
