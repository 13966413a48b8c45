//! [`Connector`]: how the node reaches Redis, whatever its shape.
//!
//! One setting (`url`) serves a single server and a Redis Cluster: the first
//! time the node needs Redis it asks the server (`INFO server` and `INFO
//! cluster`), checks its version (7.0 at least: the scripts notify through
//! sharded pub/sub, `SPUBLISH`), and remembers the answer. With `sentinels`,
//! the shape is known from the settings, and every new connection asks the
//! sentinels where the primary is, so the node follows a failover.
//!
//! Nothing here connects at construction: a node starts while Redis is down.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisFuture, Value,
};
use tokio::sync::{Mutex, OnceCell};

use crate::config::RedisConfig;
use crate::error::{Error, Result};

/// The oldest Redis eric runs on: sharded pub/sub came with 7.0.
const MIN_VERSION: (u32, u32) = (7, 0);

/// Slots of a Redis Cluster (keys hash into `0..SLOTS`).
const SLOTS: u16 = 16_384;

/// How the node reaches Redis. Cheap to clone; clones share what they
/// learnt of the server.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: Arc<Inner>,
}

struct Inner {
    /// The servers named by `url`: one server, or cluster nodes to start from.
    seeds: Vec<ConnectionInfo>,
    /// With `sentinels`: the client that asks them for the primary. Locked:
    /// redis-rs's client takes `&mut` to cache its sentinel connections.
    sentinel: Option<Mutex<SentinelClient>>,
    /// Bound on making one connection.
    connect_timeout: Duration,
    /// What the server said it is, once it said so.
    shape: OnceCell<Shape>,
}

/// What kind of deployment the node talks to.
enum Shape {
    Single,
    Cluster(Box<ClusterClient>),
    Sentinel,
}

/// A pub/sub target: a server and the hash slots it serves.
#[derive(Debug, Clone)]
pub(crate) struct Shard {
    pub(crate) info: ConnectionInfo,
    pub(crate) slots: Vec<RangeInclusive<u16>>,
}

impl Shard {
    /// Whether `slot` is served here.
    pub(crate) fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|range| range.contains(&slot))
    }
}

/// A command connection: multiplexed, to one server or (routing each command
/// by its key's slot) to a whole cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

impl Connector {
    /// A connector for `config` (already validated).
    pub(crate) fn new(config: &RedisConfig) -> Result<Self> {
        let parse = |url: &str| {
            url.into_connection_info().map_err(|e| Error::Config {
                reason: format!("url {url:?}: {e}"),
            })
        };
        let seeds = config.urls().map(parse).collect::<Result<Vec<_>>>()?;
        let sentinel = if config.sentinels.is_empty() {
            None
        } else {
            // The primary's credentials and database are `url`'s.
            let primary = seeds.first().map(|s| s.redis_settings().clone());
            let mut node = <&SentinelNodeConnectionInfo>::default().clone();
            if let Some(primary) = primary {
                node = node.set_redis_connection_info(primary);
            }
            let client = SentinelClient::build(
                config.sentinels.clone(),
                config.master_name.clone(),
                Some(node),
                SentinelServerType::Master,
            )
            .map_err(|e| Error::Config {
                reason: format!("sentinels {:?}: {e}", config.sentinels),
            })?;
            Some(Mutex::new(client))
        };
        Ok(Self::from_parts(seeds, sentinel, config.command_timeout()))
    }

