//! The message of the `JSONDecodeError` Python's `json.loads` raises for a
//! text, so a malformed request gets the reference's error text, e.g.
//! `Expecting value: line 1 column 1 (char 0)`.
//!
//! [`decode_error`] walks the text as CPython 3.11's C scanner
//! (`Modules/_json.c`) does and stops at the first place that scanner
//! stops: same message, same position (in characters, with Python's line
//! and column). It walks with an explicit stack, so a hostile nesting depth
//! costs memory in proportion to the request and no recursion.
//!
//! Python gives up on nesting deeper than about 1,000 levels with a
//! `RecursionError` that depends on its own stack; this scanner has no such
//! limit and reports the syntax error wherever it is.
//!
//! It accepts what Python accepts beyond JSON (`NaN`, `Infinity`,
//! `-Infinity`, lone surrogate escapes); the caller reports those in its own
//! words, since eric stores only strict JSON.

/// Python's whitespace between JSON tokens.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Where and why Python's decoder stops.
struct Stop {
    message: &'static str,
    /// Byte offset (a character boundary).
    at: usize,
}

/// The `JSONDecodeError` message Python gives for `text`, or `None` if
/// Python's `json.loads` accepts it.
pub(in crate::socket) fn decode_error(text: &str) -> Option<String> {
    let stop = scan(text).err()?;
    let before = &text[..stop.at];
    let pos = before.chars().count();
    let line = before.matches('\n').count() + 1;
    let column = match before.rfind('\n') {
        Some(newline) => before[newline + 1..].chars().count() + 1,
        None => pos + 1,
    };
    Some(format!(
        "{}: line {line} column {column} (char {pos})",
        stop.message
    ))
}

fn stop(message: &'static str, at: usize) -> Stop {
    Stop { message, at }
}

#[derive(Clone, Copy)]
enum Container {
    Object,
    Array,
}

fn scan(text: &str) -> Result<(), Stop> {
    let s = text.as_bytes();
    if text.starts_with('\u{feff}') {
        return Err(stop("Unexpected UTF-8 BOM (decode using utf-8-sig)", 0));
    }
    let mut stack: Vec<Container> = Vec::new();
    let mut i = skip_ws(s, 0);
    loop {
        // A value starts at `i`.
        match s.get(i) {
            Some(b'{') => {
                i = skip_ws(s, i + 1);
                if s.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    stack.push(Container::Object);
                    i = member_key(s, i)?;
                    continue;
                }
            }
            Some(b'[') => {
                i = skip_ws(s, i + 1);
                if s.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    stack.push(Container::Array);
                    continue;
                }
            }
            _ => i = scalar(s, i)?,
        }
        // A value ended at `i`: close what it completes.
        loop {
            let Some(&container) = stack.last() else {
                let end = skip_ws(s, i);
                return if end == s.len() {
                    Ok(())
                } else {
                    Err(stop("Extra data", end))
                };
            };
            i = skip_ws(s, i);
            let close = match container {
                Container::Object => b'}',
                Container::Array => b']',
            };
            match s.get(i) {
                Some(&b) if b == close => {
                    i += 1;
                    stack.pop();
                }
                Some(b',') => {
                    i = skip_ws(s, i + 1);
                    if let Container::Object = container {
                        i = member_key(s, i)?;
                    }
                    break;
                }
                _ => return Err(stop("Expecting ',' delimiter", i)),
            }
        }
    }
}

/// Scans `"key" :` and the whitespace after it; returns where the value starts.
fn member_key(s: &[u8], i: usize) -> Result<usize, Stop> {
    if s.get(i) != Some(&b'"') {
        return Err(stop("Expecting property name enclosed in double quotes", i));
    }
    let i = skip_ws(s, string(s, i + 1)?);
    if s.get(i) != Some(&b':') {
        return Err(stop("Expecting ':' delimiter", i));
    }
    Ok(skip_ws(s, i + 1))
}

/// Scans a string, literal or number at `i`; returns where it ends.
fn scalar(s: &[u8], i: usize) -> Result<usize, Stop> {
    let rest = &s[i.min(s.len())..];
    match rest.first() {
        None => Err(stop("Expecting value", i)),
        Some(b'"') => string(s, i + 1),
        Some(b'n') if rest.starts_with(b"null") => Ok(i + 4),
        Some(b't') if rest.starts_with(b"true") => Ok(i + 4),
        Some(b'f') if rest.starts_with(b"false") => Ok(i + 5),
        Some(b'N') if rest.starts_with(b"NaN") => Ok(i + 3),
        Some(b'I') if rest.starts_with(b"Infinity") => Ok(i + 8),
        Some(b'-') if rest.starts_with(b"-Infinity") => Ok(i + 9),
        Some(_) => number(s, i).ok_or(stop("Expecting value", i)),
    }
}

/// Python's number match at `start`; `None` where Python finds no number.
fn number(s: &[u8], start: usize) -> Option<usize> {
    let digit = |i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
    let mut i = start;
    if s.get(i) == Some(&b'-') {
        i += 1;
    }
    match s.get(i)? {
        b'1'..=b'9' => {
            i += 1;
            while digit(i) {
                i += 1;
            }
        }
        b'0' => i += 1,
        _ => return None,
    }
    if s.get(i) == Some(&b'.') && digit(i + 1) {
        i += 2;
        while digit(i) {
            i += 1;
        }
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'-' | b'+')) {
            j += 1;
        }
        let digits_start = j;
        while digit(j) {
            j += 1;
        }
        // Without exponent digits Python backtracks to before the `e`.
        if j > digits_start {
            i = j;
        }
    }
    Some(i)
}

