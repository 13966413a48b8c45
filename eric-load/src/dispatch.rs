//! `eric load dispatch`: the HTTP dispatch rate.
//!
//! N tasks, each with its own client and so its own keep-alive connection,
//! send `POST /v1/channels/{c}/listeners/{l}/messages` back to back until
//! the duration is over. With `--batch` each connection pipelines batches of
//! requests instead (see `pipeline`). The channel's queues are made large
//! enough to hold the whole run (`--queue-capacity`); `--drain` also streams
//! them while dispatching, and `--listeners` spreads messages round-robin.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eric_client::StreamItem;
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::api::{self, Api, Server, Target};
use super::pipeline::{Answers, Batching, Endpoint, Pipeline};
use super::report::Report;
use super::stats::{Latencies, RateReporter, per_second};
use super::{join_all, with_channel};
use crate::error::Result;

/// The payload every message carries.
#[derive(serde::Serialize)]
struct Payload {
    n: u32,
}
const PAYLOAD: Payload = Payload { n: 1 };

/// Options of `eric load dispatch`.
#[derive(Debug, clap::Args)]
pub(crate) struct DispatchArgs {
    /// Concurrent connections, each with one request (or batch) in flight.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..))]
    connections: u32,
    /// Seconds to dispatch for.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    duration: u64,
    #[command(flatten)]
    batching: Batching,
    /// Listeners to spread the messages over, round-robin.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    listeners: u32,
    /// Capacity of each listener's queue: enough for the whole run, so a
    /// full queue never turns dispatches into errors.
    #[arg(long, default_value_t = 20_000_000)]
    queue_capacity: u64,
    /// Stream every listener while dispatching, so the queues drain (the
    /// server then also spends time delivering).
    #[arg(long)]
    drain: bool,
}

/// What the connections did.
#[derive(Debug, Default)]
struct Tally {
    answers: Answers,
    /// The first failure's status and body.
    first_failure: Option<String>,
    latencies: Latencies,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.answers.ok += other.answers.ok;
        self.answers.failed += other.answers.failed;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
        self.latencies.merge(other.latencies);
    }
}

/// Runs the measurement.
pub(crate) async fn run(server: &Server, args: DispatchArgs) -> Result<Report> {
    let api = Api::new(server)?;
    with_channel(&api, Some(args.queue_capacity), |channel| {
        measure(&api, channel, args)
    })
    .await
}

async fn measure(api: &Api, channel: String, args: DispatchArgs) -> Result<Report> {
    let mut listeners = Vec::new();
    for _ in 0..args.listeners {
        listeners.push(api.add_listener(&channel).await?);
    }
    let targets: Arc<[Target]> = listeners
        .iter()
        .map(|l| Target::Listener {
            channel: channel.clone(),
            listener: l.clone(),
        })
        .collect();
    let drained = Arc::new(AtomicU64::new(0));
    let stop_draining = CancellationToken::new();
    let drains: Vec<_> = listeners
        .iter()
        .filter(|_| args.drain)
        .map(|l| {
            let events = api.events(&channel, l);
            let (count, stop) = (drained.clone(), stop_draining.clone());
            tokio::spawn(drain(events, count, stop))
        })
        .collect();

    let sent = Arc::new(AtomicU64::new(0));
    let reporter = RateReporter::start(sent.clone());
    let began = Instant::now();
    let deadline = began + Duration::from_secs(args.duration);
    let tasks = (0..args.connections as usize)
        .map(|first| {
            let (targets, sent) = (targets.clone(), sent.clone());
            let server = api.server().clone();
            if args.batching.batch {
                let size = args.batching.batch_size as usize;
                tokio::spawn(batch_worker(server, targets, first, size, deadline, sent))
            } else {
                tokio::spawn(worker(server, targets, first, deadline, sent))
            }
        })
        .collect();
    let tallies = join_all(tasks).await;
    let elapsed = began.elapsed();
    let seconds = reporter.finish().await;
    stop_draining.cancel();
    join_all(drains).await?;
    let mut tally = Tally::default();
    tallies?.into_iter().for_each(|t| tally.merge(t));
    let depth = api.queue_depth(&channel).await?;
    let drained = args.drain.then(|| drained.load(Ordering::Relaxed));
    Ok(report(&args, elapsed, tally, &seconds, depth, drained))
}

