//! The router on the in-memory engine, as the router tests build it.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use axum::Router;
use eric_bin::config::HttpConfig;
use eric_bin::http::{AppState, router};
use eric_bin::{Broker, Metrics};
use eric_core::{ChannelSettings, MemoryEngine};
use tokio_util::sync::CancellationToken;

/// The whole API with default settings.
pub fn app() -> Router {
    app_with(HttpConfig::default())
}

/// The whole API with `http`.
pub fn app_with(http: HttpConfig) -> Router {
    app_with_defaults(http, ChannelSettings::default())
}

/// The whole API with `http`, channels created with `defaults`.
pub fn app_with_defaults(http: HttpConfig, defaults: ChannelSettings) -> Router {
    let metrics = Arc::new(Metrics::new());
    let engine = MemoryEngine::with_observer(metrics.clone());
    router(AppState {
        broker: Broker::new(engine, defaults),
        http: Arc::new(http),
        metrics,
        shutdown: CancellationToken::new(),
    })
}
