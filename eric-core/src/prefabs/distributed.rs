//! [`DistributedListener`]: listeners that send each other signed messages
//! and react by message type (the reference's
//! `SimpleDistributedApplicationListener` and
//! `SimpleDistributedApplicationChannel`).
//!
//! A listener's hook handles `start` and `stop` itself and runs the
//! [`Action`] registered for any other type; what the action returns is
//! signed by the listener and sent back to the message's sender. Deviations
//! from the reference:
//!
//! * `start` and `stop` cannot be registered as actions (the reference's guard
//!   was broken and silently shadowed them): [`Error::ReservedAction`];
//! * an action's error is reported ([`Error::Hook`], a
//!   [`StreamItem::Rejected`](crate::StreamItem::Rejected)), never taken for
//!   "unknown action" (the reference swallowed a `KeyError` raised inside an
//!   action);
//! * replying to an unsigned message is a typed error, not an
//!   `AttributeError`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::channel::{Adapter, Channel, WeakChannel};
use crate::engine::Engine;
use crate::error::{BoxError, Error, Result};
use crate::id::{ChannelId, ListenerId};
use crate::listener::{Listener, OnMessage};
use crate::message::{Message, MessageType};
use crate::sse::SseAdapter;

/// What a listener does with a message of one type: the responses it returns
/// go back, signed, to the message's sender. It runs on the delivery path, so
/// it should be quick.
pub type Action = Arc<dyn Fn(&Message) -> Result<Vec<Message>, BoxError> + Send + Sync>;

/// Message types the hook handles itself: they set the running flag.
const RESERVED: [&str; 2] = ["start", "stop"];

/// A listener's actions, by message type.
#[derive(Clone, Default)]
pub struct Actions {
    actions: BTreeMap<MessageType, Action>,
}

impl Actions {
    /// Sets the action for messages of type `name`, replacing any previous one.
    ///
    /// `start` and `stop` are refused with [`Error::ReservedAction`]; a name
    /// that is not a valid message type (which no message could carry) with
    /// [`Error::InvalidId`].
    pub fn set_action(
        &mut self,
        name: &str,
        action: impl Fn(&Message) -> Result<Vec<Message>, BoxError> + Send + Sync + 'static,
    ) -> Result<&mut Self> {
        if RESERVED.contains(&name) {
            return Err(Error::ReservedAction {
                name: name.to_owned(),
            });
        }
        self.actions
            .insert(MessageType::new(name)?, Arc::new(action));
        Ok(self)
    }

    /// [`Actions::set_action`], by value, for chaining.
    pub fn with_action(
        mut self,
        name: &str,
        action: impl Fn(&Message) -> Result<Vec<Message>, BoxError> + Send + Sync + 'static,
    ) -> Result<Self> {
        self.set_action(name, action)?;
        Ok(self)
    }
}

impl fmt::Debug for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.actions.keys().map(MessageType::as_str))
            .finish()
    }
}

/// A listener of a distributed application, registered on its channel.
pub struct DistributedListener<E: Engine, A: Adapter = SseAdapter> {
    listener: Listener,
    /// Weak so the handle does not keep a dropped channel's state alive.
    channel: WeakChannel<E, A>,
    /// Names the channel in the error once it is gone.
    channel_id: ChannelId,
}

impl<E: Engine, A: Adapter> DistributedListener<E, A> {
    /// Registers a listener (not started) with `actions` on `channel`; a fresh
    /// id when `id` is `None`. If the id is registered already, its queue is
    /// kept and this listener takes it over.
    pub async fn register(
        channel: &Channel<E, A>,
        id: Option<ListenerId>,
        actions: Actions,
    ) -> Result<Self> {
        let hook = DistributedHook {
            actions,
            // A strong reference would be a cycle: channel → listener → hook → channel.
            channel: channel.downgrade(),
            channel_id: channel.id().clone(),
        };
        let member = channel
            .register_listener(Listener::with_hook(id, hook))
            .await?;
        Ok(Self {
            listener: member.listener().clone(),
            channel: channel.downgrade(),
            channel_id: channel.id().clone(),
        })
    }

