//! [`Api`]: the `eric-client` set-up every mode shares: the server and how
//! to reach it ([`Server`]), the calls that set a run up and tear it down
//! (channels, listeners, queue depth), the streams, and where messages go
//! ([`Target`]).

use std::time::Duration;

use eric_client::{
    CaCertificates, Client, ClientBuilder, Message, NewChannel, StreamRequest, Url, Write,
};

use crate::error::Result;

/// How long a set-up call may take.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The server a run drives: its URL, and the CA certificates (read once,
/// `--ca-file`) its certificate may chain to beyond the system's roots.
/// Cheap to clone: a task that needs a client of its own takes a copy.
#[derive(Debug, Clone)]
pub(crate) struct Server {
    base: String,
    ca: Option<CaCertificates>,
}

impl Server {
    /// The server at `base`.
    pub(crate) fn new(base: &str, ca: Option<CaCertificates>) -> Self {
        Self {
            base: base.to_owned(),
            ca,
        }
    }

    /// Its URL, as given.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// A client for load: no proxy (the environment's proxy settings must
    /// not reroute a benchmark), HTTP/1.1 (over TLS too) with Nagle off,
    /// connections kept alive.
    ///
    /// A client with one task issuing one request at a time keeps exactly
    /// one connection; tasks sharing a client get one connection each for
    /// requests that overlap.
    pub(crate) fn client(&self) -> Result<Client> {
        Ok(self.builder().request_timeout(SETUP_TIMEOUT).build()?)
    }

    fn builder(&self) -> ClientBuilder {
        let builder = Client::builder(self.base.as_str()).no_proxy();
        match &self.ca {
            Some(ca) => builder.ca_certificates(ca.clone()),
            None => builder,
        }
    }
}

/// The server's `/v1` API, for set-up, tear-down and streams.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    server: Server,
    client: Client,
    /// For SSE streams: every stream on a new connection, as a browser's
    /// `EventSource` opens it (a connection reused from set-up calls would
    /// measure another path of the server).
    streams: Client,
}

impl Api {
    /// The API of `server`.
    pub(crate) fn new(server: &Server) -> Result<Self> {
        let streams = server.builder().pool_max_idle_per_host(0).build()?;
        Ok(Self {
            server: server.clone(),
            client: server.client()?,
            streams,
        })
    }

    /// The server.
    pub(crate) fn server(&self) -> &Server {
        &self.server
    }

    /// A listener's stream, on a connection of its own; a stream that
    /// breaks off ends the run (no reconnection: a measurement must not
    /// paper over it).
    pub(crate) fn events(&self, channel: &str, listener: &str) -> StreamRequest {
        self.streams
            .listener_events(channel, listener)
            .reconnect(false)
    }

    /// Creates a channel whose listener queues hold `queue_capacity`
    /// messages (`None`: the server's default); returns its id.
    pub(crate) async fn create_channel(&self, queue_capacity: Option<u64>) -> Result<String> {
        let mut channel = NewChannel::new();
        if let Some(capacity) = queue_capacity {
            channel = channel.queue_capacity(capacity);
        }
        Ok(self.client.create_channel(&channel).await?.id)
    }

    /// Adds a listener to `channel`; returns its id.
    pub(crate) async fn add_listener(&self, channel: &str) -> Result<String> {
        Ok(self.client.add_listener(channel, None).await?)
    }

    /// Messages waiting in all of `channel`'s listener queues.
    pub(crate) async fn queue_depth(&self, channel: &str) -> Result<u64> {
        let info = self.client.channel(channel).await?;
        Ok(info.listeners.iter().map(|l| l.queued).sum())
    }

    /// Deletes `channel` (its listeners and queues go with it).
    pub(crate) async fn delete_channel(&self, channel: &str) -> Result<()> {
        Ok(self.client.delete_channel(channel).await?)
    }
}

/// Where a run's messages go.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// Dispatched to one listener.
    Listener {
        /// Its channel.
        channel: String,
        /// The listener.
        listener: String,
    },
    /// Broadcast to a channel.
    Channel(String),
}

impl Target {
    /// Sends `message`; whatever the server answered is an error but a
    /// success.
    pub(crate) async fn send(&self, client: &Client, message: &Message) -> eric_client::Result<()> {
        let write = Write::new();
        match self {
            Self::Listener { channel, listener } => client
                .dispatch(channel, listener, message, &write)
                .await
                .map(drop),
            Self::Channel(channel) => client.broadcast(channel, message, &write).await.map(drop),
        }
    }

    /// The URL `send` posts to, for connections that write their own
    /// requests.
    pub(crate) fn url(&self, client: &Client) -> Url {
        match self {
            Self::Listener { channel, listener } => client.messages_url(channel, Some(listener)),
            Self::Channel(channel) => client.messages_url(channel, None),
        }
    }
}

/// The type of every message a run sends.
pub(crate) const MESSAGE_TYPE: &str = "load";

/// The run's message, of type [`MESSAGE_TYPE`], carrying `payload`.
pub(crate) fn message(payload: &impl serde::Serialize) -> Result<Message> {
    Ok(Message::json(MESSAGE_TYPE, payload)?)
}

/// `message` as a request body, for connections that write their own
/// requests.
pub(crate) fn body(message: &Message) -> Result<Vec<u8>> {
    serde_json::to_vec(message).map_err(|source| eric_client::Error::Encode { source }.into())
}

/// Microseconds since the Unix epoch: a send time another process (or task)
/// can compare with its own clock, which a monotonic `Instant` cannot do.
pub(crate) fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
