//! JSON text exactly as Python's `json.dumps` writes it with its defaults,
//! for the lines of the socket protocol's streams.
//!
//! The reference writes each stream line with `json.dumps(dict)`, so clients
//! (and their tests) see Python's formatting:
//!
//! * separators `", "` and `": "`, nothing else between tokens;
//! * `ensure_ascii`: every character outside `' '..='~'` as `\uXXXX` with
//!   lowercase hex (astral characters as a surrogate pair), except `\b`,
//!   `\f`, `\n`, `\r` and `\t`; `"` and `\` escaped; `/` not;
//! * integers as written (`-0` is `0`), any number with a fraction or an
//!   exponent as Python's `repr` of the float (`1e+16`, `1.5e-07`,
//!   `100.0`, `Infinity` beyond the range of a double);
//! * object members in their order, and for a key given twice the last value
//!   at the first key's place (what a Python `dict` does).
//!
//! Payloads are stored as JSON text, so [`push_json`] reformats that text
//! without building a tree: it writes straight into the output, with an
//! explicit stack rather than recursion (any depth is safe), and rebuilds an
//! object only when it finds a repeated key.

use std::ops::Range;

use super::float::push_float;

/// Appends `text` as a Python JSON string literal.
pub(in crate::socket) fn push_str(out: &mut String, text: &str) {
    out.push('"');
    let mut units = [0u16; 2];
    for c in text.chars() {
        for unit in c.encode_utf16(&mut units).iter() {
            push_unit(out, *unit);
        }
    }
    out.push('"');
}

/// Appends the JSON text `raw` as Python's `json.dumps(json.loads(raw))`
/// writes it; `None` (and `out` unchanged) if `raw` is not valid JSON.
pub(in crate::socket) fn push_json(out: &mut String, raw: &str) -> Option<()> {
    let start = out.len();
    let mut formatter = Formatter {
        text: raw,
        src: raw.as_bytes(),
        pos: 0,
        out,
        stack: Vec::new(),
    };
    let done = formatter.run();
    if done.is_none() {
        out.truncate(start);
    }
    done
}

/// Appends one escaped UTF-16 code unit of a string's contents.
fn push_unit(out: &mut String, unit: u16) {
    match unit {
        0x22 => out.push_str("\\\""),
        0x5c => out.push_str("\\\\"),
        0x0a => out.push_str("\\n"),
        0x0d => out.push_str("\\r"),
        0x09 => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        0x20..=0x7e => out.push(char::from(unit as u8)),
        _ => out.push_str(&format!("\\u{unit:04x}")),
    }
}

/// The code unit of a `\\uXXXX` escape, from the four characters after `u`.
fn hex_unit(chars: &mut std::str::CharIndices<'_>) -> Option<u16> {
    let mut unit = 0u16;
    for _ in 0..4 {
        let (_, digit) = chars.next()?;
        unit = unit * 16 + u16::try_from(digit.to_digit(16)?).ok()?;
    }
    Some(unit)
}

/// An object member: where its key and its value were written.
struct Member {
    key: Range<usize>,
    value: Range<usize>,
}

/// An array or object being written.
enum Frame {
    Array,
    Object {
        /// Where its `{` was written (a rebuild replaces from there).
        start: usize,
        members: Vec<Member>,
        /// The key whose value is being written, and where that value starts.
        key: Range<usize>,
        value_start: usize,
    },
}

/// What [`Formatter::value`] did.
enum Opened {
    /// Wrote a whole value (a scalar or an empty container).
    Value,
    /// Opened a container: its first value follows.
    Container,
}

struct Formatter<'a> {
    text: &'a str,
    src: &'a [u8],
    pos: usize,
    out: &'a mut String,
    stack: Vec<Frame>,
}

