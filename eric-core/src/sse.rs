//! Server-Sent Events: the SSE adapter and a WHATWG-correct encoder.
//!
//! [`SseAdapter`] turns a delivery into an [`SseMessage`]: `id` (the
//! listener's sequence number, which clients send back as `Last-Event-ID`),
//! `event` (the message type), `retry` and `data` (the payload as JSON, where
//! the reference wrote Python's `str()` of it). Building one shares the
//! message; encoding copies the payload's JSON text straight into the output
//! buffer (one `data:` line, or one per line of a pretty-printed payload).
//!
//! [`SseEvent`] is any event (comments, server notices). Its encoder splits
//! multi-line data into one `data:` line per line (CR, LF and CRLF all split),
//! and CR, LF and NUL never reach an `id` or `event` line, so no field can
//! inject another.

use std::io::Write as _;

use crate::adapter::Adapter;
use crate::message::Message;
use crate::queue::Delivery;
use crate::settings::ChannelSettings;
use crate::topic::Topic;

/// One SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `id` field.
    pub id: Option<String>,
    /// The `event` field (the event type; `message` when absent).
    pub event: Option<String>,
    /// The `topic` field: eric's own, after `event` (see [`SseMessage`]).
    pub topic: Option<String>,
    /// The `retry` field, in milliseconds.
    pub retry: Option<u64>,
    /// The `data` field; may hold line breaks.
    pub data: Option<String>,
}

impl SseEvent {
    /// The wire text of this event, ending with the blank line.
    pub fn encode(&self) -> String {
        let mut out = Vec::with_capacity(self.data.as_ref().map_or(0, String::len) + 64);
        self.encode_into(&mut out);
        into_text(out)
    }

    /// Appends the wire text of this event to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        if let Some(id) = &self.id {
            // A NUL makes clients ignore the id; CR and LF would end the line.
            push_field(out, "id", id, |c| matches!(c, '\r' | '\n' | '\0'));
        }
        if let Some(event) = &self.event {
            push_field(out, "event", event, |c| matches!(c, '\r' | '\n'));
        }
        if let Some(topic) = &self.topic {
            push_field(out, "topic", topic, |c| matches!(c, '\r' | '\n' | '\0'));
        }
        if let Some(retry) = self.retry {
            let _ = writeln!(out, "retry: {retry}");
        }
        if let Some(data) = &self.data {
            for line in split_lines(data) {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
        out.push(b'\n');
    }
}

/// A message as an SSE event: what the SSE channel's streams yield.
#[derive(Debug, Clone, PartialEq)]
pub struct SseMessage {
    /// The `id` field: the message's sequence number in its queue.
    pub seq: u64,
    /// The message: its type is the `event`, its payload the JSON `data`.
    pub message: Message,
    /// The `retry` field, in milliseconds; `None` leaves it out (a server
    /// may send it once per stream rather than on every event).
    pub retry_ms: Option<u64>,
}

impl SseMessage {
    /// The wire text of this event, ending with the blank line.
    pub fn encode(&self) -> String {
        let mut out = Vec::with_capacity(128);
        self.encode_into(&mut out);
        into_text(out)
    }

