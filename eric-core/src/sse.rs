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

use crate::channel::{Adapter, ChannelSettings};
use crate::message::Message;
use crate::queue::Delivery;

/// One SSE event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `id` field.
    pub id: Option<String>,
    /// The `event` field (the event type; `message` when absent).
    pub event: Option<String>,
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
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        // The type is a `MessageType`: it holds no CR, LF or NUL.
        let _ = write!(
            out,
            "id: {}\nevent: {}\n",
            self.seq,
            self.message.msg_type()
        );
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

    /// The same event as a general [`SseEvent`].
    pub fn to_event(&self) -> SseEvent {
        SseEvent {
            id: Some(self.seq.to_string()),
            event: Some(self.message.msg_type().as_str().to_owned()),
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
    fn no_injection_through_id_or_event() {
        let e = SseEvent {
            id: Some("1\n\ndata: evil\0".into()),
            event: Some("x\r\nevent: y".into()),
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
