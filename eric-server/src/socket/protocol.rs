//! Requests and error answers of the socket protocol.
//!
//! A request is one JSON object: `v` the verb, `c` the channel, `r` the
//! receiving listener, `t` the message type, `p` the payload. [`parse`]
//! turns the bytes into a typed [`Request`] or into the [`Failure`] the
//! reference answers for them, in its order: UTF-8 first, then JSON, then
//! `v`, then `t` for the verbs that send a message.
//!
//! A [`Failure`] is an exception class name (the code a client can branch
//! on) and Python's `repr` of its arguments; [`Failure::text`] is what goes
//! on the wire, e.g. `InvalidChannelException('No channel with id nope')`.

use std::fmt;

use eric_core::{Error, Message, MessageType};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::python::decode::decode_error;
use super::python::repr::{str_repr, unicode_decode_error_args};
use super::strict::lone_surrogate;

/// Longest part of a wrong value quoted back in an error text.
const QUOTED_CHARS: usize = 64;

/// The verbs, by their wire names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    /// `c`: create a channel.
    Create,
    /// `r`: add a listener (not started).
    Register,
    /// `d`: queue a message for one listener.
    Dispatch,
    /// `b`: queue a message for every listener.
    Broadcast,
    /// `l`: start a listener and stream it.
    Listen,
    /// `w`: stream a channel's broadcasts on a temporary listener.
    Watch,
    /// `rl`: remove a listener.
    RemoveListener,
    /// `rc`: remove a channel.
    RemoveChannel,
}

impl Verb {
    fn from_wire(name: &str) -> Option<Self> {
        Some(match name {
            "c" => Self::Create,
            "r" => Self::Register,
            "d" => Self::Dispatch,
            "b" => Self::Broadcast,
            "l" => Self::Listen,
            "w" => Self::Watch,
            "rl" => Self::RemoveListener,
            "rc" => Self::RemoveChannel,
            _ => return None,
        })
    }

    /// The wire name.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Create => "c",
            Self::Register => "r",
            Self::Dispatch => "d",
            Self::Broadcast => "b",
            Self::Listen => "l",
            Self::Watch => "w",
            Self::RemoveListener => "rl",
            Self::RemoveChannel => "rc",
        }
    }
}

/// A parsed request. Ids stay text here: the reference answers an id that
/// cannot exist with its not-found text, which needs the text as given.
#[derive(Debug)]
pub(super) struct Request {
    /// What to do.
    pub(super) verb: Verb,
    /// `c`; `None` when absent or `null` (the reference's `None`).
    pub(super) channel: Option<String>,
    /// `r`, for the verbs that name a listener.
    pub(super) receiver: Option<String>,
    /// `t` and `p`, for `d` and `b`.
    pub(super) message: Option<Message>,
}

/// An error answer: a Python exception as the reference writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Failure {
    /// The exception class name.
    pub(super) class: &'static str,
    /// Its arguments, already as Python's `repr` (empty for none).
    args: String,
}

impl Failure {
    /// `Class('message')`.
    pub(super) fn new(class: &'static str, message: &str) -> Self {
        Self {
            class,
            args: str_repr(message),
        }
    }

    /// `Class()`.
    pub(super) fn bare(class: &'static str) -> Self {
        Self {
            class,
            args: String::new(),
        }
    }

    /// `Class(<args>)` with arguments written by the caller.
    pub(super) fn with_args(class: &'static str, args: String) -> Self {
        Self { class, args }
    }

    /// `InvalidMessageFormat('message')`.
    pub(super) fn format(message: &str) -> Self {
        Self::new("InvalidMessageFormat", message)
    }

    /// The reference's text for a channel lookup that finds nothing.
    pub(super) fn no_channel(id: Option<&str>) -> Self {
        let id = id.unwrap_or("None");
        Self::new(
            "InvalidChannelException",
            &format!("No channel with id {id}"),
        )
    }

