//! What eric refuses although Python's `json.loads` takes it, beyond what
//! serde_json refuses by itself (`NaN`, `Infinity`): lone surrogate escapes.

/// The byte offset of the first lone surrogate escape (`\ud800` not
/// followed by a low one, or a low one alone) in `text`, valid JSON.
///
/// serde_json takes them into a `RawValue` unchecked, and Python's `json`
/// decodes them into a `str` that no UTF-8 text can hold (encoding it
/// raises `UnicodeEncodeError`). Stored, such a payload would fail later,
/// far from the request that brought it, in whatever parses it strictly
/// (serde_json's `Value`, for one): so it is refused here, as the module
/// docs say.
pub(super) fn lone_surrogate(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    // In valid JSON a backslash only appears in a string, starting an escape.
    let unit_at = |at: usize| -> Option<u16> {
        let hex = bytes.get(at..at + 6)?;
        if hex[0] != b'\\' || hex[1] != b'u' {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(&hex[2..]).ok()?, 16).ok()
    };
    let mut at = 0;
    while let Some(found) = bytes.get(at..)?.iter().position(|&b| b == b'\\') {
        at += found;
        let Some(unit) = unit_at(at) else {
            // `\n`, `\\`, `\"`...: two bytes.
            at += 2;
            continue;
        };
        match unit {
            0xD800..=0xDBFF => match unit_at(at + 6) {
                Some(0xDC00..=0xDFFF) => at += 12,
                _ => return Some(at),
            },
            0xDC00..=0xDFFF => return Some(at),
            _ => at += 6,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::lone_surrogate;

    #[test]
    fn finds_lone_halves_and_passes_pairs_and_escaped_backslashes() {
        assert_eq!(lone_surrogate(r#""\ud800""#), Some(1));
        assert_eq!(lone_surrogate(r#"["ok", "\uDC00"]"#), Some(8));
        assert_eq!(lone_surrogate(r#""\ud800\ud800""#), Some(1));
        assert_eq!(lone_surrogate(r#""\ud83d\ude00\n\u00e9""#), None);
        assert_eq!(lone_surrogate(r#""\\ud800""#), None);
        assert_eq!(lone_surrogate(r#""\ud83d""#), Some(1));
    }
}
