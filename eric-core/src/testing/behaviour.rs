//! The behaviour suite: what every engine's channels must do.
//!
//! Cases mirror the reference's tests (`test_entities.py`) where we keep its
//! behaviour, and name the deviation where we fixed it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::{EngineFixture, within};
use crate::channel::{
    Channel, ChannelSettings, MessageStream, RawAdapter, StreamEnd, StreamItem, StreamOptions,
};
use crate::engine::{Broadcasts, Engine};
use crate::error::{BoxError, Error, NoMessagesReason, QueueBound};
use crate::id::ListenerId;
use crate::listener::{FnHook, Listener};
use crate::message::Message;
use crate::queue::{Delivery, Taken};

pub(super) type TestChannel<F> = Channel<<F as EngineFixture>::Engine, RawAdapter>;

pub(super) fn channel<F: EngineFixture>(fixture: &F) -> TestChannel<F> {
    channel_with(fixture, ChannelSettings::default())
}

pub(super) fn channel_with<F: EngineFixture>(
    fixture: &F,
    settings: ChannelSettings,
) -> TestChannel<F> {
    Channel::new(&fixture.engine(), None, settings).unwrap()
}

pub(super) fn msg(t: &str, payload: Value) -> Message {
    Message::try_new(t, payload).unwrap()
}

pub(super) async fn next(stream: &mut MessageStream<Delivery>) -> StreamItem<Delivery> {
    within("a stream item", stream.next())
        .await
        .expect("stream ended without an End item")
}

pub(super) async fn next_message(stream: &mut MessageStream<Delivery>) -> Delivery {
    match next(stream).await {
        StreamItem::Message(d) => d,
        other => panic!("expected a message, got {other:?}"),
    }
}

pub(super) fn payload_of(d: &Delivery) -> i64 {
    d.message.payload_value().as_i64().unwrap()
}

/// Reference: new listeners are not running; `get_connections` keeps order.
pub async fn new_listeners_are_stopped_and_listed_in_registration_order<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let a = ch.add_listener().await.unwrap();
    let b = Listener::with_id(ListenerId::new("b").unwrap());
    ch.register_listener(b.clone()).await.unwrap();
    let c = ch.add_listener().await.unwrap();
    assert!(!a.is_running());
    assert_eq!(
        ch.listener_ids().await.unwrap(),
        [a.id().clone(), b.id().clone(), c.id().clone()]
    );
    let members = ch.members().await.unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(members[1].listener_id(), b.id());
    assert_ne!(
        members[1].id().as_str(),
        b.id().as_str(),
        "member ids are not listener ids"
    );
    assert_eq!(ch.get_listener(b.id()).await.unwrap().id(), b.id());
}

/// Reference: unknown listener ids raise `InvalidListenerException`.
pub async fn unknown_listeners_are_invalid_everywhere<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let ghost = ListenerId::new("ghost").unwrap();
    let invalid =
        |e: Error| matches!(e, Error::InvalidListener { ref listener, .. } if listener == &ghost);
    assert!(invalid(ch.get_listener(&ghost).await.unwrap_err()));
    assert!(invalid(
        ch.dispatch(&ghost, msg("t", json!(1))).await.unwrap_err()
    ));
    assert!(invalid(ch.deliver_next(&ghost).await.unwrap_err()));
    assert!(invalid(ch.remove_listener(&ghost).await.unwrap_err()));
    assert!(invalid(
        ch.stream(&ghost, StreamOptions::default())
            .await
            .unwrap_err()
    ));
    assert!(invalid(
        ch.message_stream(&Listener::with_id(ghost.clone()))
            .await
            .unwrap_err()
    ));
}

/// Reference: `deliver_next` raises `NoMessagesException` when empty or
/// stopped, and a stopped listener's messages stay queued.
pub async fn deliver_next_is_fifo_and_keeps_messages_of_stopped_listeners<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = ch.add_listener().await.unwrap();
    let empty = ch.deliver_next(l.id()).await.unwrap_err();
    assert!(matches!(
        empty,
        Error::NoMessages {
            reason: NoMessagesReason::Stopped,
            ..
        }
    ));
    for n in 1..=3 {
        assert_eq!(
            ch.dispatch(l.id(), msg("t", json!(n))).await.unwrap(),
            n as u64
        );
    }
    assert!(matches!(
        ch.deliver_next(l.id()).await,
        Err(Error::NoMessages {
            reason: NoMessagesReason::Stopped,
            ..
        })
    ));
    assert_eq!(ch.queue_len(l.id()).await.unwrap(), 3);
    ch.start_listener(l.id()).await.unwrap();
    for n in 1..=3 {
        let d = ch.deliver_next(l.id()).await.unwrap();
        assert_eq!((d.seq, payload_of(&d)), (n, n as i64));
    }
    assert!(matches!(
        ch.deliver_next(l.id()).await,
        Err(Error::NoMessages {
            reason: NoMessagesReason::Empty,
            ..
        })
    ));
}

