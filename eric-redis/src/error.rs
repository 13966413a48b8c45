//! The one error type of `eric-redis`, and how it becomes an
//! [`eric_core::Error`].
//!
//! Redis errors are classified by kind and error code, never by their text:
//! a dropped or refused connection, an I/O error, an exhausted pool or a
//! server state that passes by itself (`LOADING` after a restart, `BUSY`
//! with a slow script, `READONLY`, `MASTERDOWN`, `TRYAGAIN`, `CLUSTERDOWN`
//! during a failover, `MOVED` and `ASK` while a cluster moves a slot, no
//! connection to the cluster node of a slot) is
//! [`eric_core::Error::Unavailable`] (HTTP 503,
//! retried by streams); `OOM` (`maxmemory` reached) is
//! [`eric_core::Error::StorageFull`]. A command that was sent but not
//! confirmed (no answer within the timeout, or the connection broke while
//! waiting) is [`eric_core::Error::OutcomeUnknown`]: Redis may have run it,
//! so it must not read as "not applied"; so is a write fewer replicas than
//! `wait_replicas` acknowledged in time ([`Error::NotReplicated`]). A Redis
//! older than 7.0 ([`Error::UnsupportedServer`]) and anything else is a
//! [`eric_core::Error::Repository`]. The source is kept.

use std::time::Duration;

/// The error code `wait` gives a write that too few replicas acknowledged
/// in time (the client turns it into [`Error::NotReplicated`]).
pub(crate) const NOT_REPLICATED: &str = "NOTREPLICATED";

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the Redis engine can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work (bad URL, zero pool size...).
    #[error("invalid Redis configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },

    /// Redis is older than 7.0, which eric needs (sharded pub/sub).
    #[error(
        "Redis {version:?} is too old: eric needs Redis 7.0 or later (it notifies through sharded pub/sub, SPUBLISH)"
    )]
    UnsupportedServer {
        /// `redis_version` as the server reported it.
        version: String,
    },

    /// No connection could be made (nothing was sent).
    #[error("cannot reach Redis while {operation}: {source}")]
    Connect {
        /// What was being done.
        operation: &'static str,
        /// Redis's error.
        #[source]
        source: redis::RedisError,
    },

    /// The connection pool could not be built.
    #[error("cannot create the Redis connection pool: {0}")]
    CreatePool(#[from] deadpool_redis::CreatePoolError),

    /// No pooled connection could be had.
    #[error("no Redis connection available while {operation}: {source}")]
    Pool {
        /// What was being done.
        operation: &'static str,
        /// The pool's error.
        #[source]
        source: deadpool_redis::PoolError,
    },

    /// A command failed.
    #[error("Redis failed while {operation}: {source}")]
    Command {
        /// What was being done.
        operation: &'static str,
        /// Redis's error.
        #[source]
        source: redis::RedisError,
    },

    /// Redis did not answer in time.
    #[error("Redis did not answer within {timeout:?} while {operation}")]
    Timeout {
        /// What was being done.
        operation: &'static str,
        /// The configured bound.
        timeout: Duration,
        /// Whether the command had gone out on a connection: if it had,
        /// Redis may have run it; if not (no connection in time), it did not.
        sent: bool,
    },

    /// Redis applied a write but fewer replicas than `wait_replicas`
    /// acknowledged it within `wait_timeout_ms`: a failover now could lose
    /// it, so it is not confirmed.
    #[error("too few replicas acknowledged a write while {operation}: {source}")]
    NotReplicated {
        /// What was being done.
        operation: &'static str,
        /// The count `WAIT` answered, as an error.
        #[source]
        source: redis::RedisError,
    },

    /// A stored value is not the JSON we wrote.
    #[error("malformed stored record while {operation}: {source}")]
    Decode {
        /// What was being done.
        operation: &'static str,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// Whether the cause is Redis being unreachable (rather than a bad reply).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Pool { source, .. } => match source {
                deadpool_redis::PoolError::Backend(e) => is_unavailable(e),
                _ => true,
            },
            Self::Command { source, .. } => is_unavailable(source),
            Self::Connect { .. } => true,
            _ => false,
        }
    }

    /// What was being done when it failed.
    fn operation(&self) -> &'static str {
        match self {
            Self::Config { .. } => "configuring",
            Self::UnsupportedServer { .. } => "checking the server",
            Self::CreatePool(_) => "creating the pool",
            Self::Pool { operation, .. }
            | Self::Command { operation, .. }
            | Self::Connect { operation, .. }
            | Self::NotReplicated { operation, .. }
            | Self::Timeout { operation, .. }
            | Self::Decode { operation, .. } => operation,
        }
    }
}

fn is_unavailable(e: &redis::RedisError) -> bool {
    e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_io_error()
        || e.is_timeout()
        || not_run_here(e)
        || matches!(
            e.code(),
            Some("LOADING" | "BUSY" | "MASTERDOWN" | "CLUSTERDOWN")
        )
}

/// The server refused the command before running any of it, because another
/// server should run it or will soon be able to: a cluster's slot lives
/// elsewhere or is moving (`MOVED`, `ASK`, `TRYAGAIN`), the server is a
/// replica (`READONLY`: the primary changed), or the cluster connection has
/// no connection to the slot's node (it was never sent). Safe to send again
/// once the client knows better.
pub(crate) fn not_run_here(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::ClusterConnectionNotFound
        || matches!(e.code(), Some("MOVED" | "ASK" | "TRYAGAIN" | "READONLY"))
}

