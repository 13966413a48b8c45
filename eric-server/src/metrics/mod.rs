//! [`Metrics`]: Prometheus metrics (`GET /metrics`).
//!
//! Counters are fed on the delivery path by the engine (this type is its
//! [`Observer`]) and by the HTTP layer; gauges that describe state (channels,
//! listeners, queue depths) are read from the [`Broker`] at scrape time; the
//! storage's own figures (Redis command counts and latencies) come from the
//! engine as a [`StorageReport`], which names them: this module knows no
//! engine. `docs/OPERATIONS.md` lists every metric (a test holds it to
//! what `/metrics` shows).
//!
//! ## Layout
//!
//! - `http`: per-route request counts, latencies and stream lifetimes.
//! - `process`: the standard `process_*` metrics, from `/proc`.

mod http;
mod process;

use std::sync::{Arc, Mutex};

use eric_core::{ChannelId, Observer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::watch;

use crate::backend::StorageReport;
use crate::broker::Broker;

use self::http::{AtomicHistogram, REQUEST_BUCKETS, RequestLabels, RouteLabels, STREAM_BUCKETS};
pub use self::http::{Route, method_label};
use self::process::{ProcessCollector, Sample};

/// This build's version and, when it was built in a git checkout, commit
/// (`build.rs`).
const VERSION: &str = env!("CARGO_PKG_VERSION");
const COMMIT: &str = env!("ERIC_GIT_COMMIT");

type HistogramFamily<L> = Family<L, AtomicHistogram, fn() -> AtomicHistogram>;

/// Channels whose queue depths a scrape reads at most (each costs a round
/// trip per listener on Redis).
const DEPTH_CHANNELS: usize = 1_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
    commit: &'static str,
}

/// The broker's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    dispatched: Counter,
    delivered: Counter,
    queue_full: Counter,
    /// Open HTTP connections.
    pub connections: Gauge,
    streams: Gauge,
    stalled: Counter,
    /// (open streams, streams cut so far), for whoever waits on a change
    /// (tests, the load tool) instead of polling `/metrics`.
    stream_events: watch::Sender<(i64, u64)>,
    channels: Gauge,
    listeners: Gauge,
    queue_depth: Family<ChannelLabel, Gauge>,
    storage: Arc<StorageCollector>,
    process: Arc<ProcessCollector>,
    requests: Family<RequestLabels, Counter>,
    request_duration: HistogramFamily<RouteLabels>,
    stream_duration: HistogramFamily<RouteLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics, registered.
    pub fn new() -> Self {
        // The root holds the `process_*` metrics, under their standard
        // names; eric's own go in the `eric_` sub-registry.
        let mut registry = Registry::default();
        let m = Self {
            dispatched: Counter::default(),
            delivered: Counter::default(),
            queue_full: Counter::default(),
            connections: Gauge::default(),
            streams: Gauge::default(),
            stalled: Counter::default(),
            stream_events: watch::Sender::new((0, 0)),
            channels: Gauge::default(),
            listeners: Gauge::default(),
            queue_depth: Family::default(),
            storage: Arc::new(StorageCollector::default()),
            process: Arc::new(ProcessCollector::default()),
            requests: Family::default(),
            request_duration: Family::new_with_constructor(|| {
                AtomicHistogram::new(&REQUEST_BUCKETS)
            }),
            stream_duration: Family::new_with_constructor(|| AtomicHistogram::new(&STREAM_BUCKETS)),
            registry: Registry::default(),
        };
        registry.register_collector(Box::new(m.process.clone()));
        let r = registry.sub_registry_with_prefix("eric");
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: VERSION,
                commit: COMMIT,
            })
            .set(1);
        r.register(
            "build_info",
            "1, labelled with the version and git commit of this build",
            build,
        );
        r.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status (streams when their head is sent)",
            m.requests.clone(),
        );
        r.register_with_unit(
            "http_request_duration",
            "Time from a request to its response head, by method and route template",
            Unit::Seconds,
            m.request_duration.clone(),
        );
        r.register_with_unit(
            "sse_stream_duration",
            "Lifetimes of SSE streams, recorded when they end, by route template",
            Unit::Seconds,
            m.stream_duration.clone(),
        );
        r.register(
            "messages_dispatched",
            "Messages queued (one per listener reached)",
            m.dispatched.clone(),
        );
        r.register(
            "messages_delivered",
            "Messages handed to consumers",
            m.delivered.clone(),
        );
        r.register(
            "queue_full",
            "Messages refused because a queue was full",
            m.queue_full.clone(),
        );
        r.register(
            "http_connections",
            "Open HTTP connections",
            m.connections.clone(),
        );
        r.register("sse_streams", "Open SSE streams", m.streams.clone());
        r.register(
            "sse_stalled",
            "SSE streams cut because the client stopped reading",
            m.stalled.clone(),
        );
        r.register("channels", "Channels on this node", m.channels.clone());
        r.register(
            "listeners",
            "Listeners of the channels on this node",
            m.listeners.clone(),
        );
        r.register(
            "queue_depth",
            "Messages waiting, per channel",
            m.queue_depth.clone(),
        );
        r.register_collector(Box::new(m.storage.clone()));
        Self { registry, ..m }
    }

    /// An SSE stream opened.
    pub fn stream_opened(&self) {
        let open = self.streams.inc() + 1;
        self.stream_events
            .send_modify(|(streams, _)| *streams = open);
    }

    /// An SSE stream closed; `stalled` if it was cut for not reading.
    pub fn stream_closed(&self, stalled: bool) {
        let open = self.streams.dec() - 1;
        let cut = if stalled {
            self.stalled.inc() + 1
        } else {
            self.stalled.get()
        };
        self.stream_events.send_modify(|state| *state = (open, cut));
    }

    /// A response head went out `seconds` after its request came in.
    pub fn request_answered(&self, method: &'static str, route: &Route, status: u16, seconds: f64) {
        let route = route.clone();
        self.request_duration
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(seconds);
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// An SSE stream on `route` ended after `seconds`.
    pub fn stream_ended(&self, method: &'static str, route: &Route, seconds: f64) {
        let labels = RouteLabels {
            method,
            route: route.clone(),
        };
        self.stream_duration.get_or_create(&labels).observe(seconds);
    }

    /// Watches (open SSE streams, streams cut for not reading).
    pub fn stream_events(&self) -> watch::Receiver<(i64, u64)> {
        self.stream_events.subscribe()
    }

    /// The text exposition, after reading the state gauges from `broker`.
    pub async fn render(&self, broker: &Broker) -> String {
        self.read_state(broker).await;
        self.storage.set(broker.storage_report());
        // Blocking file reads, kept off the runtime's workers.
        let sample = tokio::task::spawn_blocking(Sample::read)
            .await
            .ok()
            .flatten();
        self.process.set(sample);
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }

    async fn read_state(&self, broker: &Broker) {
        let occupancy = broker.occupancy(DEPTH_CHANNELS).await;
        self.channels.set(gauge(occupancy.channels));
        self.queue_depth.clear();
        for (channel, depth) in occupancy.depths {
            let label = ChannelLabel {
                channel: channel.to_string(),
            };
            self.queue_depth.get_or_create(&label).set(gauge(depth));
        }
        self.listeners.set(gauge(occupancy.listeners));
    }
}

