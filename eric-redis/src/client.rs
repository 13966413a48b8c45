//! [`Client`]: the node's command connections, with a timeout on every call.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deadpool::managed::{Metrics, Object, Pool, RecycleError, RecycleResult};
use deadpool_redis::{CreatePoolError, Runtime};
use redis::{FromRedisValue, RedisError, RedisResult, Value};
use tokio::sync::Mutex;

use crate::config::RedisConfig;
use crate::connector::{Conn, Connector, slot};
use crate::error::{Error, NOT_REPLICATED, Result, not_run_here};
use crate::stats::{Recorder, RedisStats};
use crate::wait::{Wait, Waiting};

/// First pause before sending again a command a cluster refused because its
/// slot is elsewhere (`MOVED`) or moving (`ASK`, `TRYAGAIN`); it doubles up
/// to [`REDIRECT_PAUSE_MAX`], within the command timeout.
const REDIRECT_PAUSE_MIN: Duration = Duration::from_millis(5);
const REDIRECT_PAUSE_MAX: Duration = Duration::from_millis(200);

/// The node's command connections.
///
/// A pool (`deadpool`) creates and health-checks them, but checking one out
/// per command would cost a round trip (its recycle check is `PING`) and
/// waste what a multiplexed connection does best: pipelining the commands of
/// many concurrent tasks. So the client holds `pool_size` pooled connections
/// as *lanes*, spreads commands over them round-robin, and hands a lane back
/// to the pool (which then verifies or replaces it) only after a connection
/// error. Never one connection per listener; blocking commands never run here.
///
/// On a Redis Cluster a lane is a cluster connection (one multiplexed
/// connection per primary, each command routed by its key's slot); every
/// script and every pipeline keeps to one slot, and [`Client::spread`] runs
/// commands of many slots as one pipeline per slot.
#[derive(Clone)]
pub(crate) struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    connector: Connector,
    pool: Pool<Manager>,
    /// An async lock, so the tasks that find a lane empty wait for the one
    /// filling it instead of all taking connections from the pool.
    lanes: Box<[Mutex<Option<Lane>>]>,
    next: AtomicUsize,
    timeout: Duration,
    /// What every write waits for (`redis.wait_replicas`), if anything.
    wait: Option<Wait>,
    stats: Recorder,
}

/// A pooled connection held for sharing: the pool object keeps it counted
/// as in use; commands run on clones of the multiplexed handle.
struct Lane {
    _object: Object<Manager>,
    shared: Conn,
}

/// Makes and checks the pool's connections through the [`Connector`]
/// (deadpool-redis's own managers cannot be given connection settings, and
/// its cluster one lets redis-rs resend commands).
struct Manager {
    connector: Connector,
}

impl deadpool::managed::Manager for Manager {
    type Type = Conn;
    type Error = RedisError;

    async fn create(&self) -> RedisResult<Conn> {
        self.connector.connect().await.map_err(|e| match e {
            Error::Connect { source, .. } | Error::Command { source, .. } => source,
            other => RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                other.to_string(),
            )),
        })
    }

    /// `PING`, and with sentinels `ROLE`: after a failover the old primary
    /// may come back as a replica, answering `PING` but refusing writes.
    async fn recycle(&self, conn: &mut Conn, _: &Metrics) -> RecycleResult<RedisError> {
        if self.connector.is_sentinel() {
            let role: Vec<Value> = redis::cmd("ROLE").query_async(conn).await?;
            return match role.first() {
                Some(Value::BulkString(role)) if role == b"master" => Ok(()),
                _ => Err(RecycleError::message("no longer the primary")),
            };
        }
        let _: String = redis::cmd("PING").query_async(conn).await?;
        Ok(())
    }
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
/// as opposed to the command. `READONLY`: the connection reaches a replica
/// (the primary changed), so the lane needs a connection to the new one.
fn connection_failed(e: &redis::RedisError) -> bool {
    e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_io_error()
        || e.is_timeout()
        || e.code() == Some("READONLY")
}

/// Whether sending the command again can succeed at once: the cluster
/// refused it (nothing ran) and now knows where its slot is, or will soon.
fn redirected(e: &redis::RedisError) -> bool {
    not_run_here(e) && e.code() != Some("READONLY")
}

impl Client {
    /// A client for `config` (no connection is made until the first call).
    pub(crate) fn new(config: &RedisConfig) -> Result<Self> {
        config.validate()?;
        Self::with_connector(config, Connector::new(config)?)
    }

