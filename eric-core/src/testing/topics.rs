//! The topic-matching rule as data: one table that the unit test of
//! [`TopicFilter::matches`](crate::TopicFilter::matches) checks directly and
//! that end-to-end tests can publish through any engine or face.

/// One row of the table: does `filter` match a message with `topic`?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchCase {
    /// The filter (always a valid [`TopicFilter`](crate::TopicFilter)).
    pub filter: &'static str,
    /// The message's topic (a valid [`Topic`](crate::Topic)), or none.
    pub topic: Option<&'static str>,
    /// The expected answer.
    pub matches: bool,
    /// Why, for the failure message.
    pub why: &'static str,
}

const fn case(
    filter: &'static str,
    topic: Option<&'static str>,
    matches: bool,
    why: &'static str,
) -> MatchCase {
    MatchCase {
        filter,
        topic,
        matches,
        why,
    }
}

/// The rule's cases: the defining examples first, then the edge cases.
pub const MATCH_CASES: &[MatchCase] = &[
    // The defining examples.
    case("a.b", Some("a.b"), true, "a filter matches its own topic"),
    case("a.b", Some("a.b.c"), true, "and the topics below it"),
    case("a.b", Some("a.b.c.d"), true, "at any depth"),
    case("a.b", Some("a.c"), false, "a sibling is not below it"),
    case(
        "a.b",
        Some("a.bb"),
        false,
        "a prefix ending inside a segment",
    ),
    case("a.b", Some("a"), false, "the parent is above it"),
    case(
        "a.b",
        None,
        false,
        "a message without topic matches no filter",
    ),
    case("something", Some("something"), true, "a one-segment filter"),
    case(
        "something",
        Some("something.else"),
        true,
        "below a one-segment filter",
    ),
    case(
        "something",
        Some("somethingelse"),
        false,
        "no segment boundary",
    ),
    case("a", Some("b.a"), false, "a filter anchors at the start"),
    case(
        "a.b.c",
        Some("a.b"),
        false,
        "a deeper filter misses a shallower topic",
    ),
    // A filter ending in the separator already ends on a boundary.
    case(
        "a.",
        Some("a.b"),
        true,
        "a trailing dot selects what is below",
    ),
    case("a.", Some("a.b.c"), true, "at any depth"),
    case("a.", Some("a."), true, "and the topic written the same way"),
    case("a.", Some("a"), false, "but not the parent itself"),
    case(
        "a.",
        Some("ab"),
        false,
        "nor a topic that does not start with it",
    ),
    // Empty segments are segments.
    case("a", Some("a..b"), true, "an empty segment is still below a"),
    case("a..b", Some("a..b"), true, "equal topics match"),
    case(
        "a..b",
        Some("a..b.c"),
        true,
        "below a filter with an empty segment",
    ),
    case("a.b", Some("a..b"), false, "the empty segment is not b"),
    case(
        "a..",
        Some("a..b"),
        true,
        "trailing dot after an empty segment",
    ),
    case(
        ".",
        Some(".x"),
        true,
        "a lone dot: topics whose first segment is empty",
    ),
    case(".", Some("x"), false, "a lone dot is not a wildcard"),
    case(".a", Some(".a.b"), true, "a leading empty segment"),
    case(
        ".a",
        Some("a"),
        false,
        "a leading empty segment is not dropped",
    ),
    // Comparison is exact, byte for byte.
    case("a.b", Some("A.b"), false, "case matters"),
    case("A.B", Some("A.B.c"), true, "case matters both ways"),
    case(
        "caf\u{e9}",
        Some("caf\u{e9}.menu"),
        true,
        "unicode segments",
    ),
    case(
        "caf\u{e9}",
        Some("cafe\u{301}.menu"),
        false,
        "unicode is not normalised",
    ),
    case(
        "\u{1F9CA}",
        Some("\u{1F9CA}\u{1F9CA}"),
        false,
        "no boundary after an emoji",
    ),
    case(
        "a",
        Some("a\u{3002}b"),
        false,
        "an ideographic full stop does not separate",
    ),
    case("a b", Some("a b.c"), true, "spaces are ordinary characters"),
    case("a", Some("a/b"), false, "only the dot separates"),
];