/// The figures of a run.
fn report(
    args: &DispatchArgs,
    elapsed: Duration,
    tally: Tally,
    seconds: &[u64],
    depth: u64,
    drained: Option<u64>,
) -> Report {
    let mut report = Report::new("dispatch");
    report.count("connections", u64::from(args.connections));
    let how = match args.batching.batch {
        true => format!("pipelined, batches of {}", args.batching.batch_size),
        false => "keep-alive, one request at a time".to_owned(),
    };
    report.add("requests_in_flight", how.clone(), how);
    report.count("listeners", u64::from(args.listeners));
    report.add(
        "seconds",
        elapsed.as_secs_f64(),
        format!("{:.2} s", elapsed.as_secs_f64()),
    );
    report.count("dispatched", tally.answers.ok);
    report.count("failed", tally.answers.failed);
    if let Some(failure) = &tally.first_failure {
        report.add("first_failure", failure.clone(), failure.clone());
    }
    report.rate(
        "rate",
        per_second(tally.answers.ok, elapsed),
        "dispatches/s",
    );
    report.per_second_spread("per_second", seconds, "dispatches/s");
    report.latency("latency", &tally.latencies.summary());
    report.count("queue_depth", depth);
    if let Some(drained) = drained {
        report.count("drained", drained);
    }
    report
}

/// One connection sending one request at a time until `deadline`.
async fn worker(
    server: Server,
    targets: Arc<[Target]>,
    first: usize,
    deadline: Instant,
    sent: Arc<AtomicU64>,
) -> Result<Tally> {
    // A client per task: its own pool, so its own connection.
    let client = server.client()?;
    let message = api::message(&PAYLOAD)?;
    let mut tally = Tally {
        latencies: Latencies::with_capacity(1 << 16),
        ..Tally::default()
    };
    let mut next = first;
    while Instant::now() < deadline {
        let target = &targets[next % targets.len()];
        next += 1;
        let began = Instant::now();
        let answered = target.send(&client, &message).await;
        tally.latencies.record(began.elapsed());
        match answered {
            Ok(()) => {
                tally.answers.ok += 1;
                sent.fetch_add(1, Ordering::Relaxed);
            }
            // A refusal is counted; an unreachable server ends the run.
            Err(error) if error.status().is_some() => {
                tally.answers.failed += 1;
                tally.first_failure.get_or_insert_with(|| error.to_string());
            }
            Err(error) => return Err(error.into()),
        }
    }
    Ok(tally)
}

/// One connection pipelining batches of `size` requests until `deadline`.
async fn batch_worker(
    server: Server,
    targets: Arc<[Target]>,
    first: usize,
    size: usize,
    deadline: Instant,
    sent: Arc<AtomicU64>,
) -> Result<Tally> {
    // The batch is the same every round: written once.
    let mut requests = Vec::with_capacity(size * 256);
    let client = server.client()?;
    let body = api::body(&api::message(&PAYLOAD)?)?;
    let mut target = None;
    for k in 0..size {
        let url = targets[(first + k) % targets.len()].url(&client);
        let (endpoint, path) = Endpoint::parse(&url)?;
        endpoint.push_post(&mut requests, &path, &body);
        target.get_or_insert(endpoint);
    }
    let Some(endpoint) = target else {
        return Ok(Tally::default());
    };
    let mut pipeline = Pipeline::connect(&endpoint).await?;
    let mut tally = Tally {
        latencies: Latencies::with_capacity(1 << 18),
        ..Tally::default()
    };
    while Instant::now() < deadline {
        let answers = pipeline
            .round(&requests, size, &mut tally.latencies)
            .await?;
        sent.fetch_add(answers.ok, Ordering::Relaxed);
        tally.answers.ok += answers.ok;
        tally.answers.failed += answers.failed;
        if let (None, Some(status)) = (&tally.first_failure, answers.first_failure) {
            tally.first_failure = Some(status.to_string());
        }
    }
    Ok(tally)
}

/// Streams a listener and counts its events until `stop`.
async fn drain(
    events: eric_client::StreamRequest,
    count: Arc<AtomicU64>,
    stop: CancellationToken,
) -> Result<()> {
    let mut events = tokio::select! {
        () = stop.cancelled() => return Ok(()),
        events = events.open() => events?,
    };
    loop {
        let item = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            item = events.next() => item,
        };
        match item {
            Some(Ok(StreamItem::Event(_))) => {
                count.fetch_add(1, Ordering::Relaxed);
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => return Ok(()),
        }
    }
}
