//! [`Wakeup`]: how producers wake consumers without polling.

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// A wake-up signal between a queue's producers and its consumers.
///
/// A consumer must *arm* before it looks at the queue, then wait:
///
/// ```
/// # async fn demo(queue_is_empty: impl Fn() -> bool, wakeup: &eric_core::queue::Wakeup) {
/// let armed = wakeup.armed();
/// tokio::pin!(armed);
/// armed.as_mut().enable();
/// if queue_is_empty() {
///     armed.await; // a push between the check and here is not missed
/// }
/// # }
/// ```
///
/// Producers call [`Wakeup::notify_one`] per push: its fast path is one atomic
/// operation when nobody waits, and when nobody waits it leaves a permit, so
/// every push is followed by at least one consumer looking at the queue.
/// Closing and reconnecting call [`Wakeup::notify_all`].
#[derive(Debug, Default)]
pub struct Wakeup {
    notify: Notify,
}

impl Wakeup {
    /// A new signal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes one waiting consumer (or the next one to wait).
    pub fn notify_one(&self) {
        self.notify.notify_one();
    }

    /// Wakes every consumer waiting now (queue closed, state to re-check).
    pub fn notify_all(&self) {
        self.notify.notify_waiters();
    }

    /// A future that completes at the next notification; `enable` it before
    /// checking the queue.
    pub fn armed(&self) -> Notified<'_> {
        self.notify.notified()
    }
}
