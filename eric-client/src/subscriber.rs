//! [`Subscriber`] and [`BlockingSubscriber`]: the events of a channel
//! that match what was subscribed to, one [`get`](Subscriber::get) at a
//! time.
//!
//! Durable (the default): the first subscription creates a listener of the
//! channel with a new UUID as its id, holding that subscription from the
//! start; later ones are added to it in place (`PATCH`), and its stream
//! resumes with `Last-Event-ID` after a broken connection, so an event it
//! was sent is neither lost nor handed out twice, as long as the server
//! still holds it (its replay window; a resume past it is logged as a
//! warning). The listener stays on the server until
//! [`close`](Subscriber::close): a subscriber dropped without it leaves it
//! there, queueing what it matches until its queue is full.
//!
//! Ephemeral ([`Subscriber::ephemeral`]): the channel's stream filtered by
//! the subscriptions, on a temporary listener the server removes when the
//! connection closes. Nothing is kept while disconnected (a reconnection
//! misses what was published meanwhile), and a change of subscriptions
//! opens a new stream: see [`Subscriber::subscribe_to`].
//!
//! Reconnections go to the one server URL the endpoint names: the client
//! knows no list of nodes, so a cluster sits behind one address (a load
//! balancer, or a node restarted on it), and a durable stream resumes on
//! whichever node answers there.
//!
//! Until something is subscribed to, nothing is received: no listener or
//! stream exists then (a listener with no subscriptions would receive every
//! broadcast), and [`get`](Subscriber::get) waits out its timeout.

use std::time::Duration;

use futures_util::StreamExt;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::publisher::blocking_runtime;
use crate::stream::{EventStream, StreamEvent, StreamItem};
use crate::subscriptions::Subscription;

/// Receives the events that match its subscriptions, from async code.
///
/// ```
/// use eric_client::{Event, Publisher, Subscriber};
/// use serde::{Deserialize, Serialize};
/// use std::time::Duration;
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize)]
/// struct KernelStatusChanged {
///     service: String,
///     status: String,
/// }
///
/// impl Event for KernelStatusChanged {
///     const TYPE: &'static str = "KernelStatusChanged";
///     fn topic(&self) -> Option<String> {
///         Some(self.service.clone())
///     }
/// }
///
/// # #[tokio::main]
/// # async fn main() -> eric_client::Result<()> {
/// # let server = eric_server::test_support::TestServer::memory().await;
/// # let uri = format!("{}/juice", server.url());
/// let mut subscriber = Subscriber::connect(&uri)?;
/// subscriber.subscribe::<KernelStatusChanged>(Some("q1")).await?;
///
/// let publisher = Publisher::connect(&uri)?;
/// for service in ["q2", "q1"] {
///     let event = KernelStatusChanged { service: service.into(), status: "idle".into() };
///     publisher.publish(&event).await?;
/// }
///
/// let event = subscriber.get(Some(Duration::from_secs(5))).await?;
/// assert_eq!(event.topic.as_deref(), Some("q1"));
/// let status = event.decode::<KernelStatusChanged>().expect("its type")?;
/// assert_eq!(status.service, "q1");
/// // Nothing else matches: the next `get` times out.
/// let nothing = subscriber.get(Some(Duration::from_millis(100))).await;
/// assert!(nothing.is_err_and(|e| e.is_timeout()));
/// subscriber.close().await?;
/// # server.stop().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Subscriber {
    endpoint: Endpoint,
    kind: Kind,
    /// What the server holds for this subscriber, in the order subscribed:
    /// the listener's set, or the ephemeral stream's filters.
    subscriptions: Vec<Subscription>,
    /// The open stream; `None` before the first subscription, and after
    /// one ended (the next `get` opens it again).
    stream: Option<EventStream>,
    /// Where a durable stream reopened after its end resumes.
    last_event_id: Option<u64>,
}

/// Where a subscriber's events come from.
#[derive(Debug)]
enum Kind {
    /// A listener of the channel, created on the first subscription.
    Durable {
        /// Its id.
        listener: String,
        /// Whether the server has it (with at least one subscription).
        created: bool,
    },
    /// The channel's filtered stream.
    Ephemeral,
}

/// Settings of a [`Subscriber`]; [`Subscriber::builder`] makes one.
#[derive(Debug)]
pub struct SubscriberBuilder {
    endpoint: Endpoint,
    kind: Kind,
}

