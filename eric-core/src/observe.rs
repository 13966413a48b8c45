//! [`Observer`]: a small metrics hook.
//!
//! The reference's profiling tools logged the time spent in `on_message` and
//! the time to process a queue. Here channels report those (and delivery
//! counts) to the engine's observer, and also record them in `tracing` spans,
//! so a server can export them as metrics without `eric-core` depending on a
//! metrics library.

use std::time::Duration;

use crate::id::{ChannelId, ListenerId};

/// Receives counts and timings from channels. Every method defaults to doing
/// nothing; implementations must be cheap, since they run on the delivery path.
pub trait Observer: Send + Sync + 'static {
    /// `messages` were queued on `channel` (one per listener reached).
    fn dispatched(&self, _channel: &ChannelId, _messages: usize) {}

    /// `messages` were handed to consumers of `channel`.
    fn delivered(&self, _channel: &ChannelId, _messages: usize) {}

    /// `listeners` refused a message because their queue was full.
    fn refused_full(&self, _channel: &ChannelId, _listeners: usize) {}

    /// An `on_message` hook ran for `elapsed`.
    fn hook_finished(
        &self,
        _channel: &ChannelId,
        _listener: &ListenerId,
        _elapsed: Duration,
        _ok: bool,
    ) {
    }

    /// A data-processing run handled `messages` of `listener`'s queue in `elapsed`.
    fn queue_processed(
        &self,
        _channel: &ChannelId,
        _listener: &ListenerId,
        _messages: usize,
        _elapsed: Duration,
    ) {
    }
}

/// The observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopObserver;

impl Observer for NoopObserver {}