    fn from_parts(
        seeds: Vec<ConnectionInfo>,
        sentinel: Option<Mutex<SentinelClient>>,
        connect_timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                seeds,
                sentinel,
                connect_timeout,
                shape: OnceCell::new(),
            }),
        }
    }

    /// Settings of every plain connection: redis-rs's own 500 ms response
    /// timeout is off (callers bound each call with `command_timeout_ms`).
    fn connection_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(self.inner.connect_timeout))
    }

    /// Asks the server what it is, the first time; afterwards answers at once.
    async fn shape(&self) -> Result<&Shape> {
        self.inner.shape.get_or_try_init(|| self.discover()).await
    }

    /// Checks the server (its version) and learns its shape. Called before
    /// the first connection; a failure is retried by the next call.
    ///
    /// Boxed: the discovery's future (sentinel and cluster clients inside)
    /// is too deep a type to inline into every command's.
    pub(crate) fn check(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { self.shape().await.map(|_| ()) })
    }

    /// Whether the server is a Redis Cluster (known once [`Self::check`] passed).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.inner.shape.get(), Some(Shape::Cluster(_)))
    }

    /// Whether the primary is found through sentinels.
    pub(crate) fn is_sentinel(&self) -> bool {
        self.inner.sentinel.is_some()
    }

    async fn discover(&self) -> Result<Shape> {
        if self.inner.sentinel.is_some() {
            let primary = self.primary().await?;
            let mut conn = self.plain(&primary).await?;
            server_info(&mut conn).await?;
            return Ok(Shape::Sentinel);
        }
        let mut last = None;
        for seed in &self.inner.seeds {
            let mut conn = match self.plain(seed).await {
                Ok(conn) => conn,
                Err(e) => {
                    last = Some(e);
                    continue;
                }
            };
            let cluster = server_info(&mut conn).await?;
            if cluster {
                let client = ClusterClientBuilder::new(self.inner.seeds.clone())
                    // Retries are eric's (`Client::run`): redis-rs would also
                    // resend a command whose connection broke after sending
                    // it, running a script twice where eric must answer
                    // "outcome unknown".
                    .retries(0)
                    .connection_timeout(self.inner.connect_timeout)
                    .build()
                    .map_err(|e| Error::Config {
                        reason: format!("cluster url {:?}: {e}", self.inner.seeds),
                    })?;
                return Ok(Shape::Cluster(Box::new(client)));
            }
            if self.inner.seeds.len() > 1 {
                return Err(Error::Config {
                    reason: "several URLs name the nodes of a Redis Cluster, but this server \
                             is not a cluster node (cluster_enabled:0)"
                        .into(),
                });
            }
            return Ok(Shape::Single);
        }
        Err(last.unwrap_or_else(|| Error::Config {
            reason: "url names no server".into(),
        }))
    }

    /// The current primary's address, from the sentinels.
    async fn primary(&self) -> Result<ConnectionInfo> {
        let Some(sentinel) = &self.inner.sentinel else {
            return self.inner.seeds.first().cloned().ok_or(Error::Config {
                reason: "url names no server".into(),
            });
        };
        let asked = async { sentinel.lock().await.async_get_client().await };
        match tokio::time::timeout(self.inner.connect_timeout, asked).await {
            Ok(Ok(client)) => Ok(client.get_connection_info().clone()),
            Ok(Err(source)) => Err(Error::Connect {
                operation: "asking the sentinels for the primary",
                source,
            }),
            Err(_) => Err(Error::Timeout {
                operation: "asking the sentinels for the primary",
                timeout: self.inner.connect_timeout,
                sent: false,
            }),
        }
    }

    /// A plain connection to `info`, bounded by the connect timeout.
    async fn plain(&self, info: &ConnectionInfo) -> Result<MultiplexedConnection> {
        self.plain_with(info, self.connection_config()).await
    }

    async fn plain_with(
        &self,
        info: &ConnectionInfo,
        config: AsyncConnectionConfig,
    ) -> Result<MultiplexedConnection> {
        let connect = |source| Error::Connect {
            operation: "connecting",
            source,
        };
        let client = redis::Client::open(info.clone()).map_err(connect)?;
        let connecting = client.get_multiplexed_async_connection_with_config(&config);
        match tokio::time::timeout(self.inner.connect_timeout, connecting).await {
            Ok(result) => result.map_err(connect),
            Err(_) => Err(Error::Timeout {
                operation: "connecting",
                timeout: self.inner.connect_timeout,
                sent: false,
            }),
        }
    }

    /// A new command connection. Checks the server first if not done yet.
    pub(crate) fn connect(&self) -> BoxFuture<'_, Result<Conn>> {
        Box::pin(self.connect_now())
    }

    async fn connect_now(&self) -> Result<Conn> {
        match self.shape().await? {
            Shape::Single | Shape::Sentinel => {
                let server = self.primary().await?;
                Ok(Conn::Single(self.plain(&server).await?))
            }
            Shape::Cluster(client) => {
                let connecting = client.get_async_connection();
                match tokio::time::timeout(self.inner.connect_timeout, connecting).await {
                    Ok(result) => result.map(Conn::Cluster).map_err(|source| Error::Connect {
                        operation: "connecting to the cluster",
                        source,
                    }),
                    Err(_) => Err(Error::Timeout {
                        operation: "connecting to the cluster",
                        timeout: self.inner.connect_timeout,
                        sent: false,
                    }),
                }
            }
        }
    }

    /// The servers to subscribe on, each with the slots it serves: the one
    /// server (or primary) with every slot, or each cluster primary with its
    /// own, as the cluster says now (`CLUSTER SLOTS`).
    pub(crate) async fn shards(&self) -> Result<Vec<Shard>> {
        if !matches!(self.shape().await?, Shape::Cluster(_)) {
            return Ok(vec![Shard {
                info: self.primary().await?,
                slots: vec![0..=SLOTS - 1],
            }]);
        }
        let mut conn = self.connect().await?;
        let slots = redis::cmd("CLUSTER").arg("SLOTS").to_owned();
        let asking = slots.query_async::<Value>(&mut conn);
        let map = match tokio::time::timeout(self.inner.connect_timeout, asking).await {
            Ok(result) => result.map_err(|source| Error::Command {
                operation: "reading the cluster's slots",
                source,
            })?,
            Err(_) => {
                return Err(Error::Timeout {
                    operation: "reading the cluster's slots",
                    timeout: self.inner.connect_timeout,
                    sent: true,
                });
            }
        };
        let template = self.inner.seeds.first().cloned().ok_or(Error::Config {
            reason: "url names no server".into(),
        })?;
        Ok(shards_of(map, &template))
    }

    /// A RESP3 connection to `shard` whose pushes (pub/sub messages,
    /// subscription confirmations, its own disconnection) go to `push`.
    pub(crate) async fn subscriber(
        &self,
        shard: &Shard,
        push: impl redis::aio::AsyncPushSender,
    ) -> Result<MultiplexedConnection> {
        let settings = shard
            .info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let info = shard.info.clone().set_redis_settings(settings);
        self.plain_with(&info, self.connection_config().set_push_sender(push))
            .await
    }
}