/// Redis refused a write at its `maxmemory`. Scripts are refused at their
/// first write, so nothing of the call took effect.
fn is_out_of_memory(e: &Error) -> bool {
    match e {
        Error::Command { source, .. } => source.code() == Some("OOM"),
        _ => false,
    }
}

/// The command went out and its connection broke (or timed out) before the
/// answer came: Redis may have run it. A refused connection never sent it.
fn is_unconfirmed(e: &redis::RedisError) -> bool {
    !e.is_connection_refusal()
        && !not_run_here(e)
        && (e.is_connection_dropped() || e.is_io_error() || e.is_timeout())
}

impl From<Error> for eric_core::Error {
    fn from(e: Error) -> Self {
        let operation = e.operation();
        let unknown = Self::OutcomeUnknown {
            backend: "redis",
            operation,
        };
        match e {
            Error::Timeout { sent: true, .. } | Error::NotReplicated { .. } => unknown,
            Error::Command { ref source, .. } if is_unconfirmed(source) => unknown,
            e if is_out_of_memory(&e) => Self::StorageFull {
                backend: "redis",
                operation,
                source: Box::new(e),
            },
            e @ Error::Timeout { sent: false, .. } => Self::Unavailable {
                backend: "redis",
                operation,
                source: Box::new(e),
            },
            e if e.is_unavailable() => Self::Unavailable {
                backend: "redis",
                operation,
                source: Box::new(e),
            },
            e => Self::Repository {
                operation,
                source: Box::new(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_connections_are_unavailable_and_keep_their_source() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::Command {
            operation: "dispatching",
            source: redis::RedisError::from(io),
        };
        assert!(e.is_unavailable());
        let core: eric_core::Error = e.into();
        assert!(core.is_transient());
        assert!(matches!(
            core,
            eric_core::Error::Unavailable {
                operation: "dispatching",
                ..
            }
        ));
        assert!(std::error::Error::source(&core).is_some());
    }

    fn command(code: &str) -> eric_core::Error {
        let source = redis::make_extension_error(code.to_owned(), Some("from a test".into()));
        Error::Command {
            operation: "dispatching",
            source,
        }
        .into()
    }

    #[test]
    fn passing_server_states_are_unavailable_and_oom_is_storage_full() {
        for code in [
            "LOADING",
            "BUSY",
            "READONLY",
            "MASTERDOWN",
            "TRYAGAIN",
            "CLUSTERDOWN",
            "MOVED",
            "ASK",
        ] {
            let e = command(code);
            assert!(
                matches!(e, eric_core::Error::Unavailable { .. }),
                "{code}: {e:?}"
            );
        }
        let full = command("OOM");
        assert!(full.is_transient());
        assert!(matches!(
            full,
            eric_core::Error::StorageFull {
                backend: "redis",
                operation: "dispatching",
                ..
            }
        ));
        for code in ["ERR", "WRONGTYPE", "NOPERM"] {
            let e = command(code);
            assert!(
                matches!(e, eric_core::Error::Repository { .. }),
                "{code}: {e:?}"
            );
        }
    }

    #[test]
    fn timeouts_and_bad_records_are_classified() {
        let waited: eric_core::Error = Error::Timeout {
            operation: "dispatching",
            timeout: Duration::from_secs(1),
            sent: true,
        }
        .into();
        assert!(matches!(
            waited,
            eric_core::Error::OutcomeUnknown {
                operation: "dispatching",
                ..
            }
        ));
        assert!(waited.is_transient());
        let never_sent: eric_core::Error = Error::Timeout {
            operation: "dispatching",
            timeout: Duration::from_secs(1),
            sent: false,
        }
        .into();
        assert!(matches!(never_sent, eric_core::Error::Unavailable { .. }));
        let bad = serde_json::from_str::<u8>("x").unwrap_err();
        let d: eric_core::Error = Error::Decode {
            operation: "loading",
            source: bad,
        }
        .into();
        assert!(matches!(d, eric_core::Error::Repository { .. }));
    }

    #[test]
    fn an_unreplicated_write_is_an_unknown_outcome_and_an_old_server_is_not_transient() {
        let source = redis::make_extension_error(NOT_REPLICATED.to_owned(), Some("0 of 1".into()));
        let e: eric_core::Error = Error::NotReplicated {
            operation: "dispatching",
            source,
        }
        .into();
        assert!(
            matches!(e, eric_core::Error::OutcomeUnknown { .. }),
            "{e:?}"
        );
        let old: eric_core::Error = Error::UnsupportedServer {
            version: "6.2.14".into(),
        }
        .into();
        assert!(!old.is_transient(), "{old:?}");
        let refused: eric_core::Error = Error::Connect {
            operation: "connecting",
            source: redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "refused",
            )),
        }
        .into();
        assert!(
            matches!(refused, eric_core::Error::Unavailable { .. }),
            "{refused:?}"
        );
    }

    #[test]
    fn a_connection_lost_while_waiting_is_an_unknown_outcome() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        let e: eric_core::Error = Error::Command {
            operation: "broadcasting",
            source: redis::RedisError::from(io),
        }
        .into();
        assert!(
            matches!(e, eric_core::Error::OutcomeUnknown { .. }),
            "{e:?}"
        );
    }
}
