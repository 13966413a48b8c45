//! [`TestRedis`]: a real Redis for tests (feature `test-support`).
//!
//! Every crate's Redis tests get their server here, from the first source
//! that works:
//!
//! 1. `REDIS_URL`, when set (CI's docker-compose service, a developer's
//!    server): used as is, and tests stay apart through
//!    [`TestRedis::unique_prefix`].
//! 2. A private `redis-server` (`REDIS_SERVER_BIN`, else `redis-server` on
//!    `PATH`) on a free port in a temporary directory. Startup takes tens of
//!    milliseconds, so each test can own one.
//! 3. With feature `docker`, a testcontainers Redis whose image is
//!    `ERIC_TEST_REDIS_IMAGE` (default `redis:7.2`).
//!
//! With none of them, [`TestRedis::start`] panics saying what to install:
//! a suite that silently runs nothing would pass in CI.
//!
//! [`TestRedis::start_cluster`] starts a private three-primary Redis
//! Cluster instead, and [`TestSentinel`] a primary, its replica and three
//! sentinels watching them.
//!
//! ## Layout
//!
//! - this file: [`TestRedis`], choosing the source.
//! - `server`: the private `redis-server` (process actor, readiness, log).
//! - `cluster`: the private Redis Cluster.
//! - `sentinel`: [`TestSentinel`].
//! - `docker`: the testcontainers source.

mod cluster;
#[cfg(feature = "docker")]
mod docker;
mod sentinel;
mod server;

pub use sentinel::TestSentinel;

use std::fmt;

use crate::RedisConfig;
use cluster::LocalCluster;
use server::LocalServer;

const HOW_TO_FIX: &str = "no Redis server for tests: install redis-server \
     (e.g. `apt-get install redis-server`), set REDIS_SERVER_BIN to its path, \
     set REDIS_URL=redis://host:port, or start Docker and enable eric-redis's \
     `docker` feature";

/// A Redis server for one test (or a few): see the [module docs](self).
///
/// A private server is killed when this is dropped, its directory removed,
/// and, if the thread is panicking, its log printed to stderr.
pub struct TestRedis {
    url: String,
    backend: Backend,
}

/// Where the server came from, and what must live as long as it.
enum Backend {
    External,
    Local(LocalServer),
    Cluster(LocalCluster),
    #[cfg(feature = "docker")]
    Docker {
        /// Owned only to keep the container up: dropping it removes it.
        _container: Box<testcontainers::ContainerAsync<testcontainers_modules::redis::Redis>>,
    },
}

impl fmt::Debug for TestRedis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TestRedis");
        d.field("url", &self.url).field("source", &self.source());
        if let Backend::Local(server) = &self.backend {
            d.field("dir", &server.dir.path())
                .field("durable", &server.durable)
                .field("running", &server.process.is_some());
        }
        if let Backend::Cluster(cluster) = &self.backend {
            d.field("nodes", &cluster.urls());
        }
        d.finish()
    }
}

impl TestRedis {
    /// A Redis from `REDIS_URL` when set; else a private `redis-server`
    /// (`REDIS_SERVER_BIN`, or `redis-server` on `PATH`) on a free port in a
    /// temporary directory; else, with feature `docker`, a testcontainers
    /// Redis (image `ERIC_TEST_REDIS_IMAGE`, default `redis:7.2`).
    ///
    /// # Panics
    ///
    /// With no source available, saying how to get one (install
    /// redis-server, set `REDIS_URL` or start Docker); also when a private
    /// server exits or is not ready within 10 s, with its log.
    pub async fn start() -> Self {
        if let Some(url) = external_url() {
            return Self {
                url,
                backend: Backend::External,
            };
        }
        let local_error = match LocalServer::start(false).await {
            Ok(server) => return Self::local(server),
            Err(e) => e,
        };
        #[cfg(feature = "docker")]
        let docker_error = match docker::start_container().await {
            Ok((url, container)) => {
                return Self {
                    url,
                    backend: Backend::Docker {
                        _container: Box::new(container),
                    },
                };
            }
            Err(e) => format!("; docker: {e}"),
        };
        #[cfg(not(feature = "docker"))]
        let docker_error = "; docker: feature `docker` is off";
        panic!("{HOW_TO_FIX} (redis-server: {local_error}{docker_error})");
    }

