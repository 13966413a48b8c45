//! `eric load stream`: delivery over SSE.
//!
//! Live delivery: S streams are opened on S listeners and each has sent its
//! first chunk (so it is running) before concurrent producers dispatch M
//! messages per listener. Each payload is its send time in microseconds
//! since the epoch (`SystemTime`: the figure stays meaningful if producer
//! and reader ever run in different processes); the reader subtracts it
//! from its own clock when the event arrives. Reported: events/s from the
//! first dispatch to the last event read, and end-to-end latency
//! percentiles. With `--broadcast`, producers broadcast M messages that
//! every stream receives: fan-out, S deliveries per request.
//!
//! Backlog drain: M messages are queued for a fresh listener first, then
//! one stream is opened and timed until it has read them all: the rate at
//! which the server can push events, without producers competing for CPU.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eric_client::{StreamEvent, StreamItem, StreamRequest};
use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::api::{self, Api, Server, Target, now_micros};
use super::pipeline::{Batching, Endpoint, Pipeline};
use super::report::Report;
use super::stats::{Latencies, per_second};
use super::{all_ready, join_all, with_channel};
use crate::error::{Error, Result};

/// How long streams get to send their first chunk.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stream may go without an event before the run fails.
const STALL: Duration = Duration::from_secs(30);

/// Options of `eric load stream`.
#[derive(Debug, clap::Args)]
pub(crate) struct StreamArgs {
    /// Messages per stream.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Streams, each on its own listener and connection.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    streams: u32,
    /// Concurrent dispatching connections.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    producers: u32,
    #[command(flatten)]
    batching: Batching,
    /// Messages queued for the backlog drain [default: --messages].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    backlog: Option<u64>,
    /// Skip the backlog drain.
    #[arg(long)]
    no_backlog: bool,
    /// Broadcast the messages to every stream instead of dispatching
    /// `--messages` to each listener.
    #[arg(long)]
    broadcast: bool,
}

/// What one stream read.
#[derive(Debug)]
struct Received {
    events: u64,
    /// End-to-end latencies (empty when not measured).
    latencies: Latencies,
    /// When the last event arrived.
    last: Instant,
}

impl Received {
    /// Counts `event` if it is one of the tool's, with its latency when
    /// `measure`; else describes it.
    fn take(&mut self, event: &StreamEvent, measure: bool) -> Result<(), String> {
        match (event.event.as_str(), event.data.parse::<u64>()) {
            (api::MESSAGE_TYPE, Ok(sent)) => {
                self.events += 1;
                if measure {
                    let now_us = now_micros();
                    self.latencies
                        .record_nanos(now_us.saturating_sub(sent) * 1_000);
                }
                Ok(())
            }
            _ => Err(format!("event {:?}: {}", event.event, event.data)),
        }
    }
}

/// Runs the measurement.
pub(crate) async fn run(server: &Server, args: StreamArgs) -> Result<Report> {
    let api = Api::new(server)?;
    let backlog = args.backlog.unwrap_or(args.messages);
    // Every listener's queue must hold all its messages at once.
    let capacity = args.messages.max(backlog);
    let api = &api;
    with_channel(api, Some(capacity), |channel| async move {
        let mut report = Report::new("stream");
        live(api, &channel, &args, &mut report).await?;
        if !args.no_backlog {
            drain(api, &channel, &args, backlog, &mut report).await?;
        }
        Ok(report)
    })
    .await
}