    /// Appends the wire text of this event to `out`.
    ///
    /// A message with a topic gets a `topic:` line after `event:`. The SSE
    /// format has no field for it, and a field it does not know is ignored
    /// by every conforming parser, a browser's `EventSource` included: such
    /// clients read the event exactly as before, while eric's clients read
    /// the topic. A message without one is written as it always was.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // The type is a `MessageType` and the topic a `Topic`: neither holds
        // CR, LF or NUL.
        let _ = write!(
            out,
            "id: {}\nevent: {}\n",
            self.seq,
            self.message.msg_type()
        );
        if let Some(topic) = self.message.topic() {
            let _ = writeln!(out, "topic: {topic}");
        }
        if let Some(retry) = self.retry_ms {
            let _ = writeln!(out, "retry: {retry}");
        }
        let payload = self.message.payload().get();
        if payload.contains(['\r', '\n']) {
            // Pretty-printed JSON as it arrived: its line breaks are
            // whitespace, so clients joining the lines get the same value.
            for line in split_lines(payload) {
                out.extend_from_slice(b"data: ");
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        } else {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(payload.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
    }

    /// The message's topic, if it has one (its `topic:` line).
    #[inline]
    pub fn topic(&self) -> Option<&Topic> {
        self.message.topic()
    }

    /// The same event as a general [`SseEvent`].
    pub fn to_event(&self) -> SseEvent {
        SseEvent {
            id: Some(self.seq.to_string()),
            event: Some(self.message.msg_type().as_str().to_owned()),
            topic: self.message.topic().map(|t| t.as_str().to_owned()),
            retry: self.retry_ms,
            data: Some(self.message.payload().get().to_owned()),
        }
    }
}

/// Our encoders only write `str` content, so the bytes are UTF-8.
fn into_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// A comment line (clients ignore it; proxies see traffic), for keep-alives.
pub fn comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    for line in split_lines(text) {
        out.push_str(": ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    out
}

fn push_field(out: &mut Vec<u8>, name: &str, value: &str, forbidden: fn(char) -> bool) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    for c in value.chars().filter(|c| !forbidden(*c)) {
        let mut utf8 = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
    }
    out.push(b'\n');
}

/// Splits on CRLF, CR and LF, as an SSE parser does; `""` gives one empty line.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(i) => {
                let skip = if current[i..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = Some(&current[i + skip..]);
                Some(&current[..i])
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// The SSE channel's adapter: deliveries become [`SseMessage`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseAdapter {
    /// The `retry` hint, in milliseconds.
    pub retry_ms: u64,
}

impl Adapter for SseAdapter {
    type Output = SseMessage;

    fn from_settings(settings: &ChannelSettings) -> Self {
        Self {
            retry_ms: settings.retry_ms,
        }
    }

    fn adapt(&self, delivery: &Delivery) -> SseMessage {
        SseMessage {
            seq: delivery.seq,
            message: delivery.message.clone(),
            retry_ms: Some(self.retry_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::message::Message;

    /// The parsing algorithm of the WHATWG HTML standard, section 9.2.6, for
    /// the fields we write: returns (id, event, data) per dispatched event.
    fn parse(stream: &str) -> Vec<(String, String, String)> {
        let (mut events, mut id, mut event, mut data) =
            (vec![], String::new(), String::new(), String::new());
        for line in split_lines(stream) {
            if line.is_empty() {
                if !data.is_empty() {
                    data.pop();
                    events.push((
                        id.clone(),
                        std::mem::take(&mut event),
                        std::mem::take(&mut data),
                    ));
                }
                event.clear();
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" if !value.contains('\0') => id = value.to_owned(),
                "event" => event = value.to_owned(),
                "data" => {
                    data.push_str(value);
                    data.push('\n');
                }
                _ => {}
            }
        }
        events
    }

    #[test]
    fn adapts_with_id_event_retry_and_json_data() {
        let d = Delivery {
            seq: 7,
            message: Message::try_new("hello", json!({"a": [1, "x"], "b": null, "c": true}))
                .unwrap(),
        };
        let e = SseAdapter { retry_ms: 5 }.adapt(&d);
        let wire =
            "id: 7\nevent: hello\nretry: 5\ndata: {\"a\":[1,\"x\"],\"b\":null,\"c\":true}\n\n";
        assert_eq!(e.encode(), wire);
        assert_eq!(e.to_event().encode(), wire);
    }

    #[test]
    fn payload_line_breaks_stay_inside_one_data_line() {
        let d = Delivery {
            seq: 1,
            message: Message::try_new("ü", json!("a\nb\r\nc")).unwrap(),
        };
        let e = SseMessage {
            retry_ms: None,
            ..SseAdapter { retry_ms: 5 }.adapt(&d)
        };
        assert_eq!(e.encode(), "id: 1\nevent: ü\ndata: \"a\\nb\\r\\nc\"\n\n");
        assert_eq!(
            parse(&e.encode()),
            [("1".into(), "ü".into(), "\"a\\nb\\r\\nc\"".into())]
        );
    }

    #[test]
    fn null_payload_still_dispatches() {
        let d = Delivery {
            seq: 1,
            message: Message::try_new("nopayload", json!(null)).unwrap(),
        };
        let text = SseAdapter { retry_ms: 5 }.adapt(&d).encode();
        assert_eq!(
            parse(&text),
            [("1".into(), "nopayload".into(), "null".into())]
        );
    }

    #[test]
    fn pretty_printed_payloads_become_several_data_lines_of_the_same_json() {
        let raw =
            serde_json::value::RawValue::from_string("{\n  \"a\": [1,\r\n 2]\n}".into()).unwrap();
        let d = Delivery {
            seq: 3,
            message: Message::with_raw_payload("t".parse().unwrap(), raw).unwrap(),
        };
        let text = SseAdapter { retry_ms: 5 }.adapt(&d).encode();
        assert_eq!(text.matches("data: ").count(), 4);
        let (_, _, data) = &parse(&text)[0];
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(data).unwrap(),
            json!({"a": [1, 2]})
        );
    }

    /// The topic is a line of its own after `event:`, which a conforming
    /// parser (a browser's) skips: the event reads as it would without it.
    #[test]
    fn a_topic_is_a_line_conforming_parsers_skip() {
        let plain = Message::new("t".parse().unwrap(), json!(1));
        let topical = plain.clone().with_topic(Topic::new("kernel.q1").unwrap());
        let with = SseMessage {
            seq: 4,
            message: topical,
            retry_ms: None,
        };
        let without = SseMessage {
            seq: 4,
            message: plain,
            retry_ms: None,
        };
        assert_eq!(
            with.encode(),
            "id: 4\nevent: t\ntopic: kernel.q1\ndata: 1\n\n"
        );
        assert_eq!(without.encode(), "id: 4\nevent: t\ndata: 1\n\n");
        assert_eq!(parse(&with.encode()), parse(&without.encode()));
        assert_eq!(with.to_event().encode(), with.encode());
    }

    #[test]
    fn multi_line_data_round_trips_for_every_line_ending() {
        let e = SseEvent {
            data: Some("line1\nline2\r\nline3\rline4\n".into()),
            ..Default::default()
        };
        assert_eq!(
            e.encode(),
            "data: line1\ndata: line2\ndata: line3\ndata: line4\ndata: \n\n"
        );
        assert_eq!(parse(&e.encode())[0].2, "line1\nline2\nline3\nline4\n");
    }

    #[test]
    fn no_injection_through_id_event_or_topic() {
        let e = SseEvent {
            id: Some("1\n\ndata: evil\0".into()),
            event: Some("x\r\nevent: y".into()),
            topic: Some("t\n\ndata: evil".into()),
            data: Some("ok".into()),
            retry: None,
        };
        let parsed = parse(&e.encode());
        assert_eq!(
            parsed,
            [("1data: evil".into(), "xevent: y".into(), "ok".into())]
        );
    }

    #[test]
    fn comments_are_ignored_by_parsers() {
        let text = comment("keep-alive\nsecond");
        assert_eq!(text, ": keep-alive\n: second\n\n");
        assert!(parse(&text).is_empty());
    }
}

/// Property tests: whatever the message, a strict WHATWG event-stream parser
/// reads back what was encoded.
#[cfg(test)]
mod round_trip {
    use proptest::prelude::*;
    use serde_json::Value;
    use serde_json::value::RawValue;

    use super::*;
    use crate::message::MessageType;

    /// An event as a client sees it.
    #[derive(Debug, PartialEq)]
    struct Parsed {
        /// The last event ID when it was dispatched.
        id: String,
        /// The event type buffer (empty: the client calls it `message`).
        event: String,
        data: String,
        /// The reconnection time set since the previous event.
        retry: Option<u64>,
    }

    /// The event-stream interpretation of the WHATWG HTML standard (9.2.6),
    /// written from the spec, independently of the encoder: lines end at
    /// CRLF, LF or CR; a line starting with `:` is a comment; a field's value
    /// follows its first `:` less one optional space; `data` lines join with
    /// LF; an empty line dispatches, unless no data came; an unfinished event
    /// at the end of the stream is dropped.
    fn parse(stream: &str) -> Vec<Parsed> {
        let stream = stream.strip_prefix('\u{feff}').unwrap_or(stream);
        let mut events = Vec::new();
        let (mut id, mut event, mut data, mut retry) =
            (String::new(), String::new(), String::new(), None);
        let mut line = String::new();
        let mut chars = stream.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\r' && c != '\n' {
                line.push(c);
                continue;
            }
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
            }
            let current = std::mem::take(&mut line);
            if current.is_empty() {
                if data.is_empty() {
                    event.clear();
                    continue;
                }
                if data.ends_with('\n') {
                    data.pop();
                }
                events.push(Parsed {
                    id: id.clone(),
                    event: std::mem::take(&mut event),
                    data: std::mem::take(&mut data),
                    retry: retry.take(),
                });
                continue;
            }
            if current.starts_with(':') {
                continue;
            }
            let (field, value) = match current.find(':') {
                Some(i) => {
                    let value = &current[i + 1..];
                    (&current[..i], value.strip_prefix(' ').unwrap_or(value))
                }
                None => (current.as_str(), ""),
            };
            match field {
                "event" => event = value.to_owned(),
                "data" => {
                    data.push_str(value);
                    data.push('\n');
                }
                "id" if !value.contains('\0') => id = value.to_owned(),
                "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                    retry = value.parse().ok();
                }
                _ => {}
            }
        }
        events
    }

