//! [`Subscriber`] and [`BlockingSubscriber`] against a real server (the
//! memory engine; `subscribe_nodes.rs` has two Redis nodes): what is
//! received is what the subscriptions match, from the moment `subscribe`
//! returns, and nothing before the first one. Nothing sleeps to wait: every
//! wait is a deadline on the event.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use eric_client::{
    BlockingPublisher, BlockingSubscriber, Client, Endpoint, Error, Event, Publisher, Subscriber,
    Subscription,
};
use eric_server::test_support::TestServer;
use support::{
    DEADLINE, Done, KernelStatusChanged, Tick, the_matching_table_holds, ticks, until_done,
};

/// A short wait for what must not come.
const QUIET: Duration = Duration::from_millis(200);

fn endpoint(server: &TestServer, channel: &str) -> Endpoint {
    Endpoint::new(Client::new(&server.url()).unwrap(), channel)
}

fn uri(server: &TestServer, channel: &str) -> String {
    format!("{}/{channel}", server.url())
}

#[tokio::test]
async fn the_matching_table_holds_durable_and_ephemeral() {
    let server = TestServer::memory().await;
    let table = uri(&server, "table");
    the_matching_table_holds(&table, &table, false).await;
    the_matching_table_holds(&table, &table, true).await;
    server.stop().await;
}

/// The seed's example: a subscriber of `KernelStatusChanged` about one
/// service gets that service's events (and those below it), decoded.
#[tokio::test]
async fn the_seeds_kernel_status_example() {
    let server = TestServer::memory().await;
    let mut subscriber = Subscriber::new(endpoint(&server, "juice"));
    subscriber
        .subscribe::<KernelStatusChanged>(Some("q1"))
        .await
        .unwrap();
    let publisher = Publisher::connect(&server.url()).unwrap();
    let events = [
        KernelStatusChanged::new("q2", "idle"),
        KernelStatusChanged::new("q1", "busy"),
        KernelStatusChanged::new("q10", "idle"),
        KernelStatusChanged::new("q1.kernel", "idle"),
    ];
    for event in &events {
        publisher.publish(event).await.unwrap();
    }
    for wanted in [&events[1], &events[3]] {
        let event = subscriber.get(Some(DEADLINE)).await.unwrap();
        assert_eq!(event.topic.as_deref(), Some(wanted.service.as_str()));
        assert_eq!(
            &event.decode::<KernelStatusChanged>().unwrap().unwrap(),
            wanted
        );
    }
    let quiet = subscriber.get(Some(QUIET)).await.unwrap_err();
    assert!(
        matches!(quiet, Error::Timeout { after } if after == QUIET),
        "{quiet}"
    );
    subscriber.close().await.unwrap();
    server.stop().await;
}

/// Before any subscription nothing arrives, and no listener exists (one
/// with no subscriptions would receive everything): `get` times out with
/// the distinct error. The first subscription makes the channel.
#[tokio::test]
async fn a_subscriber_with_no_subscription_times_out() {
    let server = TestServer::memory().await;
    let client = Client::new(&server.url()).unwrap();
    for ephemeral in [false, true] {
        let uri = uri(&server, "empty");
        let mut subscriber = match ephemeral {
            true => Subscriber::ephemeral(&uri).unwrap(),
            false => Subscriber::connect(&uri).unwrap(),
        };
        let error = subscriber.get(Some(QUIET)).await.unwrap_err();
        assert!(error.is_timeout(), "{error}");
        assert_eq!(error.to_string(), format!("no event within {QUIET:?}"));
        assert_eq!(client.channels().await.unwrap(), Vec::<String>::new());
        subscriber.close().await.unwrap();
    }
    // The first subscription makes the channel, and a listener.
    let mut subscriber = Subscriber::connect(&uri(&server, "empty")).unwrap();
    subscriber.subscribe::<Tick>(None).await.unwrap();
    let listeners = client.listeners("empty").await.unwrap();
    let id = subscriber.listener_id().unwrap();
    assert_eq!(
        listeners.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        [id]
    );
    assert_eq!(
        client.subscriptions("empty", id).await.unwrap(),
        [Subscription::to::<Tick>(None)]
    );
    subscriber.close().await.unwrap();
    assert!(client.listeners("empty").await.unwrap().is_empty());
    server.stop().await;
}

