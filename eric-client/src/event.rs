//! [`Event`]: a typed message, as the publish/subscribe API sends and
//! reads it. Its type's name is the message type on the wire, its fields
//! the JSON payload, and it may say what it is about (its topic).

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::messages::Message;
use crate::stream::StreamEvent;

/// A typed event.
///
/// ```
/// use eric_client::Event;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
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
/// let event = KernelStatusChanged { service: "q1".into(), status: "idle".into() };
/// let message = eric_client::event_message(&event)?;
/// assert_eq!((message.msg_type.as_str(), message.topic.as_deref()), ("KernelStatusChanged", Some("q1")));
/// # Ok::<(), eric_client::Error>(())
/// ```
pub trait Event: Serialize + DeserializeOwned {
    /// The message type it travels as: what subscribers name. Python's
    /// juice services use the class name, so a Rust type that talks to them
    /// uses the same.
    const TYPE: &'static str;

    /// What this event is about, for topic filters (`a.b` is below `a`);
    /// none by default.
    fn topic(&self) -> Option<String> {
        None
    }
}

/// The message that carries `event`.
pub fn event_message<E: Event>(event: &E) -> Result<Message> {
    let message = Message::json(E::TYPE, event)?;
    Ok(match event.topic() {
        Some(topic) => message.with_topic(topic),
        None => message,
    })
}

impl StreamEvent {
    /// This event as an `E`: `None` if it is of another type, an error if
    /// its data is not an `E`.
    pub fn decode<E: Event>(&self) -> Option<Result<E>> {
        (self.event == E::TYPE).then(|| self.json().map_err(|source| Error::Decode { source }))
    }
}
