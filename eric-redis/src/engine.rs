//! [`RedisEngine`]: `eric-core`'s [`Engine`] on Redis.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use eric_core::channel::{Adapter, ChannelSettings};
use eric_core::observe::{NoopObserver, Observer};
use eric_core::{Broadcasts, ChannelId, Engine, Persistence};
use tokio::sync::{broadcast, watch};

use crate::client::Client;
use crate::config::RedisConfig;
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::lease::Leases;
use crate::notify::Notifier;
use crate::queue::RedisQueue;
use crate::registry::{RedisMemberFactory, RedisRegistry};
use crate::repository::{RedisChannelRepository, RedisMemberRepository};
use crate::state::ChannelState;
use crate::stats::{PubSubActivity, RedisStats};

/// The Redis engine: every node that uses the same Redis and prefix shares
/// channels, membership, running flags and queues. Cloning is cheap.
#[derive(Clone)]
pub struct RedisEngine {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    client: Client,
    keys: Keys,
    notifier: Notifier,
    /// Temporary listeners' leases: renewal and sweep.
    leases: Leases,
    /// One state per channel on this node, shared by every `Channel` object
    /// of it, so notifications reach them all.
    channels: Mutex<HashMap<ChannelId, Weak<ChannelState>>>,
    observer: Arc<dyn Observer>,
    /// Channels deleted (by any node) that this node held.
    deletions: broadcast::Sender<ChannelId>,
    /// Counts the steps of this node's groups of streams.
    group_steps: watch::Sender<u64>,
}

impl RedisEngine {
    /// An engine for `config`. It validates the settings and starts the
    /// node's pub/sub subscriber; it does not wait for Redis to answer (see
    /// [`RedisEngine::ping`]), so a node can start while Redis is down.
    pub fn connect(config: RedisConfig) -> Result<Self> {
        Self::with_observer(config, Arc::new(NoopObserver))
    }