/// Deviation: a full queue no longer aborts a broadcast; it is named.
pub async fn broadcast_reaches_every_listener_and_names_full_queues<F: EngineFixture>(f: &F) {
    let ch = channel_with(
        f,
        ChannelSettings {
            queue_capacity: 1,
            ..Default::default()
        },
    );
    let ids: Vec<ListenerId> = futures_util::future::join_all((0..3).map(|_| ch.add_listener()))
        .await
        .into_iter()
        .map(|l| l.unwrap().id().clone())
        .collect();
    let b = ch.broadcast(&msg("all", json!("hi"))).await.unwrap();
    assert_eq!((b.delivered, b.full.len()), (3, 0));
    ch.deliver_next(&ids[0]).await.unwrap_err();
    ch.start_listener(&ids[0]).await.unwrap();
    assert_eq!(
        ch.deliver_next(&ids[0])
            .await
            .unwrap()
            .message
            .payload_value(),
        json!("hi")
    );
    let b = ch.broadcast(&msg("again", json!(null))).await.unwrap();
    match <F::Engine as Engine>::BROADCASTS {
        Broadcasts::Copied => {
            assert_eq!(b.delivered, 1);
            let full: HashSet<_> = b.full.into_iter().collect();
            assert_eq!(full, ids[1..].iter().cloned().collect());
        }
        Broadcasts::Logged => {
            // Nobody refuses; the listeners that kept the first lose it to
            // the newer one, within their bound, and a stream says so.
            assert_eq!((b.delivered, b.full.len()), (3, 0));
            assert_eq!(ch.queue_len(&ids[1]).await.unwrap(), 1);
            ch.start_listener(&ids[1]).await.unwrap();
            let mut s = ch.stream(&ids[1], StreamOptions::default()).await.unwrap();
            assert!(matches!(next(&mut s).await, StreamItem::Gap { .. }));
            assert_eq!(
                next_message(&mut s).await.message.msg_type().as_str(),
                "again"
            );
            drop(s);
            ch.start_listener(&ids[2]).await.unwrap();
            let d = ch.deliver_next(&ids[2]).await.unwrap();
            assert_eq!(d.message.msg_type().as_str(), "again");
        }
    }
}

/// Queues are bounded with an explicit error; what they hold is kept.
pub async fn full_queue_refuses_and_loses_nothing<F: EngineFixture>(f: &F) {
    let ch = channel_with(
        f,
        ChannelSettings {
            queue_capacity: 2,
            ..Default::default()
        },
    );
    let l = ch.add_listener().await.unwrap();
    ch.dispatch(l.id(), msg("t", json!(1))).await.unwrap();
    ch.dispatch(l.id(), msg("t", json!(2))).await.unwrap();
    let err = ch.dispatch(l.id(), msg("t", json!(3))).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::QueueFull {
                bound: QueueBound::Messages(2),
                ..
            }
        ),
        "{err:?}"
    );
    ch.start_listener(l.id()).await.unwrap();
    assert_eq!(payload_of(&ch.deliver_next(l.id()).await.unwrap()), 1);
    assert_eq!(payload_of(&ch.deliver_next(l.id()).await.unwrap()), 2);
    ch.dispatch(l.id(), msg("t", json!(4))).await.unwrap();
}

/// Deviation: the reference replaced the queue (losing its messages).
pub async fn re_registering_a_listener_keeps_its_queue<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = ch.add_listener().await.unwrap();
    ch.dispatch(l.id(), msg("t", json!(1))).await.unwrap();
    let again = Listener::with_id(l.id().clone());
    again.start();
    let member = ch.register_listener(again.clone()).await.unwrap();
    assert_eq!(ch.listener_ids().await.unwrap().len(), 1);
    assert!(ch.get_listener(l.id()).await.unwrap().is_running());
    assert_eq!(
        payload_of(&ch.deliver_next(member.listener_id()).await.unwrap()),
        1
    );
}

