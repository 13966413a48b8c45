//! Behaviour of the prefabs on the in-memory engine: distributed-application
//! listeners and data-processing channels.
//!
//! Nothing here sleeps to synchronise: every wait is for an event, under
//! [`DEADLINE`].

// Helpers outside `#[test]` functions are test code too; clippy's
// `allow-unwrap-in-tests` does not see that.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use eric_core::prefabs::{
    Actions, DataProcessingChannel, DistributedListener, Order, Processed, ProcessingEnd,
    ProcessingStream,
};
use eric_core::{
    BlockingHook, BoxError, Channel, ChannelId, ChannelSettings, Delivery, Error, Listener,
    ListenerId, MemoryEngine, Message, MessageType, Observer, OnMessage, RawAdapter, StreamEnd,
    StreamItem,
};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

const DEADLINE: Duration = Duration::from_secs(5);

async fn within<F: Future>(work: F) -> F::Output {
    tokio::time::timeout(DEADLINE, work)
        .await
        .expect("no progress within the deadline")
}

fn id(name: &str) -> ListenerId {
    name.parse().unwrap()
}

fn ty(name: &str) -> MessageType {
    name.parse().unwrap()
}

fn msg(name: &str, payload: Value) -> Message {
    Message::new(ty(name), payload)
}

type RawChannel = Channel<MemoryEngine, RawAdapter>;
type Peer = DistributedListener<MemoryEngine, RawAdapter>;

fn raw_channel() -> RawChannel {
    Channel::new(&MemoryEngine::new(), None, ChannelSettings::default()).unwrap()
}

/// Registers a started distributed listener named `name` on `channel`.
async fn peer(channel: &RawChannel, name: &str, actions: Actions) -> Peer {
    let peer = DistributedListener::register(channel, Some(id(name)), actions)
        .await
        .unwrap();
    peer.listener().start();
    peer
}

/// Alice's actions in the reference's test: `hello` is answered with
/// `hello_ack` and `stop`.
fn alice_actions() -> Actions {
    let answer = |_: &Message| {
        Ok(vec![
            msg("hello_ack", json!("hi!")),
            msg("stop", Value::Null),
        ])
    };
    Actions::default().with_action("hello", answer).unwrap()
}

/// Everything a listener's stream yields until it ends because the listener stopped.
async fn received(channel: &RawChannel, listener: &Listener) -> Vec<Delivery> {
    let mut stream = channel.message_stream(listener).await.unwrap();
    let mut got = Vec::new();
    loop {
        match within(stream.next()).await {
            Some(StreamItem::Message(delivery)) => got.push(delivery),
            Some(StreamItem::End(StreamEnd::Stopped)) => return got,
            other => panic!("unexpected stream item {other:?}"),
        }
    }
}

/// Each delivery's type and sender.
fn summary(deliveries: &[Delivery]) -> Vec<(&str, Option<&str>)> {
    let messages = deliveries.iter().map(|d| &d.message);
    let summary = messages.map(|m| (m.msg_type().as_str(), m.sender_id().map(|s| s.as_str())));
    summary.collect()
}

#[tokio::test]
async fn bob_and_alice_exchange_hello_and_stop_like_the_reference() {
    let channel = raw_channel();
    let alice = peer(&channel, "alice", alice_actions()).await;
    let bob = peer(&channel, "bob", Actions::default()).await;
    let hello = bob.dispatch_to(alice.id(), ty("hello"), json!("hello alice"));
    hello.await.unwrap();
    let stop = bob.dispatch_to(alice.id(), ty("stop"), Value::Null);
    stop.await.unwrap();

    let to_alice = received(&channel, alice.listener()).await;
    let from_bob = [("hello", Some("bob")), ("stop", Some("bob"))];
    assert_eq!(summary(&to_alice), from_bob);
    let to_bob = received(&channel, bob.listener()).await;
    let from_alice = [("hello_ack", Some("alice")), ("stop", Some("alice"))];
    assert_eq!(summary(&to_bob), from_alice);
    assert_eq!(to_bob[0].message.payload_value(), json!("hi!"));
}

#[test]
fn start_and_stop_cannot_be_registered_as_actions() {
    for name in ["start", "stop"] {
        let refused = Actions::default().with_action(name, |_: &Message| Ok(Vec::new()));
        assert!(
            matches!(&refused, Err(Error::ReservedAction { name: n }) if n == name),
            "{refused:?}"
        );
    }
}

