//! What subscriptions leave in Redis: the index sets, `subs` and `open` go
//! with the listener, with the last filtering listener, and with the
//! channel; and two nodes apply one listener's filters alike.

#![allow(clippy::unwrap_used)]

use eric_core::channel::RawAdapter;
use eric_core::persistence::{ChannelRecord, ChannelRepository};
use eric_core::{
    Channel, ChannelId, ChannelSettings, Message, Subscription, SubscriptionChange, Subscriptions,
};
use eric_redis::RedisEngine;
use eric_redis::test_support::TestRedis;
use serde_json::json;

type RawChannel = Channel<RedisEngine, RawAdapter>;

async fn create(engine: &RedisEngine, id: &str) -> RawChannel {
    let id: ChannelId = id.parse().unwrap();
    let settings = ChannelSettings::default();
    engine
        .channel_repository()
        .create(&ChannelRecord {
            id: id.clone(),
            settings: settings.clone(),
        })
        .await
        .unwrap();
    Channel::new(engine, Some(id), settings).unwrap()
}

fn subs(list: &[(&str, Option<&str>)]) -> Subscriptions {
    list.iter()
        .map(|(t, f)| Subscription::new(t.parse().unwrap(), f.map(|f| f.parse().unwrap())))
        .collect()
}

/// The keys of channel `id`, sorted, without the prefix and tag.
async fn keys_of(url: &str, prefix: &str, id: &str) -> Vec<String> {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let base = format!("{prefix}:{{{id}}}:");
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{base}*"))
        .query_async(&mut c)
        .await
        .unwrap();
    keys.sort();
    keys.into_iter()
        .map(|k| k[base.len()..].replace('\n', "\\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_keys_go_with_their_listener_and_their_channel() {
    let redis = TestRedis::start().await;
    let config = redis.config();
    let engine = RedisEngine::connect(config.clone()).unwrap();
    let ch = create(&engine, "c").await;
    let plain = ch.add_listener().await.unwrap();
    let before = keys_of(redis.url(), &config.prefix, "c").await;
    let a = ch
        .add_listener_with(subs(&[("t", Some("a.b")), ("u", None)]))
        .await
        .unwrap();
    let keys = keys_of(redis.url(), &config.prefix, "c").await;
    for key in ["open", "subs", "x:t\\na.b", "x:u\\n"] {
        assert!(keys.contains(&key.to_owned()), "{key} in {keys:?}");
    }
    // The listener without subscriptions still gets every broadcast, the
    // other only its matches.
    let m = Message::try_new("v", json!(1)).unwrap();
    assert_eq!(ch.broadcast(&m).await.unwrap().delivered, 1);
    let m = Message::try_new("t", json!(2))
        .unwrap()
        .with_topic("a.b.c".parse().unwrap());
    assert_eq!(ch.broadcast(&m).await.unwrap().delivered, 2);

    // Dropping the last filtering listener's set leaves the keys as they
    // were before it had one (queues aside).
    let none = SubscriptionChange::Replace(Subscriptions::default());
    ch.change_subscriptions(a.id(), none).await.unwrap();
    let indexes = |keys: Vec<String>| -> Vec<String> {
        keys.into_iter()
            .filter(|k| k.starts_with("x:") || k == "subs" || k == "open")
            .collect()
    };
    let left = indexes(keys_of(redis.url(), &config.prefix, "c").await);
    assert!(left.is_empty(), "{left:?}");
    assert!(indexes(before).is_empty());

    ch.change_subscriptions(a.id(), SubscriptionChange::Replace(subs(&[("t", None)])))
        .await
        .unwrap();
    ch.remove_listener(a.id()).await.unwrap();
    let left = indexes(keys_of(redis.url(), &config.prefix, "c").await);
    assert!(
        left.is_empty(),
        "removing the listener removed its keys: {left:?}"
    );

    ch.add_listener_with(subs(&[("t", Some("z"))]))
        .await
        .unwrap();
    engine.channel_repository().delete(ch.id()).await.unwrap();
    assert_eq!(
        keys_of(redis.url(), &config.prefix, "c").await,
        Vec::<String>::new(),
        "deleting the channel deleted everything"
    );
    drop(plain);
    engine.shutdown();
}

/// A listener's filters are in Redis: a broadcast from a second node, which
/// never saw the listener, applies them; a change made on the second node
/// applies to broadcasts from the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_applies_the_same_filters() {
    let redis = TestRedis::start().await;
    let config = redis.config();
    let one = RedisEngine::connect(config.clone()).unwrap();
    let two = RedisEngine::connect(config.clone()).unwrap();
    let on_one = create(&one, "c").await;
    let on_two: RawChannel =
        Channel::new(&two, Some("c".parse().unwrap()), ChannelSettings::default()).unwrap();
    let l = on_one
        .add_listener_with(subs(&[("t", Some("lab"))]))
        .await
        .unwrap();
    let about = |t: &str, n: i64, topic: &str| {
        Message::try_new(t, json!(n))
            .unwrap()
            .with_topic(topic.parse().unwrap())
    };
    assert_eq!(
        on_two
            .broadcast(&about("t", 1, "office"))
            .await
            .unwrap()
            .delivered,
        0
    );
    assert_eq!(
        on_two
            .broadcast(&about("t", 2, "lab.x"))
            .await
            .unwrap()
            .delivered,
        1
    );
    on_two
        .change_subscriptions(
            l.id(),
            SubscriptionChange::Replace(subs(&[("t", Some("office"))])),
        )
        .await
        .unwrap();
    assert_eq!(
        on_one.subscriptions(l.id()).await.unwrap(),
        subs(&[("t", Some("office"))])
    );
    assert_eq!(
        on_one
            .broadcast(&about("t", 3, "office"))
            .await
            .unwrap()
            .delivered,
        1
    );
    assert_eq!(
        on_one
            .broadcast(&about("t", 4, "lab"))
            .await
            .unwrap()
            .delivered,
        0
    );
    on_one.start_listener(l.id()).await.unwrap();
    let mut got = Vec::new();
    while let Ok(d) = on_one.deliver_next(l.id()).await {
        got.push(d.message.payload_value().as_i64().unwrap());
    }
    assert_eq!(got, [2, 3]);
    one.shutdown();
    two.shutdown();
}
