//! `eric-core`'s persistence suite, unchanged, on the Redis engine's own
//! repositories: each "node" is a fresh engine on the same Redis.

#![allow(clippy::unwrap_used)]

mod common;

eric_core::persistence_suite!(common::RedisFixture::new().await);
