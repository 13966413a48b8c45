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
//! [`Engine`] trait; [`MemoryEngine`] is the embedded default and `eric-redis`
//! provides the distributed one.
//!
//! ## Layout
//!
//! - [`id`]: validated ids ([`ChannelId`], [`ListenerId`], ...), safe in keys.
//! - [`message`]: [`Message`] and [`MessageType`].
//! - [`error`]: the crate's one [`Error`] enum.
//! - [`queue`]: the [`Queue`] trait, [`InMemoryQueue`], [`queue::Wakeup`].
//! - [`listener`]: [`Listener`] and its [`OnMessage`] hook.
//! - [`connection`]: [`Connection`] and [`ConnectionsFactory`].
//! - [`registry`]: [`ConnectionRegistry`], where a channel keeps its connections.
//! - [`engine`]: the [`Engine`] trait and [`MemoryEngine`].
//! - [`channel`]: [`Channel`], its settings, adapters and streams.
//! - [`sse`]: the SSE adapter and wire encoder.
//! - [`observe`]: the [`Observer`] metrics hook.

pub mod channel;
pub mod connection;
pub mod engine;
pub mod error;
pub mod id;
pub mod listener;
pub mod message;
pub mod observe;
pub mod queue;
pub mod registry;
pub mod sse;

pub use channel::{
    Adapter, Channel, ChannelSettings, MessageStream, RawAdapter, SseChannel, StreamEnd,
    StreamItem, StreamOptions, WeakChannel,
};
pub use connection::{Connection, ConnectionsFactory};
pub use engine::{Engine, MemoryEngine};
pub use error::{BoxError, Error, NoMessagesReason, Result};
pub use id::{ChannelId, ConnectionId, IdError, ListenerId, MessageId};
pub use listener::{BlockingHook, FnHook, Listener, OnMessage};
pub use message::{Message, MessageType};
pub use observe::{NoopObserver, Observer};
pub use queue::{Delivery, InMemoryQueue, Queue};
pub use registry::{Broadcast, ConnectionRegistry, RegisterMode};
pub use sse::{SseAdapter, SseEvent};
