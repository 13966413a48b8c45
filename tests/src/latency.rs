//! [`Latencies`]: cross-node delivery latencies measured by the tests
//! (reported, never asserted: speed is for benchmarks).
//!
//! A producer stamps each payload with [`stamp`]; the reader passes the
//! received payload to [`Latencies::record`]. Every node runs on this
//! machine, so one wall clock serves both ends.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// The key of the send time, in microseconds since the epoch.
const SENT: &str = "sent_us";

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// `{"n": n, "sent_us": <now>}`: a payload carrying its send time.
pub fn stamp(n: u64) -> Value {
    json!({ "n": n, SENT: now_us() })
}

/// The `n` of a [`stamp`]ed payload.
pub fn number(payload: &Value) -> Option<u64> {
    payload["n"].as_u64()
}

/// Latencies of stamped payloads.
#[derive(Debug, Default)]
pub struct Latencies {
    samples: Vec<Duration>,
}

impl Latencies {
    /// Records the latency of a payload received now, if it is stamped.
    pub fn record(&mut self, payload: &Value) {
        if let Some(sent) = payload[SENT].as_u64() {
            self.samples
                .push(Duration::from_micros(now_us().saturating_sub(sent)));
        }
    }

    /// Prints count, p50, p99 and max under `what` to stderr (shown with
    /// `cargo test -- --nocapture`).
    #[allow(clippy::print_stderr)] // printing the figures is the point
    pub fn report(mut self, what: &str) {
        if self.samples.is_empty() {
            return;
        }
        self.samples.sort_unstable();
        let at = |q: f64| {
            let i = ((self.samples.len() - 1) as f64 * q).round() as usize;
            self.samples[i]
        };
        eprintln!(
            "latency {what}: n = {}, p50 {:.2?}, p99 {:.2?}, max {:.2?}",
            self.samples.len(),
            at(0.50),
            at(0.99),
            at(1.0),
        );
    }
}
