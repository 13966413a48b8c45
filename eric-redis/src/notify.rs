//! [`Notifier`]: the node's one pub/sub connection, run by an actor task.
//!
//! Streams sleep on their queue's `Wakeup`; this task turns Redis
//! notifications into those wake-ups, so an idle stream issues no Redis
//! command at all (the reference polled about 12,500 `LPOP`/s per idle
//! stream). The node subscribes to the notification channel of every channel
//! it has used, in batches, and unsubscribes when the channel's last object
//! here is gone.
//!
//! No lost notification can strand a stream: whenever a subscription is
//! confirmed (the first time, or again after a reconnect), the node re-reads
//! membership and running flags of the listeners it holds and wakes every
//! stream of that channel to look at its queue again, so whatever happened
//! before the confirmation is seen. A probe (`PING` on the subscriber
//! connection) detects a connection that died silently. Readiness reflects
//! this connection: [`Notifier::healthy`].

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::sync::{Notify, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::client::Client;
use crate::stats::PubSubActivity;

/// Subscribe and unsubscribe in batches of at most this many channels.
const BATCH: usize = 512;
/// Reconnect backoff bounds.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

type Wanted = HashMap<String, Weak<dyn WakeTarget>>;

/// What a notification channel's messages reach: one channel's state on
/// this node (`state::ChannelState`). A trait so that the subscriber knows
/// only these two calls, and the channel state, which holds a [`Notifier`],
/// is not known back (no module cycle).
pub(crate) trait WakeTarget: Send + Sync + 'static {
    /// Acts on one pub/sub notification for the channel.
    fn on_notification(&self, payload: &str);

    /// Catches up on what happened before a subscription was confirmed
    /// (boxed: the actor spawns it as a task of its own).
    fn revalidate(self: Arc<Self>) -> BoxFuture<'static, ()>;
}

/// A handle on the subscriber actor. The engine and every channel state
/// hold one; the actor stops when the last handle goes (or on `shutdown`).
#[derive(Clone)]
pub(crate) struct Notifier {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    /// Cancels the actor when the last handle is dropped.
    _stop_on_drop: Arc<DropGuard>,
}

struct Shared {
    /// Notification channel → the channel state it wakes. The actor
    /// reconciles its subscriptions with this map.
    wanted: Mutex<Wanted>,
    /// Signals the actor that `wanted` changed.
    changed: Notify,
    healthy: watch::Sender<bool>,
    activity: watch::Sender<PubSubActivity>,
}

impl Notifier {
    /// Starts the actor.
    pub(crate) fn start(
        client: redis::Client,
        commands: Client,
        probe: Option<Duration>,
        timeout: Duration,
    ) -> Self {
        let cancel = CancellationToken::new();
        let shared = Arc::new(Shared {
            wanted: Mutex::new(HashMap::new()),
            changed: Notify::new(),
            healthy: watch::Sender::new(false),
            activity: watch::Sender::new(PubSubActivity::default()),
        });
        let actor = Actor {
            shared: shared.clone(),
            client,
            commands,
            probe,
            timeout,
            cancel: cancel.clone(),
        };
        tokio::spawn(actor.run());
        Self {
            shared,
            _stop_on_drop: Arc::new(cancel.clone().drop_guard()),
            cancel,
        }
    }

    /// Stops the actor now.
    pub(crate) fn shutdown(&self) {
        self.cancel.cancel();
    }

    /// Asks for `notify_channel`'s notifications, delivered to `target`.
    pub(crate) fn wake_on<T: WakeTarget>(&self, notify_channel: String, target: &Arc<T>) {
        let target: Weak<dyn WakeTarget> = Arc::downgrade(target) as Weak<T>;
        self.shared.wanted().insert(notify_channel, target);
        self.changed();
    }

    /// Tells the actor to reconcile its subscriptions.
    pub(crate) fn changed(&self) {
        self.shared.changed.notify_one();
    }

    /// Whether the subscriber connection is up and subscribed.
    pub(crate) fn healthy(&self) -> watch::Receiver<bool> {
        self.shared.healthy.subscribe()
    }

    /// Sessions and probes of the subscriber connection.
    pub(crate) fn activity(&self) -> watch::Receiver<PubSubActivity> {
        self.shared.activity.subscribe()
    }
}

impl Shared {
    // Map operations cannot leave it half-changed: poison is harmless.
    fn wanted(&self) -> MutexGuard<'_, Wanted> {
        self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn target(&self, notify_channel: &str) -> Option<Arc<dyn WakeTarget>> {
        self.wanted().get(notify_channel).and_then(Weak::upgrade)
    }
}