    /// The listener (start it to receive messages).
    pub fn listener(&self) -> &Listener {
        &self.listener
    }

    /// The listener's id.
    pub fn id(&self) -> &ListenerId {
        self.listener.id()
    }

    /// Sends a message signed by this listener to `receiver` on the channel;
    /// returns its sequence number in the receiver's queue.
    pub async fn dispatch_to(
        &self,
        receiver: &ListenerId,
        msg_type: MessageType,
        payload: Value,
    ) -> Result<u64> {
        let channel = self
            .channel
            .upgrade()
            .ok_or_else(|| Error::InvalidChannel {
                channel: self.channel_id.clone(),
            })?;
        let message = Message::signed(self.id().clone(), msg_type, payload);
        channel.dispatch(receiver, message).await
    }
}

impl<E: Engine, A: Adapter> Clone for DistributedListener<E, A> {
    fn clone(&self) -> Self {
        Self {
            listener: self.listener.clone(),
            channel: self.channel.clone(),
            channel_id: self.channel_id.clone(),
        }
    }
}

impl<E: Engine, A: Adapter> fmt::Debug for DistributedListener<E, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistributedListener")
            .field("listener", &self.listener)
            .field("channel", &self.channel_id)
            .finish()
    }
}

/// The `on_message` hook of a distributed listener.
struct DistributedHook<E: Engine, A: Adapter> {
    actions: Actions,
    channel: WeakChannel<E, A>,
    channel_id: ChannelId,
}

#[async_trait]
impl<E: Engine, A: Adapter> OnMessage for DistributedHook<E, A> {
    async fn on_message(&self, listener: &Listener, message: &Message) -> Result<(), BoxError> {
        match message.msg_type().as_str() {
            "start" => listener.start(),
            "stop" => listener.stop(),
            _ => match self.actions.actions.get(message.msg_type()) {
                Some(action) => {
                    let responses = action(message)?;
                    self.reply(listener, message, responses).await?;
                }
                None => tracing::debug!(
                    listener = %listener.id(),
                    msg_type = %message.msg_type(),
                    "no action for this message type; ignored"
                ),
            },
        }
        Ok(())
    }
}

impl<E: Engine, A: Adapter> DistributedHook<E, A> {
    /// Sends `responses`, signed by `listener`, to the sender of `message`, in
    /// order; the first failure stops the rest, which may depend on it.
    async fn reply(
        &self,
        listener: &Listener,
        message: &Message,
        responses: Vec<Message>,
    ) -> Result<()> {
        if responses.is_empty() {
            return Ok(());
        }
        let receiver = message.sender_id().ok_or_else(|| {
            Error::invalid_format(format!(
                "message of type {:?} is not signed: it has no sender to reply to",
                message.msg_type().as_str()
            ))
        })?;
        let channel = self
            .channel
            .upgrade()
            .ok_or_else(|| Error::InvalidChannel {
                channel: self.channel_id.clone(),
            })?;
        for response in responses {
            let signed = response.resigned(listener.id().clone());
            channel.dispatch(receiver, signed).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &Message) -> Result<Vec<Message>, BoxError> {
        Ok(Vec::new())
    }

    #[test]
    fn reserved_and_invalid_names_are_refused() {
        let mut actions = Actions::default();
        for name in RESERVED {
            let err = actions.set_action(name, none).err().unwrap();
            assert!(matches!(err, Error::ReservedAction { name: ref n } if n == name));
        }
        let err = actions.set_action("a\nb", none).err().unwrap();
        assert!(matches!(err, Error::InvalidId(_)), "{err}");
        let actions = actions.with_action("b", none).unwrap();
        let actions = actions.with_action("a", none).unwrap();
        assert_eq!(format!("{actions:?}"), r#"{"a", "b"}"#);
    }
}