/// Many subscriptions on one subscriber, added one by one and removed
/// again: the listener holds them in order; removing the last one removes
/// the listener rather than leaving it to receive everything.
#[tokio::test]
async fn many_subscriptions_are_added_and_removed() {
    let server = TestServer::memory().await;
    let client = Client::new(&server.url()).unwrap();
    let mut subscriber = Subscriber::new(endpoint(&server, "many"));
    let wanted: Vec<Subscription> = (0..200)
        .map(|n| Subscription::to::<Tick>(Some(&format!("t{n}"))))
        .collect();
    for subscription in &wanted {
        subscriber.subscribe_to(subscription.clone()).await.unwrap();
    }
    // Again: held already, nothing changes.
    subscriber.subscribe_to(wanted[0].clone()).await.unwrap();
    let id = subscriber.listener_id().unwrap().to_owned();
    assert_eq!(client.subscriptions("many", &id).await.unwrap(), wanted);

    let publisher = Publisher::connect(&uri(&server, "many")).unwrap();
    for n in [5, 250, 199] {
        let tick = Tick {
            n,
            about: Some(format!("t{n}.x")),
        };
        publisher.publish(&tick).await.unwrap();
    }
    let got = [
        subscriber.get(Some(DEADLINE)).await.unwrap(),
        subscriber.get(Some(DEADLINE)).await.unwrap(),
    ];
    assert_eq!(ticks(&got), [5, 199]);

    for subscription in &wanted[1..] {
        subscriber.unsubscribe(subscription).await.unwrap();
    }
    assert_eq!(
        client.subscriptions("many", &id).await.unwrap(),
        wanted[..1]
    );
    subscriber.unsubscribe(&wanted[0]).await.unwrap();
    assert!(client.listeners("many").await.unwrap().is_empty());
    assert!(subscriber.get(Some(QUIET)).await.unwrap_err().is_timeout());
    subscriber.close().await.unwrap();
    server.stop().await;
}

