//! The one error type of `eric-core`.
//!
//! It keeps every case of the Python reference (`InvalidChannelException`,
//! `InvalidListenerException`, `InvalidConnectionException`,
//! `NoMessagesException`, `InvalidMessageFormat`, `ItemNotFound`,
//! `RepositoryError`) and adds the ones a production broker needs (full queues,
//! an unavailable or slow storage, invalid ids, failing hooks). Backends convert
//! their own errors into [`Error::Unavailable`], [`Error::OutcomeUnknown`] or
//! [`Error::Repository`], keeping the cause as `source`, so callers can branch on
//! the kind (HTTP maps `Unavailable` to 503) without parsing text.

use std::error::Error as StdError;

use crate::id::{ChannelId, IdError, ListenerId, MemberId};

/// A boxed cause, kept as the `source` of an [`Error`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a queue had no message to hand out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoMessagesReason {
    /// The queue is empty.
    Empty,
    /// The listener is stopped; its messages stay queued.
    Stopped,
}

impl std::fmt::Display for NoMessagesReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "queue is empty",
            Self::Stopped => "listener is stopped",
        })
    }
}

/// Which bound of a listener's queue refused a push (see
/// [`crate::ChannelSettings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueBound {
    /// `queue_capacity`: the queue holds this many messages.
    Messages(usize),
    /// `queue_max_bytes`: the queued messages, as stored (their JSON), would
    /// pass this many bytes.
    Bytes(usize),
}

impl std::fmt::Display for QueueBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Messages(n) => write!(f, "{n} messages"),
            Self::Bytes(n) => write!(f, "{n} bytes"),
        }
    }
}

/// Every error `eric-core` and its engines report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No channel has this id (the reference's `InvalidChannelException`).
    #[error("no channel with id {channel}")]
    InvalidChannel {
        /// The channel asked for.
        channel: ChannelId,
    },

    /// A channel with this id exists already.
    #[error("channel with id {channel} already exists")]
    ChannelExists {
        /// The id that is taken.
        channel: ChannelId,
    },

    /// The channel has no listener with this id (`InvalidListenerException`).
    #[error("invalid listener {listener} on channel {channel}")]
    InvalidListener {
        /// The channel asked.
        channel: ChannelId,
        /// The listener asked for.
        listener: ListenerId,
    },

    /// A listener with this id is registered already.
    #[error("listener {listener} is already registered on channel {channel}")]
    ListenerExists {
        /// The channel asked.
        channel: ChannelId,
        /// The id that is taken.
        listener: ListenerId,
    },

    /// No stored member has this id (`InvalidConnectionException`; the
    /// message keeps the reference's word, as that name does).
    #[error("invalid connection {member} on channel {channel}")]
    InvalidMember {
        /// The channel asked.
        channel: ChannelId,
        /// The member asked for.
        member: MemberId,
    },

    /// Nothing to deliver (`NoMessagesException`).
    #[error("no messages for listener {listener}: {reason}")]
    NoMessages {
        /// The listener asked.
        listener: ListenerId,
        /// Empty queue, or stopped listener.
        reason: NoMessagesReason,
    },

    /// The listener's queue is at one of its bounds and refuses the push;
    /// nothing was queued.
    #[error("queue of listener {listener} on channel {channel} is full ({bound})")]
    QueueFull {
        /// The channel of the queue.
        channel: ChannelId,
        /// The listener whose queue is full.
        listener: ListenerId,
        /// Which configured bound refused it.
        bound: QueueBound,
    },

    /// A message or a request was malformed (`InvalidMessageFormat`).
    /// A change would leave a listener with more subscriptions than its
    /// channel's `max_subscriptions`; nothing was changed.
    #[error("listener {listener} would hold {count} subscriptions; the most is {limit}")]
    TooManySubscriptions {
        /// The listener.
        listener: ListenerId,
        /// How many it would have held.
        count: usize,
        /// The channel's bound.
        limit: usize,
    },

    #[error("invalid message format: {reason}")]
    InvalidMessageFormat {
        /// What is wrong with it.
        reason: String,
    },

    /// An id or a message type failed validation.
    #[error(transparent)]
    InvalidId(#[from] IdError),

    /// A storage key holds nothing (`ItemNotFound`).
    #[error("item not found: {key}")]
    ItemNotFound {
        /// The key looked up (a storage key, never shown to HTTP clients).
        key: String,
    },

    /// A stored record could not be read or written (`RepositoryError`).
    #[error("repository error while {operation}: {source}")]
    Repository {
        /// What was being done.
        operation: &'static str,
        /// The cause.
        #[source]
        source: BoxError,
    },

    /// The storage backend cannot be reached; retrying later may succeed.
    #[error("{backend} unavailable while {operation}: {source}")]
    Unavailable {
        /// Which backend ("redis", ...).
        backend: &'static str,
        /// What was being done.
        operation: &'static str,
        /// The cause.
        #[source]
        source: BoxError,
    },

    /// The storage backend was sent the call but did not confirm it (no
    /// answer in time, or the link to it broke while waiting): it may or may
    /// not have taken effect. Never reported as "not applied", since a client
    /// that retries a write believing so would apply it twice; a write with
    /// an idempotency key can be retried safely.
    #[error("{backend} did not confirm {operation}; it may or may not have taken effect")]
    OutcomeUnknown {
        /// Which backend.
        backend: &'static str,
        /// What was being done.
        operation: &'static str,
    },

    /// The storage backend refuses to grow (Redis at its `maxmemory` with
    /// `noeviction`, or the in-memory engine at its node-wide budget, see
    /// [`crate::queue::MemoryBudget`]): nothing was written, and retrying
    /// once consumers have drained queues may succeed.
    #[error("{backend} is out of memory while {operation}: {source}")]
    StorageFull {
        /// Which backend.
        backend: &'static str,
        /// What was being done.
        operation: &'static str,
        /// The cause.
        #[source]
        source: BoxError,
    },

    /// An `on_message` hook (or a distributed-application action) failed.
    #[error("on_message of listener {listener} failed: {source}")]
    Hook {
        /// The listener whose hook failed.
        listener: ListenerId,
        /// The hook's error.
        #[source]
        source: BoxError,
    },

    /// `start` and `stop` are reserved in distributed applications.
    #[error("action name {name:?} is reserved")]
    ReservedAction {
        /// The refused name.
        name: String,
    },
}

