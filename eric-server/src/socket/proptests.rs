//! Property tests of the request decoder and the Python imitations: no
//! input makes them panic, and valid requests decode to what was sent,
//! whether written compactly or as Python's `json.dumps` writes them.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::protocol::parse;
use super::python::decode::decode_error;
use super::python::json::{push_json, push_str};
use super::python::repr::{bytes_repr, str_repr, unicode_decode_error_args};

const VERBS: [&str; 8] = ["c", "r", "d", "b", "l", "w", "rl", "rc"];

/// Text rich in what JSON and Python's `repr` treat specially.
fn tricky_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => any::<char>(),
        1 => prop::sample::select(vec!['"', '\\', '\'', '\n', '\r', '\0', '\u{7f}', '\u{feff}', '\u{2028}']),
    ];
    prop::collection::vec(c, 0..16).prop_map(String::from_iter)
}

/// Fragments that steer random text into the decoder's deeper paths.
fn json_like_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            "\"",
            ":",
            ",",
            " ",
            "\\",
            "\\u",
            "d800",
            "dc00",
            "\\ud83d",
            "\\ude00",
            "0",
            "-",
            "1.5",
            "e+",
            "NaN",
            "Infinity",
            "-Infinity",
            "true",
            "null",
            "\"v\"",
            "\"c\"",
            "\"r\"",
            "\"t\"",
            "\"p\"",
            "\"d\"",
            "\"b\"",
            "\"l\"",
            "\"w\"",
            "\"rl\"",
            "\n",
            "\u{feff}",
        ])
        .prop_map(str::to_owned),
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
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

/// An id eric accepts: 1 to 128 printable ASCII characters.
fn id() -> impl Strategy<Value = String> {
    "[!-~]{1,40}"
}

/// A message type eric accepts: no CR, LF or NUL, 1 to 256 bytes.
fn message_type() -> impl Strategy<Value = String> {
    tricky_text()
        .prop_map(|t| t.replace(['\r', '\n', '\0'], ""))
        .prop_filter("not empty", |t| !t.is_empty())
}

/// Equal JSON values, floats within a few units in the last place:
/// serde_json (without its `float_roundtrip` feature) may read a float one
/// unit off, and it reads the values compared here. Counted in units, not
/// relative to the value: a subnormal's unit is far more than 1e-15 of it.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => {
                    x.is_sign_negative() == y.is_sign_negative()
                        && x.to_bits().abs_diff(y.to_bits()) <= 4
                }
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Python's `json.dumps` of `value` (what the reference's client sends).
fn python_dumps(value: &Value) -> String {
    let mut out = String::new();
    let compact = serde_json::to_string(value).unwrap_or_default();
    push_json(&mut out, &compact)
        .map(|()| out)
        .unwrap_or(compact)
}

proptest! {
    #[test]
    fn parse_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_json_like_text(text in json_like_text()) {
        let _ = parse(text.as_bytes());
        let _ = decode_error(&text);
        let mut out = String::new();
        let _ = push_json(&mut out, &text);
    }

    #[test]
    fn python_reprs_never_panic(text in tricky_text(), bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let repr = str_repr(&text);
        prop_assert!(repr.starts_with(['\'', '"']));
        let _ = bytes_repr(&bytes);
        if let Err(error) = std::str::from_utf8(&bytes) {
            let _ = unicode_decode_error_args(&bytes, &error);
        }
        let mut out = String::new();
        push_str(&mut out, &text);
        prop_assert_eq!(serde_json::from_str::<String>(&out).ok(), Some(text));
    }

    /// What serde_json takes, Python takes too: no `JSONDecodeError` text
    /// for a valid document, and `json.dumps` of it is the same value.
    #[test]
    fn strict_json_is_python_json(value in json_value()) {
        let compact = serde_json::to_string(&value).unwrap();
        prop_assert_eq!(decode_error(&compact), None);
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        prop_assert_eq!(decode_error(&pretty), None);
        let dumped = python_dumps(&value);
        prop_assert!(dumped.is_ascii(), "ensure_ascii: {}", dumped);
        let read: Value = serde_json::from_str(&dumped).unwrap();
        prop_assert!(same(&read, &value), "{} != {}", read, value);
    }

    #[test]
    fn valid_requests_decode_to_what_was_sent(
        verb in prop::sample::select(VERBS.to_vec()),
        channel in id(),
        listener in id(),
        msg_type in message_type(),
        payload in json_value(),
        as_python in any::<bool>(),
    ) {
        let mut request = Map::new();
        request.insert("v".into(), verb.into());
        request.insert("c".into(), channel.clone().into());
        request.insert("r".into(), listener.clone().into());
        request.insert("t".into(), msg_type.clone().into());
        request.insert("p".into(), payload.clone());
        let request = Value::Object(request);
        let text = if as_python {
            python_dumps(&request)
        } else {
            serde_json::to_string(&request).unwrap()
        };
        let parsed = parse(text.as_bytes());
        prop_assert!(parsed.is_ok(), "{} => {:?}", text, parsed);
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.verb.as_str(), verb);
        prop_assert_eq!(parsed.channel, Some(channel));
        let names_listener = matches!(verb, "d" | "l" | "rl");
        prop_assert_eq!(parsed.receiver, names_listener.then_some(listener));
        match parsed.message {
            Some(message) => {
                prop_assert!(matches!(verb, "d" | "b"));
                prop_assert_eq!(message.msg_type().as_str(), msg_type);
                let sent: Value = serde_json::from_str(message.payload().get()).unwrap();
                prop_assert!(same(&sent, &payload), "{} != {}", sent, payload);
            }
            None => prop_assert!(!matches!(verb, "d" | "b")),
        }
    }
}