#[tokio::test]
async fn start_and_stop_messages_drive_the_running_flag() {
    let alice = peer(&raw_channel(), "alice", Actions::default()).await;
    let listener = alice.listener();
    listener
        .on_message(&msg("stop", Value::Null))
        .await
        .unwrap();
    assert!(!listener.is_running());
    listener
        .on_message(&msg("start", Value::Null))
        .await
        .unwrap();
    assert!(listener.is_running());
}

#[tokio::test]
async fn an_error_inside_an_action_is_reported_not_swallowed() {
    let channel = raw_channel();
    let failing = |_: &Message| Err("action failed".into());
    let actions = Actions::default().with_action("boom", failing).unwrap();
    let alice = peer(&channel, "alice", actions).await;
    let boom = Message::signed(id("bob"), ty("boom"), Value::Null);

    channel.dispatch(alice.id(), boom.clone()).await.unwrap();
    let err = channel.deliver_next(alice.id()).await.unwrap_err();
    assert!(
        matches!(&err, Error::Hook { listener, source }
            if listener == alice.id() && source.to_string() == "action failed"),
        "{err:?}"
    );

    channel.dispatch(alice.id(), boom).await.unwrap();
    let mut stream = channel.message_stream(alice.listener()).await.unwrap();
    let item = within(stream.next()).await;
    let rejected = matches!(
        &item,
        Some(StreamItem::Rejected {
            seq: 2,
            error: Error::Hook { .. }
        })
    );
    assert!(rejected, "{item:?}");
}

#[tokio::test]
async fn unknown_message_types_are_ignored() {
    let channel = raw_channel();
    let alice = peer(&channel, "alice", alice_actions()).await;
    let bob = peer(&channel, "bob", Actions::default()).await;
    let whatever = bob.dispatch_to(alice.id(), ty("whatever"), Value::Null);
    whatever.await.unwrap();
    let delivery = channel.deliver_next(alice.id()).await.unwrap();
    assert_eq!(delivery.message.msg_type().as_str(), "whatever");
    assert!(alice.listener().is_running());
    assert_eq!(channel.queue_len(bob.id()).await.unwrap(), 0);
}

#[tokio::test]
async fn replying_to_an_unsigned_message_is_an_error() {
    let channel = raw_channel();
    let alice = peer(&channel, "alice", alice_actions()).await;
    let unsigned = msg("hello", Value::Null);
    channel.dispatch(alice.id(), unsigned).await.unwrap();
    let err = channel.deliver_next(alice.id()).await.unwrap_err();
    let Error::Hook { source, .. } = &err else {
        panic!("expected a hook error, got {err:?}");
    };
    assert!(
        matches!(source.downcast_ref::<Error>(), Some(Error::InvalidMessageFormat { reason })
            if reason.contains("no sender to reply to")),
        "{source}"
    );
}

#[tokio::test]
async fn a_dropped_channel_is_not_kept_alive_and_replies_to_it_fail() {
    let channel = raw_channel();
    let channel_id = channel.id().clone();
    let alice = peer(&channel, "alice", alice_actions()).await;
    let weak = channel.downgrade();
    drop(channel);
    assert!(
        weak.upgrade().is_none(),
        "the hook must not hold the channel"
    );

    let hello = Message::signed(id("bob"), ty("hello"), Value::Null);
    let err = alice.listener().on_message(&hello).await.unwrap_err();
    assert!(
        matches!(err.downcast_ref::<Error>(), Some(Error::InvalidChannel { channel }) if *channel == channel_id),
        "{err}"
    );
    let bob = id("bob");
    let err = alice.dispatch_to(&bob, ty("hello"), Value::Null).await;
    let err = err.unwrap_err();
    assert!(matches!(err, Error::InvalidChannel { .. }), "{err}");
}

type Processing = DataProcessingChannel<MemoryEngine>;

#[derive(Debug, PartialEq)]
enum Event {
    Started(String),
    Finished(String),
}

/// Follows handlers: reports each start and finish, counts how many run at
/// once, and, when gated, holds each until the test opens its message type.
struct Probe {
    gated: bool,
    gates: Mutex<HashMap<String, Arc<Semaphore>>>,
    running: AtomicUsize,
    peak: AtomicUsize,
    events: mpsc::UnboundedSender<Event>,
}

impl Probe {
    fn new(gated: bool) -> (Arc<Self>, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        let probe = Self {
            gated,
            gates: Mutex::default(),
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            events,
        };
        (Arc::new(probe), rx)
    }

    fn gate(&self, name: &str) -> Arc<Semaphore> {
        let mut gates = self.gates.lock().unwrap();
        let gate = gates.entry(name.to_owned());
        gate.or_insert_with(|| Arc::new(Semaphore::new(0))).clone()
    }

