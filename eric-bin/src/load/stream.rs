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

use futures_util::StreamExt;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::api::{self, Api, now_micros};
use super::pipeline::{Batching, Endpoint, Pipeline};
use super::report::Report;
use super::sse::{SseParser, parse_u64};
use super::stats::{Latencies, per_second};
use super::{join_all, with_channel};
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
    /// Counts the tool's events in `chunk`, with their latencies when
    /// `measure`; describes the first other event, if any.
    fn take(&mut self, parser: &mut SseParser, chunk: &[u8], measure: bool) -> Option<String> {
        // One clock reading per chunk: its events arrived together.
        let now_us = now_micros();
        let mut wrong = None;
        parser.feed(chunk, |event| match (event.event, parse_u64(event.data)) {
            (b"load", Some(sent)) => {
                self.events += 1;
                if measure {
                    self.latencies
                        .record_nanos(now_us.saturating_sub(sent) * 1_000);
                }
            }
            _ => {
                wrong.get_or_insert_with(|| {
                    let (name, data) = (event.event, event.data);
                    format!(
                        "event {:?}: {}",
                        String::from_utf8_lossy(name),
                        String::from_utf8_lossy(data)
                    )
                });
            }
        });
        wrong
    }
}

/// Runs the measurement.
pub(crate) async fn run(base: &str, args: StreamArgs) -> Result<Report> {
    let api = Api::new(base)?;
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
    let readers = all_ready(readers, ready, &give_up).await?;
    let (targets, requests): (Arc<[String]>, u64) = match args.broadcast {
        true => (Arc::from([api.broadcast_url(channel)]), args.messages),
        false => (
            listeners
                .iter()
                .map(|l| api.listener_url(channel, l, "messages"))
                .collect(),
            args.messages * u64::from(args.streams),
        ),
    };
    let total = args.messages * u64::from(args.streams);
    let began = Instant::now();
    let producing = async {
        let produced = produce(targets, requests, args.producers, args.batching).await;
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
    let targets: Arc<[String]> = Arc::from([api.listener_url(channel, &listener, "messages")]);
    let fill = produce(targets, count, args.producers, args.batching).await?;
    let url = api.listener_url(channel, &listener, "events");
    let began = Instant::now();
    let read = read(
        api.streams().clone(),
        url,
        count,
        None,
        CancellationToken::new(),
    )
    .await?;
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
        let url = api.listener_url(channel, listener, "events");
        let reader = read(
            api.streams().clone(),
            url,
            messages,
            Some(tx),
            give_up.clone(),
        );
        readers.push(tokio::spawn(reader));
        ready.push(rx);
    }
    (readers, ready)
}

/// Waits until every reader has its stream's first chunk. On failure the
/// other readers give up and the failed reader's error is returned.
async fn all_ready(
    readers: Vec<JoinHandle<Result<Received>>>,
    ready: Vec<oneshot::Receiver<()>>,
    give_up: &CancellationToken,
) -> Result<Vec<JoinHandle<Result<Received>>>> {
    let all = async {
        for rx in ready {
            // A dropped sender: that reader failed before its first chunk.
            if rx.await.is_err() {
                return false;
            }
        }
        true
    };
    if tokio::time::timeout(READY_TIMEOUT, all).await == Ok(true) {
        return Ok(readers);
    }
    give_up.cancel();
    join_all(readers).await?;
    Err(Error::Timeout {
        what: "the first chunk of every stream".to_owned(),
        secs: READY_TIMEOUT.as_secs(),
    })
}

/// Opens the SSE stream at `url`.
pub(crate) async fn open(client: &reqwest::Client, url: &str) -> Result<reqwest::Response> {
    let response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .map_err(Error::request(url))?;
    let status = response.status();
    if status != reqwest::StatusCode::OK {
        let body = response.text().await.unwrap_or_default();
        return Err(Error::Answer {
            url: url.to_owned(),
            status: status.as_u16(),
            body,
        });
    }
    Ok(response)
}

