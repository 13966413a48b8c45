//! [`Notifier`]: the node's pub/sub subscriber, run by an actor task.
//!
//! Streams sleep on their queue's `Wakeup`; this task turns Redis
//! notifications into those wake-ups, so an idle stream issues no Redis
//! command at all (the reference polled about 12,500 `LPOP`/s per idle
//! stream). The node subscribes (sharded pub/sub, `SSUBSCRIBE`) to the
//! notification channel of every channel it has used, in batches, and
//! unsubscribes when the channel's last object here is gone. One connection
//! on a single server; one per primary on a cluster (`links`).
//!
//! No lost notification can strand a stream: whenever a subscription is
//! confirmed (the first time, or again after a reconnect), the node re-reads
//! membership and running flags of the listeners it holds and wakes every
//! stream of that channel to look at its queue again, so whatever happened
//! before the confirmation is seen. A probe (`PING` on the subscriber
//! connections) detects a connection that died silently. Readiness reflects
//! these connections: [`Notifier::healthy`].
//!
//! Pushes wait in a bounded queue ([`PUSH_BUFFER`]); should it fill (the
//! task starved), the session starts over, which catches every channel up,
//! so the bound costs work, never a notification.
//!
//! ## Layout
//!
//! - this file: the handle and the actor (sessions, reconciling what is
//!   subscribed with what is wanted, delivery).
//! - `links`: the connections of one session, one per shard.

mod links;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::client::Client;
use crate::connector::Connector;
use crate::stats::PubSubActivity;
use links::{Failure, Links, Push};

/// Subscribe and unsubscribe in batches of at most this many channels.
const BATCH: usize = 512;
/// Pushes (notifications, confirmations) waiting for the actor.
const PUSH_BUFFER: usize = 16_384;
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
    /// Starts the actor, reaching Redis through `connector`.
    pub(crate) fn start(
        connector: impl Into<Connector>,
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
            connector: connector.into(),
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
    connector: Connector,
    /// The node's command connections: when the subscriber's connection
    /// drops, they most likely did too (Redis restarted), so they are
    /// replaced at once rather than each failing one command first.
    commands: Client,
    probe: Option<Duration>,
    timeout: Duration,
    cancel: CancellationToken,
}

/// Why a session ended.
enum Ended {
    Cancelled,
    /// A connection failed: the command connections are suspect too.
    Lost(String),
    /// The cluster's slot map changed: the links must be opened again.
    Moved(String),
}

/// What a session knows of its subscriptions.
#[derive(Default)]
struct Subscriptions {
    /// Channel → its link.
    subscribed: HashMap<String, usize>,
    /// Unsubscriptions sent and not yet confirmed, by channel: any other
    /// `sunsubscribe` is the server dropping a channel whose slot moved.
    leaving: HashMap<String, usize>,
}