    /// A broker error: its reference class, and the reference's text where
    /// it has one. Storage causes are logged, not sent.
    pub(super) fn from_core(error: &Error) -> Self {
        let class = error.reference_name();
        match error {
            Error::InvalidChannel { channel } => Self::no_channel(Some(channel.as_str())),
            Error::ChannelExists { channel } => {
                Self::new(class, &format!("Channel with id {channel} already exists"))
            }
            Error::Unavailable {
                backend, operation, ..
            } => {
                tracing::warn!(%error, "socket command failed");
                Self::new(class, &format!("{backend} unavailable while {operation}"))
            }
            Error::StorageFull {
                backend, operation, ..
            } => {
                tracing::warn!(%error, "socket command failed");
                Self::new(
                    class,
                    &format!("{backend} is out of memory while {operation}"),
                )
            }
            Error::Repository { operation, .. } => {
                tracing::warn!(%error, "socket command failed");
                Self::new(class, &format!("repository error while {operation}"))
            }
            Error::ItemNotFound { .. } => {
                tracing::warn!(%error, "socket command failed");
                Self::new(class, "item not found")
            }
            other => Self::new(class, &other.to_string()),
        }
    }

    /// The wire text.
    pub(super) fn text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.class, self.args)
    }
}

/// Parses a whole request.
pub(super) fn parse(bytes: &[u8]) -> Result<Request, Failure> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        Failure::with_args("UnicodeDecodeError", unicode_decode_error_args(bytes, &e))
    })?;
    let document: Box<RawValue> =
        serde_json::from_str(text).map_err(|e| match decode_error(text) {
            Some(message) => Failure::new("JSONDecodeError", &message),
            // Python would take it (NaN, Infinity, deep nesting); eric
            // keeps strict JSON only.
            None => Failure::format(&format!("request is not strict JSON: {e}")),
        })?;
    if let Some(at) = lone_surrogate(text) {
        return Err(lone_surrogate_failure(text, at));
    }
    let fields = object_fields(document.get())?;
    let Some(verb) = fields.v else {
        return Err(Failure::format(text));
    };
    let verb = match serde_json::from_str::<String>(verb.get()) {
        Ok(name) => Verb::from_wire(&name),
        Err(_) => None,
    }
    .ok_or_else(|| unknown_verb(verb.get()))?;
    let message = match verb {
        Verb::Dispatch | Verb::Broadcast => {
            let Some(msg_type) = fields.t else {
                return Err(Failure::format(text));
            };
            Some(message(&msg_type, fields.p)?)
        }
        _ => None,
    };
    let receiver = match verb {
        Verb::Dispatch | Verb::Listen | Verb::RemoveListener => id_text("r", fields.r)?,
        _ => None,
    };
    Ok(Request {
        verb,
        channel: id_text("c", fields.c)?,
        receiver,
        message,
    })
}

/// `InvalidMessageFormat` naming the escape and where it is, as serde_json
/// places its errors (lines and columns from 1).
fn lone_surrogate_failure(text: &str, at: usize) -> Failure {
    let before = text.get(..at).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let escape = text.get(at..at + 6).unwrap_or_default();
    Failure::format(&format!(
        "request is not strict JSON: lone surrogate {escape} at line {line} column {column}"
    ))
}

/// The keys of a request object; what Python's `dict` would hold (the last
/// of repeated keys). Any other document fails as the reference's
/// `parsed['v']` does.
fn object_fields(document: &str) -> Result<Fields, Failure> {
    let python_type = match document.trim_start().as_bytes().first() {
        Some(b'{') => {
            return serde_json::from_str(document)
                .map_err(|e| Failure::format(&format!("request is not strict JSON: {e}")));
        }
        Some(b'[') => {
            return Err(Failure::new(
                "TypeError",
                "list indices must be integers or slices, not str",
            ));
        }
        Some(b'"') => {
            return Err(Failure::new(
                "TypeError",
                "string indices must be integers, not 'str'",
            ));
        }
        Some(b't' | b'f') => "bool",
        Some(b'n') => "NoneType",
        _ if document.contains(['.', 'e', 'E']) => "float",
        _ => "int",
    };
    Err(Failure::new(
        "TypeError",
        &format!("'{python_type}' object is not subscriptable"),
    ))
}

fn unknown_verb(raw: &str) -> Failure {
    Failure::format(&format!(
        "unknown verb {} (expected c, r, d, b, l, w, rl or rc)",
        quoted(raw)
    ))
}

/// A JSON value quoted back in an error text, shortened if long.
fn quoted(raw: &str) -> String {
    let mut quoted: String = raw.chars().take(QUOTED_CHARS).collect();
    if quoted.len() < raw.len() {
        quoted.push('…');
    }
    quoted
}

