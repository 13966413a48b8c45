//! The persistence suite: the [`KvStorage`] contract, and persist/restore
//! round trips through a [`PersistenceFixture`].

use serde_json::{Value, json};

use super::{PersistenceFixture, StorageFixture};
use crate::channel::{Channel, ChannelSettings, RawAdapter};
use crate::error::Error;
use crate::id::{ChannelId, ListenerId};
use crate::listener::Listener;
use crate::message::Message;
use crate::persistence::KvStorage;

fn msg(n: i64) -> Message {
    Message::try_new("t", json!(n)).unwrap()
}

fn id(s: &str) -> ChannelId {
    ChannelId::new(s).unwrap()
}

type NodeChannel<F> = Channel<<F as PersistenceFixture>::Engine, RawAdapter>;

fn new_channel<F: PersistenceFixture>(f: &F, channel: &str) -> NodeChannel<F> {
    let (engine, _) = f.node();
    Channel::new(&engine, Some(id(channel)), ChannelSettings::default()).unwrap()
}

async fn keys(storage: &dyn KvStorage, prefix: &str) -> Vec<String> {
    let entries = storage.fetch_by_prefix(prefix).await.unwrap();
    entries.into_iter().map(|(k, _)| k).collect()
}

/// Reference (`test_repository.py`): CRUD, `ItemNotFound`, idempotent delete.
pub async fn storage_upsert_fetch_delete_and_item_not_found<F: StorageFixture>(f: &F) {
    let s = f.storage();
    s.upsert("k", json!({"a": 1})).await.unwrap();
    assert_eq!(s.fetch_one("k").await.unwrap(), json!({"a": 1}));
    s.upsert("k", json!(2)).await.unwrap();
    assert_eq!(s.fetch_one("k").await.unwrap(), json!(2));
    s.delete("k").await.unwrap();
    s.delete("k").await.unwrap();
    match s.fetch_one("k").await {
        Err(Error::ItemNotFound { key }) => assert!(key.ends_with('k')),
        other => panic!("expected ItemNotFound, got {other:?}"),
    }
}

/// Prefixes are literal (no glob) and listings come in key order.
pub async fn storage_prefix_is_literal_and_in_key_order<F: StorageFixture>(f: &F) {
    let s = f.storage();
    for k in ["a:2", "a:1", "ab:1", "a*:1", "b", "a", "a?"] {
        s.upsert(k, json!(k)).await.unwrap();
    }
    assert_eq!(keys(&*s, "a:").await, ["a:1", "a:2"]);
    assert_eq!(keys(&*s, "a*").await, ["a*:1"]);
    assert_eq!(keys(&*s, "zz").await, Vec::<String>::new());
    let all: Vec<String> = s
        .fetch_all()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(all, ["a", "a*:1", "a:1", "a:2", "a?", "ab:1", "b"]);
    let (_, v) = &s.fetch_by_prefix("ab").await.unwrap()[0];
    assert_eq!(v, &json!("ab:1"));
}

/// The batch forms agree with the single calls.
pub async fn storage_batches_match_single_calls<F: StorageFixture>(f: &F) {
    let s = f.storage();
    s.upsert_many(vec![("x".into(), json!(1)), ("y".into(), json!(2))])
        .await
        .unwrap();
    let got = s
        .fetch_many(&["y".into(), "nope".into(), "x".into()])
        .await
        .unwrap();
    assert_eq!(got, [Some(json!(2)), None, Some(json!(1))]);
    s.delete_many(&["x".into(), "nope".into()]).await.unwrap();
    assert_eq!(keys(&*s, "").await, ["y"]);
}

/// JSON values survive exactly: nesting, unicode, numbers, null.
pub async fn storage_keeps_json_values_intact<F: StorageFixture>(f: &F) {
    let s = f.storage();
    let v: Value =
        json!({"é€": [1, 2.5, -3, null, true, "\u{1F600}"], "n": {"deep": {"x": "line\nbreak"}}});
    s.upsert("v", v.clone()).await.unwrap();
    assert_eq!(s.fetch_one("v").await.unwrap(), v);
}

