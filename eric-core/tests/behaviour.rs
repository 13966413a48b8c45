//! The behaviour suite on the in-memory engine.

#![allow(clippy::unwrap_used)]

use eric_core::MemoryEngine;

eric_core::behaviour_suite!(MemoryEngine::new());
