//! `eric load peer`: the neutral modes, which drive any SSE server by URL,
//! so one client measures eric and its peers (nchan) alike.
//!
//! Nothing here speaks eric's API: a publish is a plain `POST` of a JSON
//! body to a URL, a stream a plain `GET` with `Accept: text/event-stream`,
//! read by a generic SSE parser. Whatever a server needs beforehand (eric's
//! channels and listeners, nchan's nothing) is the caller's to create, so
//! the measured part is the same code for every server.
//!
//! URLs are templates: `{i}` stands for the stream's number (0 to N-1), so
//! `http://h/sub/{i}` gives each stream its own channel, and a URL without
//! it puts every stream on one. `{k}` stands for a channel's number when a
//! run spreads its messages over K channels (`fanout --channels K`), 0
//! otherwise.
//!
//! `https:` URLs are reached over TLS as every eric client reaches them:
//! rustls on `ring`, trusting the system's roots and the CA certificates
//! of `--ca-file`. Streams and publishes speak HTTP/1.1 there too (ALPN
//! offers `http/1.1` alone), and with `--http2-streams-per-connection`
//! HTTP/2 by ALPN (`h2` alone), where `http:` URLs get h2c with prior
//! knowledge.
//!
//! Several nodes: `--stream-url` and `--publish-url` may be given several
//! times, a URL each (repeated rather than comma-separated, as a URL may
//! hold a comma), typically one per node of a cluster. Streams and
//! publishes are then spread over them in turn: with U URLs, stream i
//! opens URL i mod U and publish number m goes to URL m mod U. With K
//! channels, item n (a stream or a message) belongs to channel k = n mod K
//! and, being that channel's j-th item (j = n div K), takes URL
//! (k + j) mod U: every channel's streams and publishes are spread over
//! every URL even when K and U share a factor (K = U = 3 would otherwise
//! put all of a channel's streams on one node). With one channel that is
//! n mod U again.
//!
//! Every message is the body `{"type":"peer","payload":T}`, T being its send
//! time in microseconds since the epoch. A server may deliver that body as
//! the event's data (nchan) or its `payload` alone (eric): the reader takes
//! T from either, and so measures end-to-end latency too. Events sent before
//! the run began (a server replaying a channel's earlier messages to a new
//! subscriber) are counted as stale and otherwise ignored.
//!
//! Scenarios, one file each: `fanout`, `per_stream` (rounds of one message
//! per stream) and `idle` (what idle streams cost the server's processes);
//! `reader` opens and reads the streams, `publish` posts the messages,
//! `cpu` reads the CPU time of given processes (`--cpu-pid`: the server's
//! nodes, Redis) and of the tool over a throughput run.

mod cpu;
mod fanout;
mod idle;
mod per_stream;
mod publish;
mod reader;

use std::time::{Duration, Instant};

use eric_client::CaCertificates;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::report::Report;
use crate::stats::{Latencies, per_second};
use reader::{Reader, Received};

/// The placeholder for the stream's number in a URL template.
const INDEX: &str = "{i}";
/// The placeholder for the channel's number in a URL template.
const CHANNEL: &str = "{k}";
/// How long a request (a publish) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Descriptors the tool needs beyond one per stream.
const SPARE_FILES: u64 = 256;
/// How long opening every stream may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a stream may go without an event while messages are due.
const STALL: Duration = Duration::from_secs(30);

/// Options of `eric load peer`.
#[derive(Debug, clap::Args)]
pub(crate) struct PeerArgs {
    #[command(subcommand)]
    scenario: Scenario,
}

/// The scenarios.
#[derive(Debug, clap::Subcommand)]
enum Scenario {
    /// N streams on one channel, M messages published to it: deliveries/s
    /// from the first publish until every stream has every message. With
    /// `--channels K`, streams and messages spread over K channels.
    Fanout(fanout::FanoutArgs),
    /// N streams, each on its own channel or queue; rounds of one message
    /// to each stream, the next round once every stream has its message.
    PerStream(per_stream::PerStreamArgs),
    /// N idle streams: the server processes' memory per stream and their
    /// CPU use while the streams idle.
    Idle(idle::IdleArgs),
}

/// Runs a scenario; `ca`: the CA certificates `https:` servers' may
/// chain to beyond the system's roots.
pub(crate) async fn run(args: PeerArgs, ca: Option<&CaCertificates>) -> Result<Report> {
    match args.scenario {
        Scenario::Fanout(args) => fanout::run(args, ca).await,
        Scenario::PerStream(args) => per_stream::run(args, ca).await,
        Scenario::Idle(args) => idle::run(args, ca).await,
    }
}

