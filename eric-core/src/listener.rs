//! Listeners: an id, a running flag and an optional `on_message` hook.
//!
//! A new listener is not running, as in the reference. `deliver_next` hands out
//! nothing while it is stopped (messages stay queued) and a stream of a stopped
//! listener ends. The flag is a `watch` cell, so a stream waiting for messages
//! also wakes the moment its listener stops.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::BoxError;
use crate::id::ListenerId;
use crate::message::Message;

/// Code run when a message is delivered to a listener, before the consumer
/// gets it (the reference's overridable `MessageQueueListener.on_message`).
///
/// An error is reported to the consumer as a typed item or error; it does not
/// stop the stream.
#[async_trait]
pub trait OnMessage: Send + Sync + 'static {
    /// Handles `message`, delivered to `listener`.
    async fn on_message(&self, listener: &Listener, message: &Message) -> Result<(), BoxError>;
}

/// A hook from a synchronous closure that is quick and never blocks.
#[derive(Clone)]
pub struct FnHook<F>(pub F);

#[async_trait]
impl<F> OnMessage for FnHook<F>
where
    F: Fn(&Listener, &Message) -> Result<(), BoxError> + Send + Sync + 'static,
{
    async fn on_message(&self, listener: &Listener, message: &Message) -> Result<(), BoxError> {
        (self.0)(listener, message)
    }
}

impl<F> fmt::Debug for FnHook<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnHook")
    }
}

/// A hook from a closure that may block (file or network I/O, heavy CPU): it
/// runs on tokio's blocking pool, never on a runtime worker.
#[derive(Clone)]
pub struct BlockingHook<F>(pub Arc<F>);

impl<F> BlockingHook<F> {
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        Self(Arc::new(f))
    }
}

#[async_trait]
impl<F> OnMessage for BlockingHook<F>
where
    F: Fn(&Listener, &Message) -> Result<(), BoxError> + Send + Sync + 'static,
{
    async fn on_message(&self, listener: &Listener, message: &Message) -> Result<(), BoxError> {
        let (f, listener, message) = (self.0.clone(), listener.clone(), message.clone());
        tokio::task::spawn_blocking(move || f(&listener, &message)).await?
    }
}

impl<F> fmt::Debug for BlockingHook<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlockingHook")
    }
}

struct Inner {
    id: ListenerId,
    /// The flag, read on every delivery: an atomic load.
    running: AtomicBool,
    /// Wakes streams waiting for a stop; written only when the flag changes.
    changes: watch::Sender<bool>,
    hook: Option<Arc<dyn OnMessage>>,
}

/// A listener. Clones share the same flag and hook.
#[derive(Clone)]
pub struct Listener(Arc<Inner>);

impl Listener {
    /// A stopped listener with a fresh id and no hook.
    pub fn new() -> Self {
        Self::build(ListenerId::generate(), None)
    }

    /// A stopped listener with the given id.
    pub fn with_id(id: ListenerId) -> Self {
        Self::build(id, None)
    }

    /// A stopped listener with a hook; a fresh id when `id` is `None`.
    pub fn with_hook(id: Option<ListenerId>, hook: impl OnMessage) -> Self {
        Self::build(
            id.unwrap_or_else(ListenerId::generate),
            Some(Arc::new(hook)),
        )
    }

    /// Same as [`Listener::with_hook`] with a shared hook.
    pub fn with_shared_hook(id: Option<ListenerId>, hook: Arc<dyn OnMessage>) -> Self {
        Self::build(id.unwrap_or_else(ListenerId::generate), Some(hook))
    }

    fn build(id: ListenerId, hook: Option<Arc<dyn OnMessage>>) -> Self {
        Self(Arc::new(Inner {
            id,
            running: AtomicBool::new(false),
            changes: watch::Sender::new(false),
            hook,
        }))
    }

    /// The id.
    #[inline]
    pub fn id(&self) -> &ListenerId {
        &self.0.id
    }

    /// Starts the listener: it receives messages.
    pub fn start(&self) {
        self.set_running(true);
    }

    /// Stops the listener: deliveries pause and its streams end.
    pub fn stop(&self) {
        self.set_running(false);
    }

    /// Sets the running flag.
    pub fn set_running(&self, running: bool) {
        // Under the `watch` cell's lock, so concurrent setters leave the
        // atomic and the cell agreeing.
        self.0.changes.send_if_modified(|r| {
            self.0.running.store(running, Ordering::Release);
            std::mem::replace(r, running) != running
        });
    }

    /// Whether the listener is running.
    #[inline]
    pub fn is_running(&self) -> bool {
        self.0.running.load(Ordering::Acquire)
    }

    /// Completes once the listener is stopped (at once if it is).
    pub async fn stopped(&self) {
        let mut rx = self.0.changes.subscribe();
        // The sender lives in `self`, so `wait_for` cannot see it closed.
        let _ = rx.wait_for(|running| !running).await;
    }

    /// Whether `other` is this same listener object (not just the same id).
    pub fn same_object(&self, other: &Listener) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// Whether a hook is set (deliveries skip the call when not).
    #[inline]
    pub fn has_hook(&self) -> bool {
        self.0.hook.is_some()
    }

    /// Runs the hook, if any, on `message`.
    pub async fn on_message(&self, message: &Message) -> Result<(), BoxError> {
        match &self.0.hook {
            Some(hook) => hook.on_message(self, message).await,
            None => Ok(()),
        }
    }
}

impl Default for Listener {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Listener")
            .field("id", &self.0.id.as_str())
            .field("running", &self.is_running())
            .field("hook", &self.has_hook())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    #[test]
    fn new_listeners_are_stopped_with_fresh_ids() {
        let a = Listener::new();
        let b = Listener::new();
        assert!(!a.is_running());
        assert_ne!(a.id(), b.id());
        a.start();
        assert!(a.clone().is_running());
        a.stop();
        assert!(!a.is_running());
    }

    #[tokio::test]
    async fn stopped_completes_when_stopped() {
        let l = Listener::new();
        l.start();
        let waiter = tokio::spawn({
            let l = l.clone();
            async move { l.stopped().await }
        });
        l.stop();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn hooks_run_and_blocking_hooks_leave_the_runtime_free() {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let l = Listener::with_hook(
            None,
            BlockingHook::new(move |_: &Listener, m: &Message| {
                std::thread::sleep(Duration::from_millis(1));
                c.fetch_add(
                    m.payload_value().as_u64().unwrap_or(0) as usize,
                    Ordering::SeqCst,
                );
                Ok(())
            }),
        );
        l.on_message(&Message::try_new("t", json!(2)).unwrap())
            .await
            .unwrap();
        assert_eq!(count.load(Ordering::SeqCst), 2);
        let failing = Listener::with_hook(
            None,
            FnHook(|_: &Listener, _: &Message| Err::<(), BoxError>("bad".into())),
        );
        let err = failing
            .on_message(&Message::try_new("t", json!(null)).unwrap())
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "bad");
    }
}
