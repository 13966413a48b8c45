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
//! - `peer`: the neutral modes, which drive any SSE server by URL
//!   templates, so one client measures eric and nchan alike
//!   (`bench/peers.sh`): fan-out (on one channel or spread over many), one
//!   message per stream in rounds, idle streams; each spreads its streams
//!   and publishes over several nodes when given several URLs
//!   (`bench/scale.sh`).
//!
//! An `https://` server's certificate must chain to the system's roots or
//! to the CA certificates of `--ca-file` (read once, before the run). Over
//! TLS the modes speak HTTP/1.1 as in clear text (ALPN `http/1.1`), and
//! `peer --http2-streams-per-connection` HTTP/2 (ALPN `h2`).
//!
//! ## Layout
//!
//! - the modes above, one file each (`peer` is a folder, a file per
//!   scenario), and `procfs` (the server's `/proc` readings for `idle`,
//!   `peer idle` and `peer`'s `--cpu-pid`);
//! - `api`: the `eric-client` set-up shared by the modes (the server and the
//!   CA certificates of `--ca-file`, set-up calls, streams, where messages
//!   go). Every `/v1` call and stream goes through
//!   `eric-client`, except the pipelined dispatches of `--batch`
//!   (`pipeline`) and the socket protocol (`socket`), which write their
//!   own bytes (`--batch`: plain `http://` only), and `peer`, which speaks plain HTTP
//!   and SSE (`reqwest`, `eventsource-stream`) and no `/v1` at all; its
//!   reqwest clients come from `eric_client::http_client_builder`, the
//!   one place TLS is set up (`https:` URLs: see `peer`);
//! - `stats` (latency recorder, rate reporter), `report` (the only
//!   output);
//! - `error`: [`Error`].
//!
//! Every mode but `peer` creates its own channel and deletes it at the end,
//! so runs can follow one another against one server (`peer` uses what the
//! caller created). Figures are printed as a summary, or as one JSON object
//! with `--json`.

mod api;
mod dispatch;
mod error;
mod idle;
mod peer;
mod pipeline;
mod procfs;
mod report;
mod socket;
mod stats;
mod stream;
mod subscribe;

pub use error::{Error, Result};

use std::path::Path;
use std::time::Duration;

use eric_client::CaCertificates;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

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
    /// Any SSE server, driven by URL (plain POST to publish, plain SSE to
    /// read): the scenarios that compare eric with its peers.
    Peer(peer::PeerArgs),
}

/// Runs the load tool against the server at `url`, trusting for an
/// `https:` server (or `peer` URL) the system's roots and, when given, the
/// CA certificates in the PEM file `ca_file` (read once, before the run).
pub async fn run(url: &str, ca_file: Option<&Path>, args: LoadArgs) -> Result<()> {
    let ca = match ca_file {
        Some(path) => Some(CaCertificates::load(path).await?),
        None => None,
    };
    let server = api::Server::new(url, ca.clone());
    let report = match args.mode {
        Mode::Dispatch(mode) => dispatch::run(&server, mode).await,
        Mode::Stream(mode) => stream::run(&server, mode).await,
        Mode::Idle(mode) => idle::run(&server, mode).await,
        Mode::Socket(mode) => socket::run(mode).await,
        Mode::Subscribe(mode) => subscribe::run(&server, mode).await,
        Mode::Peer(mode) => peer::run(mode, ca.as_ref()).await,
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

/// Waits until every task has signalled on its `ready` receiver, for at
/// most `deadline`. On failure (a task dropped its sender, or time ran out)
/// every task gives up, and the first task's error, or else a timeout
/// waiting for `what`, is returned.
async fn all_ready<T>(
    tasks: Vec<JoinHandle<Result<T>>>,
    ready: Vec<oneshot::Receiver<()>>,
    give_up: &CancellationToken,
    deadline: Duration,
    what: &str,
) -> Result<Vec<JoinHandle<Result<T>>>> {
    let all = async {
        for rx in ready {
            // A dropped sender: that task failed before it was ready.
            if rx.await.is_err() {
                return false;
            }
        }
        true
    };
    if tokio::time::timeout(deadline, all).await == Ok(true) {
        return Ok(tasks);
    }
    give_up.cancel();
    join_all(tasks).await?;
    Err(Error::Timeout {
        what: what.to_owned(),
        secs: deadline.as_secs(),
    })
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