    fn open(&self, name: &str) {
        self.gate(name).add_permits(1);
    }
}

/// Message types starting with `fail` fail and those starting with `panic`
/// panic, after the gate.
#[async_trait]
impl OnMessage for Probe {
    async fn on_message(&self, _: &Listener, message: &Message) -> Result<(), BoxError> {
        let (probe, name) = (self, message.msg_type().as_str());
        let now = probe.running.fetch_add(1, SeqCst) + 1;
        probe.peak.fetch_max(now, SeqCst);
        let _ = probe.events.send(Event::Started(name.to_owned()));
        if probe.gated {
            probe.gate(name).acquire().await?.forget();
        }
        probe.running.fetch_sub(1, SeqCst);
        let _ = probe.events.send(Event::Finished(name.to_owned()));
        if name.starts_with("panic") {
            panic!("handler panicked (expected by the test)");
        }
        if name.starts_with("fail") {
            return Err("handler failed".into());
        }
        Ok(())
    }
}

/// A channel on `engine` with one started listener whose queue holds one
/// message per name, in order.
async fn processing_on(
    engine: &MemoryEngine,
    max_workers: usize,
    order: Order,
    hook: Arc<dyn OnMessage>,
    names: &[&str],
) -> (Processing, ListenerId) {
    let processing =
        Processing::new(engine, None, ChannelSettings::default(), max_workers, order).unwrap();
    let listener = Listener::with_shared_hook(None, hook);
    listener.start();
    let channel = processing.channel();
    channel.register_listener(listener.clone()).await.unwrap();
    for name in names {
        let message = msg(name, json!({ "name": name }));
        channel.dispatch(listener.id(), message).await.unwrap();
    }
    (processing, listener.id().clone())
}

async fn processing_with(
    max_workers: usize,
    order: Order,
    hook: Arc<dyn OnMessage>,
    names: &[&str],
) -> (Processing, ListenerId) {
    processing_on(&MemoryEngine::new(), max_workers, order, hook, names).await
}

/// Reads `stream` to its end while `alongside` runs, both under the deadline.
async fn collect_while<T>(
    stream: &mut ProcessingStream,
    alongside: impl Future<Output = T>,
) -> (Vec<Processed>, T) {
    within(async { tokio::join!(stream.collect::<Vec<_>>(), alongside) }).await
}

/// Runs `listener`'s queue to its end; the results and the finished stream.
async fn process(
    processing: &Processing,
    listener: &ListenerId,
) -> (Vec<Processed>, ProcessingStream) {
    let mut stream = processing.process_queue(listener).await.unwrap();
    let (results, ()) = collect_while(&mut stream, async {}).await;
    (results, stream)
}

/// Waits for `n` handlers to start; their message types, sorted.
async fn started(events: &mut mpsc::UnboundedReceiver<Event>, n: usize) -> Vec<String> {
    let mut names = Vec::new();
    while names.len() < n {
        match within(events.recv()).await {
            Some(Event::Started(name)) => names.push(name),
            other => panic!("expected a handler to start, got {other:?}"),
        }
    }
    names.sort();
    names
}

fn seqs(results: &[Processed]) -> Vec<u64> {
    results.iter().map(|p| p.seq).collect()
}

fn event_names(results: &[Processed]) -> Vec<&str> {
    let ok = results
        .iter()
        .map(|p| p.result.as_ref().expect("a success"));
    ok.map(|e| e.event.as_str()).collect()
}

const SIX: [&str; 6] = ["m1", "m2", "m3", "m4", "m5", "m6"];

#[tokio::test]
async fn processes_every_queued_message_like_the_reference() {
    let (probe, _events) = Probe::new(false);
    let names = ["test1", "test2", "test3"];
    let (processing, listener) = processing_with(2, Order::Completion, probe.clone(), &names).await;
    let (results, stream) = process(&processing, &listener).await;
    let got: BTreeSet<&str> = event_names(&results).into_iter().collect();
    assert_eq!(got, BTreeSet::from(names));
    let first = results.iter().find(|p| p.seq == 1).unwrap();
    let data = &first.result.as_ref().unwrap().data;
    assert_eq!(data, &json!({"name": "test1"}));
    assert!(matches!(stream.end(), Some(ProcessingEnd::Drained)));
    assert_eq!(processing.channel().queue_len(&listener).await.unwrap(), 0);
}