/// Registering a new object for a listener id keeps the queue; streams on
/// the replaced object end (they would be out of reach of start and stop).
pub async fn re_registering_a_listener_ends_streams_on_the_replaced_object<F: EngineFixture>(
    f: &F,
) {
    let ch = channel(f);
    let old = ch.add_listener().await.unwrap();
    ch.start_listener(old.id()).await.unwrap();
    let mut s = ch.message_stream(&old).await.unwrap();
    let reader = tokio::spawn(async move { next(&mut s).await });
    tokio::task::yield_now().await;
    let new = Listener::with_id(old.id().clone());
    new.start();
    ch.register_listener(new.clone()).await.unwrap();
    let item = within("the old stream to end", reader).await.unwrap();
    assert!(
        matches!(item, StreamItem::End(StreamEnd::Stopped)),
        "{item:?}"
    );
    ch.dispatch(new.id(), msg("t", json!(1))).await.unwrap();
    let mut again = ch.message_stream(&new).await.unwrap();
    assert_eq!(payload_of(&next_message(&mut again).await), 1);
}

/// `register_member` registers as-is and refuses a taken id.
pub async fn register_member_refuses_a_taken_listener_id<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = ch.add_listener().await.unwrap();
    let member = ch.member(l.id()).await.unwrap();
    let err = ch.register_member(member).await.unwrap_err();
    assert!(matches!(err, Error::ListenerExists { .. }));
}

/// Reference: `remove_listener` unregisters; its queue goes with it.
pub async fn removed_listener_is_gone_and_its_messages_with_it<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = ch.add_listener().await.unwrap();
    ch.dispatch(l.id(), msg("t", json!(1))).await.unwrap();
    ch.remove_listener(l.id()).await.unwrap();
    assert!(ch.listener_ids().await.unwrap().is_empty());
    assert!(matches!(
        ch.dispatch(l.id(), msg("t", json!(2))).await,
        Err(Error::InvalidListener { .. })
    ));
    ch.register_listener(Listener::with_id(l.id().clone()))
        .await
        .unwrap();
    assert_eq!(
        ch.queue_len(l.id()).await.unwrap(),
        0,
        "a new queue starts empty"
    );
}

/// Reference: a stopped listener streams nothing. Here the stream also says why.
pub async fn stream_of_a_stopped_listener_ends_at_once_and_consumes_nothing<F: EngineFixture>(
    f: &F,
) {
    let ch = channel(f);
    let l = ch.add_listener().await.unwrap();
    ch.dispatch(l.id(), msg("t", json!(1))).await.unwrap();
    let mut s = ch.message_stream(&l).await.unwrap();
    assert!(matches!(
        next(&mut s).await,
        StreamItem::End(StreamEnd::Stopped)
    ));
    assert!(within("the end of the stream", s.next()).await.is_none());
    assert_eq!(ch.queue_len(l.id()).await.unwrap(), 1);
}

/// Reference: a started listener whose hook stops it after one message
/// streams exactly that message.
pub async fn stream_yields_what_is_queued_and_ends_when_the_hook_stops_the_listener<
    F: EngineFixture,
>(
    f: &F,
) {
    let ch = channel(f);
    let l = Listener::with_hook(
        None,
        FnHook(|l: &Listener, _: &Message| {
            l.stop();
            Ok(())
        }),
    );
    ch.register_listener(l.clone()).await.unwrap();
    ch.dispatch(l.id(), msg("t", json!(1))).await.unwrap();
    ch.dispatch(l.id(), msg("t", json!(2))).await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    let mut s = ch.message_stream(&l).await.unwrap();
    assert_eq!(payload_of(&next_message(&mut s).await), 1);
    assert!(matches!(
        next(&mut s).await,
        StreamItem::End(StreamEnd::Stopped)
    ));
    drop(s);
    let member = ch.member(l.id()).await.unwrap();
    within("the unsent message to return", async {
        loop {
            let armed = crate::queue::Queue::wakeup(member.queue()).armed();
            tokio::pin!(armed);
            armed.as_mut().enable();
            if ch.queue_len(l.id()).await.unwrap() == 1 {
                break;
            }
            armed.await;
        }
    })
    .await;
}

/// No polling: a stream waiting on an empty queue wakes when a message comes.
pub async fn idle_stream_wakes_on_dispatch<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    let mut s = ch.message_stream(&l).await.unwrap();
    let reader = tokio::spawn(async move { next_message(&mut s).await });
    tokio::task::yield_now().await;
    ch.dispatch(l.id(), msg("late", json!(42))).await.unwrap();
    let d = within("the dispatched message", reader).await.unwrap();
    assert_eq!(d.message.msg_type().as_str(), "late");
}

