//! Members (a listener paired with its queue) and the factories that
//! create them for new subscriptions.

use std::fmt;
use std::sync::Arc;

use crate::id::{ListenerId, MemberId};
use crate::listener::Listener;
use crate::queue::Queue;

struct Inner<Q> {
    id: MemberId,
    listener: Listener,
    /// Shared so a new listener object can take over the same queue.
    queue: Arc<Q>,
}

/// A listener, its queue and the member id (distinct from the listener
/// id, as in the reference, which keys its persisted records by it). Cloning
/// is one reference-count increment.
pub struct Member<Q>(Arc<Inner<Q>>);

impl<Q> Member<Q> {
    /// Pairs `listener` with `queue`; a fresh id when `id` is `None`.
    pub fn new(listener: Listener, queue: Q, id: Option<MemberId>) -> Self {
        Self(Arc::new(Inner {
            id: id.unwrap_or_else(MemberId::generate),
            listener,
            queue: Arc::new(queue),
        }))
    }

    /// The member id.
    #[inline]
    pub fn id(&self) -> &MemberId {
        &self.0.id
    }

    /// The listener.
    #[inline]
    pub fn listener(&self) -> &Listener {
        &self.0.listener
    }

    /// The listener's id.
    #[inline]
    pub fn listener_id(&self) -> &ListenerId {
        self.0.listener.id()
    }

    /// The queue.
    #[inline]
    pub fn queue(&self) -> &Q {
        &self.0.queue
    }

    /// This member's listener and queue under another member id (a
    /// registration kept by a shared store, under the id stored there).
    pub fn with_id(&self, id: MemberId) -> Self {
        Self(Arc::new(Inner {
            id,
            listener: self.0.listener.clone(),
            queue: self.0.queue.clone(),
        }))
    }

    /// This member's queue and id with another listener object (a new
    /// hook for a listener that is already registered).
    pub fn with_listener(&self, listener: Listener) -> Self {
        Self(Arc::new(Inner {
            id: self.0.id.clone(),
            listener,
            queue: self.0.queue.clone(),
        }))
    }
}

impl<Q> Clone for Member<Q> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<Q> fmt::Debug for Member<Q> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("id", &self.0.id.as_str())
            .field("listener", &self.0.listener)
            .finish_non_exhaustive()
    }
}

/// Decides which queue a new subscription gets (the reference's
/// `ConnectionsFactory`). One factory serves one channel.
pub trait MemberFactory: Send + Sync + 'static {
    /// The queue type it creates.
    type Queue: Queue;

    /// A new queue for `listener`.
    fn queue(&self, listener: &ListenerId) -> Self::Queue;

    /// Pairs `listener`, or a new default listener, with a new queue.
    fn create(&self, listener: Option<Listener>) -> Member<Self::Queue> {
        let listener = listener.unwrap_or_default();
        let queue = self.queue(listener.id());
        Member::new(listener, queue, None)
    }
}