/// Where the streams are and how fast to open them (every scenario).
#[derive(Debug, clap::Args)]
struct Streams {
    /// URL of stream i, `{i}` standing for i (0 to N-1) and `{k}` for its
    /// channel's number. Repeat it to spread the streams over several
    /// nodes: stream i opens the (i mod U)-th of the U URLs (with
    /// `--channels K`, the ((i mod K + i div K) mod U)-th).
    #[arg(long = "stream-url", value_name = "URL", required = true)]
    stream_urls: Vec<Template>,
    /// Streams opened at once.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    open_concurrency: u32,
    /// Open the streams over HTTP/2, this many on each connection (h2c with
    /// prior knowledge for `http:` URLs, ALPN `h2` for `https:`), as a
    /// browser multiplexes its `EventSource`s; 0 (the default): HTTP/1.1, a
    /// connection per stream. Keep it within the server's concurrent
    /// streams per connection (eric: `http.h2_max_concurrent_streams`).
    #[arg(long, default_value_t = 0)]
    http2_streams_per_connection: u32,
}

impl Streams {
    /// The URL of stream `i` when the streams are spread over `channels`
    /// channels.
    fn url(&self, i: u32, channels: u32) -> String {
        let (k, turn) = spread(u64::from(i), u64::from(channels), self.stream_urls.len());
        self.stream_urls[turn].url(u64::from(i), k)
    }

    /// Starts `readers` and returns once every stream is open; on failure
    /// every reader gives up.
    async fn open(
        &self,
        readers: Vec<Reader>,
        give_up: &CancellationToken,
        ca: Option<&CaCertificates>,
    ) -> Result<Vec<JoinHandle<Result<Received>>>> {
        // Each stream is a socket here too.
        let needed = readers.len() as u64 + SPARE_FILES;
        let limit = rlimit::increase_nofile_limit(needed).unwrap_or(0);
        if limit < needed {
            return Err(Error::FileLimit { limit, needed });
        }
        let tls = any_tls(&self.stream_urls);
        let clients = match self.http2_streams_per_connection {
            0 => vec![http_client(false, ca, tls)?],
            per => {
                // One client per connection: each keeps one HTTP/2
                // connection and multiplexes its streams on it.
                let connections = (readers.len() as u64).div_ceil(u64::from(per)).max(1);
                (0..connections)
                    .map(|_| http2_client(ca, tls))
                    .collect::<Result<_>>()?
            }
        };
        let (tasks, ready) = reader::spawn(&clients, readers.into_iter(), self.open_concurrency);
        crate::all_ready(tasks, ready, give_up, OPEN_TIMEOUT, "opening every stream").await
    }
}

/// What the streams of a throughput run read, together.
#[derive(Debug)]
struct Deliveries {
    latencies: Latencies,
    stale: u64,
    /// When the last of the run's events arrived.
    last: Option<Instant>,
}

impl Deliveries {
    /// Merges what each stream read.
    fn merge(streams: Vec<Received>) -> Self {
        let total = streams.iter().map(|s| s.events).sum::<u64>();
        let mut all = Self {
            latencies: Latencies::with_capacity(total as usize),
            stale: 0,
            last: None,
        };
        for stream in streams {
            all.latencies.merge(stream.latencies);
            all.stale += stream.stale;
            all.last = all.last.max(Some(stream.last));
        }
        all
    }

    /// Adds the figures: deliveries and their rate over `elapsed`,
    /// events that were not the run's, end-to-end latency.
    fn report(self, report: &mut Report, elapsed: Duration) {
        let delivered = self.latencies.len() as u64;
        report.count("delivered", delivered);
        report.count("stale", self.stale);
        report.add(
            "seconds",
            elapsed.as_secs_f64(),
            format!("{:.3} s", elapsed.as_secs_f64()),
        );
        report.rate(
            "delivery_rate",
            per_second(delivered, elapsed),
            "deliveries/s over SSE",
        );
        report.latency("end_to_end", &self.latencies.summary());
    }
}

/// Where item `n` (a stream, or a message) goes when the items are spread
/// over `channels` channels and `urls` URLs: its channel k = n mod
/// channels, and, as that channel's j-th item (j = n div channels), the
/// URL (k + j) mod urls, so each channel's items take every URL in turn.
/// With one channel, that is URL n mod urls.
fn spread(n: u64, channels: u64, urls: usize) -> (u64, usize) {
    let channels = channels.max(1);
    let (k, j) = (n % channels, n / channels);
    // The remainder is below `urls`, a usize.
    (k, ((k + j) % urls.max(1) as u64) as usize)
}

/// Checks that every template of `option` names its channel with `{k}`,
/// which a run over several channels needs.
fn need_channel(option: &'static str, templates: &[Template]) -> Result<()> {
    match templates.iter().find(|t| !t.text.contains(CHANNEL)) {
        None => Ok(()),
        Some(t) => Err(Error::Usage {
            option,
            reason: format!("{}: has no {CHANNEL}, which several channels need", t.text),
        }),
    }
}

/// Whether any of `templates` is an `https:` URL: a client for them needs
/// the system's roots.
fn any_tls(templates: &[Template]) -> bool {
    templates.iter().any(|t| t.tls)
}

/// A URL with an optional `{i}` for the stream's number and `{k}` for the
/// channel's, checked when the command line is parsed.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    text: String,
    /// Whether it is an `https:` URL.
    tls: bool,
}

