//! # eric-core
//!
//! The domain model of eric, a message broker that streams to its clients over
//! Server-Sent Events: channels hold listeners, each listener has its own FIFO
//! queue, producers dispatch to one listener or broadcast to all, and consumers
//! pull (`deliver_next`) or get a push stream. It re-implements the Python
//! library eric-sse, keeping its behaviour and fixing its weaknesses (each
//! deviation is named in the docs of the item concerned and in
//! `docs/ARCHITECTURE.md`).
//!
//! This crate has no network code. Storage backends plug in through the
//! [`Engine`] trait. [`MemoryEngine`] keeps everything in this process;
//! `eric-disk` (the server's default) writes its state through to a file
//! by the [`journal`]; `eric-redis` provides the distributed one.
//!
//! ```
//! use eric_core::{Channel, ChannelSettings, MemoryEngine, Message, SseChannel, StreamItem};
//! use futures_util::StreamExt;
//!
//! # tokio_test_runtime(async {
//! let channel: SseChannel<MemoryEngine> =
//!     Channel::new(&MemoryEngine::new(), None, ChannelSettings::default())?;
//! let listener = channel.add_listener().await?;
//! listener.start();
//! let message = Message::try_new("greet", serde_json::json!({"a": 1}))?;
//! channel.dispatch(listener.id(), message).await?;
//! let mut stream = channel.message_stream(&listener).await?;
//! let Some(StreamItem::Message(event)) = stream.next().await else { panic!() };
//! assert_eq!(event.encode(), "id: 1\nevent: greet\nretry: 5\ndata: {\"a\":1}\n\n");
//! # Ok::<(), eric_core::Error>(())
//! # });
//! # fn tokio_test_runtime<F: std::future::Future<Output = eric_core::Result<()>>>(f: F) {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f).unwrap()
//! # }
//! ```
//!
//! ## Layout
//!
//! - [`id`]: validated ids ([`ChannelId`], [`ListenerId`], ...), safe in keys.
//! - [`message`]: [`Message`] and [`MessageType`].
//! - [`topic`]: [`Topic`], [`TopicFilter`] and the matching rule.
//! - [`subscription`]: [`Subscription`], a message type narrowed by a
//!   filter; [`Subscriptions`], a listener's set, and how it changes.
//! - [`idempotency`]: keys that make a retried write apply once ([`Applied`]).
//! - [`error`]: the crate's one [`Error`] enum.
//! - [`queue`]: the [`Queue`] trait, [`InMemoryQueue`], [`queue::Wakeup`],
//!   the byte measure [`queue::stored_size`] and the in-memory engine's
//!   node-wide [`queue::MemoryBudget`].
//! - [`listener`]: [`Listener`] and its [`OnMessage`] hook.
//! - [`member`]: [`Member`], a listener paired with its queue (the
//!   reference's "connection"), and [`MemberFactory`].
//! - [`journal`]: [`journal::Journal`], where an engine keeping its state
//!   in this process writes each change through to durable storage.
//! - [`registry`]: [`MemberRegistry`], where a channel keeps its members.
//! - [`engine`]: the [`Engine`] trait and [`MemoryEngine`].
//! - [`settings`]: [`ChannelSettings`], what a channel is created and
//!   persisted with (also re-exported from [`channel`]).
//! - [`adapter`]: the [`Adapter`] trait (what streams yield) and
//!   [`RawAdapter`] (also re-exported from [`channel`]).
//! - [`channel`]: [`Channel`], dispatch, broadcast, pull and streams.
//! - [`sse`]: the SSE adapter and wire encoder.
//! - [`container`]: [`ChannelContainer`], channels by id.
//! - [`persistence`]: [`KvStorage`], the repositories and [`Persistence`]
//!   (which also rebuilds a channel's members from their records).
//! - [`prefabs`]: the data-processing channel and distributed applications.
//! - [`observe`]: the [`Observer`] metrics hook.
//! - `testing` (feature `testing`): the behaviour and persistence suites
//!   every engine runs, and the topic-matching table.
//! - Feature `openapi`: `utoipa` schemas of the types the HTTP API sends
//!   and takes (ids and texts with their bounds, messages, settings,
//!   subscriptions), for eric-server's OpenAPI document.
//!
//! Modules import each other without a cycle: those below `channel`
//! (`settings`, `adapter`, `queue`, `engine`, `sse`) never import it.

pub mod adapter;
pub mod channel;
pub mod container;
pub mod engine;
pub mod error;
pub mod id;
pub mod idempotency;
pub mod journal;
pub mod listener;
pub mod member;
pub mod message;
pub mod observe;
pub mod persistence;
pub mod prefabs;
pub mod queue;
pub mod registry;
pub mod settings;
pub mod sse;
pub mod subscription;
#[cfg(feature = "testing")]
pub mod testing;
pub mod topic;

pub use adapter::{Adapter, RawAdapter};
pub use channel::{
    Channel, MessageStream, SseChannel, StreamEnd, StreamItem, StreamOptions, WeakChannel,
};
pub use container::ChannelContainer;
pub use engine::{Broadcasts, Engine, MemoryEngine};
pub use error::{BoxError, Error, NoMessagesReason, QueueBound, Result};
pub use id::{ChannelId, IdError, IdempotencyKey, ListenerId, MemberId, MessageId};
pub use idempotency::Applied;
pub use listener::{BlockingHook, FnHook, Listener, OnMessage};
pub use member::{Member, MemberFactory};
pub use message::{Message, MessageType};
pub use observe::{NoopObserver, Observer};
pub use persistence::{InMemoryStorage, KvStorage, Persistence};
pub use prefabs::{
    Action, Actions, DataEvent, DataProcessingChannel, DistributedListener, Order, Processed,
    ProcessingAdapter, ProcessingEnd, ProcessingStream,
};
pub use queue::{Delivery, InMemoryQueue, Queue, Taken};
pub use registry::{Broadcast, MemberRegistry, RegisterMode};
pub use settings::ChannelSettings;
pub use sse::{SseAdapter, SseEvent, SseMessage};
pub use subscription::{Subscription, SubscriptionChange, Subscriptions};
pub use topic::{Topic, TopicFilter};