/// `load_persisted_data` in a fresh process brings everything back.
pub async fn restore_brings_back_settings_listeners_flags_and_messages<F: PersistenceFixture>(
    f: &F,
) {
    let (engine, store) = f.node();
    let settings = ChannelSettings {
        retry_ms: 1500,
        queue_capacity: 7,
        ..Default::default()
    };
    let ch: NodeChannel<F> = Channel::new(&engine, Some(id("room")), settings.clone()).unwrap();
    let running = ch.add_listener().await.unwrap();
    ch.start_listener(running.id()).await.unwrap();
    let idle = Listener::with_id(ListenerId::new("idle").unwrap());
    let filters: crate::Subscriptions = [crate::Subscription::new(
        "n".parse().unwrap(),
        Some("lab".parse().unwrap()),
    )]
    .into_iter()
    .collect();
    ch.register_listener_with(idle.clone(), Some(filters.clone()))
        .await
        .unwrap();
    for n in 1..=3 {
        ch.dispatch(running.id(), msg(n)).await.unwrap();
    }
    ch.dispatch(idle.id(), msg(9)).await.unwrap();
    store.persist(&ch).await.unwrap();
    drop((ch, store, engine));

    let (_, store) = f.node();
    let restored = store.load_one(&id("room")).await.unwrap();
    assert_eq!(restored.settings(), &settings);
    let ids = restored.listener_ids().await.unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(running.id()) && ids.contains(idle.id()));
    assert!(
        restored
            .get_listener(running.id())
            .await
            .unwrap()
            .is_running()
    );
    assert!(!restored.get_listener(idle.id()).await.unwrap().is_running());
    let mut got = Vec::new();
    while let Ok(d) = restored.deliver_next(running.id()).await {
        got.push(d.message.payload_value().as_i64().unwrap());
    }
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(restored.queue_len(idle.id()).await.unwrap(), 1);
    assert_eq!(
        restored.subscriptions(idle.id()).await.unwrap(),
        filters,
        "subscriptions are restored"
    );
    assert!(
        restored
            .subscriptions(running.id())
            .await
            .unwrap()
            .is_empty()
    );
}

/// Reference bug: channel `ab` loaded the members of `abc` and `ab:x`,
/// and glob characters matched other channels.
pub async fn channel_ids_sharing_prefixes_or_pattern_characters_stay_apart<
    F: PersistenceFixture,
>(
    f: &F,
) {
    let names = ["ab", "abc", "ab:x", "a*", "a?", "[ab]", "a%3Ax", "a", "ab:"];
    let (_, store) = f.node();
    for (n, name) in names.iter().enumerate() {
        let ch = new_channel(f, name);
        let l = Listener::with_id(ListenerId::new(format!("l-{n}")).unwrap());
        ch.register_listener(l.clone()).await.unwrap();
        ch.dispatch(l.id(), msg(n as i64)).await.unwrap();
        store.persist(&ch).await.unwrap();
    }
    let (_, store) = f.node();
    for (n, name) in names.iter().enumerate() {
        let ch = store.load_one(&id(name)).await.unwrap();
        let ids = ch.listener_ids().await.unwrap();
        assert_eq!(
            ids,
            [ListenerId::new(format!("l-{n}")).unwrap()],
            "channel {name}"
        );
        ch.start_listener(&ids[0]).await.unwrap();
        let d = ch.deliver_next(&ids[0]).await.unwrap();
        assert_eq!(d.message.payload_value(), json!(n), "channel {name}");
    }
    assert_eq!(
        store.load_persisted_data(None).await.unwrap().len(),
        names.len()
    );
}

/// Reference bug: persisting a stale channel object deleted the listeners
/// (and queued messages) another process had added.
pub async fn persist_keeps_listeners_added_elsewhere<F: PersistenceFixture>(f: &F) {
    let (_, store_a) = f.node();
    let a = new_channel(f, "shared");
    store_a.persist(&a).await.unwrap();
    let (_, store_b) = f.node();
    let b = store_b.load_one(&id("shared")).await.unwrap();

    let from_a = a.add_listener().await.unwrap();
    a.dispatch(from_a.id(), msg(1)).await.unwrap();
    store_a.persist(&a).await.unwrap();
    let from_b = b.add_listener().await.unwrap();
    store_b.persist(&b).await.unwrap();

    let (_, store) = f.node();
    let restored = store.load_one(&id("shared")).await.unwrap();
    let ids = restored.listener_ids().await.unwrap();
    assert!(
        ids.contains(from_a.id()),
        "A's listener was deleted by B's persist"
    );
    assert!(ids.contains(from_b.id()));
    assert_eq!(restored.queue_len(from_a.id()).await.unwrap(), 1);
}

