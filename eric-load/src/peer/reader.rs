//! [`Reader`]: one SSE stream opened as a browser's `EventSource` would
//! (`GET` with `Accept: text/event-stream`), read by a generic parser, its
//! events counted and timed. [`spawn`] starts many, opening a bounded
//! number at a time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::now_micros;
use crate::error::{Error, Result};
use crate::stats::Latencies;

/// Latencies reserved up front per stream, at most (an idle stream expects
/// no end of events and must not reserve for them).
const RESERVE: u64 = 1 << 16;

/// One stream to read.
#[derive(Debug)]
pub(crate) struct Reader {
    /// The stream's URL.
    pub(crate) url: String,
    /// Events to read before the reader is done (`u64::MAX`: until
    /// `give_up`).
    pub(crate) expected: u64,
    /// The run's start, in microseconds since the epoch: events sent before
    /// it are stale (a replay of the channel's earlier messages).
    pub(crate) since: u64,
    /// How long the stream may go without an event before the run fails.
    pub(crate) stall: Duration,
    /// Gets a permit per event counted, for a run that waits on deliveries
    /// while it goes on (rounds).
    pub(crate) delivered: Option<Arc<Semaphore>>,
    /// Fires when the run ends early (or, for idle streams, at its end):
    /// the reader stops without error.
    pub(crate) give_up: CancellationToken,
}

/// What one stream read.
#[derive(Debug)]
pub(crate) struct Received {
    /// The run's events.
    pub(crate) events: u64,
    /// Events sent before the run began.
    pub(crate) stale: u64,
    /// End-to-end latency of each of the run's events.
    pub(crate) latencies: Latencies,
    /// When the last of the run's events arrived.
    pub(crate) last: Instant,
}

/// Starts a task per reader, reader i on client i mod the clients' number
/// (one per HTTP/2 connection; one for HTTP/1.1); each opens its stream once it holds one of
/// `concurrency` slots (so thousands of connections do not arrive as one
/// burst), signals its receiver when the server has answered with a
/// stream, and then reads. A task that fails before that drops its sender.
pub(crate) fn spawn(
    clients: &[reqwest::Client],
    readers: impl Iterator<Item = Reader>,
    concurrency: u32,
) -> (
    Vec<JoinHandle<Result<Received>>>,
    Vec<oneshot::Receiver<()>>,
) {
    let slots = Arc::new(Semaphore::new(concurrency as usize));
    let mut tasks = Vec::new();
    let mut ready = Vec::new();
    for (i, reader) in readers.enumerate() {
        let (tx, rx) = oneshot::channel();
        let client = clients[i % clients.len()].clone();
        tasks.push(tokio::spawn(reader.run(client, slots.clone(), tx)));
        ready.push(rx);
    }
    (tasks, ready)
}

impl Reader {
    async fn run(
        self,
        client: reqwest::Client,
        slots: Arc<Semaphore>,
        ready: oneshot::Sender<()>,
    ) -> Result<Received> {
        let mut got = Received {
            events: 0,
            stale: 0,
            latencies: Latencies::with_capacity(self.expected.min(RESERVE) as usize),
            last: Instant::now(),
        };
        let opened = tokio::select! {
            () = self.give_up.cancelled() => return Ok(got),
            opened = self.open(&client, &slots) => opened?,
        };
        let _ = ready.send(());
        let mut events = opened.bytes_stream().eventsource();
        while got.events < self.expected {
            let item = tokio::select! {
                () = self.give_up.cancelled() => return Ok(got),
                item = tokio::time::timeout(self.stall, events.next()) => item,
            };
            let event = match item {
                Err(_) => {
                    return Err(Error::Timeout {
                        what: format!(
                            "event {} of {} on {}",
                            got.events + 1,
                            self.expected,
                            self.url
                        ),
                        secs: self.stall.as_secs(),
                    });
                }
                Ok(None) => return Err(self.unexpected(&got, "the stream ended")),
                Ok(Some(Err(source))) => {
                    return Err(Error::Sse {
                        url: self.url.clone(),
                        source,
                    });
                }
                Ok(Some(Ok(event))) => event,
            };
            match sent_micros(&event.data) {
                Some(sent) if sent >= self.since => {
                    got.events += 1;
                    got.last = Instant::now();
                    got.latencies
                        .record_nanos(now_micros().saturating_sub(sent) * 1_000);
                    if let Some(delivered) = &self.delivered {
                        delivered.add_permits(1);
                    }
                }
                Some(_) => got.stale += 1,
                None => {
                    let what = format!("event {:?}: {:?}", event.event, event.data);
                    return Err(self.unexpected(&got, &what));
                }
            }
        }
        Ok(got)
    }

    /// Opens the stream while holding an opening slot; returns once the
    /// server has answered with an event stream.
    async fn open(&self, client: &reqwest::Client, slots: &Semaphore) -> Result<reqwest::Response> {
        // Closed only if the semaphore is dropped, which it is not while a
        // reader holds it.
        let _slot = slots.acquire().await.ok();
        let response = client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .header(reqwest::header::CACHE_CONTROL, "no-cache")
            .send()
            .await
            .map_err(Error::http(&self.url))?;
        let is_stream = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if response.status() == reqwest::StatusCode::OK && is_stream {
            return Ok(response);
        }
        Err(Error::Unexpected {
            target: self.url.clone(),
            answer: format!(
                "{} ({:?})",
                response.status(),
                response.headers().get("content-type")
            ),
            expected: "200 with an event stream",
        })
    }

    fn unexpected(&self, got: &Received, what: &str) -> Error {
        Error::Unexpected {
            target: self.url.clone(),
            answer: format!("{what} after {} of {} events", got.events, self.expected),
            expected: "the run's events",
        }
    }
}

/// A message's send time from an event's data: the whole body the tool
/// posted (as nchan delivers it) or its `payload` alone (as eric does).
fn sent_micros(data: &str) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_str(data).ok()?;
    value.as_u64().or_else(|| value.get("payload")?.as_u64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::publish::body;

    #[test]
    fn the_send_time_comes_from_the_body_or_its_payload() {
        assert_eq!(sent_micros(&body(42)), Some(42));
        assert_eq!(sent_micros("42"), Some(42));
        assert_eq!(sent_micros(r#"{"payload":"x"}"#), None);
        assert_eq!(sent_micros("hello"), None);
    }
}
