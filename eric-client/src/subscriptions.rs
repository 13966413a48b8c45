//! [`Subscription`] and the calls on a listener's subscriptions
//! (`/v1/channels/{c}/listeners/{l}/subscriptions`), plus creating a
//! listener that holds some from the start and the channel's stream
//! filtered by some.
//!
//! A listener with no subscriptions receives every broadcast; with some, a
//! broadcast whose type equals one's type and whose topic its filter
//! matches (the filter `a.b` matches the topics `a.b` and `a.b.c`, not
//! `a.bb`; no filter matches any topic, or none). The server applies the
//! rule; this crate only names the subscriptions.

use std::fmt;
use std::str::FromStr;

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::listeners::listener_path;
use crate::stream::StreamRequest;

/// A message type, and optionally a topic filter: what a listener asks to
/// receive.
///
/// Its text form, as `eric subscribe --filter` and the channel stream's
/// `filter` parameter write it, is `TYPE` or `TYPE:FILTER`, split at the
/// first `:`:
///
/// ```
/// use eric_client::Subscription;
///
/// let sub: Subscription = "KernelStatusChanged:q1.kernel".parse()?;
/// assert_eq!(sub, Subscription::new("KernelStatusChanged", Some("q1.kernel")));
/// assert_eq!(sub.to_string(), "KernelStatusChanged:q1.kernel");
/// assert_eq!("Ping".parse::<Subscription>()?.topic, None);
/// assert!("Ping:".parse::<Subscription>().is_err());
/// # Ok::<(), eric_client::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Subscription {
    /// The message type, matched exactly.
    #[serde(rename = "type")]
    pub msg_type: String,
    /// The topic filter; none matches every topic, and messages without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl Subscription {
    /// Messages of type `msg_type`, about `topic` (or below it) if given.
    pub fn new(msg_type: impl Into<String>, topic: Option<&str>) -> Self {
        Self {
            msg_type: msg_type.into(),
            topic: topic.map(str::to_owned),
        }
    }

    /// Events `E`, about `topic` (or below it) if given.
    pub fn to<E: Event>(topic: Option<&str>) -> Self {
        Self::new(E::TYPE, topic)
    }

    /// Its text form, refused when the type holds a `:` (the form splits at
    /// the first one, so it would read back as another subscription).
    pub fn filter(&self) -> Result<String> {
        if self.msg_type.contains(':') {
            return Err(Error::InvalidSubscription {
                subscription: self.msg_type.clone(),
                reason: "a type holding ':' cannot be written as a filter (TYPE[:TOPIC])",
            });
        }
        Ok(self.to_string())
    }
}

impl fmt::Display for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.topic {
            Some(topic) => write!(f, "{}:{topic}", self.msg_type),
            None => f.write_str(&self.msg_type),
        }
    }
}

impl FromStr for Subscription {
    type Err = Error;

    /// `TYPE` or `TYPE:FILTER`, split at the first `:`. An empty type or
    /// filter is refused here; anything else the server checks.
    fn from_str(text: &str) -> Result<Self> {
        let refuse = |reason| Error::InvalidSubscription {
            subscription: text.to_owned(),
            reason,
        };
        let (msg_type, topic) = match text.split_once(':') {
            Some((msg_type, topic)) => (msg_type, Some(topic)),
            None => (text, None),
        };
        if msg_type.is_empty() {
            return Err(refuse("the type is empty (write TYPE or TYPE:TOPIC)"));
        }
        if topic == Some("") {
            return Err(refuse(
                "the topic filter after ':' is empty (leave the ':' out to match every topic)",
            ));
        }
        Ok(Self::new(msg_type, topic))
    }
}

/// A listener's subscriptions, as the server answers.
#[derive(Deserialize)]
struct Held {
    subscriptions: Vec<Subscription>,
}

#[derive(Serialize)]
struct NewListener<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    subscriptions: &'a [Subscription],
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Serialize)]
struct Replace<'a> {
    subscriptions: &'a [Subscription],
}

#[derive(Serialize)]
struct Change<'a> {
    add: &'a [Subscription],
    remove: &'a [Subscription],
}

