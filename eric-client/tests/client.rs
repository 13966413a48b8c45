//! Every call of the client against a real server started in this process
//! (the memory engine on a free port; Redis for the resume across
//! servers). Nothing sleeps to wait: each wait is a deadline on the event.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use eric_client::{
    Client, EndReason, Error, EventStream, Message, NewChannel, Queued, StreamEvent, StreamItem,
    Write, Written,
};
use eric_redis::test_support::TestRedis;
use eric_server::test_support::{TestServer, config_on};
use futures_util::StreamExt;
use serde_json::json;
use tokio::time::timeout;

/// Longest wait for anything; a healthy run takes a fraction of it.
const DEADLINE: Duration = Duration::from_secs(20);

/// A memory server with a channel `c`, and a client of it.
async fn with_channel_c() -> (TestServer, Client) {
    let server = TestServer::memory().await;
    let client = client_of(&server);
    let channel = NewChannel::new().id("c");
    client.create_channel(&channel).await.unwrap();
    (server, client)
}

fn client_of(server: &TestServer) -> Client {
    Client::new(&server.url()).unwrap()
}

fn message(msg_type: &str, payload: serde_json::Value) -> Message {
    Message::json(msg_type, &payload).unwrap()
}

/// Dispatches an unnamed message to listener `listener` of channel `c`.
async fn dispatch(
    client: &Client,
    listener: &str,
    msg_type: &str,
    payload: serde_json::Value,
) -> Written<Queued> {
    let message = message(msg_type, payload);
    let write = Write::new();
    client
        .dispatch("c", listener, &message, &write)
        .await
        .unwrap()
}

/// The next item of `stream`, under the deadline.
async fn next_item(stream: &mut EventStream) -> StreamItem {
    timeout(DEADLINE, stream.next())
        .await
        .expect("no stream item in time")
        .expect("the stream ended")
        .unwrap()
}

