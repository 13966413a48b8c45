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
//!
//! The rule read backwards gives an index: the filters that match a topic
//! are few and computable from the topic alone ([`Topic::matching_filters`]:
//! the topic itself and its prefixes ending just before or just after each
//! `.`). An engine that keeps its listeners by `(type, filter)` finds a
//! message's audience with one lookup per such filter, never looking at a
//! listener whose filters do not match.

use crate::id::{IdError, define_text, validate_line};

/// Longest accepted topic or topic filter, in bytes.
pub const MAX_TOPIC_LEN: usize = 256;

/// The [`IdError::kind`] of a rejected [`Topic`].
pub const TOPIC_KIND: &str = "topic";

/// The [`IdError::kind`] of a rejected [`TopicFilter`].
pub const TOPIC_FILTER_KIND: &str = "topic filter";

/// The segment separator.
const SEPARATOR: u8 = b'.';

/// Topics and filters share one rule, the one of every text that travels
/// as a line ([`validate_line`]), up to [`MAX_TOPIC_LEN`] bytes: anything
/// but CR, LF and NUL is the publisher's business.
fn validate(kind: &'static str, value: &str) -> Result<(), IdError> {
    validate_line(kind, value, MAX_TOPIC_LEN)
}

define_text!(
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
    Topic,
    TOPIC_KIND,
    validate
);

define_text!(
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
    TopicFilter,
    TOPIC_FILTER_KIND,
    validate
);

#[cfg(feature = "openapi")]
crate::id::text_schema!(
    Topic,
    "What a message is about: `.`-separated segments, general first; 1 to 256 bytes of UTF-8, no CR, LF or NUL.",
    MAX_TOPIC_LEN,
    crate::id::LINE_PATTERN
);

#[cfg(feature = "openapi")]
crate::id::text_schema!(
    TopicFilter,
    "Selects a topic and every topic below it (`a.b` matches `a.b` and `a.b.c`, not `a.bb`); validated like a topic.",
    MAX_TOPIC_LEN,
    crate::id::LINE_PATTERN
);

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

impl Topic {
    /// Every filter that matches this topic, as the filter's text: the topic
    /// itself, and for each `.` the prefix before it and (when it is not
    /// the last byte) the prefix through it. At most `2 × dots + 1` of
    /// them, each once, shortest first; each a valid [`TopicFilter`] text.
    ///
    /// ```
    /// use eric_core::Topic;
    /// let topic: Topic = "a.b.c".parse().unwrap();
    /// let filters: Vec<&str> = topic.matching_filters().collect();
    /// assert_eq!(filters, ["a", "a.", "a.b", "a.b.", "a.b.c"]);
    /// ```
    pub fn matching_filters(&self) -> impl Iterator<Item = &str> {
        let text = self.as_str();
        let bytes = text.as_bytes();
        let last = bytes.len() - 1;
        // A `.` at i ends filter `text[..i]` (the topic continues with a
        // `.`) and filter `text[..=i]` (a filter ending in `.`, when the
        // topic goes on past it). `text[..i]` was already yielded as the
        // previous dot's `text[..=i-1]` when the byte before is a `.` too
        // (`a..b`), and is no filter at all when empty.
        bytes
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == SEPARATOR)
            .flat_map(move |(i, _)| {
                let before = (i > 0 && bytes[i - 1] != SEPARATOR).then(|| &text[..i]);
                let through = (i < last).then(|| &text[..=i]);
                before.into_iter().chain(through)
            })
            .chain(std::iter::once(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::IdErrorReason;

    /// Every string of up to `len` bytes over `alphabet`.
    fn strings(alphabet: &[char], len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut layer = vec![String::new()];
        for _ in 0..len {
            layer = layer
                .iter()
                .flat_map(|s| alphabet.iter().map(move |c| format!("{s}{c}")))
                .collect();
            all.extend(layer.iter().cloned());
        }
        all
    }

    #[test]
    fn matching_filters_are_exactly_the_matching_ones() {
        // Exhaustive over short strings of `a`, `b` and `.`: the index's
        // candidates and the rule agree on every (filter, topic) pair.
        let all = strings(&['a', 'b', '.'], 5);
        let topics: Vec<Topic> = all.iter().filter_map(|s| Topic::new(s).ok()).collect();
        let filters: Vec<TopicFilter> = all
            .iter()
            .filter_map(|s| TopicFilter::new(s).ok())
            .collect();
        for topic in &topics {
            let candidates: Vec<&str> = topic.matching_filters().collect();
            let mut unique = candidates.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), candidates.len(), "{topic}: {candidates:?}");
            for filter in &filters {
                assert_eq!(
                    filter.matches(Some(topic)),
                    candidates.contains(&filter.as_str()),
                    "filter {filter:?}, topic {topic:?}"
                );
            }
        }
    }

    #[test]
    fn matching_filters_of_unicode_cut_on_dots_only() {
        let topic = Topic::new("ü.€").unwrap();
        let filters: Vec<&str> = topic.matching_filters().collect();
        assert_eq!(filters, ["ü", "ü.", "ü.€"]);
    }

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
