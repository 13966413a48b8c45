//! # eric-client
//!
//! A client of eric's `/v1` HTTP API and its SSE streams: channels,
//! listeners, dispatch, broadcast and `next` as typed calls; a listener's or
//! a channel's stream as a [`Stream`](futures_util::Stream) of typed items
//! that reconnects with `Last-Event-ID` and backoff; named writes retried
//! through transient failures and applied once; one [`Error`] carrying the
//! server's error code. On top, the publish/subscribe API: typed
//! [`Event`]s published by a [`Publisher`] and received, as their
//! [`Subscription`]s match, by a [`Subscriber`] (durable, resuming on its
//! own listener, or ephemeral); each has a blocking twin for plain threads.
//!
//! ```no_run
//! use eric_client::{Client, Message, NewChannel, StreamItem, Write};
//! use futures_util::StreamExt;
//!
//! # async fn demo() -> eric_client::Result<()> {
//! let client = Client::new("http://127.0.0.1:8080")?;
//! client.create_channel(&NewChannel::new().id("news")).await?;
//! let alice = client.add_listener("news", Some("alice")).await?;
//! let mut events = client.listener_events("news", &alice).open().await?;
//! let message = Message::json("greet", &"hello")?;
//! client.dispatch("news", &alice, &message, &Write::once("greet-1")).await?;
//! while let Some(item) = events.next().await {
//!     if let StreamItem::Event(event) = item? {
//!         println!("{} {}: {}", event.id.unwrap_or(0), event.event, event.data);
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Ids are passed as strings: the server validates them, and refuses a bad
//! one with a typed error (400 `invalid_id`). The ids `.` and `..` cannot
//! be sent at all (URL clients read them as dot segments).
//!
//! ## Layout
//!
//! - `client`: [`Client`], [`ClientBuilder`], [`Write`] and [`Written`]
//!   (named writes and their retries), and the request plumbing.
//! - `channels`, `listeners`, `messages`, `ops`: the calls of each part of
//!   the API, with their shapes.
//! - `stream`: [`EventStream`] (reconnection, resume, notices) and
//!   [`StreamRequest`].
//! - `event`: [`Event`], a typed message (type name, payload, topic).
//! - `endpoint`: [`Endpoint`], a server and channel named by one URI.
//! - `publisher`: [`Publisher`] and [`BlockingPublisher`].
//! - `subscriber`: [`Subscriber`] (durable or ephemeral) and
//!   [`BlockingSubscriber`].
//! - `subscriptions`: [`Subscription`], and a listener's subscriptions as
//!   calls.
//! - `tls`: [`CaCertificates`] (a private CA to trust beyond the system's
//!   roots) and [`http_client_builder`], the one place every reqwest
//!   client of the workspace gets its TLS (rustls on `ring`) from.
//! - `sse`: the incremental SSE parser the streams read with.
//! - `backoff`: the waits between reconnections and retries.
//! - `error`: [`Error`], [`StreamProblem`] and [`EndReason`]; [`causes`],
//!   an error and its causes on one line.

mod backoff;
mod channels;
mod client;
mod endpoint;
mod error;
mod event;
mod listeners;
mod messages;
mod ops;
mod publisher;
mod sse;
mod stream;
mod subscriber;
mod subscriptions;
mod tls;

pub use channels::{ChannelInfo, ChannelSettings, NewChannel};
pub use client::{Client, ClientBuilder, Write, Written};
pub use endpoint::{CA_FILE_VARIABLE, DEFAULT_CHANNEL, Endpoint, TOKEN_VARIABLE};
pub use error::{EndReason, Error, Result, StreamProblem, causes};
pub use event::{Event, event_message};
pub use listeners::ListenerInfo;
pub use messages::{Broadcast, Delivery, Message, Queued};
pub use publisher::{BlockingPublisher, Publisher};
pub use reqwest::Url;
pub use stream::{EventStream, StreamEvent, StreamItem, StreamRequest};
pub use subscriber::{BlockingSubscriber, Subscriber, SubscriberBuilder};
pub use subscriptions::Subscription;
pub use tls::{CaCertificates, http_client_builder, install_crypto_provider};
