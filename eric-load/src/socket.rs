//! `eric load socket`: the dispatch rate over eric's Unix-socket protocol.
//!
//! The protocol takes one JSON request per connection, ended by a
//! half-close, and answers then closes (see `eric_server::socket`). The run
//! creates a channel (`{"v":"c"}`) and listeners (`{"v":"r"}`), then sends
//! N dispatches (`{"v":"d",...}`) from C workers, each request on its own
//! connection, and expects `ack` for each. The channel is removed at the end
//! (`{"v":"rc"}`).
//!
//! It writes the protocol's bytes itself: `eric-client` speaks HTTP only,
//! and this mode measures the socket face alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::join_all;
use super::report::Report;
use super::stats::{Latencies, RateReporter, per_second};
use crate::error::{Error, Result};

/// Longest answer shown in an error.
const SHOWN_ANSWER: usize = 120;

/// Options of `eric load socket`.
#[derive(Debug, clap::Args)]
pub(crate) struct SocketArgs {
    /// Path of the server's socket (`eric serve --socket PATH`).
    #[arg(long)]
    path: PathBuf,
    /// Dispatch requests to send.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,
    /// Requests in flight at once (each on its own connection).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
    /// Listeners to spread the messages over, round-robin (a channel
    /// created over the socket gets the server's default queue capacity).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    listeners: u32,
}

/// What the workers did.
#[derive(Debug, Default)]
struct Tally {
    acked: u64,
    failed: u64,
    /// The first answer other than `ack`.
    first_failure: Option<String>,
    latencies: Latencies,
}

/// Runs the measurement.
pub(crate) async fn run(args: SocketArgs) -> Result<Report> {
    let path = args.path.as_path();
    let channel = id_answer(path, request(path, &json!({"v": "c"}).to_string()).await?)?;
    let measured = measure(&args, &channel).await;
    // Removed even after a failure: the queues hold every message sent.
    let removed = request(path, &json!({"v": "rc", "c": channel}).to_string()).await;
    let report = measured?;
    removed?;
    Ok(report)
}

async fn measure(args: &SocketArgs, channel: &str) -> Result<Report> {
    let path = args.path.as_path();
    let mut bodies = Vec::new();
    for _ in 0..args.listeners {
        let answer = request(path, &json!({"v": "r", "c": channel}).to_string()).await?;
        let listener = id_answer(path, answer)?;
        let body = json!({"v": "d", "c": channel, "r": listener, "t": "load", "p": 1});
        bodies.push(body.to_string());
    }
    let bodies: Arc<[String]> = bodies.into();
    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let reporter = RateReporter::start(acked.clone());
    let began = Instant::now();
    let tasks = (0..args.concurrency)
        .map(|_| {
            let worker = Worker {
                path: args.path.clone(),
                bodies: bodies.clone(),
                next: next.clone(),
                total: args.requests,
                acked: acked.clone(),
            };
            tokio::spawn(worker.run())
        })
        .collect();
    let tallies = join_all(tasks).await;
    let elapsed = began.elapsed();
    let seconds = reporter.finish().await;
    let mut tally = Tally::default();
    for other in tallies? {
        tally.acked += other.acked;
        tally.failed += other.failed;
        if tally.first_failure.is_none() {
            tally.first_failure = other.first_failure;
        }
        tally.latencies.merge(other.latencies);
    }
    Ok(report(args, elapsed, tally, &seconds))
}

/// The figures of a run.
fn report(args: &SocketArgs, elapsed: Duration, tally: Tally, seconds: &[u64]) -> Report {
    let mut report = Report::new("socket");
    let path = args.path.display().to_string();
    report.add("path", path.clone(), path);
    report.count("concurrency", u64::from(args.concurrency));
    report.count("listeners", u64::from(args.listeners));
    report.add(
        "seconds",
        elapsed.as_secs_f64(),
        format!("{:.2} s", elapsed.as_secs_f64()),
    );
    report.count("acked", tally.acked);
    report.count("failed", tally.failed);
    if let Some(failure) = tally.first_failure {
        report.add("first_failure", failure.clone(), failure);
    }
    report.rate("rate", per_second(tally.acked, elapsed), "dispatches/s");
    report.per_second_spread("per_second", seconds, "dispatches/s");
    report.latency("latency", &tally.latencies.summary());
    report
}

/// One worker: claims requests until all are sent.
struct Worker {
    path: PathBuf,
    /// A dispatch request per listener.
    bodies: Arc<[String]>,
    next: Arc<AtomicU64>,
    total: u64,
    acked: Arc<AtomicU64>,
}

impl Worker {
    async fn run(self) -> Result<Tally> {
        let mut tally = Tally {
            latencies: Latencies::with_capacity(1 << 14),
            ..Tally::default()
        };
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            if i >= self.total {
                return Ok(tally);
            }
            let body = &self.bodies[(i % self.bodies.len() as u64) as usize];
            let began = Instant::now();
            let answer = request(&self.path, body).await?;
            tally.latencies.record(began.elapsed());
            if answer == b"ack" {
                tally.acked += 1;
                self.acked.fetch_add(1, Ordering::Relaxed);
            } else {
                tally.failed += 1;
                tally.first_failure.get_or_insert_with(|| shown(&answer));
            }
        }
    }
}

/// One exchange: connect, write `body`, half-close, read the answer to EOF.
async fn request(path: &Path, body: &str) -> Result<Vec<u8>> {
    let target = || path.display().to_string();
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(Error::io(target(), "connect"))?;
    stream
        .write_all(body.as_bytes())
        .await
        .map_err(Error::io(target(), "write"))?;
    // The half-close ends the request: the protocol has no delimiter.
    stream
        .shutdown()
        .await
        .map_err(Error::io(target(), "half-close"))?;
    let mut answer = Vec::with_capacity(64);
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(Error::io(target(), "read"))?;
    Ok(answer)
}

/// The id answered to `c` or `r` (an error answer is text with spaces or
/// parentheses, never an id).
fn id_answer(path: &Path, answer: Vec<u8>) -> Result<String> {
    let is_id = |id: &str| {
        !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    match String::from_utf8(answer) {
        Ok(id) if is_id(&id) => Ok(id),
        Ok(other) => Err(Error::Unexpected {
            target: path.display().to_string(),
            answer: other.chars().take(SHOWN_ANSWER).collect(),
            expected: "an id",
        }),
        Err(e) => Err(Error::Unexpected {
            target: path.display().to_string(),
            answer: shown(e.as_bytes()),
            expected: "an id",
        }),
    }
}

/// An answer as shown in a report or an error.
fn shown(answer: &[u8]) -> String {
    String::from_utf8_lossy(answer)
        .chars()
        .take(SHOWN_ANSWER)
        .collect()
}