/// What a channel object removed is deleted at its next persist.
pub async fn persist_deletes_the_listeners_it_removed<F: PersistenceFixture>(f: &F) {
    let (_, store) = f.node();
    let ch = new_channel(f, "pruned");
    let keep = ch.add_listener().await.unwrap();
    let gone = ch.add_listener().await.unwrap();
    store.persist(&ch).await.unwrap();
    ch.remove_listener(gone.id()).await.unwrap();
    store.persist(&ch).await.unwrap();
    let (_, store) = f.node();
    let restored = store.load_one(&id("pruned")).await.unwrap();
    assert_eq!(restored.listener_ids().await.unwrap(), [keep.id().clone()]);
}

/// Reference bug: deleting a channel that had members crashed.
pub async fn delete_removes_a_channel_with_members_and_is_idempotent<F: PersistenceFixture>(f: &F) {
    let (_, store) = f.node();
    let ch = new_channel(f, "doomed");
    let l = ch.add_listener().await.unwrap();
    ch.dispatch(l.id(), msg(1)).await.unwrap();
    let other = new_channel(f, "doomed2");
    other.add_listener().await.unwrap();
    store.persist(&ch).await.unwrap();
    store.persist(&other).await.unwrap();
    store.delete(&id("doomed")).await.unwrap();
    store.delete(&id("doomed")).await.unwrap();
    store.delete(&id("never-existed")).await.unwrap();
    let (_, store) = f.node();
    assert!(matches!(
        store.load_one(&id("doomed")).await,
        Err(Error::InvalidChannel { .. })
    ));
    let survivor = store.load_one(&id("doomed2")).await.unwrap();
    assert_eq!(survivor.listener_ids().await.unwrap().len(), 1);
}

/// An absent channel is a typed error, not a crash or an empty success.
pub async fn loading_a_missing_channel_is_invalid_channel<F: PersistenceFixture>(f: &F) {
    let (_, store) = f.node();
    let err = store
        .load_persisted_data(Some(&id("nope")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidChannel { ref channel } if channel.as_str() == "nope"));
}

/// `load_persisted_data(None)` restores all channels.
pub async fn load_all_restores_every_channel<F: PersistenceFixture>(f: &F) {
    let (_, store) = f.node();
    for n in 0..20 {
        let ch = new_channel(f, &format!("ch-{n:02}"));
        for _ in 0..3 {
            ch.add_listener().await.unwrap();
        }
        store.persist(&ch).await.unwrap();
    }
    let (_, store) = f.node();
    let all = store.load_persisted_data(None).await.unwrap();
    assert_eq!(all.len(), 20);
    for ch in all {
        assert_eq!(ch.listener_ids().await.unwrap().len(), 3, "{}", ch.id());
    }
}

/// Sequence numbers (SSE ids) keep growing across a restart.
pub async fn sequence_numbers_continue_after_restore<F: PersistenceFixture>(f: &F) {
    let (_, store) = f.node();
    let ch = new_channel(f, "seq");
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    for n in 1..=3 {
        ch.dispatch(l.id(), msg(n)).await.unwrap();
    }
    ch.deliver_next(l.id()).await.unwrap();
    store.persist(&ch).await.unwrap();
    let (_, store) = f.node();
    let restored = store.load_one(&id("seq")).await.unwrap();
    assert_eq!(restored.deliver_next(l.id()).await.unwrap().seq, 2);
    assert_eq!(restored.dispatch(l.id(), msg(4)).await.unwrap(), 4);
}

/// Topics are part of the stored message: `load_persisted_data` in a fresh
/// process brings them back, and messages without one still have none.
pub async fn restore_keeps_every_message_topic<F: PersistenceFixture>(f: &F) {
    let (engine, store) = f.node();
    let ch: NodeChannel<F> =
        Channel::new(&engine, Some(id("topics")), ChannelSettings::default()).unwrap();
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    let sent = [
        msg(1).with_topic("lab.fridge-1".parse().unwrap()),
        msg(2),
        Message::unique(&msg(3), None, None).with_topic("caf\u{e9}..x".parse().unwrap()),
    ];
    for m in &sent {
        ch.dispatch(l.id(), m.clone()).await.unwrap();
    }
    store.persist(&ch).await.unwrap();
    drop((ch, store, engine));

    let (_, store) = f.node();
    let restored = store
        .load_persisted_data(Some(&id("topics")))
        .await
        .unwrap()
        .pop()
        .unwrap();
    let mut got = Vec::new();
    while let Ok(d) = restored.deliver_next(l.id()).await {
        got.push(d.message);
    }
    assert_eq!(got, sent);
}