/// Reads `expected` of the tool's events from the stream at `url`, with
/// their latencies when `ready` is given (the live run), signalling `ready`
/// at the first chunk. Stops early, without error, when `give_up` fires.
async fn read(
    client: reqwest::Client,
    url: String,
    expected: u64,
    mut ready: Option<oneshot::Sender<()>>,
    give_up: CancellationToken,
) -> Result<Received> {
    let measure = ready.is_some();
    let mut got = Received {
        events: 0,
        latencies: Latencies::with_capacity(if measure { expected as usize } else { 0 }),
        last: Instant::now(),
    };
    let response = tokio::select! {
        () = give_up.cancelled() => return Ok(got),
        response = open(&client, &url) => response?,
    };
    let mut chunks = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut progress = tokio::time::Instant::now();
    while got.events < expected {
        let chunk = tokio::select! {
            () = give_up.cancelled() => return Ok(got),
            chunk = tokio::time::timeout_at(progress + STALL, chunks.next()) => chunk,
        };
        let chunk = match chunk {
            Err(_) => {
                return Err(Error::Timeout {
                    what: format!("event {} of {expected} on {url}", got.events + 1),
                    secs: STALL.as_secs(),
                });
            }
            Ok(None) => return Err(ended(&url, got.events, expected, "the stream ended")),
            Ok(Some(chunk)) => chunk.map_err(Error::request(&url))?,
        };
        if let Some(ready) = ready.take() {
            let _ = ready.send(());
        }
        let before = got.events;
        if let Some(wrong) = got.take(&mut parser, &chunk, measure) {
            return Err(ended(&url, got.events, expected, &wrong));
        }
        if got.events > before {
            progress = tokio::time::Instant::now();
            got.last = Instant::now();
        }
    }
    Ok(got)
}

/// A stream that stopped delivering the run's events.
fn ended(url: &str, events: u64, expected: u64, why: &str) -> Error {
    Error::Answer {
        url: url.to_owned(),
        status: 200,
        body: format!("{why} after {events} of {expected} events"),
    }
}

/// Dispatches `total` messages from `producers` connections, message `i` to
/// `targets[i % targets.len()]`, each carrying its send time; returns how
/// long it took.
async fn produce(
    targets: Arc<[String]>,
    total: u64,
    producers: u32,
    batching: Batching,
) -> Result<Duration> {
    let next = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let tasks = (0..producers)
        .map(|_| {
            let (targets, next) = (targets.clone(), next.clone());
            match batching.batch {
                true => tokio::spawn(batch_producer(
                    targets,
                    next,
                    total,
                    u64::from(batching.batch_size),
                )),
                false => tokio::spawn(producer(targets, next, total)),
            }
        })
        .collect();
    join_all(tasks).await?;
    Ok(began.elapsed())
}

/// The JSON message carrying `sent` (microseconds since the epoch).
fn message(sent: u64) -> String {
    format!(r#"{{"type":"load","payload":{sent}}}"#)
}

/// One connection dispatching claimed messages one at a time.
async fn producer(targets: Arc<[String]>, next: Arc<AtomicU64>, total: u64) -> Result<()> {
    let client = api::client()?;
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return Ok(());
        }
        let url = &targets[(i % targets.len() as u64) as usize];
        let response = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(message(now_micros()))
            .send()
            .await
            .map_err(Error::request(url))?;
        api::success_body(response, url).await?;
    }
}

/// One connection dispatching claimed messages in pipelined batches.
async fn batch_producer(
    targets: Arc<[String]>,
    next: Arc<AtomicU64>,
    total: u64,
    size: u64,
) -> Result<()> {
    let mut paths = Vec::with_capacity(targets.len());
    let mut endpoint = None;
    for target in targets.iter() {
        let (parsed, path) = Endpoint::parse(target)?;
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
        let body = message(now_micros());
        for i in from..to {
            let path = &paths[(i % paths.len() as u64) as usize];
            endpoint.push_post(&mut requests, path, body.as_bytes());
        }
        let answers = pipeline
            .round(&requests, (to - from) as usize, &mut latencies)
            .await?;
        latencies.clear();
        if let Some(status) = answers.first_failure {
            return Err(Error::Answer {
                url: targets[0].clone(),
                status,
                body: format!(
                    "{} of {} pipelined dispatches failed",
                    answers.failed,
                    to - from
                ),
            });
        }
    }
}
