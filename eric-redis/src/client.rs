//! [`Client`]: pooled command connections with a timeout on every call.

use std::future::Future;
use std::time::Duration;

use deadpool_redis::{Pool, Runtime};
use redis::{FromRedisValue, RedisResult};

use crate::config::RedisConfig;
use crate::error::{Error, Result};

/// The node's command connections: a `deadpool-redis` pool shared by every
/// channel, listener and stream (the reference opened one connection per
/// queue). Blocking reads and pub/sub never use it.
#[derive(Clone)]
pub(crate) struct Client {
    pool: Pool,
    timeout: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("pool", &self.pool.status())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// A pool for `config` (no connection is made until the first call).
    pub(crate) fn new(config: &RedisConfig) -> Result<Self> {
        config.validate()?;
        let mut pool_config = deadpool_redis::Config::from_url(config.url.clone());
        let mut pc = deadpool_redis::PoolConfig::new(config.pool_size);
        pc.timeouts.wait = Some(config.command_timeout());
        pc.timeouts.create = Some(config.command_timeout());
        pc.timeouts.recycle = Some(config.command_timeout());
        pool_config.pool = Some(pc);
        Ok(Self {
            pool: pool_config.create_pool(Some(Runtime::Tokio1))?,
            timeout: config.command_timeout(),
        })
    }

    /// Runs `f` on a pooled connection, bounded by the command timeout.
    pub(crate) async fn run<T, F, Fut>(&self, operation: &'static str, f: F) -> Result<T>
    where
        F: FnOnce(deadpool_redis::Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let work = async {
            let conn = self
                .pool
                .get()
                .await
                .map_err(|source| Error::Pool { operation, source })?;
            f(conn)
                .await
                .map_err(|source| Error::Command { operation, source })
        };
        match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                operation,
                timeout: self.timeout,
            }),
        }
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

    /// `PING`: whether Redis answers.
    pub(crate) async fn ping(&self) -> Result<()> {
        self.query::<String>("pinging", &redis::cmd("PING"))
            .await
            .map(|_| ())
    }
}