    /// Like [`TestRedis::start`], but the private server appends every write
    /// to its AOF before answering (`--appendonly yes --appendfsync always`),
    /// so [`TestRedis::stop`] and [`TestRedis::start_again`] lose nothing.
    ///
    /// # Panics
    ///
    /// If `REDIS_URL` is set: a test cannot restart an external server. Also
    /// without a `redis-server` binary (a container is not restarted either),
    /// and when the server fails to start.
    pub async fn start_durable() -> Self {
        assert!(
            external_url().is_none(),
            "TestRedis::start_durable restarts its server, which an external \
             REDIS_URL server cannot be: unset REDIS_URL for this test"
        );
        Self::spawn_local(true).await
    }

    /// A private `redis-server` whatever `REDIS_URL` says, for tests that
    /// stall or reconfigure their server (`CLIENT PAUSE`, `CONFIG SET`),
    /// which would disturb other tests on a shared one.
    ///
    /// # Panics
    ///
    /// Without a `redis-server` binary, and when the server fails to start.
    pub async fn start_private() -> Self {
        Self::spawn_local(false).await
    }

    /// A private three-primary Redis Cluster (`redis-server
    /// --cluster-enabled yes` joined by `redis-cli --cluster create`),
    /// whatever `REDIS_URL` says. [`TestRedis::url`] names one node (eric
    /// finds the others); [`TestRedis::urls`] names them all.
    ///
    /// # Panics
    ///
    /// Without `redis-server` and `redis-cli` binaries (`REDIS_SERVER_BIN`,
    /// `REDIS_CLI_BIN`), and when the cluster fails to form.
    pub async fn start_cluster() -> Self {
        match LocalCluster::start().await {
            Ok(cluster) => Self {
                url: cluster.urls()[0].clone(),
                backend: Backend::Cluster(cluster),
            },
            Err(e) => panic!(
                "a private Redis Cluster needs redis-server: install it or set \
                 REDIS_SERVER_BIN ({e})"
            ),
        }
    }

    /// A testcontainers Redis whatever else is available (feature
    /// `docker`): the third source, tested on its own where Docker runs.
    ///
    /// # Panics
    ///
    /// If the container cannot be started (no Docker engine, or the image
    /// `ERIC_TEST_REDIS_IMAGE` is missing and cannot be pulled).
    #[cfg(feature = "docker")]
    pub async fn start_container() -> Self {
        match docker::start_container().await {
            Ok((url, container)) => Self {
                url,
                backend: Backend::Docker {
                    _container: Box::new(container),
                },
            },
            Err(e) => panic!("a testcontainers Redis is needed: {e}"),
        }
    }

    /// A private server whatever `REDIS_URL` says (the harness's own tests).
    async fn spawn_local(durable: bool) -> Self {
        match LocalServer::start(durable).await {
            Ok(server) => Self::local(server),
            Err(e) => panic!(
                "a private redis-server is needed: install redis-server or set \
                 REDIS_SERVER_BIN ({e})"
            ),
        }
    }

    fn local(server: LocalServer) -> Self {
        Self {
            url: format!("redis://127.0.0.1:{}", server.port),
            backend: Backend::Local(server),
        }
    }

    /// The server's URL (`redis://host:port`); for a cluster, one node's.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every server's URL: the one server's, or each cluster node's.
    pub fn urls(&self) -> Vec<String> {
        match &self.backend {
            Backend::Cluster(cluster) => cluster.urls(),
            _ => vec![self.url.clone()],
        }
    }

    /// For a cluster, every node's URL comma-separated (each a seed eric may
    /// start from); otherwise [`TestRedis::url`].
    pub fn seeds(&self) -> String {
        match &self.backend {
            Backend::Cluster(cluster) => cluster.url(),
            _ => self.url.clone(),
        }
    }

    /// A key prefix no other caller gets (`t-<uuid>`), so tests sharing one
    /// server stay apart.
    pub fn unique_prefix(&self) -> String {
        format!("t-{}", uuid::Uuid::new_v4().simple())
    }

    /// A [`RedisConfig`] for this server, with a [unique
    /// prefix](TestRedis::unique_prefix).
    pub fn config(&self) -> RedisConfig {
        RedisConfig::with_url(self.url.clone()).with_prefix(self.unique_prefix())
    }