impl SubscriberBuilder {
    /// Reads the channel's filtered stream instead of a listener of its
    /// own: nothing is kept while it is disconnected.
    pub fn ephemeral(mut self) -> Self {
        self.kind = Kind::Ephemeral;
        self
    }

    /// A durable subscriber whose listener is `id` (default: a new UUID).
    /// If the listener exists, its queue is kept and its subscriptions are
    /// replaced by this subscriber's first one.
    pub fn listener(mut self, id: impl Into<String>) -> Self {
        self.kind = Kind::Durable {
            listener: id.into(),
            created: false,
        };
        self
    }

    /// The subscriber; it talks to the server on its first subscription.
    pub fn build(self) -> Subscriber {
        Subscriber {
            endpoint: self.endpoint,
            kind: self.kind,
            subscriptions: Vec::new(),
            stream: None,
            last_event_id: None,
        }
    }
}

impl Subscriber {
    /// A durable subscriber to the channel `uri` names (see
    /// [`Endpoint::parse`]).
    pub fn connect(uri: &str) -> Result<Self> {
        Ok(Self::new(Endpoint::parse(uri)?))
    }

    /// An ephemeral subscriber to the channel `uri` names.
    pub fn ephemeral(uri: &str) -> Result<Self> {
        Ok(Self::builder(Endpoint::parse(uri)?).ephemeral().build())
    }

    /// A durable subscriber to `endpoint`.
    pub fn new(endpoint: Endpoint) -> Self {
        Self::builder(endpoint).build()
    }

    /// Settings for a subscriber to `endpoint`: durable, on a listener with
    /// a new UUID as its id, unless told otherwise.
    pub fn builder(endpoint: Endpoint) -> SubscriberBuilder {
        SubscriberBuilder {
            endpoint,
            kind: Kind::Durable {
                listener: uuid::Uuid::new_v4().to_string(),
                created: false,
            },
        }
    }

    /// Subscribes to events `E` about `topic` (or below it), or about
    /// anything with `None`. Returns once the server applies it: an event
    /// published after this returns is received.
    pub async fn subscribe<E: Event>(&mut self, topic: Option<&str>) -> Result<()> {
        self.subscribe_to(Subscription::to::<E>(topic)).await
    }

    /// Subscribes to messages of type `msg_type` about `topic` (or below
    /// it): [`subscribe`](Self::subscribe) for a type named at run time.
    pub async fn subscribe_type(&mut self, msg_type: &str, topic: Option<&str>) -> Result<()> {
        self.subscribe_to(Subscription::new(msg_type, topic)).await
    }

    /// Adds `subscription`; one already held changes nothing. The channel
    /// is created if it does not exist.
    ///
    /// Ephemeral: the stream with the new filters is open before the old
    /// one is dropped, and events the old one had received but `get` had
    /// not handed out are dropped with it. So no event published after
    /// this returns is missed or seen twice, but an event published
    /// before it and not yet taken by `get` may be lost, even one both the
    /// old and the new filters match.
    pub async fn subscribe_to(&mut self, subscription: Subscription) -> Result<()> {
        if self.subscriptions.contains(&subscription) {
            return Ok(());
        }
        let mut wanted = self.subscriptions.clone();
        wanted.push(subscription.clone());
        let client = self.endpoint.client();
        let channel = self.endpoint.channel();
        match &mut self.kind {
            Kind::Durable { listener, created } if *created => {
                let add = [subscription];
                client
                    .change_subscriptions(channel, &*listener, &add, &[])
                    .await?;
                self.subscriptions = wanted;
            }
            Kind::Durable { listener, created } => {
                let create = || client.add_listener_with(channel, Some(listener), &wanted);
                self.endpoint.on_channel(create).await?;
                *created = true;
                self.subscriptions = wanted;
                self.stream = None;
                self.open().await?;
            }
            Kind::Ephemeral => {
                let stream = self.open_ephemeral(&wanted).await?;
                // Opened first: the new filters are registered before the
                // old ones go.
                self.stream = Some(stream);
                self.subscriptions = wanted;
            }
        }
        Ok(())
    }

