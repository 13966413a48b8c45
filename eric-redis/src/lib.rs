//! # eric-redis
//!
//! The Redis engine of eric: several broker nodes share one Redis, so a
//! message dispatched on any node reaches a listener streaming from any other,
//! and a restarted node restores every channel. It implements `eric-core`'s
//! [`Engine`](eric_core::Engine), [`Queue`](eric_core::Queue),
//! [`MemberRegistry`](eric_core::MemberRegistry), storage and
//! repository traits, so `eric-core`'s behaviour and persistence suites run
//! against it unchanged.
//!
//! Design in one paragraph: queues are Redis lists of JSON envelopes, for
//! dispatches; a broadcast is one entry in the channel's broadcast log (a
//! Redis stream), read once by each node that streams the channel and fanned
//! out in process, so its cost does not grow with its audience; each
//! listener's position in the log is a cursor its streams move
//! compare-and-set, together with taking its queue, batched per channel and
//! node. Channel membership lives in Redis (a ZSET and hashes per channel),
//! changed one listener at a time by Lua scripts, so concurrent nodes never
//! lose each other's listeners; dispatch and broadcast are single scripts
//! that number messages from the channel's sequence (the SSE ids) and
//! publish a wake-up; each node holds one pooled set of command connections
//! and one pub/sub subscriber (sharded pub/sub), never one per listener; an
//! idle stream issues no command. Every key of a channel shares a Redis
//! Cluster hash tag, so the same code runs on a single server, on a Redis
//! Cluster (one subscriber connection per primary) and behind Redis
//! Sentinel.
//! `docs/REDIS.md` lists every key and script.
//!
//! ## Layout
//!
//! - [`config`]: settings, [`RedisConfig`].
//! - [`error`]: the crate's [`Error`] and its mapping to `eric_core::Error`.
//! - `connector`: how the node reaches Redis: asks a server whether it is a
//!   cluster node (and checks it is Redis 7), asks sentinels for the
//!   primary, makes command and subscriber connections, hash slots.
//! - `client`: the pooled command connections, with a timeout on every call,
//!   redirections on a cluster, cross-slot pipelines split by slot.
//! - `wait`: writes that wait for replicas (`wait_replicas`).
//! - `keys`: the key layout.
//! - `scripts`: the Lua scripts.
//! - `batch`: concurrent dispatches combined into one script call.
//! - `feed`: a channel's broadcast log, read once per node for all its
//!   streams.
//! - `group`: the caught-up streams of a channel on a node, whose
//!   position in the log moves once for all of them.
//! - `advance`: concurrent takes of a channel's streams on a node (cursor
//!   moves) combined into one script call.
//! - [`queue`]: [`RedisQueue`], a listener's list.
//! - [`registry`]: [`RedisRegistry`], a channel's membership.
//! - `subscriptions`: a listener's subscriptions as stored.
//! - `state`: what one node holds of one channel (listener objects, queue
//!   handles), kept current by notifications.
//! - `notify`: the pub/sub subscriber task that wakes streams (its `links`:
//!   one connection per shard); it reaches `state` only through its
//!   `WakeTarget` trait, which `state` implements.
//! - `lease`: leases of temporary listeners, so they die with their node.
//! - [`engine`]: the engine itself, [`RedisEngine`].
//! - [`repository`]: channel and member repositories on this layout.
//! - [`storage`]: [`RedisStorage`], a generic `KvStorage`.
//! - [`stats`]: [`RedisStats`], command counts and latencies for metrics.
//! - `test_support` (feature `test-support`): a real Redis for tests: a
//!   server, a three-primary cluster, a primary with a replica and three
//!   sentinels.

mod advance;
mod batch;
mod client;
pub mod config;
mod connector;
pub mod engine;
pub mod error;
mod feed;
mod group;
mod keys;
mod lease;
mod notify;
pub mod queue;
pub mod registry;
pub mod repository;
mod scripts;
mod state;
pub mod stats;
pub mod storage;
mod subscriptions;
#[cfg(feature = "test-support")]
pub mod test_support;
mod wait;

pub use config::RedisConfig;
pub use engine::RedisEngine;
pub use error::{Error, Result};
pub use queue::RedisQueue;
pub use registry::{RedisMemberFactory, RedisRegistry};
pub use repository::{RedisChannelRepository, RedisMemberRepository};
pub use stats::{PubSubActivity, RedisStats};
pub use storage::RedisStorage;