/// Scans a string's contents from `start` (after the quote); returns the
/// index after the closing quote.
fn string(s: &[u8], start: usize) -> Result<usize, Stop> {
    let begin = start - 1;
    let mut i = start;
    loop {
        match s.get(i) {
            None => return Err(stop("Unterminated string starting at", begin)),
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => i = escape(s, i, begin)?,
            Some(&b) if b <= 0x1f => return Err(stop("Invalid control character at", i)),
            Some(_) => i += 1,
        }
    }
}

/// Scans the escape whose backslash is at `i`; returns the index after it.
fn escape(s: &[u8], i: usize, begin: usize) -> Result<usize, Stop> {
    match s.get(i + 1) {
        None => Err(stop("Unterminated string starting at", begin)),
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
        Some(b'u') => {
            let hex = |at: usize| {
                s.get(at..at + 4)
                    .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
            };
            // Four hex digits and at least one more character, or Python
            // reports the escape at its `u`.
            if s.len() < i + 7 || !hex(i + 2) {
                return Err(stop("Invalid \\uXXXX escape", i + 1));
            }
            let unit =
                u16::from_str_radix(std::str::from_utf8(&s[i + 2..i + 6]).unwrap_or("0"), 16)
                    .unwrap_or(0);
            let high = (0xd800..0xdc00).contains(&unit);
            // A high surrogate followed by `\u` (and room after it) must be
            // followed by four hex digits, whatever they encode.
            if high && s.len() > i + 12 && s[i + 6] == b'\\' && s[i + 7] == b'u' && !hex(i + 8) {
                return Err(stop("Invalid \\uXXXX escape", i + 7));
            }
            Ok(i + 6)
        }
        Some(_) => Err(stop("Invalid \\escape", i)),
    }
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while s.get(i).copied().is_some_and(is_ws) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: Option<&str>) {
        assert_eq!(decode_error(text).as_deref(), expected, "{text:?}");
    }

    // Expected texts come from CPython 3.11 (`json.loads(text)`).
    #[test]
    fn messages_match_python() {
        check("", Some("Expecting value: line 1 column 1 (char 0)"));
        check("x", Some("Expecting value: line 1 column 1 (char 0)"));
        check("é", Some("Expecting value: line 1 column 1 (char 0)"));
        check("-", Some("Expecting value: line 1 column 1 (char 0)"));
        check(
            "{\"v\": ",
            Some("Expecting value: line 1 column 7 (char 6)"),
        );
        check(
            "{\"v\":\"c\"",
            Some("Expecting ',' delimiter: line 1 column 9 (char 8)"),
        );
        check(
            "{'v':1}",
            Some("Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
        );
        check(
            "{\"v\":1,}",
            Some("Expecting property name enclosed in double quotes: line 1 column 8 (char 7)"),
        );
        check("[1,]", Some("Expecting value: line 1 column 4 (char 3)"));
        check(
            "\"abc",
            Some("Unterminated string starting at: line 1 column 1 (char 0)"),
        );
        check(
            "\"a\\q\"",
            Some("Invalid \\escape: line 1 column 3 (char 2)"),
        );
        check(
            "\"\\u12\"",
            Some("Invalid \\uXXXX escape: line 1 column 3 (char 2)"),
        );
        check(
            "\u{feff}{}",
            Some("Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)"),
        );
        check("{} x", Some("Extra data: line 1 column 4 (char 3)"));
        check("1.", Some("Extra data: line 1 column 2 (char 1)"));
        check(
            "\"a\nb\"",
            Some("Invalid control character at: line 1 column 3 (char 2)"),
        );
        check(
            "{\"a\" 1}",
            Some("Expecting ':' delimiter: line 1 column 6 (char 5)"),
        );
        check(
            "[1 2]",
            Some("Expecting ',' delimiter: line 1 column 4 (char 3)"),
        );
        check(
            "{\n \"é\": [1,\n  x]}",
            Some("Expecting value: line 3 column 3 (char 14)"),
        );
        check(
            "\"\\ud800\\uzz12\"",
            Some("Invalid \\uXXXX escape: line 1 column 9 (char 8)"),
        );
        check("nul", Some("Expecting value: line 1 column 1 (char 0)"));
        check("null", None);
        check("[NaN, Infinity, -Infinity, 1e5, \"\\ud800\"]", None);
        check(
            " {\"v\": \"c\", \"p\": {\"a\": [1, 2.5e-3, true, null]}} ",
            None,
        );
    }

    // Python itself gives up near 1,000 levels with a `RecursionError`;
    // eric reports the syntax error wherever it is.
    #[test]
    fn hostile_nesting_is_scanned_without_recursion() {
        let deep = "[".repeat(1_000_000);
        check(
            &deep,
            Some("Expecting value: line 1 column 1000001 (char 1000000)"),
        );
    }
}
