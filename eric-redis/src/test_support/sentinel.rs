//! [`TestSentinel`]: a private primary, its replicas and three sentinels.
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

/// A primary, its replicas and three sentinels, each a private
/// `redis-server` on a free port: see the [module docs](self).
pub struct TestSentinel {
    primary: LocalServer,
    replicas: Vec<LocalServer>,
    sentinels: Vec<LocalServer>,
}

impl fmt::Debug for TestSentinel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestSentinel")
            .field("primary", &self.primary.port)
            .field(
                "replicas",
                &self.replicas.iter().map(|s| s.port).collect::<Vec<_>>(),
            )
            .field(
                "sentinels",
                &self.sentinels.iter().map(|s| s.port).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TestSentinel {
    /// A primary, one replica and three sentinels:
    /// [`TestSentinel::with_replicas`]`(1)`.
    ///
    /// # Panics
    ///
    /// As [`TestSentinel::with_replicas`].
    pub async fn start() -> Self {
        Self::with_replicas(1).await
    }

    /// Starts a primary, `replicas` replicas and three sentinels, and waits
    /// until every replica is in sync and every sentinel knows the replicas
    /// and the two other sentinels.
    ///
    /// # Panics
    ///
    /// Without a `redis-server` binary, and when a step does not happen
    /// within its deadline (with the logs).
    pub async fn with_replicas(replicas: usize) -> Self {
        let primary = server(Options::default()).await;
        let mut followers = Vec::with_capacity(replicas);
        for _ in 0..replicas {
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
            followers.push(replica);
        }
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
            sentinel.logged("+slave slave", replicas, DEADLINE).await;
            sentinel
                .logged("+sentinel sentinel", SENTINELS - 1, DEADLINE)
                .await;
        }
        Self {
            primary,
            replicas: followers,
            sentinels,
        }
    }

    /// Settings for a node: the sentinels, the monitored name, a unique key
    /// prefix (and a `url` naming the first primary, which with sentinels
    /// gives only credentials: none here).
    pub fn config(&self) -> RedisConfig {
        RedisConfig {
            sentinels: self
                .sentinels
                .iter()
                .map(|s| format!("redis://127.0.0.1:{}", s.port))
                .collect(),
            master_name: MASTER_NAME.to_owned(),
            ..RedisConfig::with_url(format!("redis://127.0.0.1:{}", self.primary.port))
                .with_prefix(format!("t-{}", uuid::Uuid::new_v4().simple()))
        }
    }

    /// The URL of the server that is primary now, as the sentinels say.
    ///
    /// # Panics
    ///
    /// If no sentinel answers.
    pub async fn primary_url(&self) -> String {
        for sentinel in &self.sentinels {
            let url = format!("redis://127.0.0.1:{}", sentinel.port);
            let Ok(client) = redis::Client::open(url) else {
                continue;
            };
            let Ok(mut c) = client.get_multiplexed_async_connection().await else {
                continue;
            };
            let asked = redis::cmd("SENTINEL")
                .arg("GET-MASTER-ADDR-BY-NAME")
                .arg(MASTER_NAME)
                .query_async::<(String, u16)>(&mut c)
                .await;
            if let Ok((host, port)) = asked {
                return format!("redis://{host}:{port}");
            }
        }
        panic!("no sentinel names the primary; {self:?}");
    }

    /// Kills the primary with SIGKILL (a crash: it flushes nothing) and
    /// waits until a sentinel announces a replica promoted
    /// (`+switch-master`), the replica says it is primary and, with several
    /// replicas, a sentinel says the others follow it (`+slave-reconf-done`).
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
        let promoted = self
            .replicas
            .iter()
            .map(|r| Box::pin(r.logged("MASTER MODE enabled", 1, FAILOVER_DEADLINE)));
        select_all(promoted).await;
        let others = self.replicas.len() - 1;
        if others > 0 {
            let followed = self
                .sentinels
                .iter()
                .map(|s| Box::pin(s.logged("+slave-reconf-done", others, FAILOVER_DEADLINE)));
            select_all(followed).await;
        }
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
