//! The behaviour, byte-bound and topic suites on the in-memory engine.

#![allow(clippy::unwrap_used)]

use eric_core::MemoryEngine;

eric_core::behaviour_suite!(MemoryEngine::new());
eric_core::bounds_suite!(MemoryEngine::new());
eric_core::topics_suite!(MemoryEngine::new());