    fn with_connector(config: &RedisConfig, connector: Connector) -> Result<Self> {
        let mut pc = deadpool_redis::PoolConfig::new(config.pool_size);
        pc.timeouts.wait = Some(config.command_timeout());
        pc.timeouts.create = Some(config.command_timeout());
        pc.timeouts.recycle = Some(config.command_timeout());
        let manager = Manager {
            connector: connector.clone(),
        };
        let pool = Pool::builder(manager)
            .config(pc)
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(CreatePoolError::Build)?;
        let lanes = (0..config.pool_size).map(|_| Mutex::new(None)).collect();
        Ok(Self {
            inner: Arc::new(Inner {
                connector,
                pool,
                lanes,
                next: AtomicUsize::new(0),
                timeout: config.command_timeout(),
                wait: (config.wait_replicas > 0).then_some(Wait {
                    replicas: config.wait_replicas,
                    timeout_ms: config.wait_timeout_ms,
                }),
                stats: Recorder::default(),
            }),
        })
    }

    /// How this client reaches Redis (the pub/sub subscriber shares it).
    pub(crate) fn connector(&self) -> &Connector {
        &self.inner.connector
    }

    /// Checks the server once (version, shape), bounded by the command
    /// timeout.
    pub(crate) async fn check(&self) -> Result<()> {
        let checking = self.inner.connector.check();
        match tokio::time::timeout(self.inner.timeout, checking).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                operation: "checking the server",
                timeout: self.inner.timeout,
                sent: false,
            }),
        }
    }

    /// Empties every lane: after Redis restarted, they are all dead.
    pub(crate) async fn reset(&self) {
        for lane in self.inner.lanes.iter() {
            lane.lock().await.take();
        }
    }

    /// A connection of lane `index`, filling the lane from the pool if empty.
    async fn connection(&self, index: usize, operation: &'static str) -> Result<Conn> {
        let mut lane = self.inner.lanes[index].lock().await;
        if let Some(lane) = lane.as_ref() {
            return Ok(lane.shared.clone());
        }
        // The server's version and shape first, so that a server too old
        // says so, typed, rather than as a failed connection.
        self.inner.connector.check().await?;
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
    /// connection failure empties the lane so the next call gets a verified
    /// one. A command a cluster refused unrun because its slot is elsewhere
    /// or moving is sent again (the cluster connection has learnt the new
    /// map meanwhile); nothing else is: a command whose connection broke may
    /// have run, and running a script twice is not eric's to decide. With
    /// `wait_replicas`, the connection makes every write wait for replicas.
    pub(crate) async fn run<T, F, Fut>(&self, operation: &'static str, f: F) -> Result<T>
    where
        F: Fn(Waiting) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let index = self.inner.next.fetch_add(1, Ordering::Relaxed) % self.inner.lanes.len();
        let started = Instant::now();
        // Whether a command is out: a timeout before that (waiting for a
        // connection, or between redirections) left Redis untouched; one
        // after it may not have.
        let mut sent = false;
        let work = async {
            let mut pause = REDIRECT_PAUSE_MIN;
            loop {
                let conn = self.connection(index, operation).await?;
                sent = true;
                match f(Waiting::new(conn, self.inner.wait)).await {
                    Ok(value) => return Ok(value),
                    Err(source) if source.code() == Some(NOT_REPLICATED) => {
                        return Err(Error::NotReplicated { operation, source });
                    }
                    Err(source) if redirected(&source) => {
                        sent = false;
                        tracing::debug!(%source, operation, "redirected; sending again");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(REDIRECT_PAUSE_MAX);
                    }
                    Err(source) => {
                        if connection_failed(&source) {
                            self.inner.lanes[index].lock().await.take();
                        }
                        return Err(Error::Command { operation, source });
                    }
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

    /// Runs independent commands, each on the slot of its key (the first
    /// of the pair): one pipeline, in one round trip, on a single server; one
    /// pipeline per slot, all at once, on a cluster (a pipeline must keep to
    /// one slot there). Answers in the order given. Only for commands that
    /// are safe to run twice: a redirected slot sends its pipeline again.
    pub(crate) async fn spread<T: FromRedisValue>(
        &self,
        operation: &'static str,
        calls: &[(&str, redis::Cmd)],
    ) -> Result<Vec<T>> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        self.check().await?;
        let groups = group_by_slot(calls, self.inner.connector.is_cluster());
        let values = self
            .run(operation, |conn| run_groups(conn, &groups, calls.len()))
            .await?;
        values
            .into_iter()
            .map(|value| {
                T::from_redis_value(value).map_err(|e| Error::Command {
                    operation,
                    source: e.into(),
                })
            })
            .collect()
    }

    /// Runs one script many times (`EVALSHA` pipelined, as [`Client::spread`]
    /// does, routed by each call's first key), loading it first if Redis
    /// does not know it yet. Only for scripts that are safe to run twice
    /// (the retry re-runs the whole pipeline).
    pub(crate) async fn script_pipe<T: FromRedisValue>(
        &self,
        operation: &'static str,
        script: &redis::Script,
        calls: &[(Vec<&str>, Vec<&str>)],
    ) -> Result<Vec<T>> {
        let commands: Vec<(&str, redis::Cmd)> = calls
            .iter()
            .map(|(keys, args)| {
                let mut cmd = redis::cmd("EVALSHA");
                cmd.arg(script.get_hash())
                    .arg(keys.len())
                    .arg(keys)
                    .arg(args);
                (keys.first().copied().unwrap_or_default(), cmd)
            })
            .collect();
        match self.spread(operation, &commands).await {
            Err(Error::Command { source, .. })
                if source.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
            {
                // On a cluster, `SCRIPT LOAD` goes to every primary.
                self.run(
                    operation,
                    |mut c| async move { script.load_async(&mut c).await },
                )
                .await?;
                self.spread(operation, &commands).await
            }
            other => other,
        }
    }

    /// Redis's `maxmemory-policy`, read from `INFO memory` (which managed
    /// Redis services allow where `CONFIG GET` is disabled). On a cluster,
    /// every node answers: the first policy other than `noeviction`, if any.
    pub(crate) async fn eviction_policy(&self) -> Result<String> {
        let info: Value = self
            .query(
                "reading the memory policy",
                redis::cmd("INFO").arg("memory"),
            )
            .await?;
        let mut policies = Vec::new();
        texts(&info, &mut |text| {
            policies.extend(
                text.lines()
                    .filter_map(|line| line.strip_prefix("maxmemory_policy:"))
                    .map(|p| p.trim().to_owned()),
            );
        });
        let evicting = policies.iter().find(|p| *p != "noeviction");
        Ok(evicting
            .or(policies.first())
            .map_or_else(|| "unknown".to_owned(), Clone::clone))
    }

    /// `PING`: whether Redis answers.
    pub(crate) async fn ping(&self) -> Result<()> {
        self.query::<String>("pinging", &redis::cmd("PING"))
            .await
            .map(|_| ())
    }
}

/// Every text inside `value` (a node's answer, or a cluster's answers by node).
fn texts(value: &Value, each: &mut impl FnMut(&str)) {
    match value {
        Value::BulkString(bytes) => each(&String::from_utf8_lossy(bytes)),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => each(text),
        Value::Array(values) | Value::Set(values) => {
            values.iter().for_each(|v| texts(v, each));
        }
        Value::Map(pairs) => pairs.iter().for_each(|(_, v)| texts(v, each)),
        _ => {}
    }
}

/// Commands grouped into pipelines of one slot each (or one pipeline for
/// all, off a cluster), with each command's place in the answer.
fn group_by_slot(
    calls: &[(&str, redis::Cmd)],
    cluster: bool,
) -> Vec<(Vec<usize>, redis::Pipeline)> {
    let mut groups: HashMap<u16, (Vec<usize>, redis::Pipeline)> = HashMap::new();
    for (place, (key, cmd)) in calls.iter().enumerate() {
        let slot = if cluster { slot(key.as_bytes()) } else { 0 };
        let (places, pipe) = groups.entry(slot).or_default();
        places.push(place);
        pipe.add_command(cmd.clone());
    }
    groups.into_values().collect()
}

/// Runs the pipelines at once on `conn` and puts the answers back in order.
async fn run_groups(
    conn: Waiting,
    groups: &[(Vec<usize>, redis::Pipeline)],
    len: usize,
) -> RedisResult<Vec<Value>> {
    let runs = groups.iter().map(|(places, pipe)| {
        let mut conn = conn.clone();
        async move {
            let values: Vec<Value> = pipe.query_async(&mut conn).await?;
            Ok::<_, RedisError>((places, values))
        }
    });
    let mut answers = vec![Value::Nil; len];
    for (places, values) in futures_util::future::try_join_all(runs).await? {
        for (place, value) in places.iter().zip(values) {
            answers[*place] = value;
        }
    }
    Ok(answers)
}
