//! [`RedisStorage`] against a real Redis: the shared [`KvStorage`] contract
//! suite, then what only Redis can get wrong (glob characters, prefixes
//! shared between storages, chunked listings, an unreachable server).
//!
//! Each test owns its [`TestRedis`] (a private server starts in tens of
//! milliseconds) and a unique key prefix, so tests also stay apart on a
//! shared `REDIS_URL` server.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use eric_core::persistence::KvStorage;
use eric_core::testing::StorageFixture;
use eric_redis::test_support::TestRedis;
use eric_redis::{RedisConfig, RedisStorage};
use serde_json::json;

/// A storage on a unique prefix, and the server it needs kept alive.
struct RedisFixture {
    storage: Arc<RedisStorage>,
    config: RedisConfig,
    redis: TestRedis,
}

impl RedisFixture {
    async fn new() -> Self {
        let redis = TestRedis::start().await;
        let config = redis.config();
        Self {
            storage: Arc::new(RedisStorage::new(&config).unwrap()),
            config,
            redis,
        }
    }

    /// A raw connection, to look at or corrupt what the storage wrote.
    async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }
}

impl StorageFixture for RedisFixture {
    fn storage(&self) -> Arc<dyn KvStorage> {
        self.storage.clone()
    }
}

mod contract {
    use super::RedisFixture;
    eric_core::storage_suite!(RedisFixture::new().await);
}

async fn keys(storage: &dyn KvStorage, prefix: &str) -> Vec<String> {
    let entries = storage.fetch_by_prefix(prefix).await.unwrap();
    entries.into_iter().map(|(k, _)| k).collect()
}

#[tokio::test]
async fn pattern_characters_and_shared_prefixes_never_leak_into_a_listing() {
    let f = RedisFixture::new().await;
    let s = &*f.storage;
    let all = [
        "ab", "abc", "ab:x", "ab:", "a*", "a*b", "a?", "a?b", "[ab]", "[ab]:1", "a:b:c", "a\\*",
        "é", "éa",
    ];
    for k in all {
        s.upsert(k, json!(k)).await.unwrap();
    }
    assert_eq!(keys(s, "ab").await, ["ab", "ab:", "ab:x", "abc"]);
    assert_eq!(keys(s, "ab:").await, ["ab:", "ab:x"]);
    assert_eq!(keys(s, "abc").await, ["abc"]);
    assert_eq!(keys(s, "a*").await, ["a*", "a*b"]);
    assert_eq!(keys(s, "a?").await, ["a?", "a?b"]);
    assert_eq!(keys(s, "[ab]").await, ["[ab]", "[ab]:1"]);
    assert_eq!(keys(s, "[").await, ["[ab]", "[ab]:1"]);
    assert_eq!(keys(s, "a:").await, ["a:b:c"]);
    assert_eq!(keys(s, "a\\").await, ["a\\*"]);
    assert_eq!(keys(s, "é").await, ["é", "éa"]);
    for (key, value) in s.fetch_by_prefix("a").await.unwrap() {
        assert_eq!(value, json!(key));
    }
    let mut sorted = all.map(str::to_owned).to_vec();
    sorted.sort();
    assert_eq!(keys(s, "").await, sorted);
}

#[tokio::test]
async fn storages_on_different_prefixes_in_one_redis_are_isolated() {
    let f = RedisFixture::new().await;
    let other = RedisStorage::new(&f.redis.config()).unwrap();
    f.storage.upsert("k", json!("mine")).await.unwrap();
    other.upsert("k", json!("theirs")).await.unwrap();
    other.upsert("only-theirs", json!(1)).await.unwrap();

    assert_eq!(f.storage.fetch_one("k").await.unwrap(), json!("mine"));
    assert_eq!(keys(&*f.storage, "").await, ["k"]);
    f.storage.delete("k").await.unwrap();
    assert_eq!(other.fetch_one("k").await.unwrap(), json!("theirs"));
    assert_eq!(keys(&other, "").await, ["k", "only-theirs"]);
}