/// The next item, which must be an event.
async fn next_event(stream: &mut EventStream) -> StreamEvent {
    match next_item(stream).await {
        StreamItem::Event(event) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn channels_are_created_listed_shown_and_deleted() {
    let server = TestServer::memory().await;
    let client = client_of(&server);
    let created = client
        .create_channel(&NewChannel::new().id("c1").retry_ms(250).queue_capacity(7))
        .await
        .unwrap();
    assert_eq!(created.id, "c1");
    assert_eq!(created.settings.retry_timeout_milliseconds, 250);
    assert_eq!(created.settings.queue_capacity, 7);
    let generated = client.create_channel(&NewChannel::new()).await.unwrap().id;

    let mut ids = client.channels().await.unwrap();
    ids.sort_unstable();
    let mut expected = vec!["c1".to_owned(), generated.clone()];
    expected.sort_unstable();
    assert_eq!(ids, expected);

    let info = client.channel("c1").await.unwrap();
    assert_eq!(info, created);
    assert!(info.listeners.is_empty());

    client.delete_channel("c1").await.unwrap();
    assert_eq!(client.channels().await.unwrap(), [generated]);
    server.stop().await;
}

#[tokio::test]
async fn listeners_are_added_shown_started_stopped_and_removed() {
    let (server, client) = with_channel_c().await;
    let first = client.add_listener("c", None).await.unwrap();
    assert_eq!(client.add_listener("c", Some("l2")).await.unwrap(), "l2");
    let listed = client.listeners("c").await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, [first.as_str(), "l2"]);
    assert!(listed.iter().all(|l| !l.running && l.queued == 0));

    client.start("c", "l2").await.unwrap();
    assert!(client.listener("c", "l2").await.unwrap().running);
    client.stop("c", "l2").await.unwrap();
    assert!(!client.listener("c", "l2").await.unwrap().running);

    client.remove_listener("c", &first).await.unwrap();
    assert_eq!(client.listeners("c").await.unwrap().len(), 1);
    let error = client.start("c", &first).await.unwrap_err();
    assert_eq!(
        (error.status(), error.code()),
        (Some(404), Some("listener_not_found"))
    );
    server.stop().await;
}

#[tokio::test]
async fn dispatch_broadcast_and_next() {
    let (server, client) = with_channel_c().await;
    for listener in ["l1", "l2"] {
        client.add_listener("c", Some(listener)).await.unwrap();
    }
    let once = Write::new();
    let queued = dispatch(&client, "l1", "greet", json!({"a": [1, "x"]})).await;
    assert_eq!((queued.value.seq, queued.replayed), (1, false));
    let broadcast = client
        .broadcast("c", &message("news", json!("hello")), &once)
        .await
        .unwrap();
    assert_eq!(broadcast.value.delivered, 2);
    assert!(broadcast.value.full.is_empty());

    // A stopped listener hands nothing out; its messages wait.
    let error = client.next("c", "l1").await.unwrap_err();
    assert_eq!(error.code(), Some("listener_stopped"));
    client.start("c", "l1").await.unwrap();
    let first = client.next("c", "l1").await.unwrap().unwrap();
    assert_eq!(first.seq, 1);
    assert_eq!(first.message.msg_type, "greet");
    assert_eq!(first.message.payload.get(), r#"{"a":[1,"x"]}"#);
    let second = client.next("c", "l1").await.unwrap().unwrap();
    assert_eq!(
        (second.seq, second.message.payload.get()),
        (2, r#""hello""#)
    );
    assert!(client.next("c", "l1").await.unwrap().is_none());
    client.ready(false).await.unwrap();
    client.ready(true).await.unwrap();
    server.stop().await;
}

/// A write named by a key is applied once however often it is sent; the
/// repeats say they were replayed.
#[tokio::test]
async fn named_writes_apply_once_and_say_so() {
    let (server, client) = with_channel_c().await;
    client.add_listener("c", Some("l")).await.unwrap();
    let dispatch = Write::once("order-1").retries(2);
    let message = message("t", json!(1));
    let first = client
        .dispatch("c", "l", &message, &dispatch)
        .await
        .unwrap();
    let again = client
        .dispatch("c", "l", &message, &dispatch)
        .await
        .unwrap();
    assert_eq!((first.value.seq, first.replayed), (1, false));
    assert_eq!((again.value.seq, again.replayed), (1, true));
    let broadcast = Write::once("b-1");
    let first = client.broadcast("c", &message, &broadcast).await.unwrap();
    let again = client.broadcast("c", &message, &broadcast).await.unwrap();
    assert_eq!(first.value, again.value);
    assert!(!first.replayed && again.replayed);
    assert_eq!(client.listener("c", "l").await.unwrap().queued, 2);
    server.stop().await;
}

#[tokio::test]
async fn refusals_carry_the_servers_code_and_transport_failures_the_url() {
    let server = TestServer::memory().await;
    let client = client_of(&server);
    let error = client.channel("nope").await.unwrap_err();
    assert_eq!(
        (error.status(), error.code()),
        (Some(404), Some("channel_not_found"))
    );
    assert!(!error.is_transient());
    client
        .create_channel(&NewChannel::new().id("c"))
        .await
        .unwrap();
    let error = client
        .create_channel(&NewChannel::new().id("c"))
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("channel_exists"));
    let error = client.channel("has space").await.unwrap_err();
    assert_eq!(error.code(), Some("invalid_id"));
    let reserved = message("eric-end", json!({"reason": "stopped"}));
    let error = client
        .broadcast("c", &reserved, &Write::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("invalid_message"));
    // A stream that cannot open fails at once, with the code.
    let error = client
        .listener_events("c", "nobody")
        .open()
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some("listener_not_found"));
    server.stop().await;

    let error = client.channels().await.unwrap_err();
    assert!(matches!(error, Error::Request { .. }), "{error}");
    assert!(error.is_transient());
    assert!(
        error.to_string().starts_with("request to http://"),
        "{error}"
    );
}

#[tokio::test]
async fn a_listeners_stream_yields_events_then_its_end() {
    let (server, client) = with_channel_c().await;
    client.add_listener("c", Some("l")).await.unwrap();
    // Open returns once the stream is registered: what follows reaches it.
    let mut stream = client.listener_events("c", "l").open().await.unwrap();
    assert!(stream.retry().is_some());
    dispatch(&client, "l", "a", json!({"n": 1})).await;
    dispatch(&client, "l", "b", json!([2])).await;
    let first = next_event(&mut stream).await;
    assert_eq!((first.id, first.event.as_str()), (Some(1), "a"));
    assert_eq!(first.json::<serde_json::Value>().unwrap(), json!({"n": 1}));
    let second = next_event(&mut stream).await;
    assert_eq!((second.id, second.data.as_str()), (Some(2), "[2]"));
    assert_eq!(stream.last_event_id(), Some(2));

    client.stop("c", "l").await.unwrap();
    assert!(matches!(
        next_item(&mut stream).await,
        StreamItem::End(EndReason::Stopped)
    ));
    assert!(stream.next().await.is_none());
    server.stop().await;
}

/// A resume the replay window cannot cover says so with a typed gap, then
/// goes on.
#[tokio::test]
async fn a_resume_past_the_replay_window_yields_a_gap() {
    let server = TestServer::memory().await;
    let client = client_of(&server);
    let channel = NewChannel::new().id("c").replay_window(1);
    client.create_channel(&channel).await.unwrap();
    client.add_listener("c", Some("l")).await.unwrap();
    for n in 1..=3 {
        dispatch(&client, "l", "m", json!(n)).await;
    }
    let mut stream = client.listener_events("c", "l").open().await.unwrap();
    for n in 1..=3 {
        assert_eq!(next_event(&mut stream).await.id, Some(n));
    }
    drop(stream);
    // Only event 3 is kept for resumes: 2 is gone.
    let request = client.listener_events("c", "l").last_event_id(1);
    let mut resumed = request.open().await.unwrap();
    assert!(matches!(
        next_item(&mut resumed).await,
        StreamItem::Gap { after: Some(1) }
    ));
    assert_eq!(next_event(&mut resumed).await.id, Some(3));
    server.stop().await;
}

#[tokio::test]
async fn a_channels_stream_yields_its_broadcasts() {
    let (server, client) = with_channel_c().await;
    let mut stream = client.channel_events("c").open().await.unwrap();
    let once = Write::new();
    client
        .broadcast("c", &message("one", json!(1)), &once)
        .await
        .unwrap();
    let event = next_event(&mut stream).await;
    assert_eq!(
        (event.id, event.event.as_str(), event.data.as_str()),
        (Some(1), "one", "1")
    );
    // Deleting the channel removes the watch's listener: the stream ends.
    client.delete_channel("c").await.unwrap();
    assert!(matches!(
        next_item(&mut stream).await,
        StreamItem::End(EndReason::Removed)
    ));
    server.stop().await;
}

/// The Redis engine keeps the channel, listener and queue across servers:
/// server A goes away mid-stream, server B takes its port, and the stream
/// reconnects and resumes with `Last-Event-ID`, nothing lost or repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumes_across_a_server_restart() {
    let redis = TestRedis::start().await;
    let mut config = config_on("127.0.0.1:0".parse().unwrap());
    config.redis = Some(redis.config());
    let a = TestServer::start(config.clone()).await;
    let addr = a.addr();
    let client = client_of(&a);
    client
        .create_channel(&NewChannel::new().id("c"))
        .await
        .unwrap();
    client.add_listener("c", Some("l")).await.unwrap();
    let mut stream = client.listener_events("c", "l").open().await.unwrap();
    let once = Write::new();
    let send = |n: u64| {
        let client = client.clone();
        let once = once.clone();
        async move {
            client
                .dispatch("c", "l", &message("m", json!(n)), &once)
                .await
                .unwrap()
        }
    };
    for n in 1..=3 {
        send(n).await;
    }
    for n in 1..=3 {
        assert_eq!(next_event(&mut stream).await.id, Some(n));
    }

    a.stop().await;
    assert!(matches!(
        next_item(&mut stream).await,
        StreamItem::Disconnected(_)
    ));
    config.http.addr = addr;
    let b = TestServer::start(config).await;
    for n in 4..=6 {
        send(n).await;
    }
    assert!(matches!(
        next_item(&mut stream).await,
        StreamItem::Reconnected {
            resumed_after: Some(3)
        }
    ));
    for n in 4..=6 {
        let event = next_event(&mut stream).await;
        assert_eq!((event.id, event.data), (Some(n), n.to_string()));
    }
    // Nothing repeated or extra follows: the next item is the next message.
    send(7).await;
    assert_eq!(next_event(&mut stream).await.id, Some(7));
    b.stop().await;
}

