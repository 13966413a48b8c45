//! [`Parser`]: an incremental parser of the server's SSE text, fed straight
//! from the response's byte chunks.
//!
//! The events are the server's own (`retry:`, `id:`, `event:`, `topic:`,
//! `data:` lines, comments, a blank line ending each event), so the parser keeps
//! to the parts of the format they use, plus lines split across chunks and
//! an optional `\r`. Its buffers are reused from event to event, so reading
//! allocates nothing once warm: a client must not be what limits a delivery
//! measurement.
//!
//! Unlike a browser, it reports whether an event had its own `id` line
//! instead of carrying the last one over: that is how the server's notices
//! (`eric-gap`, `eric-end`, which have none) are told from messages.

use std::time::Duration;

/// One complete event, borrowed from the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Field<'a> {
    /// The event's own `id` field, if it had one.
    pub(crate) id: Option<&'a [u8]>,
    /// The `event` field (empty when absent).
    pub(crate) event: &'a [u8],
    /// The `topic` field, eric's own: the message's topic, if it has one.
    pub(crate) topic: Option<&'a [u8]>,
    /// The `data` lines, joined with `\n`.
    pub(crate) data: &'a [u8],
}

/// Turns a byte stream into events.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    /// The start of a line whose end is in a later chunk.
    partial: Vec<u8>,
    id: Vec<u8>,
    has_id: bool,
    event: Vec<u8>,
    topic: Vec<u8>,
    has_topic: bool,
    data: Vec<u8>,
    /// Whether the event being read has a `data` field (an event without one
    /// is not dispatched).
    has_data: bool,
    /// The last `retry` hint the server sent.
    retry: Option<Duration>,
}

impl Parser {
    /// The server's last `retry` hint.
    pub(crate) fn retry(&self) -> Option<Duration> {
        self.retry
    }

    /// Feeds one chunk; calls `on_event` for every event it completes.
    pub(crate) fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(Field<'_>)) {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let line = &rest[..end];
            rest = &rest[end + 1..];
            if self.partial.is_empty() {
                self.line(line, &mut on_event);
            } else {
                let mut joined = std::mem::take(&mut self.partial);
                joined.extend_from_slice(line);
                self.line(&joined, &mut on_event);
                joined.clear();
                self.partial = joined;
            }
        }
        self.partial.extend_from_slice(rest);
    }

    fn line(&mut self, line: &[u8], on_event: &mut impl FnMut(Field<'_>)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.has_data {
                on_event(Field {
                    id: self.has_id.then_some(&self.id[..]),
                    event: &self.event,
                    topic: self.has_topic.then_some(&self.topic[..]),
                    data: &self.data,
                });
            }
            self.id.clear();
            self.has_id = false;
            self.event.clear();
            self.topic.clear();
            self.has_topic = false;
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
            }
            b"topic" => {
                self.topic.clear();
                self.topic.extend_from_slice(value);
                self.has_topic = true;
            }
            b"id" => {
                self.id.clear();
                self.id.extend_from_slice(value);
                self.has_id = true;
            }
            b"retry" => {
                if let Some(millis) = parse_u64(value) {
                    self.retry = Some(Duration::from_millis(millis));
                }
            }
            _ => {}
        }
    }
}

/// A bare unsigned decimal integer, parsed without going through UTF-8 and
/// `str::parse`.
pub(crate) fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    type Owned = (Option<String>, String, String);

    fn events(chunks: &[&[u8]]) -> Vec<Owned> {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        for chunk in chunks {
            parser.feed(chunk, |e| {
                out.push((e.id.map(text), text(e.event), text(e.data)));
            });
        }
        out
    }

    #[test]
    fn reads_the_servers_events() {
        let wire = b"retry: 5\n: connected\n\nid: 1\nevent: load\ndata: 17\n\nid: 2\nevent: load\ndata: 18\n\n";
        let expected: Vec<Owned> = vec![
            (Some("1".into()), "load".into(), "17".into()),
            (Some("2".into()), "load".into(), "18".into()),
        ];
        assert_eq!(events(&[wire]), expected);
        // Every split point gives the same events.
        for cut in 0..wire.len() {
            assert_eq!(
                events(&[&wire[..cut], &wire[cut..]]),
                expected,
                "cut at {cut}"
            );
        }
        let mut parser = Parser::default();
        parser.feed(wire, |_| {});
        assert_eq!(parser.retry(), Some(Duration::from_millis(5)));
    }

    #[test]
    fn joins_data_lines_and_skips_comments_and_empty_events() {
        let wire = b"id: 3\nevent: a\ndata: 1\n\n: keep-alive\n\nevent: eric-end\r\ndata: {\"a\":\r\ndata:1}\r\n\r\nevent: lone\n\n";
        assert_eq!(
            events(&[wire]),
            vec![
                (Some("3".into()), "a".into(), "1".into()),
                (None, "eric-end".into(), "{\"a\":\n1}".into())
            ]
        );
    }

    #[test]
    fn parses_integers() {
        assert_eq!(parse_u64(b"1732190000000000"), Some(1_732_190_000_000_000));
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_u64(b"99999999999999999999999"), None);
    }
}