/// Deviation: the reference emitted `error` events forever once a streamed
/// listener was removed; here the stream ends with one `Removed` item.
pub async fn stream_ends_once_when_its_listener_is_removed<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    let mut s = ch.message_stream(&l).await.unwrap();
    let reader = tokio::spawn(async move {
        let first = next(&mut s).await;
        let after = within("the stream's end", s.next()).await;
        (first, after.is_none())
    });
    tokio::task::yield_now().await;
    ch.remove_listener(l.id()).await.unwrap();
    let (first, ended) = within("the Removed item", reader).await.unwrap();
    assert!(
        matches!(first, StreamItem::End(StreamEnd::Removed)),
        "{first:?}"
    );
    assert!(ended);
}

/// Stopping a listener through its channel ends its streams.
pub async fn stop_listener_ends_streams<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    let mut s = ch.stream(l.id(), StreamOptions::default()).await.unwrap();
    let reader = tokio::spawn(async move { next(&mut s).await });
    tokio::task::yield_now().await;
    ch.stop_listener(l.id()).await.unwrap();
    let item = within("the Stopped item", reader).await.unwrap();
    assert!(
        matches!(item, StreamItem::End(StreamEnd::Stopped)),
        "{item:?}"
    );
}

/// Resume by `Last-Event-ID`: exactly the messages after it, none repeated.
pub async fn resume_after_last_event_id_redelivers_exactly_the_rest<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    for n in 1..=5 {
        ch.dispatch(l.id(), msg("t", json!(n))).await.unwrap();
    }
    let mut s = ch.message_stream(&l).await.unwrap();
    let seen: Vec<u64> = [
        next_message(&mut s).await,
        next_message(&mut s).await,
        next_message(&mut s).await,
    ]
    .iter()
    .map(|d| d.seq)
    .collect();
    assert_eq!(seen, [1, 2, 3]);
    // The client got only 1 before its stream dropped.
    drop(s);
    ch.dispatch(l.id(), msg("t", json!(6))).await.unwrap();
    let mut resumed = ch
        .stream(
            l.id(),
            StreamOptions {
                last_event_id: Some(1),
            },
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(next_message(&mut resumed).await.seq);
    }
    assert_eq!(got, [2, 3, 4, 5, 6]);
    assert_eq!(ch.queue_len(l.id()).await.unwrap(), 0);
}

/// Deviation: an abandoned stream of the reference kept consuming; here what
/// a dropped stream took but did not send goes back to the queue.
pub async fn dropped_stream_gives_back_what_it_did_not_send<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    for n in 1..=3 {
        ch.dispatch(l.id(), msg("t", json!(n))).await.unwrap();
    }
    let mut s = ch.message_stream(&l).await.unwrap();
    assert_eq!(payload_of(&next_message(&mut s).await), 1);
    drop(s);
    ch.dispatch(l.id(), msg("t", json!(4))).await.unwrap();
    let mut again = ch.message_stream(&l).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(payload_of(&next_message(&mut again).await));
    }
    got.sort_unstable();
    assert_eq!(got, [2, 3, 4]);
}

/// Messages a stream yielded but its owner could not deliver go back with
/// [`MessageStream::give_back`], ahead of what it took but did not yield,
/// in order, even with no replay window.
pub async fn handed_back_messages_return_in_order_without_a_replay_window<F: EngineFixture>(f: &F) {
    let settings = ChannelSettings {
        replay_window: 0,
        ..ChannelSettings::default()
    };
    let ch = channel_with(f, settings);
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    for n in 1..=5 {
        ch.dispatch(l.id(), msg("t", json!(n))).await.unwrap();
    }
    let mut s = ch.message_stream(&l).await.unwrap();
    let mut yielded = Vec::new();
    for _ in 0..3 {
        yielded.push(next_message(&mut s).await);
    }
    // 1 reached its client; 2 and 3 did not.
    let unsent = Taken {
        deliveries: yielded.split_off(1),
        epoch: s.epoch(),
        gap: None,
    };
    s.give_back(vec![unsent]);
    let mut again = ch.message_stream(&l).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(payload_of(&next_message(&mut again).await));
    }
    assert_eq!(got, [2, 3, 4, 5]);
    assert_eq!(ch.queue_len(l.id()).await.unwrap(), 0);
}

