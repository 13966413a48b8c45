//! `eric load peer per-stream`: N streams, each with its own publish URL
//! (its own channel, or its own queue), and rounds of one message to each.
//! A round posts N messages (a bounded number at a time) and ends when
//! every stream has its message; then the next begins. The clock runs from
//! the first publish until the last round ends. Reported: deliveries/s
//! (N × rounds over that time), round time percentiles, and end-to-end
//! latency.

use std::sync::Arc;
use std::time::Instant;

use eric_client::CaCertificates;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::cpu::{Cpu, CpuArgs};
use super::publish::Publisher;
use super::reader::{Reader, Received};
use super::{Deliveries, STALL, Streams, Template, now_micros};
use crate::error::{Error, Result};
use crate::join_all;
use crate::report::Report;
use crate::stats::Latencies;

/// Options of `eric load peer per-stream`.
#[derive(Debug, clap::Args)]
pub(crate) struct PerStreamArgs {
    /// URL a message for stream i is posted to, `{i}` standing for i.
    /// Repeat it to spread the publishes over several nodes: the run's
    /// m-th publish goes to the (m mod U)-th of the U URLs.
    #[arg(long = "publish-url", value_name = "URL", required = true)]
    publish_urls: Vec<Template>,
    #[command(flatten)]
    stream: Streams,
    /// Streams, each on a connection of its own.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    streams: u32,
    /// Rounds of one message per stream.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Publishes in flight at once (each on its own connection).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    publishers: u32,
    #[command(flatten)]
    cpu: CpuArgs,
}

/// Runs the measurement.
pub(crate) async fn run(args: PerStreamArgs, ca: Option<&CaCertificates>) -> Result<Report> {
    let cpu = Cpu::open(&args.cpu).await?;
    let publisher = Publisher::new(&args.publish_urls, ca)?;
    let give_up = CancellationToken::new();
    let delivered = Arc::new(Semaphore::new(0));
    let since = now_micros();
    let readers = (0..args.streams)
        .map(|i| Reader {
            url: args.stream.url(i, 1),
            expected: args.rounds,
            since,
            stall: STALL,
            delivered: Some(delivered.clone()),
            give_up: give_up.clone(),
        })
        .collect();
    let readers = args.stream.open(readers, &give_up, ca).await?;
    let cpu_before = cpu.sample().await?;
    let began = Instant::now();
    let rounds = match rounds(&args, &publisher, &delivered).await {
        Ok(rounds) => rounds,
        Err(error) => return Err(failed(readers, &give_up, error).await),
    };
    let elapsed = began.elapsed();
    let deliveries = Deliveries::merge(join_all(readers).await?);
    let cpu_after = cpu.sample().await?;
    let mut report = Report::new("peer per-stream");
    report.count("streams", u64::from(args.streams));
    report.count("rounds", args.rounds);
    report.latency("round", &rounds.summary());
    deliveries.report(&mut report, elapsed);
    cpu.report(&cpu_before, &cpu_after, &mut report);
    Ok(report)
}

/// Runs the rounds; the time each took.
async fn rounds(
    args: &PerStreamArgs,
    publisher: &Publisher,
    delivered: &Semaphore,
) -> Result<Latencies> {
    let mut times = Latencies::with_capacity(args.rounds as usize);
    for round in 0..args.rounds {
        let began = Instant::now();
        let first = round * u64::from(args.streams);
        let urls = (0..args.streams).map(|i| {
            let turn = (first + u64::from(i)) % args.publish_urls.len() as u64;
            // The remainder is below the number of URLs, a usize.
            args.publish_urls[turn as usize].url(u64::from(i), 0)
        });
        publisher.publish_all(urls, args.publishers).await?;
        let all = delivered.acquire_many(args.streams);
        match tokio::time::timeout(STALL, all).await {
            Ok(Ok(permits)) => permits.forget(),
            // The semaphore is never closed.
            Ok(Err(_)) | Err(_) => {
                return Err(Error::Timeout {
                    what: format!("every stream's message of round {}", round + 1),
                    secs: STALL.as_secs(),
                });
            }
        }
        times.record(began.elapsed());
    }
    Ok(times)
}

/// Stops the readers after `error`; a reader's own error says more (a
/// stream that broke is why a round never ended), so it wins.
async fn failed(
    readers: Vec<JoinHandle<Result<Received>>>,
    give_up: &CancellationToken,
    error: Error,
) -> Error {
    give_up.cancel();
    match join_all(readers).await {
        Err(reader) => reader,
        Ok(_) => error,
    }
}
