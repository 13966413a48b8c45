//! [`Subscription`]: a message type, optionally narrowed by a
//! [`TopicFilter`]; what a consumer asks to receive. [`Subscriptions`]: the
//! set a listener holds, and [`SubscriptionChange`], how it changes.
//!
//! Kept apart from [`crate::topic`] so that module stays below
//! [`crate::message`] (a message holds a topic; a subscription matches
//! messages) and the module graph keeps no cycle.
//!
//! A listener with no subscriptions receives every broadcast (what every
//! listener did before subscriptions existed); with some, a broadcast
//! reaches it when one of them matches. A dispatch names its listener and
//! ignores them.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::ListenerId;
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
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(
        description = "A message type, optionally narrowed by a topic filter; `topic` left out: any topic, and none."
    )
)]
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

/// The subscriptions a listener holds: a set (no two equal), in the order
/// they were first added. Empty means every broadcast. Cloning shares it.
///
/// Serialises as a JSON array of [`Subscription`]s; deserialising drops
/// repeats (a client may send the same one twice).
///
/// ```
/// use eric_core::{Message, Subscription, Subscriptions};
/// use serde_json::json;
/// let subs: Subscriptions =
///     serde_json::from_value(json!([{"type": "reading", "topic": "lab"}])).unwrap();
/// let status = Message::try_new("status", json!("up")).unwrap();
/// assert!(!subs.admits(&status));
/// assert!(Subscriptions::default().admits(&status), "no subscriptions: everything");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscriptions(Arc<[Subscription]>);

impl Subscriptions {
    /// The set of `subscriptions`, repeats dropped (the first one kept).
    pub fn new(subscriptions: impl IntoIterator<Item = Subscription>) -> Self {
        // A set on the side keeps this linear: the list may come from a
        // request body of many thousands.
        let mut seen = HashSet::new();
        let list: Vec<Subscription> = subscriptions
            .into_iter()
            .filter(|s| seen.insert(s.clone()))
            .collect();
        Self(list.into())
    }

    /// The subscriptions, in the order they were first added.
    #[inline]
    pub fn as_slice(&self) -> &[Subscription] {
        &self.0
    }

    /// How many.
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (the listener receives every broadcast).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a broadcast of `message` reaches a listener holding these:
    /// always when there are none, else when one matches.
    #[inline]
    pub fn admits(&self, message: &Message) -> bool {
        self.0.is_empty() || self.0.iter().any(|s| s.matches(message))
    }

    /// Fails unless these fit in `limit` (a channel's `max_subscriptions`).
    pub fn check_limit(&self, listener: &ListenerId, limit: usize) -> Result<()> {
        if self.len() > limit {
            return Err(Error::TooManySubscriptions {
                listener: listener.clone(),
                count: self.len(),
                limit,
            });
        }
        Ok(())
    }
}

impl FromIterator<Subscription> for Subscriptions {
    fn from_iter<I: IntoIterator<Item = Subscription>>(iter: I) -> Self {
        Self::new(iter)
    }
}

/// An array of [`Subscription`]s, as it serialises.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Subscriptions {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::{ArrayBuilder, Ref};
        ArrayBuilder::new()
            .items(Ref::from_schema_name(
                <Subscription as utoipa::ToSchema>::name(),
            ))
            .description(Some(
                "A set of subscriptions, in the order first added (none: every broadcast).",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Subscriptions {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        use utoipa::{PartialSchema, ToSchema};
        schemas.push((
            <Subscription as ToSchema>::name().into(),
            <Subscription as PartialSchema>::schema(),
        ));
        <Subscription as ToSchema>::schemas(schemas);
    }
}

impl Serialize for Subscriptions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Subscriptions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Vec::<Subscription>::deserialize(d).map(Self::new)
    }
}

/// A change to a listener's subscriptions, applied atomically: a broadcast
/// sees the set before or after it, never part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionChange {
    /// The set becomes this one.
    Replace(Subscriptions),
    /// These go (absent ones are ignored), then these come (present ones
    /// are kept where they are).
    Edit {
        /// Subscriptions to remove.
        remove: Vec<Subscription>,
        /// Subscriptions to add.
        add: Vec<Subscription>,
    },
}

impl SubscriptionChange {
    /// The set `current` becomes, checked against `limit` for `listener`.
    pub fn apply(
        &self,
        listener: &ListenerId,
        current: &Subscriptions,
        limit: usize,
    ) -> Result<Subscriptions> {
        let next = match self {
            Self::Replace(set) => set.clone(),
            Self::Edit { remove, add } => {
                let remove: HashSet<&Subscription> = remove.iter().collect();
                current
                    .as_slice()
                    .iter()
                    .filter(|s| !remove.contains(s))
                    .chain(add)
                    .cloned()
                    .collect()
            }
        };
        next.check_limit(listener, limit)?;
        Ok(next)
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

    fn sub(t: &str, f: Option<&str>) -> Subscription {
        Subscription::new(t.parse().unwrap(), f.map(|f| f.parse().unwrap()))
    }

    #[test]
    fn a_set_keeps_first_insertion_order_and_no_repeats() {
        let set = Subscriptions::new([sub("a", None), sub("b", Some("x")), sub("a", None)]);
        assert_eq!(set.as_slice(), &[sub("a", None), sub("b", Some("x"))]);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"[{"type":"a"},{"type":"b","topic":"x"}]"#);
        let back: Subscriptions =
            serde_json::from_str(r#"[{"type":"a"},{"type":"a"},{"type":"b","topic":"x"}]"#)
                .unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn changes_remove_then_add_and_respect_the_limit() {
        let id: ListenerId = "l".parse().unwrap();
        let current = Subscriptions::new([sub("a", None), sub("b", None)]);
        let edit = SubscriptionChange::Edit {
            remove: vec![sub("a", None), sub("zz", None)],
            add: vec![sub("c", None), sub("b", None), sub("a", None)],
        };
        let next = edit.apply(&id, &current, 10).unwrap();
        assert_eq!(
            next.as_slice(),
            &[sub("b", None), sub("c", None), sub("a", None)],
            "a removed one added back goes last; a present one stays put"
        );
        let err = edit.apply(&id, &current, 2).unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooManySubscriptions {
                    count: 3,
                    limit: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        let replace = SubscriptionChange::Replace(Subscriptions::default());
        assert!(replace.apply(&id, &next, 0).unwrap().is_empty());
    }

    #[test]
    fn admits_everything_when_empty_else_a_match() {
        let m = Message::try_new("a", json!(1)).unwrap();
        assert!(Subscriptions::default().admits(&m));
        assert!(Subscriptions::new([sub("a", None)]).admits(&m));
        assert!(!Subscriptions::new([sub("b", None)]).admits(&m));
        assert!(!Subscriptions::new([sub("a", Some("t"))]).admits(&m));
    }
}