/// A message's topic reaches its consumer on both paths: the pulled
/// delivery and the stream's event (its `topic:` line). A message without
/// one has none; an invalid topic is refused with the server's code.
#[tokio::test]
async fn a_topic_reaches_the_stream_and_the_pulled_delivery() {
    let (server, client) = with_channel_c().await;
    client.add_listener("c", Some("l")).await.unwrap();
    let mut stream = client.listener_events("c", "l").open().await.unwrap();
    let write = Write::new();
    let about = message("status", json!("idle")).with_topic("kernel.q1");
    client.dispatch("c", "l", &about, &write).await.unwrap();
    dispatch(&client, "l", "status", json!("busy")).await;
    let first = next_event(&mut stream).await;
    assert_eq!(
        (first.event.as_str(), first.topic.as_deref()),
        ("status", Some("kernel.q1"))
    );
    assert_eq!(next_event(&mut stream).await.topic, None);

    let refused = message("status", json!(0)).with_topic("a\nb");
    let error = client.broadcast("c", &refused, &write).await.unwrap_err();
    assert_eq!(
        (error.status(), error.code()),
        (Some(400), Some("invalid_topic"))
    );
    drop(stream);
    client.stop("c", "l").await.unwrap();
    client.start("c", "l").await.unwrap();
    client.dispatch("c", "l", &about, &write).await.unwrap();
    // The stream took the first two; the third waits to be pulled.
    let delivery = client.next("c", "l").await.unwrap().unwrap();
    assert_eq!(delivery.message.topic.as_deref(), Some("kernel.q1"));
    server.stop().await;
}