    /// Removes `subscription`; one not held changes nothing. Events it
    /// matched that are already on their way may still arrive (ephemeral:
    /// those not yet handed out are dropped). Removing the last one
    /// removes the listener (or closes the ephemeral stream): a listener
    /// with no subscriptions would receive everything.
    pub async fn unsubscribe(&mut self, subscription: &Subscription) -> Result<()> {
        let Some(at) = self.subscriptions.iter().position(|s| s == subscription) else {
            return Ok(());
        };
        let mut wanted = self.subscriptions.clone();
        wanted.remove(at);
        if wanted.is_empty() {
            self.release().await?;
            self.subscriptions = wanted;
            return Ok(());
        }
        let client = self.endpoint.client();
        let channel = self.endpoint.channel();
        match &self.kind {
            Kind::Durable { listener, .. } => {
                let remove = [subscription.clone()];
                client
                    .change_subscriptions(channel, listener, &[], &remove)
                    .await?;
            }
            Kind::Ephemeral => {
                let stream = self.open_ephemeral(&wanted).await?;
                self.stream = Some(stream);
            }
        }
        self.subscriptions = wanted;
        Ok(())
    }

    /// The next event that matches a subscription, waiting at most
    /// `timeout` (none: as long as it takes). A timeout is
    /// [`Error::Timeout`] and loses nothing. Before any subscription, no
    /// event comes.
    ///
    /// The stream reconnects by itself when its connection drops; an error
    /// here is one it cannot get past (the server refused it, or stayed
    /// unreachable for a minute), and the next `get` opens the stream
    /// again, a durable one resuming where it left off. Cancelling a `get`
    /// loses nothing either.
    pub async fn get(&mut self, timeout: Option<Duration>) -> Result<StreamEvent> {
        match timeout {
            Some(after) => tokio::time::timeout(after, self.next_event())
                .await
                .map_err(|_| Error::Timeout { after })?,
            None => self.next_event().await,
        }
    }

    /// The next matching event; pending for ever with nothing subscribed.
    async fn next_event(&mut self) -> Result<StreamEvent> {
        loop {
            if self.subscriptions.is_empty() {
                return std::future::pending().await;
            }
            if self.stream.is_none() {
                self.open().await?;
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            match stream.next().await {
                Some(Ok(StreamItem::Event(event))) => return Ok(event),
                Some(Ok(StreamItem::Gap { after })) => tracing::warn!(
                    ?after,
                    "events were lost: they had left the server's replay window"
                ),
                Some(Ok(StreamItem::End(reason))) => {
                    self.drop_stream();
                    return Err(Error::Ended { reason });
                }
                // A reconnection in progress, or done: the stream's own
                // business.
                Some(Ok(_)) => {}
                Some(Err(error)) => {
                    self.drop_stream();
                    return Err(error);
                }
                None => self.drop_stream(),
            }
        }
    }

    /// Opens the stream of the current subscriptions (a durable one after
    /// the last event handed out).
    async fn open(&mut self) -> Result<()> {
        let stream = match &self.kind {
            Kind::Durable { listener, .. } => {
                let client = self.endpoint.client();
                let mut request = client.listener_events(self.endpoint.channel(), listener);
                if let Some(id) = self.last_event_id {
                    request = request.last_event_id(id);
                }
                request.open().await?
            }
            Kind::Ephemeral => self.open_ephemeral(&self.subscriptions).await?,
        };
        self.stream = Some(stream);
        Ok(())
    }

    /// The channel's stream filtered by `subscriptions`, the channel made
    /// if missing. Returns once the server has registered it.
    async fn open_ephemeral(&self, subscriptions: &[Subscription]) -> Result<EventStream> {
        let client = self.endpoint.client();
        let request = client.channel_events_matching(self.endpoint.channel(), subscriptions)?;
        self.endpoint.on_channel(|| request.clone().open()).await
    }

    /// Forgets the stream, keeping a durable one's resume point.
    fn drop_stream(&mut self) {
        if let Some(stream) = self.stream.take()
            && let Kind::Durable { .. } = self.kind
        {
            self.last_event_id = stream.last_event_id().or(self.last_event_id);
        }
    }

    /// Drops the stream and removes the listener, if there is one.
    async fn release(&mut self) -> Result<()> {
        self.stream = None;
        let Kind::Durable { listener, created } = &mut self.kind else {
            return Ok(());
        };
        if !*created {
            return Ok(());
        }
        let client = self.endpoint.client();
        match client
            .remove_listener(self.endpoint.channel(), &*listener)
            .await
        {
            Ok(()) => {}
            // Someone removed it, or its channel, already.
            Err(error)
                if matches!(
                    error.code(),
                    Some("listener_not_found" | "channel_not_found")
                ) => {}
            Err(error) => return Err(error),
        }
        *created = false;
        self.last_event_id = None;
        Ok(())
    }

    /// Closes the stream and removes the listener of a durable subscriber
    /// (with what it had queued).
    pub async fn close(mut self) -> Result<()> {
        self.release().await
    }

    /// The subscriptions held, in the order they were made.
    pub fn subscriptions(&self) -> &[Subscription] {
        &self.subscriptions
    }

    /// The listener's id (`None` for an ephemeral subscriber). The server
    /// has it only once something is subscribed to.
    pub fn listener_id(&self) -> Option<&str> {
        match &self.kind {
            Kind::Durable { listener, .. } => Some(listener),
            Kind::Ephemeral => None,
        }
    }

    /// Where it subscribes.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

/// A [`Subscriber`] for plain threads: it runs its own single-threaded
/// runtime, so the caller needs none. The connection is read only while a
/// call runs (between calls the server's writes wait in the socket's
/// buffers, then in the listener's queue). Calling it from inside an async
/// task would block that task's thread; use [`Subscriber`] there.
///
/// ```
/// use eric_client::{BlockingPublisher, BlockingSubscriber, Event};
/// use serde::{Deserialize, Serialize};
/// use std::time::Duration;
///
/// #[derive(Serialize, Deserialize)]
/// struct DummyEvent {
///     n: u32,
/// }
///
/// impl Event for DummyEvent {
///     const TYPE: &'static str = "DummyEvent";
///     fn topic(&self) -> Option<String> {
///         Some("something".into())
///     }
/// }
///
/// # fn main() -> eric_client::Result<()> {
/// # let runtime = tokio::runtime::Runtime::new().expect("a runtime");
/// # let server = runtime.block_on(eric_server::test_support::TestServer::memory());
/// # let uri = server.url();
/// let mut subscriber = BlockingSubscriber::connect(&uri)?;
/// subscriber.subscribe::<DummyEvent>(Some("something"))?;
/// BlockingPublisher::connect(&uri)?.publish(&DummyEvent { n: 1 })?;
/// let event = subscriber.get(Some(Duration::from_secs(5)))?;
/// assert_eq!(event.decode::<DummyEvent>().expect("its type")?.n, 1);
/// subscriber.close()?;
/// # runtime.block_on(server.stop());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct BlockingSubscriber {
    subscriber: Subscriber,
    runtime: tokio::runtime::Runtime,
}

impl BlockingSubscriber {
    /// A durable subscriber to the channel `uri` names (see
    /// [`Endpoint::parse`]).
    pub fn connect(uri: &str) -> Result<Self> {
        Self::new(Subscriber::connect(uri)?)
    }