struct Actor {
    shared: Arc<Shared>,
    client: redis::Client,
    /// The node's command connections: when this connection drops, they most
    /// likely did too (Redis restarted), so they are replaced at once rather
    /// than each failing one command first.
    commands: Client,
    probe: Option<Duration>,
    timeout: Duration,
    cancel: CancellationToken,
}

/// Why a connection's session ended.
enum Ended {
    Cancelled,
    Lost(String),
}

impl Actor {
    async fn run(self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let connected = tokio::select! {
                () = self.cancel.cancelled() => return,
                c = tokio::time::timeout(self.timeout, self.client.get_async_pubsub()) => c,
            };
            match connected {
                Ok(Ok(pubsub)) => {
                    backoff = BACKOFF_MIN;
                    let (sink, stream) = pubsub.split();
                    match self.session(sink, stream).await {
                        Ended::Cancelled => return,
                        Ended::Lost(why) => {
                            tracing::warn!(reason = %why, "pub/sub connection lost; reconnecting");
                            self.commands.reset().await;
                        }
                    }
                }
                Ok(Err(error)) => tracing::warn!(%error, "pub/sub connection failed"),
                Err(_) => tracing::warn!(timeout = ?self.timeout, "pub/sub connection timed out"),
            }
            self.shared.healthy.send_replace(false);
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    async fn session(&self, mut sink: PubSubSink, mut stream: PubSubStream) -> Ended {
        let mut subscribed = HashSet::new();
        if let Err(why) = self.reconcile(&mut sink, &mut subscribed).await {
            return Ended::Lost(why);
        }
        self.shared.healthy.send_replace(true);
        self.shared.activity.send_modify(|a| a.sessions += 1);
        let probe = self.probe.unwrap_or(Duration::MAX);
        let mut last_seen = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return Ended::Cancelled,
                msg = stream.next() => match msg {
                    Some(msg) => {
                        last_seen = tokio::time::Instant::now();
                        self.deliver(&msg);
                    }
                    None => return Ended::Lost("the connection closed".into()),
                },
                () = self.shared.changed.notified() => {
                    if let Err(why) = self.reconcile(&mut sink, &mut subscribed).await {
                        return Ended::Lost(why);
                    }
                }
                () = tokio::time::sleep_until(last_seen + probe), if self.probe.is_some() => {
                    // A subscribed RESP2 connection answers `["pong", ""]`,
                    // not `PONG`: any answer proves the connection alive.
                    match tokio::time::timeout(self.timeout, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => {
                            last_seen = tokio::time::Instant::now();
                            self.shared.activity.send_modify(|a| a.probes += 1);
                        }
                        Ok(Err(e)) => return Ended::Lost(format!("probe failed: {e}")),
                        Err(_) => return Ended::Lost("probe timed out".into()),
                    }
                }
            }
        }
    }

    /// Subscribes to what is wanted and not subscribed, unsubscribes from
    /// what is no longer wanted, and catches each new subscription up on what
    /// happened before it was confirmed.
    async fn reconcile(
        &self,
        sink: &mut PubSubSink,
        subscribed: &mut HashSet<String>,
    ) -> Result<(), String> {
        let (add, remove) = {
            let mut wanted = self.shared.wanted();
            wanted.retain(|_, target| target.strong_count() > 0);
            let add: Vec<String> = wanted
                .keys()
                .filter(|c| !subscribed.contains(*c))
                .cloned()
                .collect();
            let remove: Vec<String> = subscribed
                .iter()
                .filter(|c| !wanted.contains_key(*c))
                .cloned()
                .collect();
            (add, remove)
        };
        for batch in add.chunks(BATCH) {
            self.confirm(sink.subscribe(batch)).await?;
            subscribed.extend(batch.iter().cloned());
            for channel in batch {
                if let Some(target) = self.shared.target(channel) {
                    tokio::spawn(target.revalidate());
                }
            }
        }
        for batch in remove.chunks(BATCH) {
            self.confirm(sink.unsubscribe(batch)).await?;
            for channel in batch {
                subscribed.remove(channel);
            }
        }
        Ok(())
    }

    async fn confirm(
        &self,
        request: impl Future<Output = redis::RedisResult<()>>,
    ) -> Result<(), String> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("subscribing failed: {e}")),
            Err(_) => Err("subscribing timed out".into()),
        }
    }

    fn deliver(&self, msg: &redis::Msg) {
        let Some(target) = self.shared.target(msg.get_channel_name()) else {
            return;
        };
        match msg.get_payload::<String>() {
            Ok(payload) => target.on_notification(&payload),
            Err(error) => tracing::debug!(%error, "notification without text payload ignored"),
        }
    }
}
