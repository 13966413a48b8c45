//! [`Waiting`]: a command connection whose writes wait for replicas.
//!
//! Redis replicates asynchronously: it confirms a write once the primary
//! applied it, and a failover may promote a replica that never received it.
//! With `redis.wait_replicas` set, every write goes out followed by `WAIT
//! <replicas> <timeout>` in the same pipeline, on the same connection (`WAIT`
//! counts the replicas that acknowledged this connection's writes so far;
//! a Lua script cannot call it), and is confirmed only if enough replicas
//! acknowledged it. One round trip, as without; the cost is the replicas'
//! acknowledgement (`BENCHMARKS.md`). On a cluster the pipeline goes, whole,
//! to the primary of the write's slot.
//!
//! A write not acknowledged in time was applied on the primary, so it is
//! not "refused": the call fails with the code `NOTREPLICATED`, which the
//! client reports as [`crate::Error::NotReplicated`] (an unknown outcome).
//!
//! What writes: everything but a short list of reading commands, so a write
//! added later waits by default; scripts too, but for the two that only
//! read (`members`, `lease_lapsed`).

use redis::aio::ConnectionLike;
use redis::{Arg, Cmd, Pipeline, RedisFuture, RedisResult, Value};

use crate::connector::Conn;
use crate::error::NOT_REPLICATED;
use crate::scripts::SCRIPTS;

/// What each write waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wait {
    pub(crate) replicas: u32,
    pub(crate) timeout_ms: u64,
}

/// A command connection that, with a [`Wait`], confirms writes only once
/// replicas acknowledged them. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Waiting {
    conn: Conn,
    wait: Option<Wait>,
}

impl Waiting {
    pub(crate) fn new(conn: Conn, wait: Option<Wait>) -> Self {
        Self { conn, wait }
    }
}

impl ConnectionLike for Waiting {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let Some(wait) = self.wait.filter(|_| writes(cmd)) else {
            return self.conn.req_packed_command(cmd);
        };
        Box::pin(async move {
            let mut pipe = redis::pipe();
            pipe.add_command(cmd.clone());
            let mut values = self.with_wait(pipe, wait).await?;
            Ok(values.swap_remove(0))
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipe: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let Some(wait) = self.wait.filter(|_| pipe.cmd_iter().any(writes)) else {
            return self.conn.req_packed_commands(pipe, offset, count);
        };
        Box::pin(async move {
            // The same commands as sent (a transaction's `MULTI` and `EXEC`
            // included), then `WAIT`; the caller gets the answers it asked for.
            let mut flat = redis::pipe();
            if pipe.is_transaction() {
                flat.cmd("MULTI");
            }
            for cmd in pipe.cmd_iter() {
                flat.add_command(cmd.clone());
            }
            if pipe.is_transaction() {
                flat.cmd("EXEC");
            }
            let values = self.with_wait(flat, wait).await?;
            Ok(values.into_iter().skip(offset).take(count).collect())
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}

impl Waiting {
    /// Sends `pipe` followed by `WAIT`, and answers its commands' values if
    /// enough replicas acknowledged them (or if one of them failed: nothing
    /// to wait for then, the error speaks).
    async fn with_wait(&mut self, mut pipe: Pipeline, wait: Wait) -> RedisResult<Vec<Value>> {
        let len = pipe.len();
        pipe.cmd("WAIT").arg(wait.replicas).arg(wait.timeout_ms);
        let mut values = self.conn.req_packed_commands(&pipe, 0, len + 1).await?;
        let acked = values.pop();
        if values.iter().any(|v| matches!(v, Value::ServerError(_))) {
            return Ok(values);
        }
        match acked {
            Some(Value::Int(n)) if n >= i64::from(wait.replicas) => Ok(values),
            Some(Value::ServerError(e)) => Err(e.into()),
            acked => Err(redis::make_extension_error(
                NOT_REPLICATED.to_owned(),
                Some(format!(
                    "{} of {} replicas acknowledged the write within {} ms",
                    match acked {
                        Some(Value::Int(n)) => n,
                        _ => 0,
                    },
                    wait.replicas,
                    wait.timeout_ms
                )),
            )),
        }
    }
}

/// Whether `cmd` may write: anything but the reading commands eric sends.
fn writes(cmd: &Cmd) -> bool {
    let mut args = cmd.args_iter();
    let Some(Arg::Simple(name)) = args.next() else {
        return true;
    };
    const READS: [&[u8]; 15] = [
        b"PING",
        b"INFO",
        b"ROLE",
        b"CLUSTER",
        b"SCRIPT",
        b"WAIT",
        b"EXISTS",
        b"GET",
        b"HGET",
        b"HMGET",
        b"LLEN",
        b"ZRANGE",
        b"ZRANGEBYLEX",
        b"ZSCORE",
        b"ZCARD",
    ];
    if READS.iter().any(|read| name.eq_ignore_ascii_case(read)) {
        return false;
    }
    if name.eq_ignore_ascii_case(b"EVALSHA") {
        let reading = [SCRIPTS.members.get_hash(), SCRIPTS.lease_lapsed.get_hash()];
        return !matches!(args.next(), Some(Arg::Simple(sha)) if reading.iter().any(|r| r.as_bytes() == sha));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_do_not_wait_and_everything_else_does() {
        assert!(!writes(redis::cmd("HGET").arg("k").arg("f")));
        assert!(!writes(redis::cmd("zrange").arg("k").arg(0).arg(-1)));
        assert!(writes(redis::cmd("HSETNX").arg("k").arg("f").arg("v")));
        assert!(writes(redis::cmd("ZREM").arg("k").arg("m")));
        let members = SCRIPTS.members.get_hash();
        assert!(!writes(redis::cmd("EVALSHA").arg(members).arg(0)));
        let register = SCRIPTS.register.get_hash();
        assert!(writes(redis::cmd("EVALSHA").arg(register).arg(0)));
    }
}
