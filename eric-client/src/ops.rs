//! The operations routes a client may ask: readiness.

use crate::client::Client;
use crate::error::Result;

impl Client {
    /// `Ok` if the server is ready (`GET /readyz`); with `wait`, the server
    /// holds the answer until it is ready, up to its request timeout.
    pub async fn ready(&self, wait: bool) -> Result<()> {
        self.probe("readyz", wait.then_some("wait=ready")).await
    }
}
