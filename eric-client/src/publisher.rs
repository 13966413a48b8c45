//! [`Publisher`] and [`BlockingPublisher`]: typed events onto a channel.
//! Publishing is the channel's broadcast: every listener of the channel
//! gets the event.

use crate::client::Write;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::event::{Event, event_message};
use crate::messages::Broadcast;

/// Publishes [`Event`]s from async code.
///
/// ```no_run
/// # use eric_client::{Event, Publisher};
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct DummyEvent { n: u32 }
/// # impl Event for DummyEvent { const TYPE: &'static str = "DummyEvent"; }
/// # async fn demo() -> eric_client::Result<()> {
/// let publisher = Publisher::connect("http://127.0.0.1:8080/juice")?;
/// publisher.publish(&DummyEvent { n: 1 }).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Publisher {
    endpoint: Endpoint,
}

impl Publisher {
    /// A publisher to the channel `uri` names (see [`Endpoint::parse`]).
    pub fn connect(uri: &str) -> Result<Self> {
        Ok(Self::new(Endpoint::parse(uri)?))
    }

    /// A publisher to `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        Self { endpoint }
    }

    /// Publishes `event`; how many listeners got it, and whose queue was
    /// full. The channel is created on first use: a publish to a channel
    /// that does not exist creates it and publishes again.
    pub async fn publish<E: Event>(&self, event: &E) -> Result<Broadcast> {
        let message = event_message(event)?;
        let (client, channel) = (self.endpoint.client(), self.endpoint.channel());
        let write = Write::new();
        let broadcast = || client.broadcast(channel, &message, &write);
        Ok(self.endpoint.on_channel(broadcast).await?.value)
    }

    /// Where it publishes.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

/// Publishes [`Event`]s from plain threads: it runs its own single-threaded
/// runtime, so the caller needs none. Calling it from inside an async task
/// would block that task's thread; use [`Publisher`] there.
///
/// ```no_run
/// # use eric_client::{BlockingPublisher, Event};
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct DummyEvent { n: u32 }
/// # impl Event for DummyEvent { const TYPE: &'static str = "DummyEvent"; }
/// let publisher = BlockingPublisher::connect("http://127.0.0.1:8080")?;
/// publisher.publish(&DummyEvent { n: 1 })?;
/// # Ok::<(), eric_client::Error>(())
/// ```
#[derive(Debug)]
pub struct BlockingPublisher {
    publisher: Publisher,
    runtime: tokio::runtime::Runtime,
}

impl BlockingPublisher {
    /// A publisher to the channel `uri` names (see [`Endpoint::parse`]).
    pub fn connect(uri: &str) -> Result<Self> {
        Self::new(Endpoint::parse(uri)?)
    }

    /// A publisher to `endpoint`.
    pub fn new(endpoint: Endpoint) -> Result<Self> {
        Ok(Self {
            publisher: Publisher::new(endpoint),
            runtime: blocking_runtime()?,
        })
    }

    /// Publishes `event`, blocking until the server answered (see
    /// [`Publisher::publish`]).
    pub fn publish<E: Event>(&self, event: &E) -> Result<Broadcast> {
        self.runtime.block_on(self.publisher.publish(event))
    }
}

/// The runtime a blocking client runs its async twin on: one thread, the
/// caller's, only while a call blocks.
pub(crate) fn blocking_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Runtime { source })
}