    /// Same, reporting counts and timings to `observer`.
    pub fn with_observer(config: RedisConfig, observer: Arc<dyn Observer>) -> Result<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config {
                reason: "RedisEngine::connect must run inside a tokio runtime (it starts the pub/sub task)".into(),
            });
        }
        let client = Client::new(&config)?;
        let notifier = Notifier::start(
            client.connector().clone(),
            client.clone(),
            config.probe_interval(),
            config.command_timeout(),
        );
        let keys = Keys::new(&config.prefix);
        let leases = Leases::start(client.clone(), keys.clone(), config.lease());
        Ok(Self {
            inner: Arc::new(Inner {
                keys,
                leases,
                config,
                client,
                notifier,
                channels: Mutex::new(HashMap::new()),
                observer,
                deletions: broadcast::Sender::new(256),
                group_steps: watch::Sender::new(0),
            }),
        })
    }

    /// The settings it runs with.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// Asks Redis what it is, once: its version (7.0 at least, else
    /// [`Error::UnsupportedServer`]) and whether it is a cluster node. Every
    /// first command does the same; a server calls this at start to refuse
    /// an old Redis at once rather than at the first request.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedServer`] for a Redis older than 7.0; a connection
    /// error (or timeout) while Redis is unreachable, which the next call
    /// retries.
    pub async fn check_server(&self) -> Result<()> {
        self.inner.client.check().await
    }

    /// Whether Redis answers a `PING`.
    pub async fn ping(&self) -> eric_core::Result<()> {
        self.inner.client.ping().await.map_err(Into::into)
    }

    /// Redis's `maxmemory-policy`. Anything but `noeviction` lets Redis
    /// delete keys when full, queued messages and memberships among them:
    /// the server warns at start.
    pub async fn eviction_policy(&self) -> eric_core::Result<String> {
        self.inner
            .client
            .eviction_policy()
            .await
            .map_err(Into::into)
    }

    /// Reports the pub/sub subscriber in a `watch` cell: `true` while it is connected and
    /// subscribed (part of readiness: without it, streams would not wake).
    pub fn pubsub_health(&self) -> watch::Receiver<bool> {
        self.inner.notifier.healthy()
    }

    /// Reports the subscriber's sessions and probes in a `watch` cell: a session count above
    /// one means the connection was lost and re-established.
    pub fn pubsub_activity(&self) -> watch::Receiver<PubSubActivity> {
        self.inner.notifier.activity()
    }

    /// Channels this node held that were deleted, here or on another node
    /// (a server drops them from its cache), or found without their record
    /// when the pub/sub subscription is confirmed again (Redis came back
    /// without them). A receiver that falls more than 256 behind gets
    /// `Lagged` and should re-read the channel list.
    pub fn channel_deletions(&self) -> broadcast::Receiver<ChannelId> {
        self.inner.deletions.subscribe()
    }

    /// Statistics of the node's Redis commands (for metrics).
    pub fn stats(&self) -> RedisStats {
        self.inner.client.stats()
    }

    /// Stops the node's background tasks now: the subscriber (streams stop
    /// waking) and lease renewal and sweep (this node's temporary listeners
    /// lapse after `lease_ms` unless removed). Without it, the tasks end when
    /// the engine and every channel on it are gone.
    pub fn shutdown(&self) {
        self.inner.notifier.shutdown();
        self.inner.leases.shutdown();
    }

    /// Counts the rounds in which this node renewed its leases (one script
    /// each, every third of `lease_ms`, while it holds any).
    pub fn lease_renewals(&self) -> watch::Receiver<u64> {
        self.inner.leases.renewals()
    }

    /// Counts the steps this node's groups of caught-up streams took: each
    /// `group_step` (joins, leaves, a move of their shared position) and
    /// each read of the log that moved a group (see `docs/REDIS.md`,
    /// "Groups"), so a test can await one instead of sleeping.
    pub fn group_steps(&self) -> watch::Receiver<u64> {
        self.inner.group_steps.subscribe()
    }

    /// The channel records repository on this engine's layout.
    pub fn channel_repository(&self) -> RedisChannelRepository {
        RedisChannelRepository::new(self.inner.client.clone(), self.inner.keys.clone())
    }

    /// The member records repository on this engine's layout.
    pub fn member_repository(&self) -> RedisMemberRepository {
        RedisMemberRepository::new(self.inner.client.clone(), self.inner.keys.clone())
    }

    /// Persistence on this engine's own layout: persisting writes only what
    /// Redis does not hold already, and `load_persisted_data` restores every
    /// channel with a bounded number of round trips.
    pub fn persistence<A: Adapter>(&self) -> Persistence<Self, A> {
        Persistence::new(
            self.clone(),
            Arc::new(self.channel_repository()),
            Arc::new(self.member_repository()),
        )
    }

    fn shared(&self, channel: &ChannelId) -> Arc<ChannelState> {
        let mut channels = self
            .inner
            .channels
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(shared) = channels.get(channel).and_then(Weak::upgrade) {
            return shared;
        }
        channels.retain(|_, s| s.strong_count() > 0);
        let keys = self.inner.keys.channel(channel);
        let notify = keys.notify.clone();
        let shared = Arc::new(ChannelState::new(
            self.inner.client.clone(),
            channel.clone(),
            keys,
            self.inner.notifier.clone(),
            self.inner.leases.clone(),
            self.inner.deletions.clone(),
            self.inner.group_steps.clone(),
        ));
        ChannelState::start_feed(&shared);
        channels.insert(channel.clone(), Arc::downgrade(&shared));
        self.inner.notifier.wake_on(notify, &shared);
        shared
    }
}

impl fmt::Debug for RedisEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEngine")
            .field("prefix", &self.inner.config.prefix)
            .field("client", &self.inner.client)
            .finish_non_exhaustive()
    }
}

impl Engine for RedisEngine {
    /// A broadcast is one log entry (see `feed`): copies per listener
    /// would make its cost grow with the audience.
    const BROADCASTS: Broadcasts = Broadcasts::Logged;

    type Queue = RedisQueue;
    type Factory = RedisMemberFactory;
    type Registry = RedisRegistry;

    fn name(&self) -> &'static str {
        "redis"
    }

    fn member_factory(
        &self,
        channel: &ChannelId,
        settings: &ChannelSettings,
    ) -> RedisMemberFactory {
        RedisMemberFactory::new(self.registry(channel, settings))
    }

    fn registry(&self, channel: &ChannelId, settings: &ChannelSettings) -> RedisRegistry {
        RedisRegistry::new(
            self.shared(channel),
            settings.queue_limits(),
            settings.max_subscriptions,
        )
    }

    fn observer(&self) -> &Arc<dyn Observer> {
        &self.inner.observer
    }
}
