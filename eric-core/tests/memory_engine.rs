//! Properties of the in-memory engine beyond the shared suites.

#![allow(clippy::unwrap_used)]

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use eric_core::testing::within;
use eric_core::{
    Channel, ChannelId, ChannelSettings, Error, KvStorage, Listener, ListenerId, MemoryEngine,
    Message, Observer, Persistence, RawAdapter, SseChannel, StreamItem, StreamOptions,
};
use eric_core::{FnHook, InMemoryStorage};
use futures_util::{Stream, StreamExt};
use serde_json::json;
use tokio::time::Instant;

type RawChannel = Channel<MemoryEngine, RawAdapter>;

fn channel(settings: ChannelSettings) -> RawChannel {
    Channel::new(&MemoryEngine::new(), None, settings).unwrap()
}

fn msg(n: i64) -> Message {
    Message::try_new("t", json!(n)).unwrap()
}

/// Reference timing: with `stream_delay_seconds = 1` and three queued
/// messages, items arrive at about 0 s, 1 s and 2 s.
#[tokio::test(start_paused = true)]
async fn stream_delay_spaces_deliveries() {
    let ch = channel(ChannelSettings {
        stream_delay: Duration::from_secs(1),
        ..Default::default()
    });
    let l = ch.add_listener().await.unwrap();
    l.start();
    for n in 1..=3 {
        ch.dispatch(l.id(), msg(n)).await.unwrap();
    }
    let start = Instant::now();
    let mut s = ch.message_stream(&l).await.unwrap();
    let mut at = Vec::new();
    for _ in 0..3 {
        assert!(matches!(s.next().await, Some(StreamItem::Message(_))));
        at.push(start.elapsed().as_secs());
    }
    assert_eq!(at, [0, 1, 2]);
}

/// A stream that counts how often it is polled.
struct Counted<S> {
    inner: S,
    polls: Arc<AtomicUsize>,
}

impl<S: Stream + Unpin> Stream for Counted<S> {
    type Item = S::Item;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        self.inner.poll_next_unpin(cx)
    }
}

/// An idle stream sleeps: while nothing arrives, the scheduler never polls it
/// again (the reference's stream busy-polled a core per idle stream).
#[tokio::test(flavor = "current_thread")]
async fn idle_stream_is_not_polled_until_a_message_arrives() {
    let ch = channel(ChannelSettings::default());
    let l = ch.add_listener().await.unwrap();
    l.start();
    let polls = Arc::new(AtomicUsize::new(0));
    let mut s = Counted {
        inner: ch.message_stream(&l).await.unwrap(),
        polls: polls.clone(),
    };
    let reader = tokio::spawn(async move { s.next().await.map(|_| ()) });
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        polls.load(Ordering::SeqCst),
        1,
        "an idle stream was re-polled"
    );
    ch.dispatch(l.id(), msg(1)).await.unwrap();
    within("the message", reader).await.unwrap();
    assert_eq!(polls.load(Ordering::SeqCst), 2);
}

/// In memory, a dropped stream's unsent messages are back before `drop`
/// returns, and a dropped watch stream's listener is gone.
#[tokio::test]
async fn drops_take_effect_synchronously() {
    let ch = channel(ChannelSettings::default());
    let l = ch.add_listener().await.unwrap();
    l.start();
    for n in 1..=3 {
        ch.dispatch(l.id(), msg(n)).await.unwrap();
    }
    let mut s = ch.message_stream(&l).await.unwrap();
    s.next().await.unwrap();
    drop(s);
    assert_eq!(ch.queue_len(l.id()).await.unwrap(), 2);

    let w = ch.watch().await.unwrap();
    assert_eq!(ch.listener_ids().await.unwrap().len(), 2);
    drop(w);
    assert_eq!(ch.listener_ids().await.unwrap(), [l.id().clone()]);
}

/// A resume older than the replay window is reported before the rest.
#[tokio::test]
async fn resume_beyond_the_replay_window_reports_a_gap() {
    let ch = channel(ChannelSettings {
        replay_window: 2,
        ..Default::default()
    });
    let l = ch.add_listener().await.unwrap();
    l.start();
    for n in 1..=6 {
        ch.dispatch(l.id(), msg(n)).await.unwrap();
    }
    let mut s = ch.message_stream(&l).await.unwrap();
    for _ in 0..6 {
        s.next().await.unwrap();
    }
    drop(s);
    let mut resumed = ch
        .stream(
            l.id(),
            StreamOptions {
                last_event_id: Some(1),
            },
        )
        .await
        .unwrap();
    assert!(matches!(
        resumed.next().await,
        Some(StreamItem::Gap { after: 1 })
    ));
    let StreamItem::Message(d) = resumed.next().await.unwrap() else {
        panic!("expected a message");
    };
    assert_eq!(d.seq, 5);
}

#[derive(Default)]
struct Counting {
    dispatched: AtomicUsize,
    delivered: AtomicUsize,
    full: AtomicUsize,
    hooks: AtomicUsize,
}

impl Observer for Counting {
    fn dispatched(&self, _: &ChannelId, n: usize) {
        self.dispatched.fetch_add(n, Ordering::SeqCst);
    }
    fn delivered(&self, _: &ChannelId, n: usize) {
        self.delivered.fetch_add(n, Ordering::SeqCst);
    }
    fn refused_full(&self, _: &ChannelId, n: usize) {
        self.full.fetch_add(n, Ordering::SeqCst);
    }
    fn hook_finished(&self, _: &ChannelId, _: &ListenerId, _: Duration, _: bool) {
        self.hooks.fetch_add(1, Ordering::SeqCst);
    }
}