#[tokio::test]
async fn fifo_order_holds_when_handlers_finish_in_reverse() {
    let (probe, mut events) = Probe::new(true);
    let names = ["a", "b", "c"];
    let (processing, listener) = processing_with(3, Order::Fifo, probe.clone(), &names).await;
    let mut stream = processing.process_queue(&listener).await.unwrap();
    let finish_in_reverse = async {
        started(&mut events, 3).await;
        for name in ["c", "b", "a"] {
            probe.open(name);
            let finished = within(events.recv()).await;
            assert_eq!(finished, Some(Event::Finished(name.into())));
        }
    };
    let (results, ()) = collect_while(&mut stream, finish_in_reverse).await;
    assert_eq!(seqs(&results), [1, 2, 3]);
    assert_eq!(event_names(&results), names);
}

#[tokio::test]
async fn completion_order_yields_as_handlers_finish() {
    let (probe, mut events) = Probe::new(true);
    let names = ["a", "b", "c"];
    let (processing, listener) = processing_with(3, Order::Completion, probe.clone(), &names).await;
    let mut stream = processing.process_queue(&listener).await.unwrap();
    let open_c_once_all_run = async {
        started(&mut events, 3).await;
        probe.open("c");
    };
    let (first, ()) = within(async { tokio::join!(stream.next(), open_c_once_all_run) }).await;
    assert_eq!(first.map(|p| p.seq), Some(3));
    probe.open("b");
    assert_eq!(within(stream.next()).await.map(|p| p.seq), Some(2));
    probe.open("a");
    assert_eq!(within(stream.next()).await.map(|p| p.seq), Some(1));
    assert!(within(stream.next()).await.is_none());
}

