//! Per-route HTTP metrics: requests by method, route template and status,
//! time to the response head, and SSE stream lifetimes.
//!
//! Label sets are bounded: the route is axum's template (`/v1/channels/{c}`),
//! never the path, and requests no route matched share `unmatched`; methods
//! outside the standard ones share `other`.
//!
//! The histograms are this module's own, on atomics: prometheus-client's
//! `Histogram` takes a mutex per observation, which every connection on one
//! route would contend for. A series is found through the family's read
//! lock (shared, never held across an await).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::MatchedPath;
use axum::http::Method;
use prometheus_client::encoding::{
    EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder, MetricEncoder, NoLabelSet,
};
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds of the request latency buckets, in seconds.
pub(super) const REQUEST_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
/// Upper bounds of the stream lifetime buckets, in seconds.
pub(super) const STREAM_BUCKETS: [f64; 10] = [
    1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 14400.0, 86400.0,
];

/// A request's route: the template it matched, or none.
#[derive(Clone, Debug)]
pub enum Route {
    /// The template of the route that answered.
    Matched(MatchedPath),
    /// No route matched (404 from the fallback).
    Unmatched,
}

impl Route {
    /// The label value: the template, or `unmatched`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Matched(path) => path.as_str(),
            Self::Unmatched => "unmatched",
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        EncodeLabelValue::encode(&self.as_str(), encoder)
    }
}

/// A method as a label: the standard ones by name, anything else `other`,
/// so a client cannot add series by inventing methods.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RequestLabels {
    pub(super) method: &'static str,
    pub(super) route: Route,
    pub(super) status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct RouteLabels {
    pub(super) method: &'static str,
    pub(super) route: Route,
}

/// A histogram with fixed bounds whose observations are atomic adds.
#[derive(Debug)]
pub(super) struct AtomicHistogram {
    bounds: &'static [f64],
    /// Observations per bucket alone (the last: above every bound).
    counts: Box<[AtomicU64]>,
    /// The sum, in nanoseconds: whole numbers add atomically.
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    pub(super) fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub(super) fn observe(&self, seconds: f64) {
        let bucket = self.bounds.partition_point(|b| *b < seconds);
        if let Some(count) = self.counts.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        // Saturates at u64::MAX ns (584 years) per observation.
        self.sum_nanos
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
        let counts = self.counts.iter().map(|c| c.load(Ordering::Relaxed));
        let buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .zip(counts)
            .collect();
        // Not one snapshot: a scrape racing observations may find the sum
        // a few observations apart from the buckets, which Prometheus's
        // rates smooth over; a lock would cost every request.
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket() {
        let h = AtomicHistogram::new(&[0.1, 1.0]);
        for s in [0.05, 0.1, 0.5, 7.0] {
            h.observe(s);
        }
        let counts: Vec<u64> = h.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(counts, [2, 1, 1]);
        assert_eq!(h.sum_nanos.load(Ordering::Relaxed), 7_650_000_000);
    }
}
