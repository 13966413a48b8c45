//! `eric-core`'s behaviour suite, unchanged, on the Redis engine.

#![allow(clippy::unwrap_used)]

mod common;

eric_core::behaviour_suite!(common::RedisFixture::new().await);