impl Error {
    /// A [`Error::Repository`] for `operation`, keeping `source`.
    pub fn repository(operation: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Repository {
            operation,
            source: source.into(),
        }
    }

    /// A [`Error::InvalidMessageFormat`].
    pub fn invalid_format(reason: impl Into<String>) -> Self {
        Self::InvalidMessageFormat {
            reason: reason.into(),
        }
    }

    /// Whether retrying the same call later may succeed (storage down, slow
    /// or full).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::OutcomeUnknown { .. } | Self::StorageFull { .. }
        )
    }

    /// The reference's exception class name for this error, which eric's socket
    /// protocol writes as `Name('message')`.
    pub fn reference_name(&self) -> &'static str {
        match self {
            Self::InvalidChannel { .. } | Self::ChannelExists { .. } => "InvalidChannelException",
            Self::InvalidListener { .. } | Self::ListenerExists { .. } => {
                "InvalidListenerException"
            }
            Self::InvalidMember { .. } => "InvalidConnectionException",
            Self::NoMessages { .. } => "NoMessagesException",
            Self::InvalidMessageFormat { .. }
            | Self::InvalidId(_)
            | Self::TooManySubscriptions { .. } => "InvalidMessageFormat",
            Self::ItemNotFound { .. } => "ItemNotFound",
            Self::QueueFull { .. }
            | Self::Repository { .. }
            | Self::Unavailable { .. }
            | Self::OutcomeUnknown { .. }
            | Self::StorageFull { .. } => "RepositoryError",
            Self::Hook { .. } | Self::ReservedAction { .. } => "ListenerError",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_carry_context() {
        let e = Error::QueueFull {
            channel: "c".parse().unwrap(),
            listener: "l".parse().unwrap(),
            bound: QueueBound::Messages(3),
        };
        assert_eq!(
            e.to_string(),
            "queue of listener l on channel c is full (3 messages)"
        );
        let e = Error::QueueFull {
            channel: "c".parse().unwrap(),
            listener: "l".parse().unwrap(),
            bound: QueueBound::Bytes(1024),
        };
        assert_eq!(
            e.to_string(),
            "queue of listener l on channel c is full (1024 bytes)"
        );
        assert_eq!(e.reference_name(), "RepositoryError");
        assert!(!e.is_transient());
    }

    #[test]
    fn repository_errors_keep_their_source() {
        let e = Error::repository("loading channel", std::io::Error::other("disk"));
        assert_eq!(
            e.to_string(),
            "repository error while loading channel: disk"
        );
        assert!(StdError::source(&e).is_some());
    }
}