/// Live delivery to `args.streams` streams.
async fn live(api: &Api, channel: &str, args: &StreamArgs, report: &mut Report) -> Result<()> {
    let mut listeners = Vec::new();
    for _ in 0..args.streams {
        listeners.push(api.add_listener(channel).await?);
    }
    let give_up = CancellationToken::new();
    let (readers, ready) = spawn_readers(api, channel, &listeners, args.messages, &give_up);
    let readers = all_ready(
        readers,
        ready,
        &give_up,
        READY_TIMEOUT,
        "the first chunk of every stream",
    )
    .await?;
    let (targets, requests): (Arc<[Target]>, u64) = match args.broadcast {
        true => (
            Arc::from([Target::Channel(channel.to_owned())]),
            args.messages,
        ),
        false => (
            listeners
                .iter()
                .map(|l| Target::Listener {
                    channel: channel.to_owned(),
                    listener: l.clone(),
                })
                .collect(),
            args.messages * u64::from(args.streams),
        ),
    };
    let total = args.messages * u64::from(args.streams);
    let began = Instant::now();
    let producing = async {
        let produced = produce(api, targets, requests, args.producers, args.batching).await;
        if produced.is_err() {
            give_up.cancel();
        }
        produced
    };
    let (produced, received) = tokio::join!(producing, join_all(readers));
    let dispatch_time = produced?;
    let mut latencies = Latencies::with_capacity(total as usize);
    let mut last = began;
    for stream in received? {
        latencies.merge(stream.latencies);
        last = last.max(stream.last);
    }
    let elapsed = last - began;
    report.count("streams", u64::from(args.streams));
    report.count("producers", u64::from(args.producers));
    report.count("delivered", latencies.len() as u64);
    report.add(
        "seconds",
        elapsed.as_secs_f64(),
        format!("{:.2} s", elapsed.as_secs_f64()),
    );
    report.rate(
        "dispatch_rate",
        per_second(requests, dispatch_time),
        match args.broadcast {
            true => "broadcasts/s",
            false => "dispatches/s",
        },
    );
    report.rate(
        "delivery_rate",
        per_second(total, elapsed),
        "events/s over SSE",
    );
    report.latency("end_to_end", &latencies.summary());
    Ok(())
}

/// The backlog drain: `count` messages queued, then read by one stream.
async fn drain(
    api: &Api,
    channel: &str,
    args: &StreamArgs,
    count: u64,
    report: &mut Report,
) -> Result<()> {
    let listener = api.add_listener(channel).await?;
    let targets: Arc<[Target]> = Arc::from([Target::Listener {
        channel: channel.to_owned(),
        listener: listener.clone(),
    }]);
    let fill = produce(api, targets, count, args.producers, args.batching).await?;
    let events = api.events(channel, &listener);
    let began = Instant::now();
    let read = read(events, count, None, CancellationToken::new()).await?;
    let elapsed = read.last - began;
    report.count("backlog", count);
    report.add(
        "backlog_fill_seconds",
        fill.as_secs_f64(),
        format!("{:.2} s", fill.as_secs_f64()),
    );
    report.add(
        "backlog_drain_seconds",
        elapsed.as_secs_f64(),
        format!("{:.3} s", elapsed.as_secs_f64()),
    );
    report.rate(
        "backlog_drain_rate",
        per_second(count, elapsed),
        "events/s over SSE",
    );
    Ok(())
}

/// A reader per listener, each expecting `messages` events; with the
/// receivers of their first-chunk signals.
fn spawn_readers(
    api: &Api,
    channel: &str,
    listeners: &[String],
    messages: u64,
    give_up: &CancellationToken,
) -> (
    Vec<JoinHandle<Result<Received>>>,
    Vec<oneshot::Receiver<()>>,
) {
    let mut readers = Vec::new();
    let mut ready = Vec::new();
    for listener in listeners {
        let (tx, rx) = oneshot::channel();
        let events = api.events(channel, listener);
        let reader = read(events, messages, Some(tx), give_up.clone());
        readers.push(tokio::spawn(reader));
        ready.push(rx);
    }
    (readers, ready)
}