    /// An ephemeral subscriber to the channel `uri` names.
    pub fn ephemeral(uri: &str) -> Result<Self> {
        Self::new(Subscriber::ephemeral(uri)?)
    }

    /// `subscriber`, made blocking (it must not have subscribed yet: its
    /// stream would belong to another runtime).
    pub fn new(subscriber: Subscriber) -> Result<Self> {
        Ok(Self {
            subscriber,
            runtime: blocking_runtime()?,
        })
    }

    /// Subscribes to events `E` about `topic` (see
    /// [`Subscriber::subscribe`]); returns once the server applies it.
    pub fn subscribe<E: Event>(&mut self, topic: Option<&str>) -> Result<()> {
        self.runtime.block_on(self.subscriber.subscribe::<E>(topic))
    }

    /// Subscribes to messages of type `msg_type` about `topic`.
    pub fn subscribe_type(&mut self, msg_type: &str, topic: Option<&str>) -> Result<()> {
        let subscription = Subscription::new(msg_type, topic);
        self.runtime
            .block_on(self.subscriber.subscribe_to(subscription))
    }

    /// Removes `subscription` (see [`Subscriber::unsubscribe`]).
    pub fn unsubscribe(&mut self, subscription: &Subscription) -> Result<()> {
        self.runtime
            .block_on(self.subscriber.unsubscribe(subscription))
    }

    /// The next matching event, waiting at most `timeout` (see
    /// [`Subscriber::get`]).
    pub fn get(&mut self, timeout: Option<Duration>) -> Result<StreamEvent> {
        self.runtime.block_on(self.subscriber.get(timeout))
    }

    /// Closes it, removing a durable subscriber's listener.
    pub fn close(self) -> Result<()> {
        let Self {
            subscriber,
            runtime,
        } = self;
        runtime.block_on(subscriber.close())
    }

    /// The subscriptions held.
    pub fn subscriptions(&self) -> &[Subscription] {
        self.subscriber.subscriptions()
    }

    /// The listener's id (`None` for an ephemeral subscriber).
    pub fn listener_id(&self) -> Option<&str> {
        self.subscriber.listener_id()
    }
}