/// A connector for the one server (or cluster node) `client` names, with
/// the default timeouts.
impl From<redis::Client> for Connector {
    fn from(client: redis::Client) -> Self {
        let timeout = RedisConfig::default().command_timeout();
        Self::from_parts(vec![client.get_connection_info().clone()], None, timeout)
    }
}

/// Reads `INFO server` and `INFO cluster`: refuses a server older than
/// [`MIN_VERSION`], and answers whether it is a cluster node.
async fn server_info(conn: &mut MultiplexedConnection) -> Result<bool> {
    let (server, cluster): (String, String) = redis::pipe()
        .cmd("INFO")
        .arg("server")
        .cmd("INFO")
        .arg("cluster")
        .query_async(conn)
        .await
        .map_err(|source| Error::Command {
            operation: "reading the server's version",
            source,
        })?;
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .map(|v| v.trim().to_owned())
    };
    let version = field(&server, "redis_version").unwrap_or_default();
    if parse_version(&version).is_none_or(|v| v < MIN_VERSION) {
        return Err(Error::UnsupportedServer { version });
    }
    Ok(field(&cluster, "cluster_enabled").as_deref() == Some("1"))
}

/// `major.minor` of a `redis_version` such as `7.0.15`.
fn parse_version(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The primaries of a `CLUSTER SLOTS` answer (`[[start, end, [host, port,
/// id, ...], replicas...], ...]`), each with its slot ranges, connected with
/// `template`'s credentials.
fn shards_of(map: Value, template: &ConnectionInfo) -> Vec<Shard> {
    let mut shards: Vec<Shard> = Vec::new();
    let Value::Array(ranges) = map else {
        return shards;
    };
    for range in ranges {
        let Value::Array(fields) = range else {
            continue;
        };
        let (Some(start), Some(end), Some(Value::Array(primary))) =
            (fields.first(), fields.get(1), fields.get(2))
        else {
            continue;
        };
        let (Some(start), Some(end)) = (integer(start), integer(end)) else {
            continue;
        };
        let (Some(host), Some(port)) = (primary.first().and_then(text), primary.get(1)) else {
            continue;
        };
        let Some(port) = integer(port) else { continue };
        let addr = ConnectionAddr::Tcp(host, port);
        let slots = start..=end;
        match shards.iter_mut().find(|s| *s.info.addr() == addr) {
            Some(shard) => shard.slots.push(slots),
            None => shards.push(Shard {
                info: template.clone().set_addr(addr),
                slots: vec![slots],
            }),
        }
    }
    shards
}

fn integer(value: &Value) -> Option<u16> {
    match value {
        Value::Int(n) => u16::try_from(*n).ok(),
        _ => None,
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// The hash slot of `key`, as Redis Cluster computes it: CRC16 of its hash
/// tag (the part between the first `{` and the next `}`, if not empty), or
/// of the whole key. redis-rs computes it too but keeps the number private.
pub(crate) fn slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|b| *b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|b| *b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % SLOTS
}

#[cfg(test)]
mod tests {
    use redis::cluster_routing::Slot;

    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        // `CLUSTER KEYSLOT` of these on Redis 7.0.
        assert_eq!(slot(b"foo"), 12_182);
        assert_eq!(slot(b"P:{c}:meta"), 7_365);
        assert_eq!(slot(b"P:{%}:x"), 13_511);
        assert_eq!(slot(b"a{}b"), slot(b"a{}b"));
        assert_ne!(slot(b"a{}b"), slot(b""));
        for key in ["a{b}c", "{}x", "x{", "{a}{b}", "", "é{ü}"] {
            assert_eq!(
                Slot::new(slot(key.as_bytes())),
                Some(Slot::for_key(key)),
                "{key}"
            );
        }
    }

    #[test]
    fn versions_before_seven_are_refused() {
        assert_eq!(parse_version("7.0.15"), Some((7, 0)));
        assert!(parse_version("6.2.14").is_some_and(|v| v < MIN_VERSION));
        assert!(parse_version("10.1").is_some_and(|v| v >= MIN_VERSION));
        assert_eq!(parse_version("seven"), None);
    }

    #[test]
    fn a_slot_map_groups_ranges_by_primary() {
        let node = |port: i64| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let range = |start, end, port| {
            Value::Array(vec![
                Value::Int(start),
                Value::Int(end),
                node(port),
                node(9),
            ])
        };
        let map = Value::Array(vec![
            range(0, 99, 1),
            range(100, 16_383, 2),
            range(5, 5, 1),
            Value::Nil,
        ]);
        let template = "redis://:secret@h:7/".into_connection_info().unwrap();
        let shards = shards_of(map, &template);
        assert_eq!(shards.len(), 2);
        assert!(shards[0].serves(5) && shards[0].serves(99) && !shards[0].serves(100));
        assert!(shards[1].serves(16_383));
        assert_eq!(shards[1].info.redis_settings().password(), Some("secret"));
        assert_eq!(
            *shards[1].info.addr(),
            ConnectionAddr::Tcp("127.0.0.1".into(), 2)
        );
    }
}