/// Deviation: the reference's `watch` leaked its listener.
pub async fn watch_receives_broadcasts_and_its_listener_goes_when_closed<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let mut w = ch.watch().await.unwrap();
    assert_eq!(ch.listener_ids().await.unwrap().len(), 1);
    ch.broadcast(&msg("news", json!({"n": 1}))).await.unwrap();
    assert_eq!(
        next_message(&mut w).await.message.msg_type().as_str(),
        "news"
    );
    w.close().await.unwrap();
    assert!(ch.listener_ids().await.unwrap().is_empty());
}

/// Concurrency: many producers and stream consumers on one channel.
pub async fn many_producers_and_consumers_lose_nothing_and_keep_fifo_per_listener<
    F: EngineFixture,
>(
    f: &F,
) {
    const LISTENERS: usize = 4;
    const PRODUCERS: usize = 4;
    const PER_PRODUCER: i64 = 250;
    let ch = channel(f);
    let mut ids = Vec::new();
    for _ in 0..LISTENERS {
        let l = ch.add_listener().await.unwrap();
        ch.start_listener(l.id()).await.unwrap();
        ids.push(l.id().clone());
    }
    let consumers: Vec<_> = ids
        .iter()
        .map(|id| {
            let (ch, id) = (ch.clone(), id.clone());
            tokio::spawn(async move {
                let mut s = ch.stream(&id, StreamOptions::default()).await.unwrap();
                let mut got = Vec::new();
                while got.len() < PRODUCERS * PER_PRODUCER as usize {
                    let d = next_message(&mut s).await;
                    got.push(d.message.payload_value());
                }
                got
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let (ch, ids) = (ch.clone(), ids.clone());
            tokio::spawn(async move {
                for i in 0..PER_PRODUCER {
                    for id in &ids {
                        ch.dispatch(id, msg("t", json!([p, i]))).await.unwrap();
                    }
                }
            })
        })
        .collect();
    for p in producers {
        within("the producers", p).await.unwrap();
    }
    for c in consumers {
        let got = within("the consumers", c).await.unwrap();
        let mut last: HashMap<i64, i64> = HashMap::new();
        for v in got {
            let (p, i) = (v[0].as_i64().unwrap(), v[1].as_i64().unwrap());
            let prev = last.insert(p, i).unwrap_or(-1);
            assert_eq!(i, prev + 1, "producer {p}: FIFO broken or message lost");
        }
        assert_eq!(last.len(), PRODUCERS);
    }
}

/// Concurrent streams on one listener compete: each message goes to one.
pub async fn competing_streams_on_one_listener_split_without_loss_or_duplicates<
    F: EngineFixture,
>(
    f: &F,
) {
    const TOTAL: usize = 1000;
    let ch = channel(f);
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let progress = Arc::new(tokio::sync::Notify::new());
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let (ch, id) = (ch.clone(), l.id().clone());
            let (seen, progress) = (seen.clone(), progress.clone());
            tokio::spawn(async move {
                let mut s = ch.stream(&id, StreamOptions::default()).await.unwrap();
                while let Some(item) = s.next().await {
                    let StreamItem::Message(d) = item else {
                        panic!("unexpected {item:?}");
                    };
                    seen.lock().unwrap().push(payload_of(&d));
                    progress.notify_one();
                }
            })
        })
        .collect();
    for n in 0..TOTAL {
        ch.dispatch(l.id(), msg("t", json!(n))).await.unwrap();
    }
    within("every message", async {
        while seen.lock().unwrap().len() < TOTAL {
            progress.notified().await;
        }
    })
    .await;
    for c in &consumers {
        c.abort();
    }
    let mut seen = seen.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..TOTAL as i64).collect::<Vec<_>>());
}

/// A failing hook rejects its message with a typed item; later ones flow.
pub async fn failing_hook_rejects_one_message_and_the_stream_goes_on<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = Listener::with_hook(
        None,
        FnHook(|_: &Listener, m: &Message| {
            if m.payload_value() == json!("bad") {
                return Err::<(), BoxError>("refused".into());
            }
            Ok(())
        }),
    );
    l.start();
    ch.register_listener(l.clone()).await.unwrap();
    for p in ["ok1", "bad", "ok2"] {
        ch.dispatch(l.id(), msg("t", json!(p))).await.unwrap();
    }
    let mut s = ch.message_stream(&l).await.unwrap();
    assert_eq!(
        next_message(&mut s).await.message.payload_value(),
        json!("ok1")
    );
    match next(&mut s).await {
        StreamItem::Rejected {
            seq,
            error: Error::Hook { .. },
        } => assert_eq!(seq, 2),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        next_message(&mut s).await.message.payload_value(),
        json!("ok2")
    );
}
