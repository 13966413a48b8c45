//! [`Backoff`]: the waits between reconnection attempts, and between tries
//! of a named write.
//!
//! Exponential from [`FIRST`] to [`MAX`], each wait drawn between half and
//! all of the current step ("equal jitter"): when a server restarts, its
//! clients spread their reconnections instead of arriving together.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The first step: a restarting server is often back within a second.
const FIRST: Duration = Duration::from_millis(100);
/// The largest step, so a server that comes back is found within seconds.
const MAX: Duration = Duration::from_secs(5);

/// Reconnection delays (reset by replacing it with the default).
#[derive(Debug)]
pub(crate) struct Backoff {
    step: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { step: FIRST }
    }
}

impl Backoff {
    /// The wait before the next attempt; the step doubles up to [`MAX`].
    pub(crate) fn next_delay(&mut self) -> Duration {
        let step = self.step;
        self.step = (step * 2).min(MAX);
        let half = step / 2;
        half + half.mul_f64(random_fraction())
    }
}

/// A number in `[0, 1)`. The standard library's hasher is seeded randomly
/// per `RandomState`: plenty for jitter, without a dependency.
fn random_fraction() -> f64 {
    let bits = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    // The top 53 bits fill an f64's mantissa exactly.
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_the_cap() {
        let mut backoff = Backoff::default();
        let mut step = FIRST;
        for _ in 0..20 {
            let delay = backoff.next_delay();
            assert!(
                delay >= step / 2 && delay <= step,
                "{delay:?} for step {step:?}"
            );
            step = (step * 2).min(MAX);
        }
        assert_eq!(backoff.step, MAX);
    }
}
