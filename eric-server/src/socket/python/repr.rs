//! Python's `repr` of a `str` and of a `bytes`, for the error texts of the
//! socket protocol.
//!
//! The reference answers a failed command with `repr(exception)`, e.g.
//! `InvalidChannelException('No channel with id nope')`, so clients see the
//! message quoted and escaped exactly as Python does it:
//!
//! * the quote is `'`, or `"` when the text holds a `'` and no `"`;
//! * `\\`, the chosen quote, `\n`, `\r` and `\t` are escaped;
//! * other control characters (and DEL) become `\xNN`;
//! * non-ASCII characters stay as they are when Python considers them
//!   printable, else become `\xNN`, `\uNNNN` or `\UNNNNNNNN`.
//!
//! Python's printability test needs the Unicode category of every code
//! point. Without a full table, [`is_printable`] knows the categories that
//! matter in practice (controls, format characters, separators, private use,
//! noncharacters, the unassigned planes 4 to 13) exactly; unassigned code
//! points elsewhere count as printable (Python escapes them).

/// Python's `repr` of a `str`.
pub(in crate::socket) fn str_repr(text: &str) -> String {
    let quote = pick_quote(text.contains('\''), text.contains('"'));
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c if !c.is_ascii() && is_printable(c) => out.push(c),
            c => push_code_escape(&mut out, c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr` of a `bytes`: `b'...'`, ASCII only.
pub(in crate::socket) fn bytes_repr(bytes: &[u8]) -> String {
    let quote = pick_quote(bytes.contains(&b'\''), bytes.contains(&b'"'));
    let mut out = String::with_capacity(bytes.len() + 3);
    out.push('b');
    out.push(quote);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b if char::from(b) == quote => {
                out.push('\\');
                out.push(quote);
            }
            b' '..=b'~' => out.push(char::from(b)),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push(quote);
    out
}

/// The arguments Python's `UnicodeDecodeError` shows for bytes that are not
/// UTF-8 (`'utf-8', b'...', start, end, 'reason'`), from Rust's verdict:
/// both decoders report the same maximal invalid subpart.
pub(in crate::socket) fn unicode_decode_error_args(
    bytes: &[u8],
    error: &std::str::Utf8Error,
) -> String {
    let start = error.valid_up_to();
    let (end, reason) = match error.error_len() {
        None => (bytes.len(), "unexpected end of data"),
        Some(len) => {
            let invalid_start = matches!(bytes.get(start), Some(0x80..=0xc1 | 0xf5..=0xff));
            let reason = if invalid_start {
                "invalid start byte"
            } else {
                "invalid continuation byte"
            };
            (start + len, reason)
        }
    };
    format!(
        "'utf-8', {}, {start}, {end}, {}",
        bytes_repr(bytes),
        str_repr(reason)
    )
}

/// Python prefers `'`, and takes `"` only to avoid escaping a `'`.
fn pick_quote(has_single: bool, has_double: bool) -> char {
    if has_single && !has_double { '"' } else { '\'' }
}

fn push_code_escape(out: &mut String, c: char) {
    let code = u32::from(c);
    let escape = if code <= 0xff {
        format!("\\x{code:02x}")
    } else if code <= 0xffff {
        format!("\\u{code:04x}")
    } else {
        format!("\\U{code:08x}")
    };
    out.push_str(&escape);
}

/// Whether Python's `str.isprintable` holds for a non-ASCII character: it
/// fails for categories Cc, Cf, Cs, Co, Cn, Zl, Zp and Zs.
fn is_printable(c: char) -> bool {
    let code = u32::from(c);
    if c.is_control()
        || NOT_PRINTABLE
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&code))
    {
        return false;
    }
    // Noncharacters (Cn): U+FDD0..U+FDEF and the last two of every plane.
    let nonchar = (0xfdd0..=0xfdef).contains(&code) || code & 0xfffe == 0xfffe;
    // Planes 4 to 13 hold nothing; plane 14 only tags (Cf, listed) and
    // variation selectors (printable marks).
    let unassigned = (0x4_0000..=0xd_ffff).contains(&code)
        || (code >= 0xe_0000 && !(0xe_0100..=0xe_01ef).contains(&code) && code < 0xf_0000);
    !nonchar && !unassigned
}

/// Non-ASCII code points Python does not print (Unicode 14, as in Python
/// 3.11): format characters (Cf), separators (Zs, Zl, Zp), private use (Co).
const NOT_PRINTABLE: &[(u32, u32)] = &[
    (0x00a0, 0x00a0),
    (0x00ad, 0x00ad),
    (0x0600, 0x0605),
    (0x061c, 0x061c),
    (0x06dd, 0x06dd),
    (0x070f, 0x070f),
    (0x0890, 0x0891),
    (0x08e2, 0x08e2),
    (0x1680, 0x1680),
    (0x180e, 0x180e),
    (0x2000, 0x200f),
    (0x2028, 0x202f),
    (0x205f, 0x2064),
    (0x2066, 0x206f),
    (0x3000, 0x3000),
    (0xe000, 0xf8ff),
    (0xfeff, 0xfeff),
    (0xfff9, 0xfffb),
    (0x1_10bd, 0x1_10bd),
    (0x1_10cd, 0x1_10cd),
    (0x1_3430, 0x1_3438),
    (0x1_bca0, 0x1_bca3),
    (0x1_d173, 0x1_d17a),
    (0xf_0000, 0x10_ffff),
];

#[cfg(test)]
mod tests {
    use super::*;

    // Expected texts come from CPython 3.11 (`repr(...)`).
    #[test]
    fn str_repr_quotes_like_python() {
        assert_eq!(
            str_repr("No channel with id nope"),
            "'No channel with id nope'"
        );
        assert_eq!(str_repr("a'b"), "\"a'b\"");
        assert_eq!(str_repr("a'b\""), "'a\\'b\"'");
        assert_eq!(str_repr("say \"hi\""), "'say \"hi\"'");
        assert_eq!(str_repr(""), "''");
    }

    #[test]
    fn str_repr_escapes_like_python() {
        assert_eq!(
            str_repr("a\\b\n\r\t\0\x1b\x7f"),
            "'a\\\\b\\n\\r\\t\\x00\\x1b\\x7f'"
        );
        assert_eq!(
            str_repr("\u{7f}\u{a0}\u{ad}\u{2028}é😀\u{e000}"),
            "'\\x7f\\xa0\\xad\\u2028é😀\\ue000'"
        );
        assert_eq!(str_repr("\u{85}ü€"), "'\\x85ü€'");
        assert_eq!(str_repr("\u{feff}\u{10ffff}"), "'\\ufeff\\U0010ffff'");
        assert_eq!(
            str_repr("\u{fdd0}\u{1fffe}\u{50000}"),
            "'\\ufdd0\\U0001fffe\\U00050000'"
        );
        assert_eq!(str_repr("\u{e0100}\u{e0001}"), "'\u{e0100}\\U000e0001'");
    }

    #[test]
    fn bytes_repr_matches_python() {
        assert_eq!(bytes_repr(b"\xff\xfe'\"\\\n"), "b'\\xff\\xfe\\'\"\\\\\\n'");
        assert_eq!(bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(bytes_repr(b"\x7f\x00ok"), "b'\\x7f\\x00ok'");
    }

    fn decode_args(bytes: &[u8]) -> String {
        match std::str::from_utf8(bytes) {
            Ok(_) => String::new(),
            Err(e) => unicode_decode_error_args(bytes, &e),
        }
    }

    #[test]
    fn unicode_decode_errors_match_python() {
        assert_eq!(
            decode_args(b"\xff\xfe"),
            "'utf-8', b'\\xff\\xfe', 0, 1, 'invalid start byte'"
        );
        assert_eq!(
            decode_args(b"\xe0\x80abc"),
            "'utf-8', b'\\xe0\\x80abc', 0, 1, 'invalid continuation byte'"
        );
        assert_eq!(
            decode_args(b"ab\xe2\x82x"),
            "'utf-8', b'ab\\xe2\\x82x', 2, 4, 'invalid continuation byte'"
        );
        assert_eq!(
            decode_args(b"ab\xe2\x82"),
            "'utf-8', b'ab\\xe2\\x82', 2, 4, 'unexpected end of data'"
        );
        assert_eq!(
            decode_args(b"\xed\xa0\x80"),
            "'utf-8', b'\\xed\\xa0\\x80', 0, 1, 'invalid continuation byte'"
        );
    }
}
