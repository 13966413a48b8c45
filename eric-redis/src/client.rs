//! [`Client`]: the node's command connections, with a timeout on every call.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deadpool_redis::{CreatePoolError, Pool, Runtime};
use redis::aio::MultiplexedConnection;
use redis::{FromRedisValue, RedisResult};
use tokio::sync::Mutex;

use crate::config::RedisConfig;
use crate::error::{Error, Result};
use crate::stats::{Recorder, RedisStats};

/// The node's command connections.
///
/// `deadpool-redis` creates and health-checks them, but checking one out per
/// command would cost a round trip (its recycle check is `PING`) and waste
/// what a multiplexed connection does best: pipelining the commands of many
/// concurrent tasks. So the client holds `pool_size` pooled connections as
/// *lanes*, spreads commands over them round-robin, and hands a lane back to
/// the pool (which then verifies or replaces it) only after a connection
/// error. Never one connection per listener; blocking commands never run here.
#[derive(Clone)]
pub(crate) struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// An async lock, so the tasks that find a lane empty wait for the one
    /// filling it instead of all taking connections from the pool.
    lanes: Box<[Mutex<Option<Lane>>]>,
    next: AtomicUsize,
    timeout: Duration,
    stats: Recorder,
}

/// A pooled connection held for sharing: the pool object keeps it counted
/// as in use; commands run on clones of the multiplexed handle.
struct Lane {
    _object: deadpool_redis::Connection,
    shared: MultiplexedConnection,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("pool", &self.inner.pool.status())
            .field("lanes", &self.inner.lanes.len())
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

/// Whether the connection itself failed (so its lane must be replaced),
/// as opposed to the command.
fn connection_failed(e: &redis::RedisError) -> bool {
    e.is_connection_dropped() || e.is_connection_refusal() || e.is_io_error() || e.is_timeout()
}

impl Client {
    /// A client for `config` (no connection is made until the first call).
    pub(crate) fn new(config: &RedisConfig) -> Result<Self> {
        config.validate()?;
        let mut pc = deadpool_redis::PoolConfig::new(config.pool_size);
        pc.timeouts.wait = Some(config.command_timeout());
        pc.timeouts.create = Some(config.command_timeout());
        pc.timeouts.recycle = Some(config.command_timeout());
        // redis-rs gives multiplexed connections a response timeout of its
        // own (500 ms) unless told otherwise; it cut every slow command at
        // half a second whatever `command_timeout_ms` said, answering "retry
        // later" for writes Redis then applied. `run` bounds every call, so
        // the connection itself waits as long as that bound allows.
        let connection = redis::AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(config.command_timeout()));
        let manager = deadpool_redis::Manager::new_with_config(config.url.as_str(), connection)
            .map_err(|e| CreatePoolError::Config(e.into()))?;
        let pool = Pool::builder(manager)
            .config(pc)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(CreatePoolError::Build)?;
        let lanes = (0..config.pool_size).map(|_| Mutex::new(None)).collect();
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                lanes,
                next: AtomicUsize::new(0),
                timeout: config.command_timeout(),
                stats: Recorder::default(),
            }),
        })
    }

    /// Empties every lane: after Redis restarted, they are all dead.
    pub(crate) async fn reset(&self) {
        for lane in self.inner.lanes.iter() {
            lane.lock().await.take();
        }
    }

    /// A connection of lane `index`, filling the lane from the pool if empty.
    async fn connection(
        &self,
        index: usize,
        operation: &'static str,
    ) -> Result<MultiplexedConnection> {
        let mut lane = self.inner.lanes[index].lock().await;
        if let Some(lane) = lane.as_ref() {
            return Ok(lane.shared.clone());
        }
        let object = self
            .inner
            .pool
            .get()
            .await
            .map_err(|source| Error::Pool { operation, source })?;
        let shared = (*object).clone();
        *lane = Some(Lane {
            _object: object,
            shared: shared.clone(),
        });
        Ok(shared)
    }

    /// Runs `f` on a shared connection, bounded by the command timeout; a
    /// connection failure empties the lane so the next call gets a verified one.
    pub(crate) async fn run<T, F, Fut>(&self, operation: &'static str, f: F) -> Result<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let index = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.lanes.len();
        let started = Instant::now();
        // Whether the command went out: a timeout before that (waiting for a
        // connection) left Redis untouched; one after it may not have.
        let mut sent = false;
        let work = async {
            let conn = self.connection(index, operation).await?;
            sent = true;
            match f(conn).await {
                Ok(value) => Ok(value),
                Err(source) => {
                    if connection_failed(&source) {
                        self.inner.lanes[index].lock().await.take();
                    }
                    Err(Error::Command { operation, source })
                }
            }
        };
        let outcome = tokio::time::timeout(self.inner.timeout, work).await;
        self.inner
            .stats
            .record(started.elapsed(), matches!(outcome, Ok(Ok(_))));
        match outcome {
            Ok(result) => result,
            Err(_) => {
                // A connection that stopped answering is suspect too.
                self.inner.lanes[index].lock().await.take();
                Err(Error::Timeout {
                    operation,
                    timeout: self.inner.timeout,
                    sent,
                })
            }
        }
    }

    /// The statistics so far.
    pub(crate) fn stats(&self) -> RedisStats {
        self.inner.stats.snapshot()
    }

    /// Runs one command.
    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        operation: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T> {
        self.run(
            operation,
            |mut c| async move { cmd.query_async(&mut c).await },
        )
        .await
    }

    /// Runs a pipeline in one round trip.
    pub(crate) async fn pipe<T: FromRedisValue>(
        &self,
        operation: &'static str,
        pipe: &redis::Pipeline,
    ) -> Result<T> {
        self.run(
            operation,
            |mut c| async move { pipe.query_async(&mut c).await },
        )
        .await
    }

    /// Runs a Lua script (EVALSHA, loading it on first use).
    pub(crate) async fn script<T: FromRedisValue>(
        &self,
        operation: &'static str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T> {
        self.run(operation, |mut c| async move {
            invocation.invoke_async(&mut c).await
        })
        .await
    }

    /// Runs one script many times in one round trip (`EVALSHA` pipelined),
    /// loading it first if Redis does not know it yet. Only for scripts that
    /// are safe to run twice (the retry re-runs the whole pipeline).
    pub(crate) async fn script_pipe<T: FromRedisValue>(
        &self,
        operation: &'static str,
        script: &redis::Script,
        calls: &[(Vec<&str>, Vec<&str>)],
    ) -> Result<Vec<T>> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (keys, args) in calls {
            pipe.cmd("EVALSHA")
                .arg(script.get_hash())
                .arg(keys.len())
                .arg(keys)
                .arg(args);
        }
        match self.pipe(operation, &pipe).await {
            Err(Error::Command { source, .. })
                if source.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                self.run(
                    operation,
                    |mut c| async move { script.load_async(&mut c).await },
                )
                .await?;
                self.pipe(operation, &pipe).await
            }
            other => other,
        }
    }

    /// Redis's `maxmemory-policy`, read from `INFO memory` (which managed
    /// Redis services allow where `CONFIG GET` is disabled).
    pub(crate) async fn eviction_policy(&self) -> Result<String> {
        let info: String = self
            .query(
                "reading the memory policy",
                redis::cmd("INFO").arg("memory"),
            )
            .await?;
        Ok(info
            .lines()
            .find_map(|line| line.strip_prefix("maxmemory_policy:"))
            .unwrap_or("unknown")
            .trim()
            .to_owned())
    }

    /// `PING`: whether Redis answers.
    pub(crate) async fn ping(&self) -> Result<()> {
        self.query::<String>("pinging", &redis::cmd("PING"))
            .await
            .map(|_| ())
    }
}
