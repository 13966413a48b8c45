//! `eric-core`'s behaviour, byte-bound and topic suites, unchanged, on the Redis engine.

#![allow(clippy::unwrap_used)]

mod common;

eric_core::behaviour_suite!(common::RedisFixture::new().await);
eric_core::bounds_suite!(common::RedisFixture::new().await);
eric_core::topics_suite!(common::RedisFixture::new().await);
