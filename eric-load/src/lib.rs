//! # eric-load
//!
//! The load tool behind `eric load`: drives a running server and measures it.
//!
//! Modes, one per file:
//!
//! - `dispatch`: `POST .../messages` as fast as the server answers, from
//!   N keep-alive connections (or pipelined with `--batch`): requests/s and
//!   latency percentiles.
//! - `stream`: end-to-end delivery over SSE (dispatch → event read), then
//!   the rate at which one stream drains a backlog.
//! - `idle`: N idle SSE streams; the server's RSS per stream and its CPU
//!   use while they idle (read from `/proc`).
//! - `socket`: dispatch over eric's Unix-socket protocol.
//! - `subscribe`: eric-client's `Subscriber` receiving published events,
//!   live and from a backlog.
//!
//! ## Layout
//!
//! - the modes above, one file each, and `procfs` (the server's `/proc`
//!   readings for `idle`);
//! - `api`: the `eric-client` set-up shared by the modes (set-up calls,
//!   streams, where messages go). Every `/v1` call and stream goes through
//!   `eric-client`, except the pipelined dispatches of `--batch`
//!   (`pipeline`) and the socket protocol (`socket`), which write their
//!   own bytes;
//! - `stats` (latency recorder, rate reporter), `report` (the only
//!   output);
//! - `error`: [`Error`].
//!
//! Every mode creates its own channel and deletes it at the end, so runs can
//! follow one another against one server. Figures are printed as a summary,
//! or as one JSON object with `--json`.

mod api;
mod dispatch;
mod error;
mod idle;
mod pipeline;
mod procfs;
mod report;
mod socket;
mod stats;
mod stream;
mod subscribe;

pub use error::{Error, Result};

use tokio::task::JoinHandle;

use report::Report;

/// Options of `eric load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Print the figures as one JSON object.
    #[arg(long, global = true)]
    json: bool,
    /// What to measure.
    #[command(subcommand)]
    mode: Mode,
}

/// The measurements.
#[derive(Debug, clap::Subcommand)]
enum Mode {
    /// Dispatch rate over HTTP: N connections sending messages to a listener
    /// as fast as the server answers.
    Dispatch(dispatch::DispatchArgs),
    /// Delivery over SSE: end-to-end latency and rate with concurrent
    /// dispatchers, then the rate of draining a backlog.
    Stream(stream::StreamArgs),
    /// Idle SSE streams: the server's memory per stream and CPU use.
    Idle(idle::IdleArgs),
    /// Dispatch rate over eric's Unix-socket protocol.
    Socket(socket::SocketArgs),
    /// Events/s through eric-client's Subscriber: live while publishing,
    /// then from a backlog.
    Subscribe(subscribe::SubscribeArgs),
}

/// Runs the load tool against the server at `url`.
pub async fn run(url: &str, args: LoadArgs) -> Result<()> {
    let base = url;
    let report = match args.mode {
        Mode::Dispatch(mode) => dispatch::run(base, mode).await,
        Mode::Stream(mode) => stream::run(base, mode).await,
        Mode::Idle(mode) => idle::run(base, mode).await,
        Mode::Socket(mode) => socket::run(mode).await,
        Mode::Subscribe(mode) => subscribe::run(base, mode).await,
    }?;
    report.print(args.json);
    Ok(())
}

/// Awaits every task and returns their results, or the first error.
///
/// A panicking task is a bug in the tool, not a measurement: the panic goes
/// on here rather than being turned into an error.
async fn join_all<T>(tasks: Vec<JoinHandle<Result<T>>>) -> Result<Vec<T>> {
    let mut results = Vec::with_capacity(tasks.len());
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(value)) => results.push(value),
            Ok(Err(error)) => {
                first_error.get_or_insert(error);
            }
            // Cancelled tasks are ones the tool aborted itself, after an
            // error it reports.
            Err(join) => {
                if let Ok(panic) = join.try_into_panic() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }
    first_error.map_or(Ok(results), Err)
}

/// Runs `measure` against a fresh channel (queues of `queue_capacity`),
/// then deletes the channel even if the measurement failed: its queues may
/// hold millions of messages the next run should not find in memory.
async fn with_channel<F, Fut>(
    api: &api::Api,
    queue_capacity: Option<u64>,
    measure: F,
) -> Result<Report>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<Report>>,
{
    let channel = api.create_channel(queue_capacity).await?;
    let measured = measure(channel.clone()).await;
    let deleted = api.delete_channel(&channel).await;
    let report = measured?;
    deleted?;
    Ok(report)
}