impl Client {
    /// Adds a listener holding `subscriptions` from its first broadcast on
    /// (it never sees one they do not match), and returns its id: `id`, or
    /// a new UUID. An id that exists keeps its queue and gets this set in
    /// place of its own.
    pub async fn add_listener_with(
        &self,
        channel: impl AsRef<str>,
        id: Option<&str>,
        subscriptions: &[Subscription],
    ) -> Result<String> {
        let path = ["v1", "channels", channel.as_ref(), "listeners"];
        let body = NewListener { id, subscriptions };
        let created: Created = self.post(&path, Some(&body)).await?;
        Ok(created.id)
    }

    /// A channel's broadcasts that match one of `subscriptions` (its
    /// ephemeral stream: `?filter=TYPE[:TOPIC]` per subscription; none
    /// means every broadcast), on a temporary listener as
    /// [`channel_events`](Self::channel_events). Fails if a subscription
    /// cannot be written as a filter (its type holds a `:`).
    pub fn channel_events_matching(
        &self,
        channel: impl AsRef<str>,
        subscriptions: &[Subscription],
    ) -> Result<StreamRequest> {
        let mut request = self.channel_events(channel);
        for subscription in subscriptions {
            request = request.query_pair("filter", &subscription.filter()?);
        }
        Ok(request)
    }

    /// The subscriptions a listener holds, in the order they were added.
    pub async fn subscriptions(
        &self,
        channel: impl AsRef<str>,
        listener: impl AsRef<str>,
    ) -> Result<Vec<Subscription>> {
        let path = subscriptions_path(channel.as_ref(), listener.as_ref());
        let held: Held = self.get(&path).await?;
        Ok(held.subscriptions)
    }

    /// Replaces a listener's subscriptions with `subscriptions` (none: it
    /// receives every broadcast again); the set now held comes back.
    pub async fn set_subscriptions(
        &self,
        channel: impl AsRef<str>,
        listener: impl AsRef<str>,
        subscriptions: &[Subscription],
    ) -> Result<Vec<Subscription>> {
        let path = subscriptions_path(channel.as_ref(), listener.as_ref());
        let body = Replace { subscriptions };
        let held: Held = self.send_json(Method::PUT, &path, &body).await?;
        Ok(held.subscriptions)
    }

    /// Removes `remove` from a listener's subscriptions, then adds `add`,
    /// in one change no broadcast sees half of; the set now held comes
    /// back. Removing one it does not hold, or adding one it does, is no
    /// error.
    pub async fn change_subscriptions(
        &self,
        channel: impl AsRef<str>,
        listener: impl AsRef<str>,
        add: &[Subscription],
        remove: &[Subscription],
    ) -> Result<Vec<Subscription>> {
        let path = subscriptions_path(channel.as_ref(), listener.as_ref());
        let body = Change { add, remove };
        let held: Held = self.send_json(Method::PATCH, &path, &body).await?;
        Ok(held.subscriptions)
    }
}

fn subscriptions_path<'a>(channel: &'a str, listener: &'a str) -> Vec<&'a str> {
    listener_path(channel, listener, Some("subscriptions"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_text_form_splits_at_the_first_colon() {
        let sub: Subscription = "T:a:b".parse().unwrap();
        assert_eq!(sub, Subscription::new("T", Some("a:b")));
        assert_eq!(sub.filter().unwrap(), "T:a:b");
        assert!(":a".parse::<Subscription>().is_err());
        assert!("".parse::<Subscription>().is_err());
        let colon_type = Subscription::new("ns:T", None);
        assert!(matches!(
            colon_type.filter(),
            Err(Error::InvalidSubscription { .. })
        ));
    }

    #[test]
    fn the_wire_shape_leaves_out_a_missing_topic() {
        let subs = [
            Subscription::new("A", None),
            Subscription::new("B", Some("x")),
        ];
        let body = serde_json::to_string(&Change {
            add: &subs,
            remove: &[],
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"add":[{"type":"A"},{"type":"B","topic":"x"}],"remove":[]}"#
        );
    }
}
