//! `eric load idle`: what idle SSE streams cost the server.
//!
//! The server's RSS is read before anything is created, after N listeners
//! exist, and once N streams (one connection each) have all sent their
//! first chunk. Its CPU time is then read before and after a window in
//! which the streams idle: here the sleep is the measurement. Reported:
//! RSS per stream (with and without its listener) and the server's CPU use
//! during the window. Streams open with bounded concurrency, so ten
//! thousand connections to one port do not arrive as one burst.
//!
//! Run it against a freshly started server: memory freed by earlier runs
//! (a dispatch run's queues, say) is reused without growing the RSS and
//! would hide what the streams cost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eric_client::{StreamItem, StreamRequest};
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::api::{Api, Server};
use super::procfs::{Process, Sample};
use super::report::Report;
use super::with_channel;
use crate::error::{Error, Result};

/// Descriptors the tool needs beyond one per stream.
const SPARE_FILES: u64 = 256;
/// How long a stream may go without a byte, not even a keep-alive, before
/// it counts as lost: longer than any window.
const SILENCE: Duration = Duration::from_secs(24 * 3600);
/// How long opening every stream may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(300);

/// Options of `eric load idle`.
#[derive(Debug, clap::Args)]
pub(crate) struct IdleArgs {
    /// Idle streams, each on its own listener and connection.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    streams: u32,
    /// Process id of the server (its `/proc` files are read, so it must
    /// run on this machine).
    #[arg(long)]
    server_pid: u32,
    /// Seconds the streams idle while the server's CPU time is measured.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
    /// Listeners created and streams opened at once.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    concurrency: u32,
}

/// The readings of a run.
#[derive(Debug)]
struct Readings {
    before: Sample,
    with_listeners: Sample,
    with_streams: Sample,
    after_window: Sample,
    open_time: Duration,
    /// Streams that ended during the window.
    lost: u64,
}

/// Runs the measurement.
pub(crate) async fn run(server: &Server, args: IdleArgs) -> Result<Report> {
    let needed = u64::from(args.streams) + SPARE_FILES;
    // Each stream is a socket here too.
    let limit = rlimit::increase_nofile_limit(needed).unwrap_or(0);
    if limit < needed {
        return Err(Error::FileLimit { limit, needed });
    }
    let process = Process::open(args.server_pid).await?;
    let api = Api::new(server)?;
    let before = process.sample().await?;
    let api = &api;
    with_channel(api, None, |channel| async move {
        let readings = measure(api, &channel, &args, &process, before).await?;
        Ok(report(&args, &process, &readings))
    })
    .await
}

async fn measure(
    api: &Api,
    channel: &str,
    args: &IdleArgs,
    process: &Process,
    before: Sample,
) -> Result<Readings> {
    let began = Instant::now();
    let listeners: Vec<String> = futures_util::stream::iter(0..args.streams)
        .map(|_| api.add_listener(channel))
        .buffer_unordered(args.concurrency as usize)
        .try_collect()
        .await?;
    let with_listeners = process.sample().await?;
    let hold = CancellationToken::new();
    let lost = Arc::new(AtomicU64::new(0));
    let readings = async {
        open_all(api, channel, &listeners, args.concurrency, &hold, &lost).await?;
        let open_time = began.elapsed();
        let with_streams = process.sample().await?;
        tokio::time::sleep(Duration::from_secs(args.window)).await;
        let after_window = process.sample().await?;
        Ok(Readings {
            before,
            with_listeners,
            with_streams,
            after_window,
            open_time,
            lost: lost.load(Ordering::Relaxed),
        })
    }
    .await;
    // Every stream task ends on this, whether the run succeeded or not.
    hold.cancel();
    readings
}