impl Formatter<'_> {
    fn run(&mut self) -> Option<()> {
        loop {
            if let Opened::Container = self.value()? {
                continue;
            }
            if self.after_value()? {
                return Some(());
            }
        }
    }

    /// Writes a scalar, or opens a container (writing its first key).
    fn value(&mut self) -> Option<Opened> {
        self.skip_ws();
        let scalar = match *self.src.get(self.pos)? {
            b'{' | b'[' => return self.open(),
            b'"' => self.string(),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number(),
        };
        scalar.map(|()| Opened::Value)
    }

    /// Opens the array or object at `pos`; an empty one is a whole value.
    fn open(&mut self) -> Option<Opened> {
        let object = self.src.get(self.pos) == Some(&b'{');
        self.pos += 1;
        let (close, empty) = if object { (b'}', "{}") } else { (b']', "[]") };
        if self.close_if(close) {
            self.out.push_str(empty);
            return Some(Opened::Value);
        }
        if object {
            self.stack.push(Frame::Object {
                start: self.out.len(),
                members: Vec::new(),
                key: 0..0,
                value_start: 0,
            });
            self.out.push('{');
            self.key()?;
        } else {
            self.stack.push(Frame::Array);
            self.out.push('[');
        }
        Some(Opened::Container)
    }

    /// Closes what the completed value ends; `true` when the document is done.
    fn after_value(&mut self) -> Option<bool> {
        loop {
            self.skip_ws();
            let next = self.src.get(self.pos).copied();
            let out_len = self.out.len();
            match self.stack.last_mut() {
                None => return (next.is_none()).then_some(true),
                Some(Frame::Array) => {
                    self.pos += 1;
                    match next? {
                        b',' => {
                            self.out.push_str(", ");
                            return Some(false);
                        }
                        b']' => {
                            self.out.push(']');
                            self.stack.pop();
                        }
                        _ => return None,
                    }
                }
                Some(Frame::Object {
                    members,
                    key,
                    value_start,
                    ..
                }) => {
                    members.push(Member {
                        key: key.clone(),
                        value: *value_start..out_len,
                    });
                    self.pos += 1;
                    match next? {
                        b',' => {
                            self.out.push_str(", ");
                            self.key()?;
                            return Some(false);
                        }
                        b'}' => {
                            self.out.push('}');
                            if let Some(Frame::Object { start, members, .. }) = self.stack.pop() {
                                dedup_object(self.out, start, &members);
                            }
                        }
                        _ => return None,
                    }
                }
            }
        }
    }

    /// Writes a member's key and `": "`, and notes where its value starts.
    fn key(&mut self) -> Option<()> {
        self.skip_ws();
        if self.src.get(self.pos) != Some(&b'"') {
            return None;
        }
        let key_start = self.out.len();
        self.string()?;
        let key_end = self.out.len();
        self.skip_ws();
        if self.src.get(self.pos) != Some(&b':') {
            return None;
        }
        self.pos += 1;
        self.out.push_str(": ");
        let value_start = self.out.len();
        match self.stack.last_mut() {
            Some(Frame::Object {
                key,
                value_start: v,
                ..
            }) => {
                *key = key_start..key_end;
                *v = value_start;
                Some(())
            }
            _ => None,
        }
    }

    /// Rewrites the string literal at `pos` (its `"`) with Python's escapes.
    fn string(&mut self) -> Option<()> {
        self.pos += 1;
        // `pos` follows an ASCII byte, so it is a character boundary.
        let mut chars = self.text.get(self.pos..)?.char_indices();
        self.out.push('"');
        loop {
            let (at, c) = chars.next()?;
            match c {
                '"' => {
                    self.pos += at + 1;
                    self.out.push('"');
                    return Some(());
                }
                '\\' => {
                    let (_, escape) = chars.next()?;
                    let unit = match escape {
                        'u' => hex_unit(&mut chars)?,
                        '"' => 0x22,
                        '\\' => 0x5c,
                        '/' => 0x2f,
                        'b' => 0x08,
                        'f' => 0x0c,
                        'n' => 0x0a,
                        'r' => 0x0d,
                        't' => 0x09,
                        _ => return None,
                    };
                    push_unit(self.out, unit);
                }
                // JSON (and Python's strict decoder) refuses raw controls.
                c if c < ' ' => return None,
                c => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units).iter() {
                        push_unit(self.out, *unit);
                    }
                }
            }
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        if !self.src.get(self.pos..)?.starts_with(word.as_bytes()) {
            return None;
        }
        self.pos += word.len();
        self.out.push_str(word);
        Some(())
    }

    /// Writes a number: an integer as written, a float as Python's `repr`.
    fn number(&mut self) -> Option<()> {
        let start = self.pos;
        let (len, integer) = number_len(&self.src[start..])?;
        let text = self.text.get(start..start + len)?;
        self.pos += len;
        if !integer {
            push_float(self.out, text.parse().ok()?);
        } else if text == "-0" {
            self.out.push('0');
        } else {
            self.out.push_str(text);
        }
        Some(())
    }

    /// Consumes `close` (after whitespace) if it is next.
    fn close_if(&mut self, close: u8) -> bool {
        self.skip_ws();
        if self.src.get(self.pos) == Some(&close) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_ws(&mut self) {
        while matches!(self.src.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }
}

/// The length of the JSON number at the start of `src` and whether it is an
/// integer: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, and
/// nothing looser (`01`, `1.`, `.5` and `1e` are not numbers).
fn number_len(src: &[u8]) -> Option<(usize, bool)> {
    let digits_from = |at: usize| {
        src[at.min(src.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut at = usize::from(src.first() == Some(&b'-'));
    match src.get(at) {
        Some(b'0') => at += 1,
        Some(b'1'..=b'9') => at += digits_from(at),
        _ => return None,
    }
    let mut integer = true;
    if src.get(at) == Some(&b'.') {
        let n = digits_from(at + 1);
        if n == 0 {
            return None;
        }
        at += 1 + n;
        integer = false;
    }
    if matches!(src.get(at), Some(b'e' | b'E')) {
        at += 1 + usize::from(matches!(src.get(at + 1), Some(b'+' | b'-')));
        let n = digits_from(at);
        if n == 0 {
            return None;
        }
        at += n;
        integer = false;
    }
    Some((at, integer))
}

/// Rebuilds the object written from `start` if a key repeats: one member per
/// key, at its first place, with its last value (Python's `dict`).
fn dedup_object(out: &mut String, start: usize, members: &[Member]) {
    let key = |m: &Member| &out[m.key.clone()];
    let repeated = if members.len() <= 8 {
        members
            .iter()
            .enumerate()
            .any(|(i, a)| members[..i].iter().any(|b| key(a) == key(b)))
    } else {
        let mut keys: Vec<&str> = members.iter().map(key).collect();
        keys.sort_unstable();
        keys.windows(2).any(|pair| pair[0] == pair[1])
    };
    if !repeated {
        return;
    }
    let mut kept: Vec<(&str, &str)> = Vec::with_capacity(members.len());
    let mut index = std::collections::HashMap::with_capacity(members.len());
    for member in members {
        let (k, v) = (key(member), &out[member.value.clone()]);
        match index.get(k) {
            Some(&at) => kept[at] = (k, v),
            None => {
                index.insert(k, kept.len());
                kept.push((k, v));
            }
        }
    }
    let mut rebuilt = String::with_capacity(out.len() - start);
    rebuilt.push('{');
    for (i, (k, v)) in kept.iter().enumerate() {
        if i > 0 {
            rebuilt.push_str(", ");
        }
        rebuilt.push_str(k);
        rebuilt.push_str(": ");
        rebuilt.push_str(v);
    }
    rebuilt.push('}');
    out.truncate(start);
    out.push_str(&rebuilt);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dumps(raw: &str) -> String {
        let mut out = String::new();
        push_json(&mut out, raw)
            .map(|()| out)
            .unwrap_or_else(|| "<invalid>".into())
    }

    // Expected texts come from CPython 3.11: `json.dumps(json.loads(raw))`.
    #[test]
    fn spacing_and_order_match_python() {
        assert_eq!(dumps(r#"{"a":1}"#), r#"{"a": 1}"#);
        assert_eq!(
            dumps(" { \"b\" :[1 ,2,{ }, [ ]] , \"a\":null } "),
            r#"{"b": [1, 2, {}, []], "a": null}"#
        );
        assert_eq!(dumps("[true,false,\"x\"]"), r#"[true, false, "x"]"#);
        assert_eq!(dumps(r#"{"a":1,"b":2,"a":3}"#), r#"{"a": 3, "b": 2}"#);
        assert_eq!(
            dumps(r#"{"a":{"x":1,"x":[2]},"a":{"y":0}}"#),
            r#"{"a": {"y": 0}}"#
        );
        assert_eq!(
            dumps(r#"{"k1":1,"k2":2,"k3":3,"k4":4,"k5":5,"k6":6,"k7":7,"k8":8,"k9":9,"k1":0}"#),
            r#"{"k1": 0, "k2": 2, "k3": 3, "k4": 4, "k5": 5, "k6": 6, "k7": 7, "k8": 8, "k9": 9}"#
        );
    }

    #[test]
    fn strings_are_ascii_escaped_like_python() {
        assert_eq!(dumps(r#""é€""#), r#""\u00e9\u20ac""#);
        assert_eq!(
            dumps("\"😀\u{7f}\u{2028}/\""),
            r#""\ud83d\ude00\u007f\u2028/""#
        );
        assert_eq!(
            dumps(r#""\u0041\/\b\f\n\r\t\"\\\u001f\u00E9""#),
            r#""A/\b\f\n\r\t\"\\\u001f\u00e9""#
        );
        assert_eq!(dumps(r#""\uD83D\uDE00\ud800""#), r#""\ud83d\ude00\ud800""#);
        assert_eq!(dumps(r#"{"ü":"x"}"#), r#"{"\u00fc": "x"}"#);
        let mut out = String::new();
        push_str(&mut out, "ü\0\"\\\x08");
        assert_eq!(out, r#""\u00fc\u0000\"\\\b""#);
    }

    #[test]
    fn numbers_match_python() {
        assert_eq!(
            dumps("[0,-0,12,-7,123456789012345678901234567890]"),
            "[0, 0, 12, -7, 123456789012345678901234567890]"
        );
        assert_eq!(
            dumps(
                "[1.0,1e16,1e15,1e-5,0.0001,-0.0,1e400,-1E400,1.5e-7,2.5e22,0.1,1E2,3.14159,-0e5,1e-400]"
            ),
            "[1.0, 1e+16, 1000000000000000.0, 1e-05, 0.0001, -0.0, Infinity, -Infinity, 1.5e-07, 2.5e+22, 0.1, 100.0, 3.14159, -0.0, 0.0]"
        );
        assert_eq!(
            dumps("[123456789.123456789, 1.7976931348623157e308, 5e-324]"),
            "[123456789.12345679, 1.7976931348623157e+308, 5e-324]"
        );
    }

    #[test]
    fn invalid_text_is_refused_and_leaves_out_unchanged() {
        for raw in [
            "",
            "{",
            "[1,",
            "{\"a\" 1}",
            "tru",
            "\"abc",
            "-",
            "[1]x",
            "{\"a\":1,}",
        ] {
            let mut out = String::from("keep");
            assert!(push_json(&mut out, raw).is_none(), "{raw:?}");
            assert_eq!(out, "keep");
        }
    }

    #[test]
    fn deep_nesting_needs_no_recursion() {
        let depth = 100_000;
        let raw = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(dumps(&raw), raw);
    }
}
