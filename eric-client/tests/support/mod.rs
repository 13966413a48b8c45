//! What the subscriber tests share: the seed's events, reading a
//! subscriber up to a sentinel under a deadline, and a relay that stands in
//! for a load balancer in front of the nodes.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod relay;

use std::time::Duration;

use eric_client::{Endpoint, Event, Message, Publisher, StreamEvent, Subscriber, Write};
use eric_core::testing::topics::MATCH_CASES;
use serde::{Deserialize, Serialize};

/// Longest wait for anything; a healthy run takes a fraction of it.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The juice protocol's own example: the topic is the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelStatusChanged {
    pub service: String,
    pub status: String,
}

impl Event for KernelStatusChanged {
    const TYPE: &'static str = "KernelStatusChanged";
    fn topic(&self) -> Option<String> {
        Some(self.service.clone())
    }
}

impl KernelStatusChanged {
    pub fn new(service: &str, status: &str) -> Self {
        Self {
            service: service.to_owned(),
            status: status.to_owned(),
        }
    }
}

/// An event numbered `n`, about `topic` if it has one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub n: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<String>,
}

impl Event for Tick {
    const TYPE: &'static str = "Tick";
    fn topic(&self) -> Option<String> {
        self.about.clone()
    }
}

/// The end of a run: subscribed to, published last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done;

impl Event for Done {
    const TYPE: &'static str = "Done";
}

/// Every event `subscriber` gets before a [`Done`], each within the
/// deadline.
pub async fn until_done(subscriber: &mut Subscriber) -> Vec<StreamEvent> {
    let mut got = Vec::new();
    loop {
        let event = subscriber
            .get(Some(DEADLINE))
            .await
            .unwrap_or_else(|e| panic!("after {} events: {e}", got.len()));
        if event.event == Done::TYPE {
            return got;
        }
        got.push(event);
    }
}

/// The `n` of each [`Tick`] among `events` (any other event fails).
pub fn ticks(events: &[StreamEvent]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e.decode::<Tick>().expect("only ticks").unwrap().n)
        .collect()
}

/// The matching table, end to end: one subscriber holds a subscription
/// per row (its own type, the row's filter), one message per row is
/// published with the row's topic, and exactly the matching rows arrive,
/// in order. For a durable or an ephemeral subscriber; the publisher may
/// talk to another node than the subscriber.
pub async fn the_matching_table_holds(publish_to: &str, subscribe_to: &str, ephemeral: bool) {
    let mut subscriber = match ephemeral {
        true => Subscriber::ephemeral(subscribe_to).unwrap(),
        false => Subscriber::connect(subscribe_to).unwrap(),
    };
    for (row, case) in MATCH_CASES.iter().enumerate() {
        let msg_type = format!("Row{row}");
        subscriber
            .subscribe_type(&msg_type, Some(case.filter))
            .await
            .unwrap();
    }
    subscriber.subscribe::<Done>(None).await.unwrap();
    assert_eq!(subscriber.subscriptions().len(), MATCH_CASES.len() + 1);
    let to = Endpoint::parse(publish_to).unwrap();
    for (row, case) in MATCH_CASES.iter().enumerate() {
        let mut message = Message::json(format!("Row{row}"), &row).unwrap();
        if let Some(topic) = case.topic {
            message = message.with_topic(topic);
        }
        let write = Write::new();
        to.client()
            .broadcast(to.channel(), &message, &write)
            .await
            .unwrap();
    }
    Publisher::connect(publish_to)
        .unwrap()
        .publish(&Done)
        .await
        .unwrap();
    let got: Vec<usize> = until_done(&mut subscriber)
        .await
        .iter()
        .map(|e| e.json().unwrap())
        .collect();
    let expected: Vec<usize> = (0..MATCH_CASES.len())
        .filter(|&row| MATCH_CASES[row].matches)
        .collect();
    let wrong: Vec<String> = MATCH_CASES
        .iter()
        .enumerate()
        .filter(|(row, _)| expected.contains(row) != got.contains(row))
        .map(|(_, case)| {
            let what = if case.matches { "missed" } else { "received" };
            let (filter, topic, why) = (case.filter, case.topic, case.why);
            format!("{what}: filter {filter:?}, topic {topic:?} ({why})")
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(got, expected, "in publishing order");
    subscriber.close().await.unwrap();
}
