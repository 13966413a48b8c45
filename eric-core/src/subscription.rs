//! [`Subscription`]: a message type, optionally narrowed by a
//! [`TopicFilter`]; what a consumer asks to receive.
//!
//! Kept apart from [`crate::topic`] so that module stays below
//! [`crate::message`] (a message holds a topic; a subscription matches
//! messages) and the module graph keeps no cycle.

use serde::{Deserialize, Serialize};

use crate::message::{Message, MessageType};
use crate::topic::TopicFilter;

/// A message type, optionally narrowed by a topic filter: what a consumer
/// asks to receive.
///
/// Serialises as `{"type": "...", "topic": "..."}`, `topic` left out when
/// there is no filter. Unknown fields are refused, so a misspelt `"topc"`
/// is an error rather than a silent subscription to every topic.
///
/// ```
/// use eric_core::{Message, Subscription, Topic};
/// use serde_json::json;
/// let sub: Subscription = serde_json::from_value(json!({"type": "reading", "topic": "lab"})).unwrap();
/// let reading = Message::try_new("reading", json!(4.2)).unwrap();
/// assert!(!sub.matches(&reading), "no topic, and the subscription has a filter");
/// assert!(sub.matches(&reading.with_topic("lab.fridge".parse::<Topic>().unwrap())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// The type a message must have (equal, no wildcard).
    #[serde(rename = "type")]
    pub msg_type: MessageType,
    /// The topics accepted; `None` accepts any topic, and messages without one.
    #[serde(rename = "topic", default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<TopicFilter>,
}

impl Subscription {
    /// A subscription to `msg_type`, narrowed by `filter` when given.
    pub fn new(msg_type: MessageType, filter: Option<TopicFilter>) -> Self {
        Self { msg_type, filter }
    }

    /// Whether `message` has this type and, under a filter, a matching topic.
    #[inline]
    pub fn matches(&self, message: &Message) -> bool {
        *message.msg_type() == self.msg_type
            && self
                .filter
                .as_ref()
                .is_none_or(|filter| filter.matches(message.topic()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::topic::Topic;

    fn topic(t: &str) -> Topic {
        Topic::new(t).unwrap()
    }

    #[test]
    fn subscription_matches_type_then_topic() {
        let reading = |t: Option<&str>| {
            let m = Message::try_new("reading", json!(1)).unwrap();
            t.map_or(m.clone(), |t| m.with_topic(topic(t)))
        };
        let any = Subscription::new("reading".parse().unwrap(), None);
        assert!(
            any.matches(&reading(None)),
            "no filter: messages without a topic too"
        );
        assert!(any.matches(&reading(Some("x.y"))));
        let other = Message::try_new("Reading", json!(1)).unwrap();
        assert!(!any.matches(&other), "types compare exactly");
        let lab = Subscription::new(
            "reading".parse().unwrap(),
            Some(TopicFilter::new("lab").unwrap()),
        );
        assert!(lab.matches(&reading(Some("lab.fridge"))));
        assert!(!lab.matches(&reading(Some("labs"))));
        assert!(!lab.matches(&reading(None)));
        assert!(!lab.matches(&other.with_topic(topic("lab"))));
    }

    #[test]
    fn subscription_json_shape() {
        let with = Subscription::new("t".parse().unwrap(), Some("a.b".parse().unwrap()));
        let text = serde_json::to_string(&with).unwrap();
        assert_eq!(text, r#"{"type":"t","topic":"a.b"}"#);
        assert_eq!(serde_json::from_str::<Subscription>(&text).unwrap(), with);
        let without = Subscription::new("t".parse().unwrap(), None);
        assert_eq!(serde_json::to_string(&without).unwrap(), r#"{"type":"t"}"#);
        assert_eq!(
            serde_json::from_str::<Subscription>(r#"{"type":"t"}"#).unwrap(),
            without
        );
        for bad in [
            r#"{"type":"t","topic":""}"#,
            r#"{"type":"t","topc":"a"}"#,
            r#"{"topic":"a"}"#,
            r#"{"type":"a\nb"}"#,
        ] {
            assert!(serde_json::from_str::<Subscription>(bad).is_err(), "{bad}");
        }
    }
}
