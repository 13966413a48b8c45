//! [`SseParser`]: a small incremental parser for the SSE streams the tool
//! reads, fed straight from the response's byte chunks.
//!
//! The events are the server's own (`id:`, `event:`, `data:` lines, a blank
//! line), so the parser keeps to the parts of the format they use: `event`
//! and `data` fields, comments, lines split across chunks, optional `\r`.
//! Its buffers are reused from event to event, so reading allocates nothing
//! once warm: the reader must not be what limits a delivery measurement.

/// One complete event, borrowed from the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event<'a> {
    /// The `event` field (empty when absent).
    pub(crate) event: &'a [u8],
    /// The `data` lines, joined with `\n`.
    pub(crate) data: &'a [u8],
}

/// Turns a byte stream into events.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// The start of a line whose end is in a later chunk.
    partial: Vec<u8>,
    event: Vec<u8>,
    data: Vec<u8>,
    /// Whether the event being read has a `data` field (an event without one
    /// is not dispatched).
    has_data: bool,
}

impl SseParser {
    /// Feeds one chunk; calls `on_event` for every event it completes.
    pub(crate) fn feed(&mut self, chunk: &[u8], mut on_event: impl FnMut(Event<'_>)) {
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

    fn line(&mut self, line: &[u8], on_event: &mut impl FnMut(Event<'_>)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if self.has_data {
                on_event(Event {
                    event: &self.event,
                    data: &self.data,
                });
            }
            self.event.clear();
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
            // `id` and `retry` matter to browsers, not to the measurements.
            _ => {}
        }
    }
}

/// `data` holding a bare unsigned integer (the tool's payloads), parsed
/// without going through UTF-8 and `str::parse`.
pub(crate) fn parse_u64(data: &[u8]) -> Option<u64> {
    if data.is_empty() {
        return None;
    }
    data.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(chunks: &[&[u8]]) -> Vec<(String, String)> {
        let mut parser = SseParser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, |e| {
                out.push((
                    String::from_utf8_lossy(e.event).into_owned(),
                    String::from_utf8_lossy(e.data).into_owned(),
                ));
            });
        }
        out
    }

    #[test]
    fn reads_the_servers_events() {
        let wire = b"retry: 5\n: connected\n\nid: 1\nevent: load\ndata: 17\n\nid: 2\nevent: load\ndata: 18\n\n";
        let expected = vec![("load".into(), "17".into()), ("load".into(), "18".into())];
        assert_eq!(events(&[wire]), expected);
        // Every split point gives the same events.
        for cut in 0..wire.len() {
            assert_eq!(
                events(&[&wire[..cut], &wire[cut..]]),
                expected,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn joins_data_lines_and_skips_comments_and_empty_events() {
        let wire =
            b": keep-alive\n\nevent: eric-end\r\ndata: {\"a\":\r\ndata:1}\r\n\r\nevent: lone\n\n";
        assert_eq!(
            events(&[wire]),
            vec![("eric-end".into(), "{\"a\":\n1}".into())]
        );
    }

    #[test]
    fn parses_integer_payloads() {
        assert_eq!(parse_u64(b"1732190000000000"), Some(1_732_190_000_000_000));
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_u64(b"99999999999999999999999"), None);
    }
}
