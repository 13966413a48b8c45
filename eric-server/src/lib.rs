//! # eric-server
//!
//! The eric broker as a library: the HTTP API with SSE streams (eric-api's
//! routes and a `/v1` resource API) and eric's Unix-socket protocol (the
//! Python `SocketClient` works against it unchanged), on the in-memory engine
//! or, with a Redis URL, on the Redis engine shared by several nodes. The
//! `eric` binary (crate `eric-bin`) is a thin `main` over [`Server`].
//!
//! `Server::bind(config)` opens the sockets (so tests learn the port),
//! `run(shutdown)` serves until the token fires.
//!
//! ## Layout
//!
//! - [`config`]: [`Config`], layered defaults → file → environment → flags,
//!   with the access settings it checks ([`config::Token`], CORS origins)
//!   that [`http`] enforces.
//! - [`backend`]: what the server needs from an engine ([`Backend`],
//!   implemented for both), and [`StorageReport`], the engine-neutral form
//!   of a storage's statistics. The only module that names an engine's own
//!   types, besides [`Server::run`] picking one.
//! - [`broker`]: [`Broker`], the operations both faces offer: generic over
//!   the engine inside, one type outside (a trait object), so the faces and
//!   [`metrics`] are compiled once and name no engine.
//! - [`http`]: the axum router (eric-api routes, `/v1`, SSE, operations);
//!   `http::routes` declares the stream routes once, for the router, the
//!   hyper bypass in `serve` and the rights table.
//! - `accept`: the accept loop HTTP and the socket share (connection cap,
//!   back-off cut short by shutdown, tasks on a tracker).
//! - `serve`: HTTP connections: HTTP/1.1 and HTTP/2 (h2c, or ALPN over
//!   TLS), per-connection and per-HTTP/2-request kill switches, shutdown;
//!   TLS with [`Tls`], whose certificate reloads on SIGHUP.
//! - [`metrics`]: Prometheus metrics (the storage's figures come as a
//!   [`StorageReport`]; `process_*` from `/proc`; per-route requests, fed
//!   by the access log layer in `http`), listed in `docs/OPERATIONS.md`.
//! - [`socket`]: eric's Unix-socket protocol.
//! - [`error`]: the crate's [`Error`].
//! - `test_support` (feature `test-support`): `TestServer`, a server inside
//!   a test's process, and `TestCerts`, certificates made at test time.

mod accept;
pub mod backend;
pub mod broker;
pub mod config;
pub mod error;
pub mod http;
pub mod metrics;
mod serve;
pub mod socket;
#[cfg(feature = "test-support")]
pub mod test_support;

use std::net::SocketAddr;
use std::sync::Arc;

use eric_core::MemoryEngine;
use eric_disk::DiskEngine;
use eric_redis::RedisEngine;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use backend::{Backend, NotReady, StorageReport};
pub use broker::Broker;
pub use config::{Config, StorageEngine};
pub use error::{Error, Result};
pub use metrics::Metrics;
pub use serve::Tls;

/// Open file descriptors the server asks for (each SSE client holds one).
const WANTED_FILES: u64 = 1 << 20;

/// A server with its sockets bound.
#[derive(Debug)]
pub struct Server {
    config: Config,
    http: TcpListener,
    socket: Option<tokio::net::UnixListener>,
    metrics: Arc<Metrics>,
    tls: Option<Tls>,
}

impl Server {
    /// Binds the HTTP address (port 0 picks a free one), after reading the
    /// TLS certificate and key when they are set.
    pub async fn bind(config: Config) -> Result<Self> {
        config.validate()?;
        let tls = match config.http.tls_files()? {
            Some((cert, key)) => Some(Tls::load(cert, key).await?),
            None => None,
        };
        let addr = config.http.addr;
        let http = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let socket = config
            .socket
            .path
            .as_deref()
            .map(socket::bind)
            .transpose()?;
        Ok(Self {
            config,
            http,
            socket,
            metrics: Arc::new(Metrics::new()),
            tls,
        })
    }

