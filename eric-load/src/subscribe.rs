//! `eric load subscribe`: how fast eric-client's [`Subscriber`] receives.
//!
//! One subscriber holds a subscription to the run's `load` events (durable
//! by default, `--ephemeral` for the channel's filtered stream). Live:
//! producers publish M events while it reads them with `get`; events/s
//! from the first publish to the last event, and end-to-end latency (each
//! payload is its send time). This is bound by the publishing side (one
//! HTTP request per event; `--batch` pipelines them). Backlog: M more
//! events are published while it does not read, then its `get`s are timed
//! until it has them all: the rate of the subscriber and the server's
//! stream alone.

use std::time::{Duration, Instant};

use eric_client::{Endpoint, StreamEvent, Subscriber};

use super::api::{self, Api, Server, Target, now_micros};
use super::pipeline::Batching;
use super::report::Report;
use super::stats::{Latencies, per_second};
use super::stream::produce;
use super::with_channel;
use crate::error::{Error, Result};

/// How long the subscriber may go without an event before the run fails.
const STALL: Duration = Duration::from_secs(30);

/// Options of `eric load subscribe`.
#[derive(Debug, clap::Args)]
pub(crate) struct SubscribeArgs {
    /// Events published in each phase.
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Concurrent publishing connections.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    producers: u32,
    #[command(flatten)]
    batching: Batching,
    /// Read the channel's filtered stream instead of a listener of the
    /// subscriber's own.
    #[arg(long)]
    ephemeral: bool,
    /// Skip the live phase.
    #[arg(long)]
    no_live: bool,
    /// Skip the backlog phase.
    #[arg(long)]
    no_backlog: bool,
}

/// Runs the measurement.
pub(crate) async fn run(server: &Server, args: SubscribeArgs) -> Result<Report> {
    let api = Api::new(server)?;
    let api = &api;
    with_channel(api, Some(args.messages), |channel| async move {
        let endpoint = Endpoint::new(server.client()?, channel.clone());
        let mut subscriber = match args.ephemeral {
            true => Subscriber::builder(endpoint).ephemeral().build(),
            false => Subscriber::new(endpoint),
        };
        subscriber.subscribe_type(api::MESSAGE_TYPE, None).await?;
        let mut report = Report::new("subscribe");
        report.add(
            "subscriber",
            if args.ephemeral {
                "ephemeral"
            } else {
                "durable"
            },
            if args.ephemeral {
                "ephemeral"
            } else {
                "durable"
            },
        );
        report.count("messages", args.messages);
        let measured = measure(api, &channel, &args, &mut subscriber, &mut report).await;
        let closed = subscriber.close().await;
        measured?;
        closed?;
        Ok(report)
    })
    .await
}

async fn measure(
    api: &Api,
    channel: &str,
    args: &SubscribeArgs,
    subscriber: &mut Subscriber,
    report: &mut Report,
) -> Result<()> {
    let target = || [Target::Channel(channel.to_owned())].into();
    let publish = |targets| produce(api, targets, args.messages, args.producers, args.batching);
    if !args.no_live {
        let began = Instant::now();
        let (published, received) =
            tokio::join!(publish(target()), receive(subscriber, args.messages, true));
        let published = published?;
        let received = received?;
        let elapsed = received.last - began;
        report.rate(
            "publish_rate",
            per_second(args.messages, published),
            "publishes/s",
        );
        report.rate(
            "live_rate",
            per_second(args.messages, elapsed),
            "events/s through Subscriber::get",
        );
        report.latency("end_to_end", &received.latencies.summary());
    }
    if !args.no_backlog {
        let filled = publish(target()).await?;
        let began = Instant::now();
        let received = receive(subscriber, args.messages, false).await?;
        let elapsed = received.last - began;
        report.add(
            "backlog_fill_seconds",
            filled.as_secs_f64(),
            format!("{:.2} s", filled.as_secs_f64()),
        );
        report.rate(
            "backlog_rate",
            per_second(args.messages, elapsed),
            "events/s through Subscriber::get",
        );
    }
    Ok(())
}

/// What the subscriber read.
#[derive(Debug)]
struct Received {
    latencies: Latencies,
    /// When the last event arrived.
    last: Instant,
}

/// Takes `expected` of the run's events from `subscriber`, with their
/// latencies when `measure`.
async fn receive(subscriber: &mut Subscriber, expected: u64, measure: bool) -> Result<Received> {
    let capacity = if measure { expected as usize } else { 0 };
    let mut got = Received {
        latencies: Latencies::with_capacity(capacity),
        last: Instant::now(),
    };
    for n in 0..expected {
        let event = subscriber
            .get(Some(STALL))
            .await
            .map_err(|error| match error {
                eric_client::Error::Timeout { .. } => Error::Timeout {
                    what: format!("event {} of {expected} through the subscriber", n + 1),
                    secs: STALL.as_secs(),
                },
                other => other.into(),
            })?;
        let sent = sent_at(&event).ok_or_else(|| Error::Unexpected {
            target: subscriber.endpoint().channel().to_owned(),
            answer: format!("event {:?}: {}", event.event, event.data),
            expected: "the run's `load` events",
        })?;
        if measure {
            let now_us = now_micros();
            got.latencies
                .record_nanos(now_us.saturating_sub(sent) * 1_000);
        }
    }
    got.last = Instant::now();
    Ok(got)
}

/// The send time a run's event carries.
fn sent_at(event: &StreamEvent) -> Option<u64> {
    (event.event == api::MESSAGE_TYPE)
        .then(|| event.data.parse().ok())
        .flatten()
}
