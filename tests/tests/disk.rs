//! The disk engine against real crashes: `eric serve --data-dir` processes
//! killed with SIGKILL in the middle of a burst or stopped, and restarted
//! on the same directory. `disk_files.rs` has the damaged data files and
//! the directory lock.
//!
//! Every test has a data directory of its own. Nothing sleeps: each wait is
//! a deadline on a real signal (acknowledgements counted, a log line, a
//! process exiting). Where a kill lands is left to chance, so every
//! assertion holds wherever it lands.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use eric_tests::client::reqwest_builder;
use eric_tests::{Events, Http, Node, within};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::watch;

/// Producers writing at once in the burst; the first half dispatch to
/// listener `a`, the second half broadcast to the channel.
const PRODUCERS: u64 = 16;
/// Most writes one producer makes; the kill comes long before.
const PER_PRODUCER: u64 = 2_000;
/// Acknowledged writes before the kill.
const KILL_AFTER: u64 = 400;

/// What one producer of the burst did.
#[derive(Debug)]
struct Sent {
    /// The sequence number each acknowledged write answered, in order
    /// (write `n` is `acked[n]`): `Some` for a dispatch whose answer was
    /// read whole, `None` for a broadcast (it answers no sequence number).
    acked: Vec<Option<u64>>,
    /// A write got no answer (the server died under it): it may be stored
    /// or not, but at most once.
    in_flight: bool,
}

/// One message a pull handed out: its sequence number and payload.
type Pulled = (u64, Value);

/// Whether producer `p` dispatches (else it broadcasts).
fn dispatches(p: u64) -> bool {
    p < PRODUCERS / 2
}

/// Writes numbered messages (`{"p": p, "n": n}`) until `PER_PRODUCER` or
/// the server dies; counts each acknowledgement in `acked`.
async fn produce(url: String, p: u64, acked: watch::Sender<u64>) -> Sent {
    let client = reqwest_builder().build().unwrap();
    let mut sent = Sent {
        acked: Vec::new(),
        in_flight: false,
    };
    for n in 0..PER_PRODUCER {
        let kind = if dispatches(p) { "d" } else { "b" };
        let body = json!({"type": kind, "payload": {"p": p, "n": n}});
        let response = match client.post(&url).json(&body).send().await {
            Ok(response) => response,
            Err(_) => {
                sent.in_flight = true;
                break;
            }
        };
        // A process killed with SIGKILL answers nothing: any status came
        // from a live server, and only success is expected of it.
        assert!(
            response.status().is_success(),
            "{url}: {}",
            response.status()
        );
        // The head is the acknowledgement; the body may be cut by the kill.
        let answer: Option<Value> = response.json().await.ok();
        sent.acked.push(answer.and_then(|a| a["seq"].as_u64()));
        acked.send_modify(|count| *count += 1);
    }
    sent
}

/// Starts `listener` and pulls (`next`) until its queue is empty.
async fn drain(http: &Http, node: &Node, channel: &str, listener: &str) -> Vec<Pulled> {
    let base = format!("/v1/channels/{channel}/listeners/{listener}");
    let (status, body) = http
        .post(&node.url(&format!("{base}/start")), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "start: {body}");
    let mut pulled = Vec::new();
    loop {
        let (status, body) = http
            .post(&node.url(&format!("{base}/next")), json!({}))
            .await;
        match status {
            StatusCode::NO_CONTENT => return pulled,
            StatusCode::OK => {
                let seq = body["seq"].as_u64().expect("a sequence number");
                pulled.push((seq, body["message"]["payload"].clone()));
            }
            other => panic!("next on {listener}: {other} {body}"),
        }
    }
}

