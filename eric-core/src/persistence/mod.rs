//! Persistence: channels, listeners and queued messages saved through a
//! key-value storage engine and repository traits, so a restarted broker
//! restores them.
//!
//! ## Layout
//!
//! - [`storage`]: the [`KvStorage`] engine trait and [`InMemoryStorage`].
//! - [`repository`]: records and the four repository traits.
//! - [`kv`]: repositories over any [`KvStorage`], and their key layout.
//! - [`store`]: [`Persistence`], which persists, restores
//!   (`load_persisted_data`) and deletes whole channels.

pub mod kv;
pub mod repository;
pub mod storage;
pub mod store;

pub use kv::{KvChannelRepository, KvListenerRepository, KvMemberRepository, KvQueueRepository};
pub use repository::{
    ChannelRecord, ChannelRepository, ListenerRecord, ListenerRepository, MemberRecord,
    MemberRepository, QueueRepository,
};
pub use storage::{Entry, InMemoryStorage, KvStorage};
pub use store::Persistence;