fn gauge(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Observer for Metrics {
    fn dispatched(&self, _: &ChannelId, messages: usize) {
        self.dispatched.inc_by(messages as u64);
    }

    fn delivered(&self, _: &ChannelId, messages: usize) {
        self.delivered.inc_by(messages as u64);
    }

    fn refused_full(&self, _: &ChannelId, listeners: usize) {
        self.queue_full.inc_by(listeners as u64);
    }
}

/// The engine's storage statistics, as of the last scrape.
#[derive(Debug, Default)]
struct StorageCollector {
    report: Mutex<Option<StorageReport>>,
}

impl StorageCollector {
    fn set(&self, report: Option<StorageReport>) {
        *self.report.lock().unwrap_or_else(|p| p.into_inner()) = report;
    }
}

impl Collector for StorageCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let report = self
            .report
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(report) = report else {
            return Ok(());
        };
        for counter in &report.counters {
            let value = ConstCounter::new(counter.value);
            let e =
                encoder.encode_descriptor(counter.name, counter.help, None, value.metric_type())?;
            value.encode(e)?;
        }
        let Some(latency) = &report.latency else {
            return Ok(());
        };
        let mut e = encoder.encode_descriptor(
            latency.name,
            latency.help,
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        // Per-bucket counts: the encoder writes the running sums
        // Prometheus's `le` buckets are.
        e.encode_histogram::<NoLabelSet>(latency.sum_seconds, latency.count, &latency.buckets, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{LatencyHistogram, StorageCounter};

    fn exposition(metrics: &Metrics) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &metrics.registry).expect("encodes");
        out
    }

    /// A storage report comes out under the names and help texts it
    /// carries, after the broker's own metrics, counters first; histogram
    /// buckets count every observation up to their bound, so `+Inf` is the
    /// count.
    #[test]
    fn a_storage_report_is_exposed_under_its_own_names() {
        let metrics = Metrics::new();
        let without = exposition(&metrics);
        let counter = |name, help, value| StorageCounter { name, help, value };
        metrics.storage.set(Some(StorageReport {
            counters: vec![
                counter("store_sessions", "Sessions", 1),
                counter("store_calls", "Calls sent", 4),
            ],
            latency: Some(LatencyHistogram {
                name: "store_latency",
                help: "Latency of calls",
                count: 4,
                sum_seconds: 0.5,
                buckets: vec![(0.001, 1), (0.1, 3), (f64::INFINITY, 0)],
            }),
        }));
        let with = exposition(&metrics);
        let before_eof = without.strip_suffix("# EOF\n").expect("ends with EOF");
        let added = with
            .strip_prefix(before_eof)
            .expect("the broker's own metrics come first, unchanged");
        assert_eq!(
            added,
            "# HELP eric_store_sessions Sessions\n\
             # TYPE eric_store_sessions counter\n\
             eric_store_sessions_total 1\n\
             # HELP eric_store_calls Calls sent\n\
             # TYPE eric_store_calls counter\n\
             eric_store_calls_total 4\n\
             # HELP eric_store_latency_seconds Latency of calls\n\
             # TYPE eric_store_latency_seconds histogram\n\
             # UNIT eric_store_latency_seconds seconds\n\
             eric_store_latency_seconds_sum 0.5\n\
             eric_store_latency_seconds_count 4\n\
             eric_store_latency_seconds_bucket{le=\"0.001\"} 1\n\
             eric_store_latency_seconds_bucket{le=\"0.1\"} 4\n\
             eric_store_latency_seconds_bucket{le=\"+Inf\"} 4\n\
             # EOF\n"
        );
    }
}
