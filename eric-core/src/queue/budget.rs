//! [`MemoryBudget`]: the bytes all queues of one in-memory engine may hold
//! together.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result};

/// Default node-wide budget of the in-memory engine: 1 GiB of queued
/// messages.
pub const DEFAULT_MEMORY_BUDGET: usize = 1024 * 1024 * 1024;

/// What the in-memory engine's queues hold, in bytes (each message counted
/// as its [`super::stored_size`], once per queue it sits in), against a
/// bound set when the engine is made.
///
/// Per-queue bounds alone do not bound a node: ten thousand listeners of
/// 64 MiB each are 640 GiB. With the budget used up, pushes fail with
/// [`Error::StorageFull`], as Redis at its `maxmemory` does, until
/// consumers drain queues. Messages that come back to a queue (a rewind,
/// an unread, a restore) are counted but never refused: refusing them
/// would lose them.
///
/// A broadcast shares one message among its queues but is counted once per
/// queue, so the budget errs on the safe side.
#[derive(Debug)]
pub struct MemoryBudget {
    max_bytes: usize,
    /// Atomic rather than behind a lock: every queue of the engine updates
    /// it on every push and pop, while holding its own queue's lock.
    used: AtomicUsize,
}

/// The cause kept by the [`Error::StorageFull`] a full budget gives.
#[derive(Debug, thiserror::Error)]
#[error("the in-memory engine's budget of {max_bytes} bytes is used up")]
pub struct BudgetExceeded {
    /// The bound.
    pub max_bytes: usize,
}

impl MemoryBudget {
    /// A budget of `max_bytes` (at least 1).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes: max_bytes.max(1),
            used: AtomicUsize::new(0),
        }
    }

    /// No bound beyond what the process can allocate.
    pub fn unlimited() -> Self {
        Self::new(usize::MAX)
    }

    /// The bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Bytes held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `bytes` for a push, unless that would pass the bound.
    pub(crate) fn reserve(&self, bytes: usize, operation: &'static str) -> Result<()> {
        let max = self.max_bytes;
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|total| *total <= max)
            })
            .map(|_| ())
            .map_err(|_| Error::StorageFull {
                backend: "in-memory engine",
                operation,
                source: Box::new(BudgetExceeded { max_bytes: max }),
            })
    }

    /// Takes `bytes` whatever the bound: for messages coming back to a
    /// queue, which must not be lost.
    pub(crate) fn force(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::AcqRel);
    }

    /// Gives back `bytes` taken earlier.
    pub(crate) fn release(&self, bytes: usize) {
        // Saturating: a release never exceeds what was taken, but an
        // underflow must not wrap into a budget that looks used up.
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_the_bound_and_frees_on_release() {
        let b = MemoryBudget::new(10);
        b.reserve(6, "t").unwrap();
        let err = b.reserve(5, "t").unwrap_err();
        assert!(matches!(err, Error::StorageFull { .. }), "{err:?}");
        assert_eq!(b.used(), 6, "a refusal takes nothing");
        b.reserve(4, "t").unwrap();
        b.release(7);
        b.force(20);
        assert_eq!(b.used(), 23);
        assert!(b.reserve(1, "t").is_err());
        assert!(MemoryBudget::unlimited().reserve(usize::MAX, "t").is_ok());
    }
}