/// The message of `d` and `b`: a valid type and any JSON payload.
fn message(msg_type: &RawValue, payload: Option<Box<RawValue>>) -> Result<Message, Failure> {
    let Ok(msg_type) = serde_json::from_str::<String>(msg_type.get()) else {
        return Err(Failure::format(&format!(
            "the message type t must be a string, not {}",
            quoted(msg_type.get())
        )));
    };
    let msg_type =
        MessageType::new(msg_type).map_err(|e| Failure::from_core(&Error::InvalidId(e)))?;
    let payload = match payload {
        Some(payload) => payload,
        None => {
            RawValue::from_string("null".to_owned()).map_err(|e| Failure::format(&e.to_string()))?
        }
    };
    Message::with_raw_payload(msg_type, payload).map_err(|e| Failure::from_core(&e))
}

/// An id as text; `None` when absent or `null`.
fn id_text(key: &str, raw: Option<Box<RawValue>>) -> Result<Option<String>, Failure> {
    match raw {
        None => Ok(None),
        Some(raw) if raw.get() == "null" => Ok(None),
        Some(raw) => serde_json::from_str::<String>(raw.get())
            .map(Some)
            .map_err(|_| {
                Failure::format(&format!(
                    "{key} must be a string, not {}",
                    quoted(raw.get())
                ))
            }),
    }
}

/// The request keys eric reads; others are skipped unread.
#[derive(Debug, Default)]
struct Fields {
    v: Option<Box<RawValue>>,
    c: Option<Box<RawValue>>,
    t: Option<Box<RawValue>>,
    p: Option<Box<RawValue>>,
    r: Option<Box<RawValue>>,
}

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a request object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            let slot = match key {
                Key::V => &mut fields.v,
                Key::C => &mut fields.c,
                Key::T => &mut fields.t,
                Key::P => &mut fields.p,
                Key::R => &mut fields.r,
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            // A repeated key keeps its last value, as in a Python dict.
            *slot = Some(map.next_value()?);
        }
        Ok(fields)
    }
}

/// A request key, told apart without copying it.
enum Key {
    V,
    C,
    T,
    P,
    R,
    Other,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "v" => Key::V,
            "c" => Key::C,
            "t" => Key::T,
            "p" => Key::P,
            "r" => Key::R,
            _ => Key::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(request: &[u8]) -> String {
        match parse(request) {
            Ok(request) => format!("parsed {request:?}"),
            Err(failure) => failure.text(),
        }
    }