/// Checks what `listener` held after the crash against what `producers`
/// sent it: each producer's writes in the order it made them, none twice,
/// none skipped, each under the sequence number its answer gave; at most
/// the one write in flight besides what was acknowledged; and, when the
/// policy is `durable`, every acknowledged write (else a prefix of them).
/// Returns the highest sequence number seen (pulled or answered).
fn check(
    listener: &str,
    durable: bool,
    pulled: &[Pulled],
    sent: &[Sent],
    reaches: impl Fn(u64) -> bool,
) -> u64 {
    assert!(
        pulled.windows(2).all(|w| w[0].0 < w[1].0),
        "{listener}: sequence numbers not increasing"
    );
    let mut by_producer: BTreeMap<u64, Vec<(u64, u64)>> = BTreeMap::new();
    for (seq, payload) in pulled {
        let p = payload["p"].as_u64().expect("a producer");
        let n = payload["n"].as_u64().expect("a number");
        assert!(reaches(p), "{listener} holds {payload} of producer {p}");
        by_producer.entry(p).or_default().push((n, *seq));
    }
    let mut highest = pulled.last().map_or(0, |(seq, _)| *seq);
    for (p, sent) in (0..).zip(sent).filter(|(p, _)| reaches(*p)) {
        let held = by_producer.remove(&p).unwrap_or_default();
        let numbers: Vec<u64> = held.iter().map(|(n, _)| *n).collect();
        let acked = sent.acked.len();
        // In order, none twice, none skipped: 0, 1, 2, ...
        assert!(
            numbers.iter().copied().eq(0..numbers.len() as u64),
            "{listener}, producer {p}: held {numbers:?}"
        );
        let extra = usize::from(sent.in_flight);
        let floor = if durable { acked } else { 0 };
        assert!(
            (floor..=acked + extra).contains(&numbers.len()),
            "{listener}, producer {p}: {acked} acknowledged (one more in flight: {}), {} held",
            sent.in_flight,
            numbers.len()
        );
        for (n, answered) in sent.acked.iter().enumerate().take(held.len()) {
            if let Some(answered) = answered {
                assert_eq!(
                    held[n].1, *answered,
                    "{listener}, producer {p}, write {n}: stored under another seq"
                );
                highest = highest.max(*answered);
            }
        }
    }
    highest
}

/// 16 producers dispatch to `a` and broadcast to the channel (`a` and `b`)
/// under `fsync`; the server is SIGKILLed once some hundreds are
/// acknowledged, with writes in flight. After a restart on the same
/// directory both listeners hold each producer's writes exactly once and
/// in order, under the seq each answer gave: under `always` every
/// acknowledged one, under `everysec` a prefix (the last second may be
/// lost). Sequence numbers go on above every one seen (under `always`) or
/// kept (under `everysec`).
async fn burst(fsync: &str) {
    let durable = fsync == "always";
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new();
    let mut node = Node::start_disk(dir.path(), fsync).await;
    http.create_channel(&node, "burst", json!({})).await;
    http.subscribe(&node, "burst", "a").await;
    http.subscribe(&node, "burst", "b").await;
    if !durable {
        // The channel and listeners are on disk only once synced; a clean
        // stop syncs, and waits for nothing.
        node.terminate().await;
        node = Node::start_disk(dir.path(), fsync).await;
    }

    let (acked, mut count) = watch::channel(0u64);
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let url = if dispatches(p) {
                node.url("/v1/channels/burst/listeners/a/messages")
            } else {
                node.url("/v1/channels/burst/messages")
            };
            tokio::spawn(produce(url, p, acked.clone()))
        })
        .collect();
    within("acknowledged writes", count.wait_for(|n| *n >= KILL_AFTER))
        .await
        .unwrap();
    node.kill().await;
    let mut sent = Vec::new();
    for producer in producers {
        sent.push(within("a producer to stop", producer).await.unwrap());
    }

    let node = Node::start_disk(dir.path(), fsync).await;
    let pulled_a = drain(&http, &node, "burst", "a").await;
    let pulled_b = drain(&http, &node, "burst", "b").await;
    let highest_a = check("a", durable, &pulled_a, &sent, |_| true);
    let highest_b = check("b", durable, &pulled_b, &sent, |p| !dispatches(p));

    let after = http.dispatch(&node, "burst", "a", json!("after")).await;
    assert!(
        after > highest_a,
        "seq {after} after the crash, {highest_a} before"
    );
    http.broadcast(&node, "burst", json!("after")).await;
    let pulled = drain(&http, &node, "burst", "b").await;
    assert_eq!(pulled.len(), 1, "{pulled:?}");
    assert!(
        pulled[0].0 > highest_b,
        "seq {} after, {highest_b} before",
        pulled[0].0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_a_burst_loses_no_acknowledged_write_under_always() {
    burst("always").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_a_burst_under_everysec_keeps_a_consistent_prefix() {
    burst("everysec").await;
}

/// Under `--fsync no` (a sync at most every 30 s) a clean stop syncs what
/// the last sync left out: a restart finds every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_loses_nothing_under_fsync_no() {
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new();
    let node = Node::start_disk(dir.path(), "no").await;
    http.create_channel(&node, "c", json!({})).await;
    http.subscribe(&node, "c", "l").await;
    let mut seqs = Vec::new();
    for n in 0..20 {
        let seq = http.dispatch(&node, "c", "l", json!({"n": n})).await;
        seqs.push((seq, json!({"n": n})));
    }
    node.terminate().await;

    let node = Node::start_disk(dir.path(), "no").await;
    assert_eq!(drain(&http, &node, "c", "l").await, seqs);
    node.terminate().await;
}

/// A stream consumes a burst of dispatches from 8 producers under
/// `--fsync always`; the server is SIGKILLed once the client has 200
/// events, writes and sends in flight. The client resumes on the restarted
/// server with `Last-Event-ID` of the last event it got: up to a marker
/// sent last, the stream as a whole (before and after the crash) holds
/// every acknowledged message exactly once, in each producer's order,
/// under the seq its answer gave, with ids increasing throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumes_after_sigkill_mid_burst() {
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new();
    let node = Node::start_disk(dir.path(), "always").await;
    http.create_channel(&node, "s", json!({})).await;
    http.subscribe(&node, "s", "l").await;
    let mut events = http.events(&node, "s", "l", None).await;
    let (acked, _) = watch::channel(0u64);
    let url = node.url("/v1/channels/s/listeners/l/messages");
    let producers: Vec<_> = (0..PRODUCERS / 2)
        .map(|p| tokio::spawn(produce(url.clone(), p, acked.clone())))
        .collect();

    let mut received = Vec::new();
    while received.len() < 200 {
        let event = events.next().await.expect("an event");
        received.push((event.id, event.data));
    }
    node.kill().await;
    // What reached the client before the connection broke counts too.
    while let Some(event) = events.next().await {
        received.push((event.id, event.data));
    }
    let mut sent = Vec::new();
    for producer in producers {
        sent.push(within("a producer to stop", producer).await.unwrap());
    }

    let node = Node::start_disk(dir.path(), "always").await;
    let last = received.last().map(|(id, _)| *id);
    let mut events = http.events(&node, "s", "l", last).await;
    http.dispatch(&node, "s", "l", json!("end")).await;
    loop {
        let event = events.next().await.expect("an event");
        if event.data == json!("end") {
            break;
        }
        received.push((event.id, event.data));
    }
    check("l", true, &received, &sent, |_| true);
}

