//! Writes that can be retried safely: an [`IdempotencyKey`](crate::IdempotencyKey) names a dispatch
//! or a broadcast, and the channel remembers the keys it applied for its
//! `idempotency_window`, so a retry of an applied write is acknowledged with
//! the first answer ([`Applied::replayed`]) instead of being applied twice.
//!
//! Why: a client that sent a write and got no clear answer (a timeout, a
//! reply lost on the way, [`crate::Error::OutcomeUnknown`]) cannot know whether
//! it was applied. Without a key, retrying risks a duplicate and giving up
//! risks a loss; with one, retrying until an answer comes is exactly once.
//!
//! Keys are scoped: a dispatch's key belongs to its listener, a broadcast's
//! to its channel, so one key may name one dispatch per listener and one
//! broadcast. A refused write (full queue, unknown listener) is not
//! remembered: nothing was applied, and a retry should try again.
//!
//! Engines check, apply and remember in one atomic step (the in-memory
//! engine under one lock, Redis in one script).

/// The answer to a write with an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied<T> {
    /// What the write did: for a repeat, what the first one did.
    pub value: T,
    /// The key was seen within the window: nothing was applied this time.
    pub replayed: bool,
}

impl<T> Applied<T> {
    /// A write applied now.
    pub fn fresh(value: T) -> Self {
        Self {
            value,
            replayed: false,
        }
    }

    /// A repeat of a write applied before.
    pub fn replayed(value: T) -> Self {
        Self {
            value,
            replayed: true,
        }
    }
}
