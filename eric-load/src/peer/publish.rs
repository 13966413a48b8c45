//! [`Publisher`]: the run's messages as plain `POST`s.

use eric_client::CaCertificates;
use futures_util::{StreamExt, TryStreamExt};

use super::{REQUEST_TIMEOUT, Template, any_tls, http_client, now_micros};
use crate::error::{Error, Result};

/// Posts the run's messages over kept-alive connections.
#[derive(Debug, Clone)]
pub(crate) struct Publisher {
    client: reqwest::Client,
}

impl Publisher {
    /// A publisher to `urls`, with a pool of its own; `ca`: as for the
    /// streams.
    pub(crate) fn new(urls: &[Template], ca: Option<&CaCertificates>) -> Result<Self> {
        Ok(Self {
            client: http_client(true, ca, any_tls(urls))?,
        })
    }

    /// Posts one message, stamped with the time it leaves, to `url`; an
    /// answer other than a success is an error.
    pub(crate) async fn publish(&self, url: &str) -> Result<()> {
        let http = |source| Error::http(url)(source);
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(REQUEST_TIMEOUT)
            .body(body(now_micros()))
            .send()
            .await
            .map_err(http)?;
        let status = response.status();
        // Read to the end, so the connection goes back to the pool.
        let answer = response.bytes().await.map_err(http)?;
        if status.is_success() {
            return Ok(());
        }
        Err(Error::Unexpected {
            target: url.to_owned(),
            answer: format!(
                "{status} {}",
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            ),
            expected: "a success to the publish",
        })
    }

    /// Posts one message to each of `urls`, `concurrency` at a time (so on
    /// up to that many connections); stops at the first failure.
    pub(crate) async fn publish_all(
        &self,
        urls: impl Iterator<Item = String>,
        concurrency: u32,
    ) -> Result<()> {
        futures_util::stream::iter(urls)
            .map(|url| async move { self.publish(&url).await })
            .buffer_unordered(concurrency as usize)
            .try_collect()
            .await
    }
}

/// The body of every message: `payload` is its send time, in microseconds
/// since the epoch.
pub(crate) fn body(sent: u64) -> String {
    format!(r#"{{"type":"peer","payload":{sent}}}"#)
}