/// Subscriptions change while a publisher keeps publishing ticks about
/// `t0` .. `t3` in turn: after `subscribe(tK)` returns, every tick about
/// tK that is published from then on arrives (durable: also across later
/// changes; ephemeral: from the last change on, as a switch may drop what
/// the old stream held), none twice, none unasked, in order.
async fn subscriptions_change_while_publishing(ephemeral: bool) {
    let server = TestServer::memory().await;
    let uri = uri(&server, "busy");
    let publisher = Publisher::connect(&uri).unwrap();
    // Make the channel before the subscriber does, so the first ticks are
    // not all refused.
    publisher.publish(&Done).await.unwrap();
    let claimed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = tokio::spawn({
        let (claimed, stop) = (claimed.clone(), stop.clone());
        async move {
            while !stop.load(Ordering::Acquire) {
                // Claimed before it is sent: a tick claimed after a mark
                // was published after it.
                let n = claimed.fetch_add(1, Ordering::AcqRel);
                let tick = Tick {
                    n,
                    about: Some(format!("t{}", n % 4)),
                };
                publisher.publish(&tick).await.unwrap();
            }
            publisher.publish(&Done).await.unwrap();
        }
    });
    let mut subscriber = match ephemeral {
        true => Subscriber::ephemeral(&uri).unwrap(),
        false => Subscriber::connect(&uri).unwrap(),
    };
    subscriber.subscribe::<Done>(None).await.unwrap();
    let mut marks = Vec::new();
    let mut got = Vec::new();
    for topic in 0..3 {
        subscriber
            .subscribe::<Tick>(Some(&format!("t{topic}")))
            .await
            .unwrap();
        let mark = claimed.load(Ordering::Acquire);
        marks.push(mark);
        // Read a while, so later changes happen with events in flight.
        while got.len() < 50 * (topic + 1) {
            got.push(subscriber.get(Some(DEADLINE)).await.unwrap());
        }
        // Let the publisher get well past the mark.
        while claimed.load(Ordering::Acquire) < mark + 100 {
            tokio::task::yield_now().await;
        }
    }
    stop.store(true, Ordering::Release);
    got.extend(until_done(&mut subscriber).await);
    publishing.await.unwrap();
    let last = claimed.load(Ordering::Acquire);
    let got = ticks(&got);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order, none twice");
    assert!(got.iter().all(|n| n % 4 != 3), "t3 was never subscribed to");
    for (topic, mark) in (0..3).zip(&marks) {
        let from = if ephemeral { marks[2] } else { *mark };
        // Every claimed tick was sent: the loop stops between ticks.
        let missed: Vec<u64> = (from..last)
            .filter(|n| n % 4 == topic && !got.contains(n))
            .collect();
        assert!(missed.is_empty(), "t{topic} from {from}: missed {missed:?}");
    }
    subscriber.close().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_subscriptions_change_while_publishing() {
    subscriptions_change_while_publishing(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemeral_subscriptions_change_while_publishing() {
    subscriptions_change_while_publishing(true).await;
}

/// An ephemeral subscriber reads the channel's stream: no listener of its
/// own survives it, and closing it leaves the channel as it was.
#[tokio::test]
async fn an_ephemeral_subscriber_leaves_nothing_behind() {
    let server = TestServer::memory().await;
    let client = Client::new(&server.url()).unwrap();
    let mut subscriber = Subscriber::ephemeral(&uri(&server, "eph")).unwrap();
    assert_eq!(subscriber.listener_id(), None);
    subscriber
        .subscribe::<KernelStatusChanged>(Some("q1"))
        .await
        .unwrap();
    // Its temporary listener exists while the stream is open.
    assert_eq!(client.listeners("eph").await.unwrap().len(), 1);
    let publisher = Publisher::connect(&uri(&server, "eph")).unwrap();
    publisher
        .publish(&KernelStatusChanged::new("q2", "idle"))
        .await
        .unwrap();
    publisher
        .publish(&KernelStatusChanged::new("q1", "idle"))
        .await
        .unwrap();
    let event = subscriber.get(Some(DEADLINE)).await.unwrap();
    assert_eq!((event.id, event.topic.as_deref()), (Some(1), Some("q1")));
    subscriber.close().await.unwrap();
    let gone = async {
        while !client.listeners("eph").await.unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(DEADLINE, gone)
        .await
        .expect("the temporary listener goes with its stream");
    server.stop().await;
}

/// The server's refusals arrive as its typed errors.
#[tokio::test]
async fn refusals_carry_the_servers_code() {
    let server = TestServer::memory().await;
    let mut subscriber = Subscriber::connect(&uri(&server, "juice")).unwrap();
    let error = subscriber
        .subscribe_type("Status", Some("a\nb"))
        .await
        .unwrap_err();
    assert_eq!(
        (error.status(), error.code()),
        (Some(400), Some("invalid_topic")),
        "{error}"
    );
    assert!(subscriber.subscriptions().is_empty());
    let error = subscriber.subscribe_type("a\nb", None).await.unwrap_err();
    assert_eq!(error.code(), Some("invalid_id"), "{error}");
    // An ephemeral subscriber cannot name a type holding ':' as a filter.
    let mut ephemeral = Subscriber::ephemeral(&uri(&server, "juice")).unwrap();
    let error = ephemeral.subscribe_type("ns:T", None).await.unwrap_err();
    assert!(
        matches!(error, Error::InvalidSubscription { .. }),
        "{error}"
    );
    server.stop().await;
}

/// The blocking pair from plain threads, with no runtime of their own:
/// `subscribe` returns once applied, so the publisher, told only then,
/// cannot be early.
#[tokio::test]
async fn blocking_subscriber_on_a_plain_thread() {
    let server = TestServer::memory().await;
    let uri = uri(&server, "threads");
    let (subscribed_tx, subscribed_rx) = std::sync::mpsc::channel();
    let subscriber = std::thread::spawn({
        let uri = uri.clone();
        move || {
            let mut subscriber = BlockingSubscriber::connect(&uri).unwrap();
            assert!(subscriber.get(Some(QUIET)).unwrap_err().is_timeout());
            subscriber
                .subscribe::<KernelStatusChanged>(Some("q1"))
                .unwrap();
            subscriber.subscribe::<Done>(None).unwrap();
            subscribed_tx.send(()).unwrap();
            let mut got = Vec::new();
            loop {
                let event = subscriber.get(Some(DEADLINE)).unwrap();
                if event.decode::<Done>().is_some() {
                    break;
                }
                got.push(event.decode::<KernelStatusChanged>().unwrap().unwrap());
            }
            assert!(subscriber.get(Some(QUIET)).unwrap_err().is_timeout());
            subscriber.close().unwrap();
            got
        }
    });
    let publisher = std::thread::spawn(move || {
        subscribed_rx.recv_timeout(DEADLINE).unwrap();
        let publisher = BlockingPublisher::connect(&uri).unwrap();
        for service in ["q1", "q2", "q1.a"] {
            publisher
                .publish(&KernelStatusChanged::new(service, "idle"))
                .unwrap();
        }
        publisher.publish(&Done).unwrap();
    });
    let joined = tokio::task::spawn_blocking(move || {
        publisher.join().unwrap();
        subscriber.join().unwrap()
    });
    let got = tokio::time::timeout(DEADLINE, joined)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got,
        [
            KernelStatusChanged::new("q1", "idle"),
            KernelStatusChanged::new("q1.a", "idle")
        ]
    );
    assert_eq!(<Done as Event>::TYPE, "Done");
    server.stop().await;
}
