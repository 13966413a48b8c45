//! `eric load peer idle`: what idle streams cost a server's processes.
//!
//! The server's processes (`--pid`: every one of them, so nginx's master
//! and workers) are read before any stream is opened, once N streams are
//! open, and after a window in which the streams idle: here the sleep is
//! the measurement. Reported, summed over the processes: RSS and PSS growth
//! per stream (PSS divides shared pages among the processes sharing them,
//! so it is the figure that adds up over several processes), and CPU use
//! during the window. With `--backend-pid`, a store the server keeps its
//! state in (Redis) is reported the same way, apart.
//!
//! Run it against freshly started servers: memory freed by earlier runs is
//! reused without growing the RSS and would hide what the streams cost.

use std::time::{Duration, Instant};

use eric_client::CaCertificates;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::reader::{Reader, Received};
use super::{Streams, now_micros};
use crate::error::Result;
use crate::procfs::{Process, Sample};
use crate::report::Report;

/// How long a stream may go without an event: longer than any window
/// (an idle stream gets none).
const SILENCE: Duration = Duration::from_secs(24 * 3600);

/// Options of `eric load peer idle`.
#[derive(Debug, clap::Args)]
pub(crate) struct IdleArgs {
    #[command(flatten)]
    stream: Streams,
    /// Idle streams, each on a connection of its own.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    streams: u32,
    /// The server's process ids, comma-separated or repeated (their `/proc`
    /// files are read, so they must run on this machine).
    #[arg(long = "pid", value_delimiter = ',', required = true)]
    pids: Vec<u32>,
    /// Process ids of a store the server uses (Redis), reported apart.
    #[arg(long = "backend-pid", value_delimiter = ',')]
    backend_pids: Vec<u32>,
    /// Seconds the streams idle while CPU time is measured.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    window: u64,
}

/// Processes read together.
#[derive(Debug)]
struct Group(Vec<Process>);

/// One reading of a [`Group`].
#[derive(Debug)]
struct GroupSample {
    samples: Vec<Sample>,
    pss_kib: u64,
}

impl GroupSample {
    fn rss_kib(&self) -> u64 {
        self.samples.iter().map(|s| s.rss_kib).sum()
    }
}

impl Group {
    async fn open(pids: &[u32]) -> Result<Self> {
        let mut processes = Vec::with_capacity(pids.len());
        for &pid in pids {
            processes.push(Process::open(pid).await?);
        }
        Ok(Self(processes))
    }

    async fn sample(&self) -> Result<GroupSample> {
        let mut samples = Vec::with_capacity(self.0.len());
        let mut pss_kib = 0;
        for process in &self.0 {
            samples.push(process.sample().await?);
            pss_kib += process.pss_kib().await?;
        }
        Ok(GroupSample { samples, pss_kib })
    }

    /// CPU time of the whole group between two readings.
    fn cpu_time(&self, before: &GroupSample, after: &GroupSample) -> Duration {
        self.0
            .iter()
            .zip(before.samples.iter().zip(&after.samples))
            .map(|(process, (b, a))| process.cpu_time(b, a))
            .sum()
    }
}

/// The readings of the server and of its store, in that order.
#[derive(Debug)]
struct Readings {
    before: [GroupSample; 2],
    with_streams: [GroupSample; 2],
    after_window: [GroupSample; 2],
    open_time: Duration,
    /// Streams that ended during the window.
    lost: u64,
    /// Why the first of them ended.
    first_loss: Option<String>,
}

