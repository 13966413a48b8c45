//! [`AppState`]: what every handler shares, and [`ConnectionContext`].

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::jwt::Verifier;
use crate::broker::Broker;
use crate::config::HttpConfig;
use crate::error::Result;
use crate::metrics::Metrics;

/// Handler state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    /// The broker.
    pub broker: Broker,
    /// HTTP settings.
    pub http: Arc<HttpConfig>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Fires once at shutdown: streams end cleanly.
    pub shutdown: CancellationToken,
    /// The JWT keys of `http`, loaded once.
    pub(super) jwt: Option<Arc<Verifier>>,
}

impl AppState {
    /// The state of a server with `http`'s settings; fails when a JWT key
    /// file cannot be read or parsed (the error names the setting and the
    /// file).
    pub fn new(
        broker: Broker,
        http: HttpConfig,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        let jwt = Verifier::from_config(&http)?.map(Arc::new);
        Ok(Self {
            broker,
            http: Arc::new(http),
            metrics,
            shutdown,
            jwt,
        })
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("broker", &self.broker)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// The connection a request came on (a request extension set by the
/// server): a stream cancels `close` to cut a client that stopped reading,
/// and it fires when the server closes the connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectionContext {
    /// Closes the connection when cancelled (HTTP/1.1). On HTTP/2 each
    /// request has its own, a child of the connection's: cancelling it ends
    /// that request's stream only, and it fires when the connection closes.
    pub close: CancellationToken,
    /// The client's address (rates are counted per address for callers
    /// without a token).
    pub peer: Option<std::net::IpAddr>,
}
