//! A private three-primary Redis Cluster for [`TestRedis`](super::TestRedis).
//!
//! Three `redis-server --cluster-enabled yes` on free ports, joined by
//! `redis-cli --cluster create` (which assigns the slots in three ranges and
//! waits until every node agrees), then ready when each node logs
//! `Cluster state changed: ok`. No replicas: the tests are about slots, not
//! failover (Sentinel has its own set-up). Each node is a
//! [`LocalServer`](super::server::LocalServer), killed on drop.

use std::io;
use std::process::Stdio;

use tokio::process::Command;

use super::server::{LocalServer, Options};

/// Primaries of a test cluster.
const PRIMARIES: usize = 3;

/// What a node logs once it serves every slot.
const STATE_OK: &str = "Cluster state changed: ok";

/// Clusters alive at once in one test process. Each is three servers that
/// gossip; the fifty-odd tests of a test binary starting theirs together
/// starved one another on a 2-core machine (a `--cluster create` or a
/// stream missing its 10 s deadline), so the others wait for a slot.
const AT_ONCE: usize = 3;
static SLOTS: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(AT_ONCE)));

/// How long joining may take: `redis-cli --cluster create` waits for the
/// nodes' gossip in steps of a second, and a busy machine stretches that
/// (10 s was missed in CI). A bound on a hang, not a timing.
const JOIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// Three cluster primaries, joined.
pub(super) struct LocalCluster {
    pub(super) nodes: Vec<LocalServer>,
    /// Held while the cluster lives (see `AT_ONCE`).
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl LocalCluster {
    /// Starts the nodes and joins them; `Err` only when `redis-server` cannot
    /// be run at all. Other failures panic with the logs.
    pub(super) async fn start() -> io::Result<Self> {
        let slot = SLOTS
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("the cluster slots were closed"))?;
        let mut nodes = Vec::with_capacity(PRIMARIES);
        for _ in 0..PRIMARIES {
            nodes.push(
                LocalServer::start_with(Options {
                    args: [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        // A node is deemed failing after this long without
                        // answering; the tests never let one fail.
                        "--cluster-node-timeout",
                        "5000",
                    ]
                    .map(String::from)
                    .to_vec(),
                    ..Options::default()
                })
                .await?,
            );
        }
        let cluster = Self { nodes, _slot: slot };
        cluster.create().await;
        for node in &cluster.nodes {
            node.logged(STATE_OK, 1, JOIN_DEADLINE).await;
        }
        Ok(cluster)
    }

    /// `redis-cli --cluster create`: the slots in three ranges, no replicas.
    async fn create(&self) {
        let cli = std::env::var_os("REDIS_CLI_BIN").unwrap_or_else(|| "redis-cli".into());
        let mut command = Command::new(&cli);
        command.args(["--cluster", "create"]);
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.port));
        }
        command
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let created = tokio::time::timeout(JOIN_DEADLINE, command.output()).await;
        let failure = match created {
            Ok(Ok(output)) if output.status.success() => return,
            Ok(Ok(output)) => format!(
                "{}:\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
            Ok(Err(e)) => format!("cannot run {}: {e}", cli.to_string_lossy()),
            Err(_) => format!("it did not finish within {JOIN_DEADLINE:?}"),
        };
        panic!(
            "redis-cli --cluster create failed ({failure}); node logs:\n{}",
            self.logs()
        );
    }

    /// The nodes' URLs, comma-separated: every one a seed.
    pub(super) fn url(&self) -> String {
        self.urls().join(",")
    }

    /// Each node's URL.
    pub(super) fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect()
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("---- node on port {} ----\n{}", n.port, n.log()))
            .collect()
    }
}