    /// How the server was obtained: `"external"`, `"local-binary"`,
    /// `"local-cluster"` or `"docker"`.
    pub fn source(&self) -> &'static str {
        match self.backend {
            Backend::External => "external",
            Backend::Local(_) => "local-binary",
            Backend::Cluster(_) => "local-cluster",
            #[cfg(feature = "docker")]
            Backend::Docker { .. } => "docker",
        }
    }

    /// Stops the private server (SIGTERM, then waits for it to exit),
    /// keeping its port and data directory for [`TestRedis::start_again`].
    /// Does nothing if it is already stopped.
    ///
    /// # Panics
    ///
    /// If the server is not a private one, or does not exit within 10 s of
    /// SIGTERM and SIGKILL each.
    pub async fn stop(&mut self) {
        self.local_server("stop").stop().await;
    }

    /// Relaunches a [stopped](TestRedis::stop) private server on the same
    /// port and directory, and waits until it is ready (with AOF, until it
    /// has reloaded its data). Does nothing if it is running.
    ///
    /// # Panics
    ///
    /// If the server is not a private one, or fails to start (for example
    /// because another process took its port meanwhile).
    pub async fn start_again(&mut self) {
        self.local_server("start_again").start_again().await;
    }

    fn local_server(&mut self, what: &str) -> &mut LocalServer {
        let source = self.source();
        match &mut self.backend {
            Backend::Local(server) => server,
            _ => panic!(
                "TestRedis::{what} needs a private redis-server (use \
                 TestRedis::start_durable), not a {source} one"
            ),
        }
    }
}

fn external_url() -> Option<String> {
    std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    async fn connect(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(url)?
            .get_multiplexed_async_connection()
            .await
    }

    fn port_of(redis: &TestRedis) -> u16 {
        match &redis.backend {
            Backend::Local(server) => server.port,
            _ => panic!("not a private server"),
        }
    }

    #[tokio::test]
    async fn a_started_server_answers_ping() {
        let redis = TestRedis::start().await;
        let mut conn = connect(redis.url()).await.unwrap();
        let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
        assert_eq!(pong, "PONG");
        assert_ne!(redis.unique_prefix(), redis.unique_prefix());
        redis.config().validate().unwrap();
    }

    #[tokio::test]
    async fn two_private_servers_get_different_ports() {
        let a = TestRedis::spawn_local(false).await;
        let b = TestRedis::spawn_local(false).await;
        assert_eq!(a.source(), "local-binary");
        assert_ne!(port_of(&a), port_of(&b));
        assert_ne!(a.url(), b.url());
    }

    #[tokio::test]
    async fn a_durable_server_keeps_its_data_across_stop_and_start_again() {
        let mut redis = TestRedis::spawn_local(true).await;
        let mut conn = connect(redis.url()).await.unwrap();
        let () = redis::cmd("SET")
            .arg("kept")
            .arg("yes")
            .query_async(&mut conn)
            .await
            .unwrap();
        redis.stop().await;
        let refused = connect(redis.url()).await.unwrap_err();
        assert!(refused.is_connection_refusal(), "{refused:?}");
        redis.start_again().await;
        let mut conn = connect(redis.url()).await.unwrap();
        let kept: Option<String> = redis::cmd("GET")
            .arg("kept")
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(kept.as_deref(), Some("yes"));
    }

    #[tokio::test]
    async fn a_dropped_server_no_longer_answers_and_its_dir_is_gone() {
        let redis = TestRedis::spawn_local(false).await;
        let url = redis.url().to_owned();
        let (mut exit, dir) = match &redis.backend {
            Backend::Local(server) => {
                let process = server.process.as_ref().unwrap();
                (process.exit.clone(), server.dir.path().to_owned())
            }
            _ => unreachable!(),
        };
        connect(&url).await.unwrap();
        drop(redis);
        tokio::time::timeout(server::DEADLINE, exit.wait_for(Option::is_some))
            .await
            .unwrap()
            .unwrap();
        let refused = connect(&url).await.unwrap_err();
        assert!(refused.is_connection_refusal(), "{refused:?}");
        assert!(!dir.exists());
    }

    #[tokio::test]
    #[should_panic(expected = "TestRedis::stop needs a private redis-server")]
    async fn stop_is_refused_for_an_external_server() {
        let mut redis = TestRedis {
            url: "redis://127.0.0.1:1".to_owned(),
            backend: Backend::External,
        };
        redis.stop().await;
    }
}