    /// The port's TLS, when configured: [`Tls::reload`] reads the
    /// certificate and key again, as SIGHUP does.
    pub fn tls(&self) -> Option<Tls> {
        self.tls.clone()
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> Result<SocketAddr> {
        let addr = self.config.http.addr;
        self.http
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })
    }

    /// The server's metrics (shared with whoever watches them).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Serves until `shutdown` fires, then lets streams end cleanly within
    /// the grace period. With TLS, each SIGHUP meanwhile reloads the
    /// certificate ([`Tls::reload`]).
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        raise_file_limit();
        let metrics = self.metrics.clone();
        let defaults = self.config.channels.clone();
        // The one place that names an engine: from here on, `Broker` is the
        // same type for both.
        let memory =
            MemoryEngine::with_observer(metrics.clone()).with_budget(self.config.memory.max_bytes);
        let broker = match self.config.redis.clone() {
            None if self.config.storage.engine == StorageEngine::Memory => {
                Broker::new(memory, defaults)
            }
            None => {
                let disk = self.config.storage.disk();
                let opening = std::time::Instant::now();
                // Opening reads and checks the whole file.
                let engine = tokio::task::spawn_blocking(move || DiskEngine::open(disk, memory))
                    .await
                    .map_err(|e| {
                        Error::Core(eric_core::Error::repository("opening the data file", e))
                    })??;
                tracing::info!(
                    file = %engine.data_file().display(),
                    fsync = %engine.config().fsync,
                    elapsed_ms = opening.elapsed().as_millis(),
                    "data file open"
                );
                Broker::new(engine, defaults)
            }
            Some(redis) => {
                let engine = RedisEngine::with_observer(redis, metrics.clone())?;
                check_redis(&engine).await?;
                warn_if_evicting(&engine).await;
                Broker::new(engine, defaults)
            }
        };
        self.serve(broker, metrics, shutdown).await
    }

    async fn serve(
        self,
        broker: Broker,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<()> {
        let restoring = std::time::Instant::now();
        match broker.restore().await {
            Ok(0) => {}
            Ok(restored) => tracing::info!(
                restored,
                elapsed_ms = restoring.elapsed().as_millis(),
                "channels restored"
            ),
            // The node still starts: channels load lazily once storage answers.
            Err(error) => tracing::warn!(%error, "restoring channels failed"),
        }
        let http_addr = self.http_addr()?;
        let socket = self.socket.map(|listener| {
            let path = self.config.socket.path.clone().unwrap_or_default();
            let max = self.config.socket.max_request_bytes;
            let write_timeout = self.config.socket.write_timeout();
            tokio::spawn(socket::serve(
                listener,
                path,
                broker.clone(),
                max,
                write_timeout,
                shutdown.clone(),
            ))
        });
        let deletions = tokio::spawn({
            let (broker, shutdown) = (broker.clone(), shutdown.clone());
            async move { broker.follow_deletions(shutdown).await }
        });
        let state = http::AppState::new(
            broker.clone(),
            self.config.http.clone(),
            metrics.clone(),
            shutdown.clone(),
        )?;
        // Listening before the server says it serves: from then on a
        // SIGHUP reloads (its default action would end the process).
        let reloads = self
            .tls
            .clone()
            .and_then(|tls| serve::tls::reload_on_hangup(tls, shutdown.clone()));
        tracing::info!(
            addr = %http_addr,
            engine = broker.engine_name(),
            tls = self.tls.is_some(),
            "eric is serving"
        );
        let http = &self.config.http;
        let options = serve::ServeOptions {
            shutdown,
            grace: http.shutdown_grace(),
            max_connections: http.max_connections,
            head_timeout: http.request_timeout(),
            metrics,
            tls: self.tls,
            h2: serve::H2Options {
                max_concurrent_streams: http.h2_max_concurrent_streams,
                ping_interval: http.keep_alive(),
                ping_timeout: http.send_timeout(),
            },
        };
        serve::serve(self.http, http::router(state), options).await;
        if let Some(socket) = socket {
            let _ = socket.await;
        }
        if let Some(reloads) = reloads {
            let _ = reloads.await;
        }
        let _ = deletions.await;
        broker.shutdown().await;
        tracing::info!("eric stopped");
        Ok(())
    }
}

/// Binds and serves `config` until `shutdown` fires.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    Server::bind(config).await?.run(shutdown).await
}

/// Raises the soft open-files limit toward the hard one: every SSE client
/// holds a descriptor, and distributions default to 1,024.
fn raise_file_limit() {
    match rlimit::increase_nofile_limit(WANTED_FILES) {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open files limit"),
    }
}

/// Refuses to start on a Redis older than 7.0 (the scripts notify through
/// sharded pub/sub); a Redis that does not answer yet is waited for, as
/// before: the node starts, and readiness says so.
async fn check_redis(engine: &RedisEngine) -> Result<()> {
    match engine.check_server().await {
        Err(e @ eric_redis::Error::UnsupportedServer { .. }) => Err(e.into()),
        Err(error) => {
            tracing::warn!(%error, "Redis does not answer yet; starting anyway");
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// Warns when Redis may evict keys: at `maxmemory` it would then delete
/// queued messages and listeners instead of refusing writes (507).
async fn warn_if_evicting(engine: &RedisEngine) {
    match engine.eviction_policy().await {
        Ok(policy) if policy == "noeviction" => {}
        Ok(policy) => tracing::warn!(
            %policy,
            "Redis evicts keys when it reaches maxmemory, which loses queued messages \
             and listeners; set `maxmemory-policy noeviction`"
        ),
        // Unreachable now: restoring will say so, and nodes start anyway.
        Err(error) => tracing::debug!(%error, "cannot read Redis's maxmemory policy"),
    }
}