/// Reads `expected` of the tool's events from `events`, with their
/// latencies when `ready` is given (the live run), signalling `ready` once
/// the stream is open. Stops early, without error, when `give_up` fires.
async fn read(
    events: StreamRequest,
    expected: u64,
    mut ready: Option<oneshot::Sender<()>>,
    give_up: CancellationToken,
) -> Result<Received> {
    let measure = ready.is_some();
    let url = events.url().to_string();
    let mut got = Received {
        events: 0,
        latencies: Latencies::with_capacity(if measure { expected as usize } else { 0 }),
        last: Instant::now(),
    };
    let mut events = tokio::select! {
        () = give_up.cancelled() => return Ok(got),
        events = events.open() => events?,
    };
    if let Some(ready) = ready.take() {
        let _ = ready.send(());
    }
    let mut progress = tokio::time::Instant::now();
    while got.events < expected {
        let item = tokio::select! {
            () = give_up.cancelled() => return Ok(got),
            item = tokio::time::timeout_at(progress + STALL, events.next()) => item,
        };
        let wrong = match item {
            Err(_) => {
                return Err(Error::Timeout {
                    what: format!("event {} of {expected} on {url}", got.events + 1),
                    secs: STALL.as_secs(),
                });
            }
            Ok(None) => "the stream ended".to_owned(),
            Ok(Some(Err(error))) => return Err(error.into()),
            Ok(Some(Ok(StreamItem::Event(event)))) => match got.take(&event, measure) {
                Ok(()) => {
                    progress = tokio::time::Instant::now();
                    got.last = Instant::now();
                    continue;
                }
                Err(wrong) => wrong,
            },
            Ok(Some(Ok(other))) => format!("{other:?}"),
        };
        return Err(Error::Unexpected {
            target: url,
            answer: format!("{wrong} after {} of {expected} events", got.events),
            expected: "the run's `load` events",
        });
    }
    Ok(got)
}

/// Dispatches `total` messages from `producers` connections, message `i` to
/// `targets[i % targets.len()]`, each carrying its send time; returns how
/// long it took.
pub(crate) async fn produce(
    api: &Api,
    targets: Arc<[Target]>,
    total: u64,
    producers: u32,
    batching: Batching,
) -> Result<Duration> {
    let next = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let tasks = (0..producers)
        .map(|_| {
            let (targets, next) = (targets.clone(), next.clone());
            let server = api.server().clone();
            match batching.batch {
                true => tokio::spawn(batch_producer(
                    server,
                    targets,
                    next,
                    total,
                    u64::from(batching.batch_size),
                )),
                false => tokio::spawn(producer(server, targets, next, total)),
            }
        })
        .collect();
    join_all(tasks).await?;
    Ok(began.elapsed())
}

/// One connection dispatching claimed messages one at a time, each
/// carrying its send time.
async fn producer(
    server: Server,
    targets: Arc<[Target]>,
    next: Arc<AtomicU64>,
    total: u64,
) -> Result<()> {
    let client = server.client()?;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return Ok(());
        }
        let target = &targets[(i % targets.len() as u64) as usize];
        target.send(&client, &api::message(&now_micros())?).await?;
    }
}

/// One connection dispatching claimed messages in pipelined batches.
async fn batch_producer(
    server: Server,
    targets: Arc<[Target]>,
    next: Arc<AtomicU64>,
    total: u64,
    size: u64,
) -> Result<()> {
    let client = server.client()?;
    let mut paths = Vec::with_capacity(targets.len());
    let mut endpoint = None;
    for target in targets.iter() {
        let (parsed, path) = Endpoint::parse(&target.url(&client))?;
        paths.push(path);
        endpoint.get_or_insert(parsed);
    }
    let Some(endpoint) = endpoint else {
        return Ok(());
    };
    let mut pipeline = Pipeline::connect(&endpoint).await?;
    let mut requests = Vec::new();
    // Dispatch latencies are not reported here; the buffer is reused.
    let mut latencies = Latencies::default();
    loop {
        let from = next.fetch_add(size, Ordering::Relaxed);
        if from >= total {
            return Ok(());
        }
        let to = (from + size).min(total);
        requests.clear();
        let body = api::body(&api::message(&now_micros())?)?;
        for i in from..to {
            let path = &paths[(i % paths.len() as u64) as usize];
            endpoint.push_post(&mut requests, path, &body);
        }
        let answers = pipeline
            .round(&requests, (to - from) as usize, &mut latencies)
            .await?;
        latencies.clear();
        if let Some(status) = answers.first_failure {
            return Err(Error::Unexpected {
                target: server.base().to_owned(),
                answer: format!(
                    "status {status} to {} of {} pipelined dispatches",
                    answers.failed,
                    to - from
                ),
                expected: "a success",
            });
        }
    }
}
