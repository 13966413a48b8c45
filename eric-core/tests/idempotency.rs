//! `eric-core`'s idempotency suite on the in-memory engine.

use eric_core::MemoryEngine;

eric_core::idempotency_suite!(MemoryEngine::new());