    #[test]
    fn verbs_and_keys_parse() {
        let request =
            parse(br#"{"v": "d", "c": "ch", "r": "li", "t": "greet", "p": {"a": 1}, "x": [1]}"#)
                .unwrap();
        assert_eq!(request.verb, Verb::Dispatch);
        assert_eq!(request.channel.as_deref(), Some("ch"));
        assert_eq!(request.receiver.as_deref(), Some("li"));
        let message = request.message.unwrap();
        assert_eq!(message.msg_type().as_str(), "greet");
        assert_eq!(message.payload().get(), r#"{"a": 1}"#);

        let request = parse(br#"{"v": "b", "c": null, "t": "x", "v": "c"}"#).unwrap();
        assert_eq!(request.verb, Verb::Create, "the last of repeated keys wins");
        assert_eq!(request.channel, None);
        assert!(request.message.is_none());

        let request = parse(br#"{"v": "b", "c": "ch", "t": "nop"}"#).unwrap();
        assert_eq!(request.message.unwrap().payload().get(), "null");
    }

    // The texts of the reference's server (docs/SOCKET.md) and of CPython 3.11.
    #[test]
    fn malformed_requests_get_the_reference_texts() {
        assert_eq!(
            failure(b""),
            "JSONDecodeError('Expecting value: line 1 column 1 (char 0)')"
        );
        assert_eq!(
            failure(b"hello"),
            "JSONDecodeError('Expecting value: line 1 column 1 (char 0)')"
        );
        assert_eq!(
            failure(b"[1]"),
            "TypeError('list indices must be integers or slices, not str')"
        );
        assert_eq!(
            failure(b"\"v\""),
            "TypeError(\"string indices must be integers, not 'str'\")"
        );
        assert_eq!(
            failure(b"5"),
            "TypeError(\"'int' object is not subscriptable\")"
        );
        assert_eq!(
            failure(b"5e1"),
            "TypeError(\"'float' object is not subscriptable\")"
        );
        assert_eq!(
            failure(b"null"),
            "TypeError(\"'NoneType' object is not subscriptable\")"
        );
        assert_eq!(
            failure(b"true"),
            "TypeError(\"'bool' object is not subscriptable\")"
        );
        assert_eq!(
            failure(b"\xff\xfe"),
            "UnicodeDecodeError('utf-8', b'\\xff\\xfe', 0, 1, 'invalid start byte')"
        );
        assert_eq!(
            failure(br#"{"c": "x"}"#),
            r#"InvalidMessageFormat('{"c": "x"}')"#
        );
        assert_eq!(
            failure(br#"{"v": "d", "c": "x", "r": "y"}"#),
            r#"InvalidMessageFormat('{"v": "d", "c": "x", "r": "y"}')"#
        );
        assert_eq!(
            failure(br#"{"v":"c","#),
            "JSONDecodeError('Expecting property name enclosed in double quotes: line 1 column 10 (char 9)')"
        );
    }

    #[test]
    fn deviations_are_explained() {
        assert_eq!(
            failure(br#"{"v": "zz", "c": "x"}"#),
            "InvalidMessageFormat('unknown verb \"zz\" (expected c, r, d, b, l, w, rl or rc)')"
        );
        assert_eq!(
            failure(br#"{"v": 5}"#),
            "InvalidMessageFormat('unknown verb 5 (expected c, r, d, b, l, w, rl or rc)')"
        );
        assert_eq!(
            failure(br#"{"v": "b", "c": "x", "t": 7}"#),
            "InvalidMessageFormat('the message type t must be a string, not 7')"
        );
        assert_eq!(
            failure(br#"{"v": "b", "c": "x", "t": ""}"#),
            "InvalidMessageFormat('invalid message type: it is empty')"
        );
        assert_eq!(
            failure(br#"{"v": "r", "c": 5}"#),
            "InvalidMessageFormat('c must be a string, not 5')"
        );
        assert_eq!(
            failure(br#"{"v": "b", "c": "x", "t": "x", "p": NaN}"#),
            "InvalidMessageFormat('request is not strict JSON: expected value at line 1 column 37')"
        );
    }

    /// Python's `json.loads` takes a lone surrogate escape (a `str` holding
    /// half a UTF-16 pair); eric keeps strict JSON, as the module docs say:
    /// anywhere in the request, the answer is `InvalidMessageFormat`.
    #[test]
    fn lone_surrogates_are_refused_anywhere() {
        for (request, escape) in [
            (
                r#"{"v": "b", "c": "x", "t": "x", "p": "\ud800"}"#,
                r"\ud800",
            ),
            (
                r#"{"v": "b", "c": "x", "t": "x", "p": ["a\udfff"]}"#,
                r"\udfff",
            ),
            (
                r#"{"v": "b", "c": "x", "t": "x", "p": {"\udbff": 1}}"#,
                r"\udbff",
            ),
            (
                r#"{"v": "b", "c": "x", "t": "x", "p": "\ud800\u0041"}"#,
                r"\ud800",
            ),
            (
                r#"{"v": "b", "c": "x", "t": "x", "p": "\uDBFF\uDBFF"}"#,
                r"\uDBFF",
            ),
            (r#"{"v": "b", "c": "x", "t": "\ud800"}"#, r"\ud800"),
            (r#"{"v": "r", "c": "\udc00"}"#, r"\udc00"),
            (r#"{"v": "c", "zz": "\ud800"}"#, r"\ud800"),
        ] {
            let column = request.find(escape).unwrap() + 1;
            // The text is Python's `repr`: its backslash doubled.
            let escape = escape.replace('\\', r"\\");
            assert_eq!(
                failure(request.as_bytes()),
                format!(
                    "InvalidMessageFormat('request is not strict JSON: \
                     lone surrogate {escape} at line 1 column {column}')"
                ),
                "{request}"
            );
        }
        // A pair is one character; escaped backslashes are not escapes.
        let request =
            parse(br#"{"v": "b", "c": "x", "t": "x", "p": ["\ud83d\ude00", "\\ud800"]}"#).unwrap();
        let payload = request.message.unwrap().payload().get().to_owned();
        assert_eq!(payload, r#"["\ud83d\ude00", "\\ud800"]"#);
    }

    #[test]
    fn failures_of_the_broker_keep_the_reference_texts() {
        let channel = "nope".parse().unwrap();
        let e = Error::InvalidChannel { channel };
        assert_eq!(
            Failure::from_core(&e).text(),
            "InvalidChannelException('No channel with id nope')"
        );
        assert_eq!(
            Failure::no_channel(None).text(),
            "InvalidChannelException('No channel with id None')"
        );
    }
}