#[tokio::test]
async fn five_thousand_keys_are_listed_in_order_across_script_chunks() {
    let f = RedisFixture::new().await;
    let s = &*f.storage;
    let entries: Vec<_> = (0..5_000)
        .map(|n| (format!("bulk:{n:05}"), json!({ "n": n })))
        .collect();
    s.upsert_many(entries).await.unwrap();
    s.upsert_many(vec![("bulk".into(), json!(0)), ("bulky".into(), json!(0))])
        .await
        .unwrap();

    let listed = s.fetch_by_prefix("bulk:").await.unwrap();
    assert_eq!(listed.len(), 5_000);
    for (n, (key, value)) in listed.iter().enumerate() {
        assert_eq!(key, &format!("bulk:{n:05}"));
        assert_eq!(value, &json!({ "n": n }));
    }
    assert_eq!(s.fetch_all().await.unwrap().len(), 5_002);
    let some: Vec<String> = (0..5_000)
        .step_by(999)
        .map(|n| format!("bulk:{n:05}"))
        .collect();
    let fetched = s.fetch_many(&some).await.unwrap();
    assert!(fetched.iter().all(Option::is_some));
}

#[tokio::test]
async fn empty_batches_send_nothing_invalid() {
    let f = RedisFixture::new().await;
    let s = &*f.storage;
    assert_eq!(s.fetch_many(&[]).await.unwrap(), Vec::new());
    s.upsert_many(Vec::new()).await.unwrap();
    s.delete_many(&[]).await.unwrap();
    assert_eq!(s.fetch_all().await.unwrap(), Vec::new());
}

#[tokio::test]
async fn records_live_in_one_hash_and_one_index_under_the_prefix() {
    let f = RedisFixture::new().await;
    f.storage
        .upsert_many(vec![
            ("a".into(), json!(1)),
            ("b".into(), json!({"x": [true]})),
        ])
        .await
        .unwrap();
    let mut raw = f.raw().await;
    let prefix = &f.config.prefix;
    let mut redis_keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut raw)
        .await
        .unwrap();
    redis_keys.sort();
    assert_eq!(
        redis_keys,
        [
            format!("{prefix}:{{%}}:kv:data"),
            format!("{prefix}:{{%}}:kv:index")
        ]
    );
    let stored: Option<String> = redis::cmd("HGET")
        .arg(format!("{prefix}:{{%}}:kv:data"))
        .arg("b")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(r#"{"x":[true]}"#));

    f.storage
        .delete_many(&["a".into(), "b".into()])
        .await
        .unwrap();
    let left: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_stored_value_that_is_not_json_is_a_repository_error() {
    let f = RedisFixture::new().await;
    f.storage.upsert("bad", json!(1)).await.unwrap();
    let mut raw = f.raw().await;
    let () = redis::cmd("HSET")
        .arg(format!("{}:{{%}}:kv:data", f.config.prefix))
        .arg("bad")
        .arg("{not json")
        .query_async(&mut raw)
        .await
        .unwrap();
    let one = f.storage.fetch_one("bad").await.unwrap_err();
    let listed = f.storage.fetch_by_prefix("b").await.unwrap_err();
    let many = f.storage.fetch_many(&["bad".into()]).await.unwrap_err();
    for err in [one, listed, many] {
        assert!(
            matches!(err, eric_core::Error::Repository { .. }),
            "{err:?}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_a_transient_error() {
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = RedisConfig {
        command_timeout_ms: 500,
        ..RedisConfig::with_url(format!("redis://127.0.0.1:{port}"))
    };
    let s = RedisStorage::new(&config).unwrap();
    let errors = [
        s.fetch_one("k").await.unwrap_err(),
        s.upsert("k", json!(1)).await.unwrap_err(),
        s.fetch_by_prefix("k").await.unwrap_err(),
        s.fetch_all().await.unwrap_err(),
        s.delete("k").await.unwrap_err(),
        s.fetch_many(&["k".into()]).await.unwrap_err(),
        s.upsert_many(vec![("k".into(), json!(1))])
            .await
            .unwrap_err(),
        s.delete_many(&["k".into()]).await.unwrap_err(),
    ];
    for err in errors {
        assert!(err.is_transient(), "{err:?}");
        assert!(
            matches!(
                err,
                eric_core::Error::Unavailable { .. } | eric_core::Error::OutcomeUnknown { .. }
            ),
            "{err:?}"
        );
    }
}
