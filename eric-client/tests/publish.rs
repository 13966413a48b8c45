//! Typed events published with [`Publisher`] and [`BlockingPublisher`]
//! against a real server: the channel is made on first use, an event
//! travels as its type with its topic, and reads back as itself.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use eric_client::{
    BlockingPublisher, Client, Endpoint, Event, EventStream, Publisher, StreamEvent, StreamItem,
};
use eric_server::test_support::TestServer;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

const DEADLINE: Duration = Duration::from_secs(20);

/// The juice protocol's own example: the topic is the service.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct KernelStatusChanged {
    service: String,
    status: String,
}

impl Event for KernelStatusChanged {
    const TYPE: &'static str = "KernelStatusChanged";
    fn topic(&self) -> Option<String> {
        Some(self.service.clone())
    }
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct DummyEvent {
    n: u32,
}

impl Event for DummyEvent {
    const TYPE: &'static str = "DummyEvent";
}

async fn next_event(stream: &mut EventStream) -> StreamEvent {
    loop {
        let item = tokio::time::timeout(DEADLINE, stream.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .unwrap();
        if let StreamItem::Event(event) = item {
            return event;
        }
    }
}

#[tokio::test]
async fn events_are_published_as_their_type_with_their_topic() {
    let server = TestServer::memory().await;
    let publisher = Publisher::connect(&format!("{}/kernels", server.url())).unwrap();
    // The channel does not exist yet: the first publish makes it.
    let first = KernelStatusChanged {
        service: "q0".into(),
        status: "starting".into(),
    };
    assert_eq!(publisher.publish(&first).await.unwrap().delivered, 0);

    let client = Client::new(&server.url()).unwrap();
    let listener = client.add_listener("kernels", Some("l")).await.unwrap();
    let mut stream = client
        .listener_events("kernels", &listener)
        .open()
        .await
        .unwrap();
    let event = KernelStatusChanged {
        service: "q1".into(),
        status: "idle".into(),
    };
    assert_eq!(publisher.publish(&event).await.unwrap().delivered, 1);
    let uri = format!("{}/kernels", server.url());
    tokio::task::spawn_blocking(move || {
        let blocking = BlockingPublisher::connect(&uri).unwrap();
        blocking.publish(&DummyEvent { n: 7 }).unwrap()
    })
    .await
    .unwrap();

    let read = next_event(&mut stream).await;
    assert_eq!(
        (read.event.as_str(), read.topic.as_deref()),
        ("KernelStatusChanged", Some("q1"))
    );
    assert_eq!(
        read.decode::<KernelStatusChanged>().unwrap().unwrap(),
        event
    );
    assert!(read.decode::<DummyEvent>().is_none());
    let read = next_event(&mut stream).await;
    assert_eq!(read.topic, None);
    assert_eq!(
        read.decode::<DummyEvent>().unwrap().unwrap(),
        DummyEvent { n: 7 }
    );
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_topic_is_the_servers_typed_refusal() {
    let server = TestServer::memory().await;
    let endpoint = Endpoint::new(Client::new(&server.url()).unwrap(), "juice");
    let publisher = Publisher::new(endpoint);
    let event = KernelStatusChanged {
        service: "a\nb".into(),
        status: "idle".into(),
    };
    let error = publisher.publish(&event).await.unwrap_err();
    assert_eq!(
        (error.status(), error.code()),
        (Some(400), Some("invalid_topic"))
    );
    server.stop().await;
}