/// Opens a stream per listener, `concurrency` at a time, and returns once
/// each has sent its first chunk; the streams stay open until `hold` fires.
async fn open_all(
    api: &Api,
    channel: &str,
    listeners: &[String],
    concurrency: u32,
    hold: &CancellationToken,
    lost: &Arc<AtomicU64>,
) -> Result<()> {
    let slots = Arc::new(Semaphore::new(concurrency as usize));
    let (ready_tx, mut ready_rx) = mpsc::channel(listeners.len().max(1));
    let opening = async {
        for listener in listeners {
            // Closed only if the semaphore is dropped, which it is not.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let idle = Idle {
                events: api.events(channel, listener).idle_timeout(SILENCE),
                hold: hold.clone(),
                lost: lost.clone(),
            };
            tokio::spawn(idle.run(slot, ready_tx.clone()));
        }
        for _ in 0..listeners.len() {
            match ready_rx.recv().await {
                Some(Ok(())) => {}
                Some(Err(error)) => return Err(error),
                None => break,
            }
        }
        Ok(())
    };
    match tokio::time::timeout(OPEN_TIMEOUT, opening).await {
        Ok(result) => result,
        Err(_) => Err(Error::Timeout {
            what: format!("opening {} streams", listeners.len()),
            secs: OPEN_TIMEOUT.as_secs(),
        }),
    }
}

/// One idle stream.
struct Idle {
    events: StreamRequest,
    /// Fires at the end of the run.
    hold: CancellationToken,
    /// Counts streams the server ended early.
    lost: Arc<AtomicU64>,
}

impl Idle {
    /// Opens the stream, reports its first chunk on `ready` (releasing
    /// `slot` for the next one), then reads keep-alives until `hold`.
    async fn run(self, slot: OwnedSemaphorePermit, ready: mpsc::Sender<Result<()>>) {
        let url = self.events.url().to_string();
        let opened = async {
            let events = self.events.open().await?;
            // The `retry:` hint leads the server's first chunk.
            match events.retry() {
                Some(_) => Ok(events),
                None => Err(Error::Unexpected {
                    target: url,
                    answer: "a first chunk without retry:".to_owned(),
                    expected: "a first chunk with retry:",
                }),
            }
        };
        let opened = tokio::select! {
            () = self.hold.cancelled() => return,
            opened = opened => opened,
        };
        drop(slot);
        let mut events = match opened {
            Ok(events) => events,
            Err(error) => {
                let _ = ready.send(Err(error)).await;
                return;
            }
        };
        let _ = ready.send(Ok(())).await;
        loop {
            tokio::select! {
                () = self.hold.cancelled() => return,
                item = events.next() => {
                    if !matches!(item, Some(Ok(StreamItem::Event(_)))) {
                        self.lost.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }
    }
}

/// The figures of a run.
fn report(args: &IdleArgs, process: &Process, r: &Readings) -> Report {
    let streams = u64::from(args.streams);
    let per_stream = |from: &Sample, to: &Sample| {
        let bytes = to.rss_kib.saturating_sub(from.rss_kib) * 1024 / streams;
        (bytes, format!("{:.2} KiB", bytes as f64 / 1024.0))
    };
    let cpu = process.cpu_time(&r.with_streams, &r.after_window);
    let cpu_percent = cpu.as_secs_f64() / args.window as f64 * 100.0;
    let mut report = Report::new("idle");
    report.count("streams", streams);
    report.add(
        "open_seconds",
        r.open_time.as_secs_f64(),
        format!("{:.2} s", r.open_time.as_secs_f64()),
    );
    let kib = |s: &Sample| {
        (
            s.rss_kib,
            format!("{} KiB", super::report::group(s.rss_kib)),
        )
    };
    for (key, sample) in [
        ("rss_before_kib", &r.before),
        ("rss_with_listeners_kib", &r.with_listeners),
        ("rss_with_streams_kib", &r.with_streams),
        ("rss_after_window_kib", &r.after_window),
    ] {
        let (value, text) = kib(sample);
        report.add(key, value, text);
    }
    let (bytes, text) = per_stream(&r.before, &r.with_streams);
    report.add(
        "rss_per_stream_bytes",
        bytes,
        format!("{text} (listener and stream)"),
    );
    let (bytes, text) = per_stream(&r.with_listeners, &r.with_streams);
    report.add(
        "rss_per_stream_only_bytes",
        bytes,
        format!("{text} (stream alone)"),
    );
    report.add("window_seconds", args.window, format!("{} s", args.window));
    report.add(
        "server_cpu_percent",
        (cpu_percent * 100.0).round() / 100.0,
        format!(
            "{cpu_percent:.2} % of a core ({:.3} s of CPU)",
            cpu.as_secs_f64()
        ),
    );
    report.count("streams_lost", r.lost);
    report
}