impl std::str::FromStr for Template {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let sample = text.replace(INDEX, "0").replace(CHANNEL, "0");
        let url = reqwest::Url::parse(&sample).map_err(|e| format!("{text}: {e}"))?;
        match url.scheme() {
            scheme @ ("http" | "https") => Ok(Self {
                text: text.to_owned(),
                tls: scheme == "https",
            }),
            other => Err(format!("{text}: {other}: is not http: or https:")),
        }
    }
}

impl Template {
    /// The URL for stream `i` on channel `k`.
    pub(crate) fn url(&self, i: u64, k: u64) -> String {
        self.text
            .replace(INDEX, &i.to_string())
            .replace(CHANNEL, &k.to_string())
    }
}

/// A client as the load tool needs it: no proxy (the environment's must not
/// reroute a benchmark), HTTP/1.1 (over TLS too) with Nagle off. With
/// `pooled`, idle connections are kept for the next request (publishers);
/// without, every request gets a connection of its own (streams, as a
/// browser's `EventSource` opens them). TLS as eric-client's (`tls`: for
/// `https:` URLs, trusting the system's roots and `ca`).
pub(crate) fn http_client(
    pooled: bool,
    ca: Option<&CaCertificates>,
    tls: bool,
) -> Result<reqwest::Client> {
    let mut builder = eric_client::http_client_builder(ca, tls)
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(concat!("eric-load/", env!("CARGO_PKG_VERSION")));
    if !pooled {
        // reqwest's default TCP user timeout (30 s) cut about a fifth of
        // 10,000 silent nchan streams (nchan sends no keep-alives) within a
        // 30 s window, the client resetting them: a stream that hears
        // nothing is what `peer idle` measures, not a fault.
        builder = builder.pool_max_idle_per_host(0).tcp_user_timeout(None);
    }
    builder.build().map_err(Error::http("(client set-up)"))
}

/// A client that speaks HTTP/2 only, on one connection per origin.
///
/// "Prior knowledge" is what h2c needs for `http:` URLs; for `https:`
/// reqwest then offers ALPN `h2` alone and speaks HTTP/2 on the TLS
/// connection, so one setting serves both (a server that does not choose
/// `h2` fails the stream rather than falling back to HTTP/1.1).
fn http2_client(ca: Option<&CaCertificates>, tls: bool) -> Result<reqwest::Client> {
    eric_client::http_client_builder(ca, tls)
        .no_proxy()
        .http2_prior_knowledge()
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_user_timeout(None)
        .user_agent(concat!("eric-load/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(Error::http("(client set-up)"))
}

/// Microseconds since the Unix epoch, as the messages carry them.
pub(crate) fn now_micros() -> u64 {
    crate::api::now_micros()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_number_the_streams() {
        let template: Template = "http://127.0.0.1:1/sub/c-{i}".parse().unwrap();
        assert_eq!(template.url(7, 2), "http://127.0.0.1:1/sub/c-7");
        let one: Template = "http://h/v1/channels/c/events".parse().unwrap();
        assert_eq!(one.url(3, 0), "http://h/v1/channels/c/events");
        let both: Template = "http://h:{k}0/c{k}/l{i}".parse().unwrap();
        assert_eq!(both.url(5, 2), "http://h:20/c2/l5");
        assert!("ftp://h/{i}".parse::<Template>().is_err());
        assert!(!one.tls);
        assert!("HTTPS://h/{i}".parse::<Template>().unwrap().tls);
        assert!("not a url".parse::<Template>().is_err());
    }

    #[test]
    fn one_channel_takes_the_urls_in_turn() {
        let urls: Vec<usize> = (0..7).map(|n| spread(n, 1, 3).1).collect();
        assert_eq!(urls, [0, 1, 2, 0, 1, 2, 0]);
        assert!((0..5).all(|n| spread(n, 1, 1) == (0, 0)));
    }

    /// With as many channels as URLs, a plain n mod U would give each
    /// channel one URL; the spread gives each channel every URL, and each
    /// URL every channel, equally.
    #[test]
    fn every_channel_takes_every_url() {
        for (channels, urls) in [(3, 3), (2, 2), (4, 2), (2, 3), (64, 3)] {
            let mut seen = vec![vec![0u32; urls]; channels as usize];
            let items = channels * urls as u64 * 5;
            for n in 0..items {
                let (k, url) = spread(n, channels, urls);
                assert_eq!(k, n % channels);
                seen[k as usize][url] += 1;
            }
            for per_url in &seen {
                assert!(per_url.iter().all(|&count| count == 5), "{seen:?}");
            }
        }
        // Fewer items than channels: one each, still over every URL.
        let urls: Vec<usize> = (0..4).map(|n| spread(n, 64, 3).1).collect();
        assert_eq!(urls, [0, 1, 2, 0]);
    }

    #[test]
    fn several_channels_need_k_in_every_url() {
        let with: Template = "http://h/c{k}".parse().unwrap();
        let without: Template = "http://h/c".parse().unwrap();
        assert!(need_channel("--stream-url", std::slice::from_ref(&with)).is_ok());
        let error = need_channel("--stream-url", &[with, without]).unwrap_err();
        assert!(error.to_string().contains("http://h/c:"), "{error}");
    }
}