#[tokio::test]
async fn a_failing_or_panicking_handler_fails_its_message_only() {
    let (probe, _events) = Probe::new(false);
    let names = ["one", "fail", "panic", "four"];
    let (processing, listener) = processing_with(2, Order::Fifo, probe.clone(), &names).await;
    let (results, _) = process(&processing, &listener).await;
    assert_eq!(seqs(&results), [1, 2, 3, 4]);
    assert!(results[0].result.is_ok() && results[3].result.is_ok());
    assert!(
        matches!(&results[1].result, Err(Error::Hook { listener: l, source })
            if *l == listener && source.to_string() == "handler failed"),
        "{:?}",
        results[1]
    );
    let Err(Error::Hook { source, .. }) = &results[2].result else {
        panic!("expected a hook error, got {:?}", results[2]);
    };
    let joined = source.downcast_ref::<tokio::task::JoinError>();
    assert!(joined.is_some_and(|j| j.is_panic()), "{source}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_workers_handlers_run_at_once() {
    let (probe, mut events) = Probe::new(true);
    let (processing, listener) = processing_with(2, Order::Completion, probe.clone(), &SIX).await;
    let mut stream = processing.process_queue(&listener).await.unwrap();
    let open_at_peak = async {
        started(&mut events, 2).await;
        assert_eq!(probe.peak.load(SeqCst), 2);
        SIX.iter().for_each(|name| probe.open(name));
    };
    let (results, ()) = collect_while(&mut stream, open_at_peak).await;
    assert_eq!(event_names(&results).len(), SIX.len());
    assert_eq!(probe.peak.load(SeqCst), 2, "more handlers ran than workers");
}

#[tokio::test]
async fn messages_leave_the_queue_only_when_a_worker_is_free() {
    let (probe, mut events) = Probe::new(true);
    let (processing, listener) = processing_with(2, Order::Fifo, probe.clone(), &SIX).await;
    let mut stream = processing.process_queue(&listener).await.unwrap();
    let count_while_held = async {
        assert_eq!(started(&mut events, 2).await, ["m1", "m2"]);
        let queued = processing.channel().queue_len(&listener).await.unwrap();
        SIX.iter().for_each(|name| probe.open(name));
        queued
    };
    let (results, queued) = collect_while(&mut stream, count_while_held).await;
    assert_eq!(queued, 4, "only the messages in flight may leave the queue");
    assert_eq!(event_names(&results), SIX);
}

#[tokio::test]
async fn a_stopped_listener_gives_an_empty_run_and_keeps_its_messages() {
    let (probe, _events) = Probe::new(false);
    let (processing, listener) = processing_with(2, Order::Fifo, probe.clone(), &["a", "b"]).await;
    processing.channel().stop_listener(&listener).await.unwrap();
    let (results, stream) = process(&processing, &listener).await;
    assert!(results.is_empty());
    assert!(matches!(stream.end(), Some(ProcessingEnd::Stopped)));
    assert_eq!(processing.channel().queue_len(&listener).await.unwrap(), 2);
    assert_eq!(probe.peak.load(SeqCst), 0, "no handler may run");
}

#[tokio::test]
async fn stopping_the_listener_finishes_the_messages_in_flight_and_keeps_the_rest() {
    let (probe, mut events) = Probe::new(true);
    let (processing, listener) = processing_with(2, Order::Fifo, probe.clone(), &SIX).await;
    let mut stream = processing.process_queue(&listener).await.unwrap();
    let stop_while_held = async {
        started(&mut events, 2).await;
        processing.channel().stop_listener(&listener).await.unwrap();
        SIX.iter().for_each(|name| probe.open(name));
    };
    let (results, ()) = collect_while(&mut stream, stop_while_held).await;
    assert_eq!(event_names(&results), ["m1", "m2"]);
    assert!(matches!(stream.end(), Some(ProcessingEnd::Stopped)));
    assert_eq!(processing.channel().queue_len(&listener).await.unwrap(), 4);
}

#[tokio::test]
async fn removing_the_listener_ends_the_run() {
    let (probe, mut events) = Probe::new(true);
    let (processing, listener) = processing_with(1, Order::Fifo, probe.clone(), &SIX).await;
    let mut stream = processing.process_queue(&listener).await.unwrap();
    let remove_while_held = async {
        started(&mut events, 1).await;
        let removed = processing.channel().remove_listener(&listener).await;
        SIX.iter().for_each(|name| probe.open(name));
        removed
    };
    let (results, removed) = collect_while(&mut stream, remove_while_held).await;
    removed.unwrap();
    assert_eq!(event_names(&results), ["m1"]);
    assert!(matches!(stream.end(), Some(ProcessingEnd::Removed)));
}

#[tokio::test]
async fn an_unregistered_listener_is_refused_at_once() {
    let (processing, _) = processing_with(1, Order::Fifo, Probe::new(false).0, &[]).await;
    let err = processing.process_queue(&id("nobody")).await.unwrap_err();
    assert!(matches!(err, Error::InvalidListener { .. }), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn blocking_handlers_do_not_block_the_runtime() {
    let (to_handlers, from_test) = std::sync::mpsc::channel::<()>();
    let from_test = Mutex::new(from_test);
    let (entered_tx, mut entered) = mpsc::unbounded_channel();
    // Each handler waits for the async side, which can only run if the one
    // runtime thread is free while handlers block.
    let hook = BlockingHook::new(move |_: &Listener, _: &Message| {
        let _ = entered_tx.send(());
        let recv = from_test.lock().unwrap().recv_timeout(DEADLINE);
        recv.map_err(BoxError::from)
    });
    let (processing, listener) = processing_with(2, Order::Fifo, Arc::new(hook), &["a", "b"]).await;
    let mut stream = processing.process_queue(&listener).await.unwrap();
    let feed = async {
        for _ in 0..2 {
            within(entered.recv()).await;
        }
        for _ in 0..2 {
            to_handlers.send(()).unwrap();
        }
    };
    let (results, ()) = collect_while(&mut stream, feed).await;
    assert_eq!(event_names(&results), ["a", "b"]);
}

#[derive(Default)]
struct Recorder {
    runs: Mutex<Vec<(ChannelId, ListenerId, usize)>>,
    delivered: AtomicUsize,
}

impl Observer for Recorder {
    fn delivered(&self, _: &ChannelId, messages: usize) {
        self.delivered.fetch_add(messages, SeqCst);
    }

    fn queue_processed(&self, c: &ChannelId, l: &ListenerId, messages: usize, _: Duration) {
        let run = (c.clone(), l.clone(), messages);
        self.runs.lock().unwrap().push(run);
    }
}

#[tokio::test]
async fn a_finished_run_is_reported_to_the_observer() {
    let recorder = Arc::new(Recorder::default());
    let engine = MemoryEngine::with_observer(recorder.clone());
    let (probe, _events) = Probe::new(false);
    let names = ["a", "fail", "c"];
    let (processing, listener) =
        processing_on(&engine, 2, Order::Fifo, probe.clone(), &names).await;
    let (results, _) = process(&processing, &listener).await;
    assert_eq!(results.len(), 3);
    let channel = processing.channel().id().clone();
    assert_eq!(*recorder.runs.lock().unwrap(), [(channel, listener, 3)]);
    let delivered = recorder.delivered.load(SeqCst);
    assert_eq!(delivered, 2, "the failed message is not delivered");
}