/// The metrics hook sees dispatches, deliveries, refusals and hook timings.
#[tokio::test]
async fn observer_sees_counts_and_hook_timings() {
    let counting = Arc::new(Counting::default());
    let engine = MemoryEngine::with_observer(counting.clone());
    let settings = ChannelSettings {
        queue_capacity: 2,
        ..Default::default()
    };
    let ch: RawChannel = Channel::new(&engine, None, settings).unwrap();
    let l = Listener::with_hook(None, FnHook(|_: &Listener, _: &Message| Ok(())));
    l.start();
    ch.register_listener(l.clone()).await.unwrap();
    ch.add_listener().await.unwrap();
    ch.broadcast(&msg(1)).await.unwrap();
    ch.dispatch(l.id(), msg(2)).await.unwrap();
    assert!(matches!(
        ch.dispatch(l.id(), msg(3)).await,
        Err(Error::QueueFull { .. })
    ));
    ch.deliver_next(l.id()).await.unwrap();
    let mut s = ch.message_stream(&l).await.unwrap();
    s.next().await.unwrap();
    assert_eq!(counting.dispatched.load(Ordering::SeqCst), 3);
    assert_eq!(counting.full.load(Ordering::SeqCst), 1);
    assert_eq!(counting.delivered.load(Ordering::SeqCst), 2);
    assert_eq!(counting.hooks.load(Ordering::SeqCst), 2);
}

/// A corrupt stored record is a typed repository error, not a panic.
#[tokio::test]
async fn corrupt_records_are_repository_errors() {
    let storage = Arc::new(InMemoryStorage::new());
    storage
        .upsert(
            "channel:broken",
            json!({"id": "broken", "settings": "nonsense"}),
        )
        .await
        .unwrap();
    let store: Persistence<MemoryEngine> = Persistence::over_kv(MemoryEngine::new(), storage);
    let err = store
        .load_persisted_data(Some(&"broken".parse().unwrap()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Repository { .. }), "{err:?}");
}

/// The default channel is the SSE channel, with the reference's retry of 5 ms.
#[tokio::test]
async fn sse_channel_streams_sse_events() {
    let ch: SseChannel<MemoryEngine> =
        Channel::new(&MemoryEngine::new(), None, ChannelSettings::default()).unwrap();
    let l = ch.add_listener().await.unwrap();
    l.start();
    ch.dispatch(l.id(), Message::try_new("greet", json!({"a": 1})).unwrap())
        .await
        .unwrap();
    let Some(StreamItem::Message(event)) = ch.message_stream(&l).await.unwrap().next().await else {
        panic!("expected an event");
    };
    assert_eq!(
        event.encode(),
        "id: 1\nevent: greet\nretry: 5\ndata: {\"a\":1}\n\n"
    );
}

/// The engine's budget bounds every queue of every channel together: past
/// it, dispatches and broadcasts are refused whole with `StorageFull` (HTTP
/// 507, as Redis at `maxmemory`) and change nothing; pops, removals and
/// deleted channels give their bytes back; messages coming back to a queue
/// (a rewind) are never refused.
#[tokio::test]
async fn node_budget_bounds_all_queues_together() {
    let size = eric_core::queue::stored_size(&msg(1));
    let engine = MemoryEngine::new().with_budget(3 * size);
    let one: RawChannel = Channel::new(&engine, None, ChannelSettings::default()).unwrap();
    let two: RawChannel = Channel::new(&engine, None, ChannelSettings::default()).unwrap();
    let a = one.add_listener().await.unwrap();
    let b = two.add_listener().await.unwrap();
    one.dispatch(a.id(), msg(1)).await.unwrap();
    one.dispatch(a.id(), msg(2)).await.unwrap();
    two.dispatch(b.id(), msg(3)).await.unwrap();
    assert_eq!(engine.budget().used(), 3 * size);
    let full = |r: eric_core::Result<_>| {
        matches!(
            r,
            Err(Error::StorageFull {
                backend: "in-memory engine",
                ..
            })
        )
    };
    assert!(full(two.dispatch(b.id(), msg(4)).await.map(|_| ())));
    assert!(full(one.broadcast(&msg(5)).await.map(|_| ())));
    assert_eq!(one.queue_len(a.id()).await.unwrap(), 2, "refused whole");
    assert_eq!(two.queue_len(b.id()).await.unwrap(), 1);
    assert_eq!(engine.budget().used(), 3 * size);
    // A pop on one channel makes room on the other.
    a.start();
    one.deliver_next(a.id()).await.unwrap();
    two.dispatch(b.id(), msg(6)).await.unwrap();
    // A rewind brings back what a stream took, over the budget if need be.
    let member = two.member(b.id()).await.unwrap();
    let taken = eric_core::Queue::take(member.queue(), 2).await.unwrap();
    assert_eq!(taken.deliveries.len(), 2);
    one.dispatch(a.id(), msg(7)).await.unwrap();
    one.dispatch(a.id(), msg(8)).await.unwrap();
    assert_eq!(engine.budget().used(), 3 * size);
    let rewind = eric_core::Queue::rewind(member.queue(), 0).await.unwrap();
    assert_eq!(rewind.restored, 2);
    assert_eq!(engine.budget().used(), 5 * size);
    assert!(full(one.dispatch(a.id(), msg(9)).await.map(|_| ())));
    // Removing a listener and dropping a channel give their bytes back.
    two.remove_listener(b.id()).await.unwrap();
    drop(member);
    assert_eq!(engine.budget().used(), 3 * size);
    drop(one);
    assert_eq!(engine.budget().used(), 0);
}
