//! Global keys and channel keys live in disjoint namespaces: no channel or
//! listener id, however it is spelled, reaches a key that is not its own.
//!
//! The test is layout-agnostic: it runs the same life cycle (create, fill,
//! watch, delete a channel) once with neutral ids and once per reserved word
//! (every name or tag a global key uses), each under a fresh prefix, and
//! compares everything left under the prefix. Deleting a channel removes all
//! of its keys, so what is left is the global state: it must not depend on
//! the ids used.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use eric_core::channel::RawAdapter;
use eric_core::persistence::{ChannelRecord, ChannelRepository, KvStorage};
use eric_core::testing::within;
use eric_core::{Channel, ChannelId, ChannelSettings, Listener, ListenerId, Message};
use eric_redis::test_support::TestRedis;
use eric_redis::{RedisEngine, RedisStorage};
use futures_util::StreamExt;
use serde_json::json;

/// Names and tags global keys use (or used), and the characters around them.
const RESERVED: &[&str] = &[
    "channels",
    "channels:order",
    "channels:index",
    "order",
    "index",
    "kv",
    "kv:data",
    "data",
    "leases",
    "%",
    "%25",
    "{%}",
    "meta",
];

/// Every key under `prefix` with its value rendered as text (tests may use
/// `KEYS`; the engine never does).
async fn snapshot(url: &str, prefix: &str) -> BTreeMap<String, String> {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut c)
        .await
        .unwrap();
    let mut out = BTreeMap::new();
    for key in keys {
        let kind: String = redis::cmd("TYPE")
            .arg(&key)
            .query_async(&mut c)
            .await
            .unwrap();
        let value = match kind.as_str() {
            "string" => redis::cmd("GET")
                .arg(&key)
                .query_async::<String>(&mut c)
                .await
                .unwrap(),
            "hash" => format!(
                "{:?}",
                redis::cmd("HGETALL")
                    .arg(&key)
                    .query_async::<BTreeMap<String, String>>(&mut c)
                    .await
                    .unwrap()
            ),
            "zset" => format!(
                "{:?}",
                redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query_async::<Vec<String>>(&mut c)
                    .await
                    .unwrap()
            ),
            "list" => format!(
                "{:?}",
                redis::cmd("LRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query_async::<Vec<String>>(&mut c)
                    .await
                    .unwrap()
            ),
            other => other.to_owned(),
        };
        out.insert(key[prefix.len()..].to_owned(), format!("{kind} {value}"));
    }
    out
}

fn settings() -> ChannelSettings {
    ChannelSettings::default()
}

async fn create(engine: &RedisEngine, id: &str) -> Channel<RedisEngine, RawAdapter> {
    let id: ChannelId = id.parse().unwrap();
    engine
        .channel_repository()
        .create(&ChannelRecord {
            id: id.clone(),
            settings: settings(),
        })
        .await
        .unwrap();
    Channel::new(engine, Some(id), settings()).unwrap()
}

async fn channel_order(engine: &RedisEngine) -> Vec<String> {
    engine
        .channel_repository()
        .load_all()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id.to_string())
        .collect()
}

/// Global state before the cycle: indexed channels and storage records.
async fn set_up(engine: &RedisEngine, storage: &RedisStorage) {
    for id in ["a0", "a1", "a2"] {
        create(engine, id).await;
    }
    storage.upsert("kv:one", json!(1)).await.unwrap();
    storage.upsert("channels", json!(2)).await.unwrap();
}

/// Creates channel `channel`, registers listeners `listener` (and a fresh
/// one), dispatches, broadcasts, watches, then deletes the channel.
async fn cycle(engine: &RedisEngine, channel: &str, listener: &str) {
    let ch = create(engine, channel).await;
    let named: ListenerId = listener.parse().unwrap();
    ch.register_listener(Listener::with_id(named.clone()))
        .await
        .unwrap();
    let fresh = ch.add_listener().await.unwrap();
    let message = Message::try_new("t", json!(listener)).unwrap();
    ch.dispatch(&named, message.clone()).await.unwrap();
    ch.dispatch(fresh.id(), message.clone()).await.unwrap();
    let mut watch = ch.watch().await.unwrap();
    ch.broadcast(&message).await.unwrap();
    within("the broadcast on the watch stream", watch.next())
        .await
        .unwrap();
    watch.close().await.unwrap();
    ch.remove_listener(fresh.id()).await.unwrap();
    engine
        .persistence::<RawAdapter>()
        .delete(ch.id())
        .await
        .unwrap();
}

/// Runs the set-up and one cycle under a fresh prefix; returns what is left.
async fn run(redis: &TestRedis, channel: &str, listener: &str) -> BTreeMap<String, String> {
    let config = redis.config();
    let engine = RedisEngine::connect(config.clone()).unwrap();
    let storage = RedisStorage::new(&config).unwrap();
    set_up(&engine, &storage).await;
    cycle(&engine, channel, listener).await;
    // The channel index keeps its order: a new channel comes last.
    create(&engine, "z").await;
    assert_eq!(
        channel_order(&engine).await,
        ["a0", "a1", "a2", "z"],
        "channel {channel:?} with listener {listener:?} reordered the index"
    );
    assert_eq!(
        storage.fetch_all().await.unwrap().len(),
        2,
        "channel {channel:?} touched the storage records"
    );
    engine.shutdown();
    snapshot(redis.url(), &config.prefix).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_words_as_channel_or_listener_ids_touch_no_global_key() {
    let redis = TestRedis::start().await;
    let control = run(&redis, "neutral", "someone").await;
    for word in RESERVED {
        for (channel, listener) in [(*word, "someone"), ("neutral", *word), (*word, *word)] {
            let left = run(&redis, channel, listener).await;
            assert_eq!(
                left, control,
                "channel {channel:?}, listener {listener:?}: the global state differs"
            );
        }
    }
}