/// Runs the measurement.
pub(crate) async fn run(args: IdleArgs, ca: Option<&CaCertificates>) -> Result<Report> {
    let groups = [
        Group::open(&args.pids).await?,
        Group::open(&args.backend_pids).await?,
    ];
    let hold = CancellationToken::new();
    let since = now_micros();
    let readers = (0..args.streams)
        .map(|i| Reader {
            url: args.stream.url(i, 1),
            expected: u64::MAX,
            since,
            stall: SILENCE,
            delivered: None,
            give_up: hold.clone(),
        })
        .collect();
    let before = sample(&groups).await?;
    let began = Instant::now();
    let streams = args.stream.open(readers, &hold, ca).await?;
    let readings = async {
        let open_time = began.elapsed();
        let with_streams = sample(&groups).await?;
        tokio::time::sleep(Duration::from_secs(args.window)).await;
        let after_window = sample(&groups).await?;
        Ok::<_, crate::Error>((open_time, with_streams, after_window))
    }
    .await;
    // Every stream task ends on this, whether the run succeeded or not.
    hold.cancel();
    let (lost, first_loss) = ended(streams).await;
    let (open_time, with_streams, after_window) = readings?;
    let readings = Readings {
        before,
        with_streams,
        after_window,
        open_time,
        lost,
        first_loss,
    };
    Ok(report(&args, &groups, &readings))
}

async fn sample(groups: &[Group; 2]) -> Result<[GroupSample; 2]> {
    Ok([groups[0].sample().await?, groups[1].sample().await?])
}

/// Awaits the (given up) stream tasks; how many had ended with an error
/// before, which for an idle stream means it was lost, and the first error.
async fn ended(streams: Vec<JoinHandle<Result<Received>>>) -> (u64, Option<String>) {
    let mut lost = 0;
    let mut first = None;
    for stream in streams {
        match stream.await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                lost += 1;
                first.get_or_insert_with(|| error.to_string());
            }
            Err(join) => {
                if let Ok(panic) = join.try_into_panic() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }
    (lost, first)
}

/// The figures of a run.
fn report(args: &IdleArgs, groups: &[Group; 2], r: &Readings) -> Report {
    let streams = u64::from(args.streams);
    let mut report = Report::new("peer idle");
    report.count("streams", streams);
    report.add(
        "open_seconds",
        r.open_time.as_secs_f64(),
        format!("{:.2} s", r.open_time.as_secs_f64()),
    );
    report.add("window_seconds", args.window, format!("{} s", args.window));
    let keys = [
        [
            "processes",
            "rss_before_kib",
            "rss_with_streams_kib",
            "rss_per_stream_bytes",
            "pss_per_stream_bytes",
            "cpu_percent",
        ],
        [
            "backend_processes",
            "backend_rss_before_kib",
            "backend_rss_with_streams_kib",
            "backend_rss_per_stream_bytes",
            "backend_pss_per_stream_bytes",
            "backend_cpu_percent",
        ],
    ];
    for (g, keys) in keys.iter().enumerate() {
        if groups[g].0.is_empty() {
            continue;
        }
        let (before, with, after) = (&r.before[g], &r.with_streams[g], &r.after_window[g]);
        report.count(keys[0], groups[g].0.len() as u64);
        let kib = |value: u64| format!("{} KiB", crate::report::group(value));
        report.add(keys[1], before.rss_kib(), kib(before.rss_kib()));
        report.add(keys[2], with.rss_kib(), kib(with.rss_kib()));
        let per_stream = |from: u64, to: u64| {
            let bytes = to.saturating_sub(from) * 1024 / streams;
            (bytes, format!("{:.2} KiB", bytes as f64 / 1024.0))
        };
        let (bytes, text) = per_stream(before.rss_kib(), with.rss_kib());
        report.add(keys[3], bytes, text);
        let (bytes, text) = per_stream(before.pss_kib, with.pss_kib);
        report.add(keys[4], bytes, text);
        let cpu = groups[g].cpu_time(with, after);
        let percent = cpu.as_secs_f64() / args.window as f64 * 100.0;
        report.add(
            keys[5],
            (percent * 100.0).round() / 100.0,
            format!(
                "{percent:.2} % of a core ({:.3} s of CPU)",
                cpu.as_secs_f64()
            ),
        );
    }
    report.count("streams_lost", r.lost);
    if let Some(why) = &r.first_loss {
        report.add("first_loss", why.as_str(), why.clone());
    }
    report
}
