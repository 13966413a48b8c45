//! Topics through any engine: the matching rule as data (one table that
//! the unit test of [`TopicFilter::matches`](crate::TopicFilter::matches)
//! checks directly and that end-to-end tests can publish through any engine
//! or face), and the cases proving a message's topic survives every path a
//! message takes through an [`Engine`](crate::Engine).

use futures_util::StreamExt;
use serde_json::json;

use super::EngineFixture;
use super::behaviour::{channel, channel_with, msg, next_message};
use crate::channel::{Channel, ChannelSettings, MessageStream, StreamItem, StreamOptions};
use crate::error::{Error, QueueBound};
use crate::message::Message;
use crate::queue::stored_size;
use crate::sse::{SseAdapter, SseMessage};
use crate::topic::Topic;

/// One row of the table: does `filter` match a message with `topic`?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchCase {
    /// The filter (always a valid [`TopicFilter`](crate::TopicFilter)).
    pub filter: &'static str,
    /// The message's topic (a valid [`Topic`]), or none.
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

fn about(t: &str, n: i64, topic: &str) -> Message {
    msg(t, json!(n)).with_topic(Topic::new(topic).unwrap())
}

fn topic_of(message: &Message) -> Option<&str> {
    message.topic().map(Topic::as_str)
}

/// `dispatch` then `deliver_next`: the topic comes back, a message without
/// one still has none, and the engine counts the topic's bytes exactly as
/// [`stored_size`] does (a bound of that size admits it, one byte less
/// refuses it).
pub async fn a_topic_survives_dispatch_and_deliver_next<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    ch.dispatch(l.id(), about("t", 1, "lab.fridge-1"))
        .await
        .unwrap();
    ch.dispatch(l.id(), msg("t", json!(2))).await.unwrap();
    let first = ch.deliver_next(l.id()).await.unwrap();
    assert_eq!(topic_of(&first.message), Some("lab.fridge-1"));
    assert_eq!(first.message, about("t", 1, "lab.fridge-1"));
    let second = ch.deliver_next(l.id()).await.unwrap();
    assert_eq!(topic_of(&second.message), None);

    let m = about("t", 3, "caf\u{e9}.\"quoted\"");
    for (max_bytes, fits) in [(stored_size(&m), true), (stored_size(&m) - 1, false)] {
        let tight = channel_with(
            f,
            ChannelSettings {
                queue_max_bytes: max_bytes,
                ..Default::default()
            },
        );
        let l = tight.add_listener().await.unwrap();
        let outcome = tight.dispatch(l.id(), m.clone()).await;
        match (fits, outcome) {
            (true, Ok(_)) => {
                tight.start_listener(l.id()).await.unwrap();
                assert_eq!(tight.deliver_next(l.id()).await.unwrap().message, m);
            }
            (
                false,
                Err(Error::QueueFull {
                    bound: QueueBound::Bytes(_),
                    ..
                }),
            ) => {}
            (fits, other) => panic!("bound {max_bytes} (fits: {fits}): {other:?}"),
        }
    }
}

/// A broadcast gives every listener the topic.
pub async fn a_topic_survives_broadcast<F: EngineFixture>(f: &F) {
    let ch = channel(f);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let l = ch.add_listener().await.unwrap();
        ch.start_listener(l.id()).await.unwrap();
        ids.push(l.id().clone());
    }
    let b = ch.broadcast(&about("news", 1, "a.b.c")).await.unwrap();
    assert_eq!((b.delivered, b.full.len()), (3, 0));
    for id in &ids {
        let d = ch.deliver_next(id).await.unwrap();
        assert_eq!(topic_of(&d.message), Some("a.b.c"), "listener {id}");
    }
    let mut w = ch.watch().await.unwrap();
    ch.broadcast(&about("news", 2, "a")).await.unwrap();
    assert_eq!(topic_of(&next_message(&mut w).await.message), Some("a"));
    w.close().await.unwrap();
}

async fn next_sse(stream: &mut MessageStream<SseMessage>) -> SseMessage {
    match super::within("an SSE event", stream.next()).await {
        Some(StreamItem::Message(event)) => event,
        other => panic!("expected an SSE event, got {other:?}"),
    }
}

/// An SSE stream exposes each event's topic, and a stream resumed after a
/// `Last-Event-ID` replays the rest with their topics. On the wire the topic
/// is one `topic:` line after `event:`; an event without one is written as
/// before topics.
pub async fn a_topic_survives_an_sse_stream_and_its_resume<F: EngineFixture>(f: &F) {
    let ch: Channel<F::Engine, SseAdapter> =
        Channel::new(&f.engine(), None, ChannelSettings::default()).unwrap();
    let l = ch.add_listener().await.unwrap();
    ch.start_listener(l.id()).await.unwrap();
    ch.dispatch(l.id(), about("t", 1, "a")).await.unwrap();
    ch.dispatch(l.id(), msg("t", json!(2))).await.unwrap();
    ch.dispatch(l.id(), about("t", 3, "a.b")).await.unwrap();
    let mut s = ch.message_stream(&l).await.unwrap();
    let first = next_sse(&mut s).await;
    assert_eq!(first.topic().map(Topic::as_str), Some("a"));
    let plain = SseMessage {
        message: msg("t", json!(1)),
        ..first.clone()
    };
    assert_eq!(
        first.encode(),
        plain
            .encode()
            .replacen("event: t\n", "event: t\ntopic: a\n", 1),
        "the topic is one line after the type"
    );
    assert_eq!(next_sse(&mut s).await.topic(), None);
    assert_eq!(
        next_sse(&mut s).await.topic().map(Topic::as_str),
        Some("a.b")
    );
    // The client got only the first before its stream dropped.
    drop(s);
    ch.dispatch(l.id(), about("t", 4, "c")).await.unwrap();
    let mut resumed = ch
        .stream(
            l.id(),
            StreamOptions {
                last_event_id: Some(first.seq),
            },
        )
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let event = next_sse(&mut resumed).await;
        got.push((event.seq, event.topic().map(|t| t.as_str().to_owned())));
    }
    assert_eq!(
        got,
        [
            (2, None),
            (3, Some("a.b".to_owned())),
            (4, Some("c".to_owned()))
        ]
    );
}

#[cfg(test)]
mod tests {
    use super::MATCH_CASES;
    use crate::topic::{Topic, TopicFilter};

    /// The table against the rule itself; the suites run it on the engines.
    #[test]
    fn the_matching_table_holds() {
        for case in MATCH_CASES {
            let filter = TopicFilter::new(case.filter).unwrap();
            let topic = case.topic.map(|t| Topic::new(t).unwrap());
            assert_eq!(
                filter.matches(topic.as_ref()),
                case.matches,
                "filter {:?} against topic {:?}: {}",
                case.filter,
                case.topic,
                case.why
            );
        }
    }
}
