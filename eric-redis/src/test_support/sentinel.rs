//! [`TestSentinel`]: a private primary, its replica and three sentinels.
//!
//! The sentinels watch the primary with a short `down-after-milliseconds`
//! and `failover-timeout`, so a test that kills the primary sees the replica
//! promoted within seconds. Every step is awaited on the servers' own log
//! lines (the replica's finished sync, each sentinel's `+slave` and
//! `+sentinel` discoveries, `+switch-master`), never on elapsed time. All
//! five processes are killed on drop.

use std::fmt;
use std::time::Duration;

use futures_util::future::select_all;

use super::server::{DEADLINE, LocalServer, Options};
use crate::RedisConfig;

/// The name the sentinels monitor the primary under.
const MASTER_NAME: &str = "eric-test";
/// Sentinels: three, so two make a majority for a failover.
const SENTINELS: usize = 3;
/// Silence after which a sentinel deems the primary down. Shorter makes
/// sentinels flap (a freshly promoted primary is deemed down before their
/// links to it are up).
const DOWN_AFTER_MS: u64 = 1_000;
/// Longest a failover may take before a sentinel tries again.
const FAILOVER_TIMEOUT_MS: u64 = 5_000;
/// Longest wait for a failover, from the primary's death to the promotion.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(30);

/// A primary, its replica and three sentinels, each a private
/// `redis-server` on a free port: see the [module docs](self).
pub struct TestSentinel {
    primary: LocalServer,
    replica: LocalServer,
    sentinels: Vec<LocalServer>,
    /// Whether the primary was killed (and the replica promoted).
    failed_over: bool,
}

impl fmt::Debug for TestSentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestSentinel")
            .field("primary", &self.primary.port)
            .field("replica", &self.replica.port)
            .field(
                "sentinels",
                &self.sentinels.iter().map(|s| s.port).collect::<Vec<_>>(),
            )
            .field("failed_over", &self.failed_over)
            .finish()
    }
}

impl TestSentinel {
    /// Starts the five servers and waits until the replica is in sync and
    /// every sentinel knows the replica and the two other sentinels.
    ///
    /// # Panics
    ///
    /// Without a `redis-server` binary, and when a step does not happen
    /// within its deadline (with the logs).
    pub async fn start() -> Self {
        let primary = server(Options::default()).await;
        let replica = server(Options {
            args: vec![
                "--replicaof".into(),
                "127.0.0.1".into(),
                primary.port.to_string(),
            ],
            ..Options::default()
        })
        .await;
        replica
            .logged(
                "MASTER <-> REPLICA sync: Finished with success",
                1,
                DEADLINE,
            )
            .await;
        let config = format!(
            "sentinel monitor {MASTER_NAME} 127.0.0.1 {} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n\
             sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n",
            primary.port
        );
        let mut sentinels = Vec::with_capacity(SENTINELS);
        for _ in 0..SENTINELS {
            sentinels.push(
                server(Options {
                    config: Some(config.clone()),
                    args: vec!["--sentinel".into()],
                    ready: Some("+monitor master"),
                    ..Options::default()
                })
                .await,
            );
        }
        // Sentinels find the replica through the primary's INFO, and each
        // other through hello messages every two seconds.
        for sentinel in &sentinels {
            sentinel.logged("+slave slave", 1, DEADLINE).await;
            sentinel
                .logged("+sentinel sentinel", SENTINELS - 1, DEADLINE)
                .await;
        }
        Self {
            primary,
            replica,
            sentinels,
            failed_over: false,
        }
    }

    /// Settings for a node: the sentinels, the monitored name, a unique key
    /// prefix (and a `url` naming the primary, which with sentinels gives
    /// only credentials: none here).
    pub fn config(&self) -> RedisConfig {
        RedisConfig {
            sentinels: self
                .sentinels
                .iter()
                .map(|s| format!("redis://127.0.0.1:{}", s.port))
                .collect(),
            master_name: MASTER_NAME.to_owned(),
            ..RedisConfig::with_url(self.primary_url())
                .with_prefix(format!("t-{}", uuid::Uuid::new_v4().simple()))
        }
    }

    /// The URL of the server that is primary now (the replica once the
    /// primary was killed).
    pub fn primary_url(&self) -> String {
        let port = if self.failed_over {
            self.replica.port
        } else {
            self.primary.port
        };
        format!("redis://127.0.0.1:{port}")
    }

    /// The replica's URL (before a failover).
    pub fn replica_url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.replica.port)
    }

    /// Kills the primary with SIGKILL (a crash: it flushes nothing) and
    /// waits until a sentinel announces the replica promoted
    /// (`+switch-master`) and the replica says it is primary.
    ///
    /// # Panics
    ///
    /// If the failover takes longer than 30 s, with the logs.
    pub async fn kill_primary_and_await_promotion(&mut self) {
        self.primary.kill().await;
        let announced = self
            .sentinels
            .iter()
            .map(|s| Box::pin(s.logged("+switch-master", 1, FAILOVER_DEADLINE)));
        select_all(announced).await;
        self.replica
            .logged("MASTER MODE enabled", 1, FAILOVER_DEADLINE)
            .await;
        self.failed_over = true;
    }
}

async fn server(options: Options) -> LocalServer {
    match LocalServer::start_with(options).await {
        Ok(server) => server,
        Err(e) => {
            panic!("a sentinel set-up needs redis-server: install it or set REDIS_SERVER_BIN ({e})")
        }
    }
}