impl Actor {
    async fn run(self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let (pushes_tx, mut pushes) = mpsc::channel(PUSH_BUFFER);
            let overflow = CancellationToken::new();
            let opening = Links::open(&self.connector, self.timeout, &pushes_tx, &overflow);
            let opened = tokio::select! {
                () = self.cancel.cancelled() => return,
                o = tokio::time::timeout(self.timeout, opening) => o,
            };
            drop(pushes_tx);
            match opened {
                Ok(Ok(mut links)) => {
                    backoff = BACKOFF_MIN;
                    match self.session(&mut links, &mut pushes, &overflow).await {
                        Ended::Cancelled => return,
                        Ended::Lost(why) => {
                            tracing::warn!(reason = %why, "pub/sub connection lost; reconnecting");
                            self.commands.reset().await;
                        }
                        Ended::Moved(why) => {
                            tracing::info!(reason = %why, "cluster slots moved; subscribing again");
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

    async fn session(
        &self,
        links: &mut Links,
        pushes: &mut mpsc::Receiver<Push>,
        overflow: &CancellationToken,
    ) -> Ended {
        let mut subs = Subscriptions::default();
        if let Err(ended) = self.reconcile(links, &mut subs).await {
            return ended;
        }
        self.shared.healthy.send_replace(true);
        self.shared.activity.send_modify(|a| a.sessions += 1);
        let probe = self.probe.unwrap_or(Duration::MAX);
        let mut last_seen = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return Ended::Cancelled,
                () = overflow.cancelled() => {
                    return Ended::Lost("notifications came faster than they were handled".into());
                }
                push = pushes.recv() => match push {
                    Some(push) => {
                        last_seen = tokio::time::Instant::now();
                        if let Err(ended) = self.on_push(push, &mut subs) {
                            return ended;
                        }
                    }
                    None => return Ended::Lost("the connection closed".into()),
                },
                () = self.shared.changed.notified() => {
                    if let Err(ended) = self.reconcile(links, &mut subs).await {
                        return ended;
                    }
                }
                () = tokio::time::sleep_until(last_seen + probe), if self.probe.is_some() => {
                    match links.ping().await {
                        Ok(()) => {
                            last_seen = tokio::time::Instant::now();
                            self.shared.activity.send_modify(|a| a.probes += 1);
                        }
                        Err(why) => return Ended::Lost(why),
                    }
                }
            }
        }
    }

    fn on_push(&self, push: Push, subs: &mut Subscriptions) -> Result<(), Ended> {
        let PushInfo { kind, data } = push.info;
        let channel = data.first().and_then(text);
        match (kind, channel) {
            (PushKind::SMessage, Some(channel)) => {
                self.deliver(&channel, data.get(1));
            }
            (PushKind::SUnsubscribe, Some(channel)) => match subs.leaving.get_mut(&channel) {
                Some(pending) if *pending > 1 => *pending -= 1,
                Some(_) => {
                    subs.leaving.remove(&channel);
                }
                None if subs.subscribed.get(&channel) == Some(&push.link) => {
                    return Err(Ended::Moved(format!(
                        "the server dropped {channel} (its slot moved)"
                    )));
                }
                None => {}
            },
            (PushKind::Disconnection, _) => {
                return Err(Ended::Lost("the connection closed".into()));
            }
            _ => {}
        }
        Ok(())
    }

    /// Subscribes to what is wanted and not subscribed, unsubscribes from
    /// what is no longer wanted, and catches each new subscription up on what
    /// happened before it was confirmed.
    async fn reconcile(&self, links: &mut Links, subs: &mut Subscriptions) -> Result<(), Ended> {
        let (add, remove) = {
            let mut wanted = self.shared.wanted();
            wanted.retain(|_, target| target.strong_count() > 0);
            let add: Vec<String> = wanted
                .keys()
                .filter(|c| !subs.subscribed.contains_key(*c))
                .cloned()
                .collect();
            let remove: Vec<String> = subs
                .subscribed
                .keys()
                .filter(|c| !wanted.contains_key(*c))
                .cloned()
                .collect();
            (add, remove)
        };
        for (link, channels) in by_link(links, add)? {
            for batch in channels.chunks(BATCH) {
                links.subscribe(link, batch).await.map_err(ended)?;
                for channel in batch {
                    subs.subscribed.insert(channel.clone(), link);
                    if let Some(target) = self.shared.target(channel) {
                        tokio::spawn(target.revalidate());
                    }
                }
            }
        }
        let mut leaving: HashMap<usize, Vec<String>> = HashMap::new();
        for channel in remove {
            if let Some(link) = subs.subscribed.remove(&channel) {
                *subs.leaving.entry(channel.clone()).or_default() += 1;
                leaving.entry(link).or_default().push(channel);
            }
        }
        for (link, channels) in leaving {
            for batch in channels.chunks(BATCH) {
                links.unsubscribe(link, batch).await.map_err(ended)?;
            }
        }
        Ok(())
    }

    fn deliver(&self, channel: &str, payload: Option<&Value>) {
        let Some(target) = self.shared.target(channel) else {
            return;
        };
        match payload.and_then(text) {
            Some(payload) => target.on_notification(&payload),
            None => tracing::debug!(channel, "notification without text payload ignored"),
        }
    }
}

fn ended(failure: Failure) -> Ended {
    match failure {
        Failure::Broken(why) => Ended::Lost(why),
        Failure::Refused(why) => Ended::Moved(why),
    }
}

/// Channels grouped by the link whose shard serves them.
fn by_link(links: &Links, channels: Vec<String>) -> Result<HashMap<usize, Vec<String>>, Ended> {
    let mut grouped: HashMap<usize, Vec<String>> = HashMap::new();
    for channel in channels {
        let link = links.link_of(&channel).map_err(Ended::Moved)?;
        grouped.entry(link).or_default().push(channel);
    }
    Ok(grouped)
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}