    /// Line breaks as a client reads them.
    fn normalized(text: &str) -> String {
        text.replace("\r\n", "\n").replace('\r', "\n")
    }

    /// Text rich in what an encoder must get right: line breaks, NUL,
    /// colons, spaces, a BOM, and any other character.
    fn tricky_text() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            4 => any::<char>(),
            1 => prop::sample::select(vec!['\r', '\n', '\0', ':', ' ', '\u{feff}']),
        ];
        prop::collection::vec(c, 0..24).prop_map(String::from_iter)
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(Value::from),
            tricky_text().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::btree_map(tricky_text(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A payload's JSON text as it may arrive: compact, or pretty-printed
    /// with LF, CRLF or CR line breaks.
    fn payload_text() -> impl Strategy<Value = String> {
        (json_value(), 0..4u8).prop_map(|(value, style)| {
            let pretty = serde_json::to_string_pretty(&value).unwrap_or_default();
            match style {
                0 => serde_json::to_string(&value).unwrap_or_default(),
                1 => pretty,
                2 => pretty.replace('\n', "\r\n"),
                _ => pretty.replace('\n', "\r"),
            }
        })
    }

    fn message_type() -> impl Strategy<Value = MessageType> {
        tricky_text()
            .prop_map(|t| t.replace(['\r', '\n', '\0'], ""))
            .prop_filter_map("a valid type", |t| MessageType::new(t).ok())
    }

    fn sse_message() -> impl Strategy<Value = SseMessage> {
        (
            any::<u64>(),
            message_type(),
            payload_text(),
            any::<Option<u64>>(),
            prop::option::of(message_type()),
        )
            .prop_map(|(seq, msg_type, payload, retry_ms, topic)| {
                let raw = RawValue::from_string(payload).unwrap_or_default();
                let message = Message::with_raw_payload(msg_type, raw)
                    .unwrap_or_else(|_| Message::new("t".parse().unwrap(), Value::Null));
                // A message type is also a valid topic (same rule, same
                // bounds): it exercises the `topic:` line a parser ignores.
                let message = match topic.and_then(|t| Topic::new(t.as_str()).ok()) {
                    Some(topic) => message.with_topic(topic),
                    None => message,
                };
                SseMessage {
                    seq,
                    message,
                    retry_ms,
                }
            })
    }

    fn sse_event() -> impl Strategy<Value = SseEvent> {
        (
            prop::option::of(tricky_text()),
            prop::option::of(tricky_text()),
            prop::option::of(tricky_text()),
            any::<Option<u64>>(),
            prop::option::of(tricky_text()),
        )
            .prop_map(|(id, event, topic, retry, data)| SseEvent {
                id,
                event,
                topic,
                retry,
                data,
            })
    }

    proptest! {
        #[test]
        fn messages_read_back_as_encoded(messages in prop::collection::vec(sse_message(), 1..5)) {
            let mut stream = String::new();
            for m in &messages {
                stream.push_str(&m.encode());
            }
            let parsed = parse(&stream);
            prop_assert_eq!(parsed.len(), messages.len());
            for (m, p) in messages.iter().zip(&parsed) {
                let payload = m.message.payload().get();
                prop_assert_eq!(&p.id, &m.seq.to_string());
                prop_assert_eq!(p.event.as_str(), m.message.msg_type().as_str());
                prop_assert_eq!(p.retry, m.retry_ms);
                prop_assert_eq!(&p.data, &normalized(payload));
                let sent: Value = serde_json::from_str(payload).unwrap();
                let read: Value = serde_json::from_str(&p.data).unwrap();
                prop_assert_eq!(read, sent);
            }
        }

        #[test]
        fn events_read_back_as_encoded(events in prop::collection::vec(sse_event(), 1..5)) {
            let mut stream = String::new();
            let mut expected = Vec::new();
            let (mut id, mut retry) = (String::new(), None);
            for e in &events {
                stream.push_str(&e.encode());
                if let Some(new) = &e.id {
                    id = new.replace(['\r', '\n', '\0'], "");
                }
                retry = e.retry.or(retry);
                // Without data a client dispatches nothing.
                if let Some(data) = &e.data {
                    expected.push(Parsed {
                        id: id.clone(),
                        event: e.event.as_deref().unwrap_or("").replace(['\r', '\n'], ""),
                        data: normalized(data),
                        retry: retry.take(),
                    });
                }
            }
            prop_assert_eq!(parse(&stream), expected);
        }
    }
}
