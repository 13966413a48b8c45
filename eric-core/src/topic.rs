//! Topics: what a message is about ([`Topic`]) and what a consumer wants to
//! hear about ([`TopicFilter`]), with the rule that matches one against the
//! other. [`crate::subscription`] pairs a filter with a message type.
//!
//! ## The matching rule
//!
//! A topic is a string whose `.` separates segments, from the general to the
//! particular (`lab.fridge.temperature`). A filter selects a subtree: it
//! matches a topic equal to it and every topic below it, that is, every
//! topic that starts with the filter followed by a `.`. So filter `a.b`
//! matches `a.b`, `a.b.c` and `a.b.c.d`, but not `a.c`, not `a.bb` (a prefix
//! that stops inside a segment is no match) and not `a` (above the filter).
//! A message without a topic matches no filter.
//!
//! Edge cases, chosen to keep the rule "a prefix that ends on a segment
//! boundary" and nothing more:
//!
//! - A filter ending in `.` already ends on a boundary: `a.` matches `a.`,
//!   `a.b` and `a.b.c` (everything strictly below `a`, written the way
//!   people write it), and not `a`.
//! - Empty segments are segments like any other: `a..b` is `a`, an empty
//!   segment, then `b`. Filter `a` matches it, filter `a.b` does not.
//! - Comparison is byte for byte: case matters (`A.b` is not `a.b`), and
//!   Unicode is not normalised (a precomposed `é` and `e` plus a combining
//!   accent are different topics). Only the ASCII `.` separates: other
//!   full stops (`。`, `．`) are ordinary characters. A `.` byte never occurs
//!   inside a multi-byte UTF-8 character, so a boundary found on bytes is
//!   always a character boundary.
//!
//! Matching allocates nothing: it is a length check, one byte comparison of
//! the prefix and one look at the byte after it.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::id::{IdError, IdErrorReason};

/// Longest accepted topic or topic filter, in bytes.
pub const MAX_TOPIC_LEN: usize = 256;

/// The [`IdError::kind`] of a rejected [`Topic`].
pub const TOPIC_KIND: &str = "topic";

/// The [`IdError::kind`] of a rejected [`TopicFilter`].
pub const TOPIC_FILTER_KIND: &str = "topic filter";

/// The segment separator.
const SEPARATOR: u8 = b'.';

/// Topics and filters share one rule: 1 to [`MAX_TOPIC_LEN`] bytes, no CR,
/// LF or NUL. Those three would end or corrupt a line of the text protocols
/// a topic travels in (an SSE field, a log line); anything else is the
/// publisher's business.
fn validate(kind: &'static str, value: &str) -> Result<(), IdError> {
    let reason = if value.is_empty() {
        IdErrorReason::Empty
    } else if value.len() > MAX_TOPIC_LEN {
        IdErrorReason::TooLong(value.len())
    } else if let Some(c) = value.chars().find(|c| matches!(c, '\r' | '\n' | '\0')) {
        IdErrorReason::Forbidden(c)
    } else {
        return Ok(());
    };
    Err(IdError { kind, reason })
}

macro_rules! define_topic_text {
    ($name:ident, $kind:expr) => {
        impl $name {
            /// Validates `value`.
            pub fn new(value: impl AsRef<str>) -> Result<Self, IdError> {
                let value = value.as_ref();
                validate($kind, value)?;
                Ok(Self(Arc::from(value)))
            }

            /// The text.
            #[inline]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <Cow<'de, str>>::deserialize(d)?;
                Self::new(&*s).map_err(serde::de::Error::custom)
            }
        }
    };
}

/// What a message is about: `.`-separated segments, general first.
///
/// 1 to [`MAX_TOPIC_LEN`] bytes without CR, LF or NUL; a rejected one is an
/// [`IdError`] of kind [`TOPIC_KIND`]. Cloning is cheap (shared text).
///
/// ```
/// use eric_core::Topic;
/// let topic: Topic = "lab.fridge-1.temperature".parse().unwrap();
/// assert_eq!(topic.as_str(), "lab.fridge-1.temperature");
/// assert!("a\nb".parse::<Topic>().is_err());
/// assert_eq!("".parse::<Topic>().unwrap_err().kind, "topic");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

define_topic_text!(Topic, TOPIC_KIND);

/// Selects a topic and everything below it (see the [module docs](self) for
/// the rule and its edge cases).
///
/// Validated like a [`Topic`]; a rejected one is an [`IdError`] of kind
/// [`TOPIC_FILTER_KIND`].
///
/// ```
/// use eric_core::{Topic, TopicFilter};
/// let filter: TopicFilter = "a.b".parse().unwrap();
/// let topic = |t: &str| t.parse::<Topic>().unwrap();
/// assert!(filter.matches(Some(&topic("a.b"))));
/// assert!(filter.matches(Some(&topic("a.b.c"))));
/// assert!(!filter.matches(Some(&topic("a.bb"))));
/// assert!(!filter.matches(Some(&topic("a"))));
/// assert!(!filter.matches(None));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(Arc<str>);

define_topic_text!(TopicFilter, TOPIC_FILTER_KIND);

impl TopicFilter {
    /// Whether `topic` is this filter's topic or lies below it. A message
    /// without a topic matches no filter.
    #[inline]
    pub fn matches(&self, topic: Option<&Topic>) -> bool {
        let Some(topic) = topic else {
            return false;
        };
        let (filter, topic) = (self.0.as_bytes(), topic.0.as_bytes());
        // `get` rather than slicing keeps this panic-free; the filter is never
        // empty, so `last` is always some byte.
        topic.starts_with(filter)
            && match topic.get(filter.len()) {
                None => true,
                Some(&next) => next == SEPARATOR || filter.last() == Some(&SEPARATOR),
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_and_filters_are_validated_alike() {
        for (value, reason) in [
            ("", IdErrorReason::Empty),
            ("a\rb", IdErrorReason::Forbidden('\r')),
            ("a\nb", IdErrorReason::Forbidden('\n')),
            ("a\0", IdErrorReason::Forbidden('\0')),
        ] {
            assert_eq!(Topic::new(value).unwrap_err().reason, reason);
            assert_eq!(TopicFilter::new(value).unwrap_err().reason, reason);
        }
        let longest = "é".repeat(MAX_TOPIC_LEN / 2);
        assert!(Topic::new(&longest).is_ok() && TopicFilter::new(&longest).is_ok());
        let over = format!("{longest}x");
        assert_eq!(
            Topic::new(&over).unwrap_err().reason,
            IdErrorReason::TooLong(MAX_TOPIC_LEN + 1)
        );
        for fine in ["with space", "tab\there", ".", "a..b", "ü.€"] {
            assert!(Topic::new(fine).is_ok(), "{fine:?}");
        }
    }

    #[test]
    fn errors_name_topics() {
        let err = Topic::new("").unwrap_err();
        assert_eq!(err.kind, TOPIC_KIND);
        assert_eq!(err.to_string(), "invalid topic: it is empty");
        let err = TopicFilter::new("a\nb").unwrap_err();
        assert_eq!(err.kind, TOPIC_FILTER_KIND);
        assert!(err.to_string().starts_with("invalid topic filter"), "{err}");
    }

    #[test]
    fn serde_validates() {
        let t: Topic = serde_json::from_str("\"a.b\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"a.b\"");
        assert!(serde_json::from_str::<Topic>("\"a\\nb\"").is_err());
        assert!(serde_json::from_str::<TopicFilter>("\"\"").is_err());
    }
}