/// How a test ends the first server.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Term,
    Kill,
}

async fn stop(node: Node, how: Stop) {
    match how {
        Stop::Term => node.terminate().await,
        Stop::Kill => node.kill().await,
    }
}

/// The listeners of `channel`: id → running.
async fn listeners(http: &Http, node: &Node, channel: &str) -> BTreeMap<String, bool> {
    let (status, body) = http
        .get(&node.url(&format!("/v1/channels/{channel}/listeners")))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = body.as_array().expect("a list");
    list.iter()
        .map(|l| (l["id"].as_str().unwrap().to_owned(), l["running"] == true))
        .collect()
}

async fn subscriptions(http: &Http, node: &Node, listener: &str) -> Value {
    let url = format!("/v1/channels/c/listeners/{listener}/subscriptions");
    let (status, body) = http.get(&node.url(&url)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["subscriptions"].clone()
}

/// Reads messages `from..` of those `ids` numbers (message `n`'s payload
/// is `n`), each with its id.
async fn expect_messages(events: &mut Events, ids: &[u64], from: usize) {
    for (n, id) in ids.iter().enumerate().skip(from) {
        let event = events.next().await.expect("an event");
        assert_eq!((event.id, event.data), (*id, json!(n)));
    }
}

/// Replay window of the channel in [`window_and_listeners_survive`]:
/// small, so messages leave it and a resume from before it is a gap.
const WINDOW: u64 = 3;

/// A stream takes five messages (the window keeps the last three); after
/// a restart, a stream resuming after the second gets the last three
/// again, with their ids, and then a new one; after a second restart, one
/// resuming after the first learns of the gap and gets the three the
/// window then holds. Listeners keep their subscriptions and running
/// state; the channel's watch listener (temporary) is gone.
async fn window_and_listeners_survive(how: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new();
    let node = Node::start_disk(dir.path(), "always").await;
    http.create_channel(&node, "c", json!({"replay_window": WINDOW}))
        .await;
    let add = node.url("/v1/channels/c/listeners");
    http.ok(
        &add,
        json!({"id": "l", "subscriptions": [{"type": "keep"}]}),
    )
    .await;
    let news = json!([{"type": "news", "topic": "a.b"}]);
    http.ok(&add, json!({"id": "s", "subscriptions": news}))
        .await;
    http.subscribe(&node, "c", "r").await;
    let (status, _) = http
        .post(&node.url("/v1/channels/c/listeners/r/start"), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let client = reqwest_builder().build().unwrap();
    let answer = client
        .patch(node.url("/v1/channels/c/listeners/l/subscriptions"))
        .json(&json!({"add": [{"type": "more"}]}))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());

    let watch = within(
        "the watch to open",
        client.get(node.url("/v1/channels/c/events")).send(),
    )
    .await
    .unwrap();
    assert_eq!(watch.status(), StatusCode::OK);
    assert_eq!(
        listeners(&http, &node, "c").await.len(),
        4,
        "l, s, r and the watch's"
    );

    let mut events = http.events(&node, "c", "l", None).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        http.dispatch(&node, "c", "l", json!(n)).await;
        let event = events.next().await.expect("an event");
        assert_eq!(event.data, json!(n));
        ids.push(event.id);
    }
    stop(node, how).await;
    drop((events, watch));

    let node = Node::start_disk(dir.path(), "always").await;
    let expected =
        [("l", true), ("r", true), ("s", false)].map(|(id, running)| (id.to_owned(), running));
    assert_eq!(listeners(&http, &node, "c").await, BTreeMap::from(expected));
    assert_eq!(
        subscriptions(&http, &node, "l").await,
        json!([{"type": "keep"}, {"type": "more"}])
    );
    assert_eq!(subscriptions(&http, &node, "s").await, news);

    let mut events = http.events(&node, "c", "l", Some(ids[1])).await;
    expect_messages(&mut events, &ids, 2).await;
    let seq = http.dispatch(&node, "c", "l", json!(5)).await;
    assert!(seq > ids[4], "seq {seq} after a restart, {} before", ids[4]);
    let event = events.next().await.expect("an event");
    assert_eq!((event.id, event.data), (seq, json!(5)));
    ids.push(seq);
    stop(node, how).await;
    drop(events);

    // The window now holds the last three taken (the rewind and the new
    // message went through the file too); the first resume's is gone.
    let node = Node::start_disk(dir.path(), "always").await;
    let mut events = http.events(&node, "c", "l", Some(ids[0])).await;
    let gap = events.next().await.expect("an event");
    assert_eq!(
        (gap.event.as_str(), gap.data),
        ("eric-gap", json!({"after": ids[0]}))
    );
    expect_messages(&mut events, &ids, 3).await;
    node.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_and_listeners_survive_a_clean_restart() {
    window_and_listeners_survive(Stop::Term).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_and_listeners_survive_sigkill() {
    window_and_listeners_survive(Stop::Kill).await;
}

/// A dispatch named by an `Idempotency-Key`, applied before a SIGKILL and
/// retried with its key after the restart (its answer may have been lost
/// in the crash), is answered as the first was and not applied again, as
/// `docs/HTTP.md` ("Retrying writes") promises within the key's window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_write_retried_after_sigkill_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new();
    let node = Node::start_disk(dir.path(), "always").await;
    http.create_channel(&node, "c", json!({})).await;
    http.subscribe(&node, "c", "l").await;
    let client = reqwest_builder().build().unwrap();
    let send = |node: &Node| {
        client
            .post(node.url("/v1/channels/c/listeners/l/messages"))
            .header("Idempotency-Key", "k1")
            .json(&json!({"type": "t", "payload": 1}))
            .send()
    };
    let first: Value = send(&node).await.unwrap().json().await.unwrap();
    node.kill().await;

    let node = Node::start_disk(dir.path(), "always").await;
    let retry = send(&node).await.unwrap();
    assert_eq!(retry.status(), StatusCode::ACCEPTED);
    let replayed = retry.headers().get("Idempotent-Replayed").cloned();
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    assert_eq!(
        replayed.as_ref().and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let pulled = drain(&http, &node, "c", "l").await;
    assert_eq!(pulled.len(), 1, "{pulled:?}");
}
