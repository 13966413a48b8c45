//! Measurement helpers: a latency recorder with percentiles, and a rate
//! reporter sampling a shared counter once a second.
//!
//! Latencies are kept exactly (a `Vec` sorted once at the end) rather than in
//! a histogram: a run records at most a few million of them, which sorts in
//! well under a second and needs no extra dependency.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Latencies of one task, merged into one recorder at the end of a run.
#[derive(Debug, Default, Clone)]
pub(crate) struct Latencies {
    nanos: Vec<u64>,
}

impl Latencies {
    /// An empty recorder with room for `capacity` samples.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            nanos: Vec::with_capacity(capacity),
        }
    }

    /// Records one latency.
    pub(crate) fn record(&mut self, latency: Duration) {
        self.record_nanos(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Records one latency given in nanoseconds.
    pub(crate) fn record_nanos(&mut self, nanos: u64) {
        self.nanos.push(nanos);
    }

    /// Adds another task's samples.
    pub(crate) fn merge(&mut self, other: Latencies) {
        if self.nanos.is_empty() {
            self.nanos = other.nanos;
        } else {
            self.nanos.extend_from_slice(&other.nanos);
        }
    }

    /// Forgets the samples, keeping the memory.
    pub(crate) fn clear(&mut self) {
        self.nanos.clear();
    }

    /// How many samples.
    pub(crate) fn len(&self) -> usize {
        self.nanos.len()
    }

    /// Percentiles of the samples (zeros when there are none).
    pub(crate) fn summary(mut self) -> Summary {
        self.nanos.sort_unstable();
        let n = self.nanos.len();
        let micros = |nanos: u64| nanos as f64 / 1_000.0;
        // Nearest rank: the smallest sample with at least `q` of them at or
        // below it.
        let rank = |q: f64| {
            let index = (q * n as f64).ceil() as usize;
            micros(
                self.nanos
                    .get(index.saturating_sub(1).min(n.saturating_sub(1)))
                    .copied()
                    .unwrap_or(0),
            )
        };
        let total: u128 = self.nanos.iter().map(|&v| u128::from(v)).sum();
        Summary {
            count: n as u64,
            mean_us: if n == 0 {
                0.0
            } else {
                total as f64 / n as f64 / 1_000.0
            },
            p50_us: rank(0.50),
            p90_us: rank(0.90),
            p99_us: rank(0.99),
            p999_us: rank(0.999),
            max_us: micros(self.nanos.last().copied().unwrap_or(0)),
        }
    }
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Summary {
    /// Samples.
    pub(crate) count: u64,
    /// Arithmetic mean.
    pub(crate) mean_us: f64,
    /// Median.
    pub(crate) p50_us: f64,
    /// 90th percentile.
    pub(crate) p90_us: f64,
    /// 99th percentile.
    pub(crate) p99_us: f64,
    /// 99.9th percentile.
    pub(crate) p999_us: f64,
    /// Largest sample.
    pub(crate) max_us: f64,
}

/// Counts per second of a shared counter, sampled while a run goes on: the
/// overall rate hides warm-up and stalls, the spread of these shows them.
#[derive(Debug)]
pub(crate) struct RateReporter {
    stop: CancellationToken,
    task: JoinHandle<Vec<u64>>,
}

impl RateReporter {
    /// Starts sampling `counter` every second.
    pub(crate) fn start(counter: Arc<AtomicU64>) -> Self {
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut per_second = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                tick.tick().await;
                let mut last = counter.load(Ordering::Relaxed);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return per_second,
                        _ = tick.tick() => {}
                    }
                    let now = counter.load(Ordering::Relaxed);
                    per_second.push(now - last);
                    last = now;
                }
            }
        });
        Self { stop, task }
    }

    /// Stops sampling; the counts of every full second so far.
    pub(crate) async fn finish(self) -> Vec<u64> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

/// `count` per second over `elapsed` (0 for an empty interval).
pub(crate) fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Virtual time: the clock moves only when every task waits, so the
    // reporter's ticks and the counter's changes interleave the same way
    // on every run.
    #[tokio::test(start_paused = true)]
    async fn the_rate_reporter_counts_each_full_second() {
        let counter = Arc::new(AtomicU64::new(0));
        let reporter = RateReporter::start(counter.clone());
        let half = Duration::from_millis(500);
        tokio::time::sleep(half).await;
        counter.fetch_add(5, Ordering::Relaxed);
        tokio::time::sleep(2 * half).await;
        counter.fetch_add(7, Ordering::Relaxed);
        tokio::time::sleep(2 * half).await;
        // Counted after the last full second: not reported.
        counter.fetch_add(100, Ordering::Relaxed);
        assert_eq!(reporter.finish().await, [5, 7]);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut latencies = Latencies::default();
        for micros in 1..=1000u64 {
            latencies.record(Duration::from_micros(micros));
        }
        let mut other = Latencies::with_capacity(1);
        other.record_nanos(2_000_000);
        latencies.merge(other);
        assert_eq!(latencies.len(), 1001);
        let s = latencies.summary();
        assert_eq!(s.count, 1001);
        assert_eq!(s.p50_us, 501.0);
        assert_eq!(s.p90_us, 901.0);
        assert_eq!(s.p99_us, 991.0);
        assert_eq!(s.p999_us, 1000.0);
        assert_eq!(s.max_us, 2000.0);
    }

    #[test]
    fn no_samples_give_zeros() {
        let s = Latencies::default().summary();
        assert_eq!((s.count, s.p50_us, s.max_us, s.mean_us), (0, 0.0, 0.0, 0.0));
        let mut one = Latencies::default();
        one.record(Duration::from_micros(7));
        let s = one.summary();
        assert_eq!((s.p50_us, s.p999_us, s.max_us), (7.0, 7.0, 7.0));
    }

    #[test]
    fn rates_of_empty_intervals_are_zero() {
        assert_eq!(per_second(10, Duration::ZERO), 0.0);
        assert_eq!(per_second(10, Duration::from_millis(500)), 20.0);
    }
}
