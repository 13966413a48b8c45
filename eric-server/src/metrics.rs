//! [`Metrics`]: Prometheus metrics (`GET /metrics`).
//!
//! Counters are fed on the delivery path by the engine (this type is its
//! [`Observer`]) and by the HTTP layer; gauges that describe state (channels,
//! listeners, queue depths) are read at scrape time; Redis command counts and
//! latencies come from the Redis engine's statistics.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eric_core::{ChannelId, Observer, Queue};
use eric_redis::stats::LATENCY_BUCKETS_US;
use futures_util::future::join_all;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use tokio::sync::watch;

use crate::backend::{Backend, RedisReport};
use crate::broker::Broker;

/// Channels whose queue depths a scrape reads at most (each costs a round
/// trip per listener on Redis).
const DEPTH_CHANNELS: usize = 1_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabel {
    channel: String,
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
    redis: Arc<RedisCollector>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// All metrics, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("eric");
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
            redis: Arc::new(RedisCollector::default()),
            registry: Registry::default(),
        };
        let r = &mut registry;
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
        r.register_collector(Box::new(m.redis.clone()));
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

    /// Watches (open SSE streams, streams cut for not reading).
    pub fn stream_events(&self) -> watch::Receiver<(i64, u64)> {
        self.stream_events.subscribe()
    }

    /// The text exposition, after reading the state gauges from `broker`.
    pub async fn render<E: Backend>(&self, broker: &Broker<E>) -> String {
        self.read_state(broker).await;
        self.redis.set(broker.engine().redis_stats());
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }

    async fn read_state<E: Backend>(&self, broker: &Broker<E>) {
        let channels = broker.cached_channels();
        self.channels.set(gauge(channels.len()));
        self.queue_depth.clear();
        let mut listeners = 0;
        for channel in channels.iter().take(DEPTH_CHANNELS) {
            let Ok(members) = channel.members().await else {
                continue;
            };
            listeners += members.len();
            let lengths = join_all(members.iter().map(|c| c.queue().len())).await;
            let depth: usize = lengths.into_iter().filter_map(Result::ok).sum();
            let label = ChannelLabel {
                channel: channel.id().to_string(),
            };
            self.queue_depth.get_or_create(&label).set(gauge(depth));
        }
        self.listeners.set(gauge(listeners));
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

/// The Redis engine's command statistics, as of the last scrape.
#[derive(Debug, Default)]
struct RedisCollector {
    stats: Mutex<Option<RedisReport>>,
}

impl RedisCollector {
    fn set(&self, stats: Option<RedisReport>) {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner()) = stats;
    }
}

impl Collector for RedisCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(RedisReport {
            commands: stats,
            pubsub,
        }) = *self.stats.lock().unwrap_or_else(|p| p.into_inner())
        else {
            return Ok(());
        };
        let sessions = ConstCounter::new(pubsub.sessions);
        let e = encoder.encode_descriptor(
            "redis_pubsub_sessions",
            "Pub/sub subscriber sessions established (more than one: reconnects)",
            None,
            sessions.metric_type(),
        )?;
        sessions.encode(e)?;
        let commands = ConstCounter::new(stats.commands);
        let e = encoder.encode_descriptor(
            "redis_commands",
            "Redis commands, pipelines and scripts sent",
            None,
            commands.metric_type(),
        )?;
        commands.encode(e)?;
        let errors = ConstCounter::new(stats.errors);
        let e = encoder.encode_descriptor(
            "redis_errors",
            "Redis calls that failed or timed out",
            None,
            errors.metric_type(),
        )?;
        errors.encode(e)?;
        let mut cumulative = 0;
        let buckets: Vec<(f64, u64)> = stats
            .buckets
            .iter()
            .enumerate()
            .map(|(i, count)| {
                cumulative += count;
                let bound = LATENCY_BUCKETS_US
                    .get(i)
                    .map_or(f64::INFINITY, |us| Duration::from_micros(*us).as_secs_f64());
                (bound, cumulative)
            })
            .collect();
        let mut e = encoder.encode_descriptor(
            "redis_command_latency",
            "Latency of Redis calls",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        let sum = Duration::from_micros(stats.latency_us_sum).as_secs_f64();
        e.encode_histogram::<NoLabelSet>(sum, stats.commands, &buckets, None)
    }
}
