//! Messages: a validated [`MessageType`] plus a JSON payload, optionally
//! signed with a sender id (the reference's `SignedMessage`), optionally
//! carrying a unique id (`UniqueMessage`) and optionally about a [`Topic`].
//!
//! A [`Message`] is immutable and shares its contents behind an `Arc`: a
//! broadcast to a thousand listeners queues a thousand pointers, not a thousand
//! copies (the reference also shares one object).
//!
//! The payload is kept as its JSON text ([`RawValue`]): the broker never
//! looks inside it, so it is validated once where it enters, stored and
//! written to clients as is, and parsed only when asked
//! ([`Message::payload_value`]).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::id::{IdError, ListenerId, MessageId, define_text, validate_line};
use crate::topic::Topic;

/// Longest accepted message type, in bytes.
pub const MAX_MESSAGE_TYPE_LEN: usize = 256;

/// Deepest accepted nesting of arrays and objects in a payload. Raw payloads
/// are only skimmed when they arrive, which has no depth limit of its own;
/// anything deeper than this could not be parsed back (`serde_json` stops at
/// 128), so it is refused where it enters.
pub const MAX_PAYLOAD_DEPTH: usize = 64;

/// The nesting depth of JSON text (brackets outside strings), in one pass
/// without recursion, so any text is safe to measure before it is parsed.
pub fn json_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Message types follow the rule of every text that travels as a line
/// ([`validate_line`]), up to [`MAX_MESSAGE_TYPE_LEN`] bytes.
fn validate_type(kind: &'static str, value: &str) -> Result<(), IdError> {
    validate_line(kind, value, MAX_MESSAGE_TYPE_LEN)
}

define_text!(
    /// The type of a message; it becomes the SSE `event` name.
    ///
    /// Non-empty, at most [`MAX_MESSAGE_TYPE_LEN`] bytes, and free of CR, LF and
    /// NUL, which would end or corrupt an SSE field. Any other Unicode is fine.
    ///
    /// ```
    /// use eric_core::MessageType;
    /// assert!("greet".parse::<MessageType>().is_ok());
    /// assert!("ü".parse::<MessageType>().is_ok());
    /// assert!("a\nb".parse::<MessageType>().is_err());
    /// ```
    MessageType,
    "message type",
    validate_type
);

#[cfg(feature = "openapi")]
crate::id::text_schema!(
    MessageType,
    "A message type, the SSE `event` name: 1 to 256 bytes of UTF-8, no CR, LF or NUL.",
    MAX_MESSAGE_TYPE_LEN,
    crate::id::LINE_PATTERN
);

/// What a [`Message`] holds, and its JSON shape (the OpenAPI schema
/// `Message` is derived from it).
#[derive(Debug, Serialize, Deserialize)]
#[cfg_attr(
    feature = "openapi",
    derive(utoipa::ToSchema),
    schema(
        as = Message,
        description = "A message. Other keys are ignored; `sender_id`, `id` and `topic` are left out when not set."
    )
)]
struct Contents {
    #[serde(rename = "type")]
    msg_type: MessageType,
    /// Any JSON value, stored and sent back as written; `null` when left out.
    #[serde(default = "null")]
    #[cfg_attr(feature = "openapi", schema(value_type = Value))]
    payload: Box<RawValue>,
    /// Who sent it (a listener of the channel), when its publisher said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sender_id: Option<ListenerId>,
    /// Its unique id, when its publisher gave one; without an
    /// `Idempotency-Key`, it names the write for retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<MessageId>,
    /// What it is about, when its publisher said.
    // Last, and left out when none, so every message stored before topics
    // existed keeps its exact bytes (and its byte count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic: Option<Topic>,
    /// The length of this serialised (see [`Message::stored_size`]), set
    /// once when the message is made: queues count it on every push and
    /// pop, and measuring there cost a third of a dispatch.
    #[serde(skip)]
    stored_size: usize,
}

impl Contents {
    /// `self` with its `stored_size` measured.
    fn measured(mut self) -> Self {
        let string = |s: &str| 2 + s.bytes().map(escaped_len).sum::<usize>();
        // {"type":T,"payload":P[,"sender_id":S][,"id":I][,"topic":O]}
        self.stored_size = r#"{"type":,"payload":}"#.len()
            + string(self.msg_type.as_str())
            + self.payload.get().len()
            + self
                .sender_id
                .as_ref()
                .map_or(0, |s| r#","sender_id":"#.len() + string(s.as_str()))
            + self
                .id
                .as_ref()
                .map_or(0, |i| r#","id":"#.len() + string(i.as_str()))
            + self
                .topic
                .as_ref()
                .map_or(0, |t| r#","topic":"#.len() + string(t.as_str()));
        self
    }
}

/// How many bytes serde_json writes for `b` inside a string: `"` and `\`
/// and the short control escapes take two, other control characters six
/// (`\u00XX`), everything else (UTF-8 bytes included) itself. Written out
/// because counting through a serialiser per push was the costliest step of
/// a dispatch; a test checks it against serde_json on every shape.
fn escaped_len(b: u8) -> usize {
    match b {
        b'"' | b'\\' | b'\x08' | b'\t' | b'\n' | b'\x0c' | b'\r' => 2,
        0..=0x1f => 6,
        _ => 1,
    }
}

/// The JSON `null`.
fn null() -> Box<RawValue> {
    raw(&Value::Null)
}

/// `value` as JSON text. Serialising a `Value` cannot fail (its map keys are
/// strings), so the fallback is unreachable; it keeps this path panic-free.
fn raw(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value)
        .or_else(|_| RawValue::from_string("null".to_owned()))
        .unwrap_or_else(|_| Box::<RawValue>::default())
}

/// A message: type, JSON payload, optional sender, id and topic.
///
/// Serialises as `{"type": ..., "payload": ..., "sender_id": ..., "id": ...,
/// "topic": ...}` (the last three only when set). Cloning is cheap.
///
/// ```
/// use eric_core::{Message, ListenerId, Topic};
/// use serde_json::json;
/// let m = Message::new("greet".parse().unwrap(), json!({"a": 1}));
/// let signed = Message::signed(ListenerId::new("bob").unwrap(), "hello".parse().unwrap(), json!(null));
/// assert_eq!(signed.sender_id().unwrap().as_str(), "bob");
/// let unique = Message::unique(&m, None, None);
/// assert_eq!(unique.msg_type(), m.msg_type());
/// assert!(unique.id().is_some());
/// let about = m.clone().with_topic("lab.fridge".parse::<Topic>().unwrap());
/// assert_eq!(about.topic().unwrap().as_str(), "lab.fridge");
/// assert_eq!(Message::unique(&about, None, None).topic(), about.topic());
/// assert_eq!(m.topic(), None);
/// ```
#[derive(Clone)]
pub struct Message(Arc<Contents>);

impl Message {
    /// A plain message (the reference's `Message`).
    pub fn new(msg_type: MessageType, payload: Value) -> Self {
        Self::from_contents(Contents {
            msg_type,
            payload: raw(&payload),
            sender_id: None,
            id: None,
            topic: None,
            stored_size: 0,
        })
    }

    /// A plain message whose payload is already JSON text (as it arrived in a
    /// request body: nothing is parsed or re-encoded). Refused if nested
    /// deeper than [`MAX_PAYLOAD_DEPTH`].
    pub fn with_raw_payload(msg_type: MessageType, payload: Box<RawValue>) -> crate::Result<Self> {
        check_depth(payload.get()).map_err(crate::Error::invalid_format)?;
        Ok(Self::from_contents(Contents {
            msg_type,
            payload,
            sender_id: None,
            id: None,
            topic: None,
            stored_size: 0,
        }))
    }

    /// Validates `msg_type` and builds a plain message.
    pub fn try_new(msg_type: &str, payload: Value) -> Result<Self, IdError> {
        Ok(Self::new(MessageType::new(msg_type)?, payload))
    }

    /// A message signed by `sender` (the reference's `SignedMessage`).
    pub fn signed(sender: ListenerId, msg_type: MessageType, payload: Value) -> Self {
        Self::from_contents(Contents {
            msg_type,
            payload: raw(&payload),
            sender_id: Some(sender),
            id: None,
            topic: None,
            stored_size: 0,
        })
    }

    /// This message's type, payload and topic, signed by `sender` (as a
    /// reply is).
    pub fn resigned(&self, sender: ListenerId) -> Self {
        Self::from_contents(Contents {
            msg_type: self.0.msg_type.clone(),
            payload: self.0.payload.clone(),
            sender_id: Some(sender),
            id: None,
            topic: self.0.topic.clone(),
            stored_size: 0,
        })
    }

    /// `message` with a unique id (the reference's `UniqueMessage`): `id`, or a
    /// fresh UUIDv4 when `None`; `sender` replaces the sender when given.
    pub fn unique(message: &Message, sender: Option<ListenerId>, id: Option<MessageId>) -> Self {
        Self::from_contents(Contents {
            msg_type: message.0.msg_type.clone(),
            payload: message.0.payload.clone(),
            sender_id: sender.or_else(|| message.0.sender_id.clone()),
            id: Some(id.unwrap_or_else(MessageId::generate)),
            topic: message.0.topic.clone(),
            stored_size: 0,
        })
    }

    /// This message about `topic` (replacing any topic it had), measured
    /// again. A message nobody else holds is reused as it is; a shared one
    /// is copied, since messages never change once made.
    pub fn with_topic(self, topic: Topic) -> Self {
        let mut contents = Arc::try_unwrap(self.0).unwrap_or_else(|shared| Contents {
            msg_type: shared.msg_type.clone(),
            payload: shared.payload.clone(),
            sender_id: shared.sender_id.clone(),
            id: shared.id.clone(),
            topic: None,
            stored_size: 0,
        });
        contents.topic = Some(topic);
        Self::from_contents(contents)
    }

    fn from_contents(contents: Contents) -> Self {
        Self(Arc::new(contents.measured()))
    }

    /// The length of its stored JSON (`{"type":..,"payload":..}` with
    /// `sender_id`, `id` and `topic` when set, as it serialises): what a queue's
    /// byte bound counts for it. Measured once, when the message is made.
    #[inline]
    pub fn stored_size(&self) -> usize {
        self.0.stored_size
    }

    /// The message type.
    #[inline]
    pub fn msg_type(&self) -> &MessageType {
        &self.0.msg_type
    }

    /// The payload as JSON text (`null` when there is none).
    #[inline]
    pub fn payload(&self) -> &RawValue {
        &self.0.payload
    }

    /// The payload, parsed.
    pub fn payload_value(&self) -> Value {
        serde_json::from_str(self.0.payload.get()).unwrap_or(Value::Null)
    }

    /// Who sent it, for signed messages.
    #[inline]
    pub fn sender_id(&self) -> Option<&ListenerId> {
        self.0.sender_id.as_ref()
    }

    /// Its unique id, for unique messages.
    pub fn id(&self) -> Option<&MessageId> {
        self.0.id.as_ref()
    }

    /// What it is about, when its publisher said.
    #[inline]
    pub fn topic(&self) -> Option<&Topic> {
        self.0.topic.as_ref()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Message");
        d.field("type", &self.0.msg_type.as_str())
            .field("payload", &self.0.payload.get());
        if let Some(sender) = &self.0.sender_id {
            d.field("sender_id", &sender.as_str());
        }
        if let Some(id) = &self.0.id {
            d.field("id", &id.as_str());
        }
        if let Some(topic) = &self.0.topic {
            d.field("topic", &topic.as_str());
        }
        d.finish()
    }
}

impl PartialEq for Message {
    /// Same type, sender, id, topic and payload text.
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        a.msg_type == b.msg_type
            && a.sender_id == b.sender_id
            && a.id == b.id
            && a.topic == b.topic
            && a.payload.get() == b.payload.get()
    }
}

/// The schema of [`Contents`], whose JSON a message is.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Message {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <Contents as utoipa::PartialSchema>::schema()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Message {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <Contents as utoipa::ToSchema>::schemas(schemas);
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let contents = Contents::deserialize(d)?;
        check_depth(contents.payload.get()).map_err(serde::de::Error::custom)?;
        Ok(Self::from_contents(contents))
    }
}

/// Refuses payload text nested deeper than [`MAX_PAYLOAD_DEPTH`].
fn check_depth(payload: &str) -> Result<(), String> {
    if json_depth(payload.as_bytes()) > MAX_PAYLOAD_DEPTH {
        return Err(format!(
            "payload nested deeper than {MAX_PAYLOAD_DEPTH} levels"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn message_type_validation() {
        assert!(MessageType::new("").is_err());
        assert!(MessageType::new("a\rb").is_err());
        assert!(MessageType::new("a\0").is_err());
        assert!(MessageType::new("x".repeat(MAX_MESSAGE_TYPE_LEN + 1)).is_err());
        assert!(MessageType::new("with space: fine").is_ok());
    }

    #[test]
    fn json_shape() {
        let m = Message::signed(
            ListenerId::new("s").unwrap(),
            MessageType::new("t").unwrap(),
            json!([1, "x"]),
        );
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(text, r#"{"type":"t","payload":[1,"x"],"sender_id":"s"}"#);
        let back: Message = serde_json::from_str(&text).unwrap();
        assert_eq!(back, m);
        let bare: Message = serde_json::from_str(r#"{"type":"t"}"#).unwrap();
        assert_eq!(bare.payload().get(), "null");
        let spaced: Message =
            serde_json::from_str(r#"{"type":"t","payload": {"a": [1, 2]}}"#).unwrap();
        assert_eq!(
            spaced.payload().get(),
            r#"{"a": [1, 2]}"#,
            "kept as it came"
        );
        assert_eq!(spaced.payload_value(), serde_json::json!({"a": [1, 2]}));
        assert!(serde_json::from_str::<Message>(r#"{"type":"a\nb"}"#).is_err());
    }

    #[test]
    fn a_topic_is_stored_last_and_only_when_set() {
        let plain = Message::try_new("t", json!(1)).unwrap();
        let before = serde_json::to_string(&plain).unwrap();
        assert_eq!(
            before, r#"{"type":"t","payload":1}"#,
            "no topic, same bytes"
        );
        let about = plain.clone().with_topic("a.b".parse().unwrap());
        let text = serde_json::to_string(&about).unwrap();
        assert_eq!(text, r#"{"type":"t","payload":1,"topic":"a.b"}"#);
        assert_eq!(about.stored_size(), text.len());
        let back: Message = serde_json::from_str(&text).unwrap();
        assert_eq!(back, about);
        assert_eq!(back.topic().unwrap().as_str(), "a.b");
        assert_ne!(about, plain, "the topic is part of equality");
        assert!(serde_json::from_str::<Message>(r#"{"type":"t","topic":""}"#).is_err());
        assert!(serde_json::from_str::<Message>(r#"{"type":"t","topic":"a\nb"}"#).is_err());
    }

    #[test]
    fn every_way_of_remaking_a_message_keeps_its_topic() {
        let sender = ListenerId::new("s").unwrap();
        let about = Message::signed(sender.clone(), "t".parse().unwrap(), json!(1))
            .with_topic("a.b".parse().unwrap());
        let unique = Message::unique(&about, None, None);
        let resigned = about.resigned(ListenerId::new("r").unwrap());
        let shared = about.clone();
        let retopped = shared.clone().with_topic("c".parse().unwrap());
        for m in [&unique, &resigned] {
            assert_eq!(m.topic(), about.topic(), "{m:?}");
        }
        assert_eq!(retopped.topic().unwrap().as_str(), "c", "replaced");
        assert_eq!(
            shared.topic(),
            about.topic(),
            "a shared message is not changed"
        );
        assert_eq!(retopped.sender_id(), Some(&sender));
        assert_eq!(
            unique.clone().with_topic("a".parse().unwrap()).id(),
            unique.id()
        );
        assert!(format!("{about:?}").contains(r#"topic: "a.b""#));
    }

    #[test]
    fn payload_depth_is_bounded_and_strings_do_not_count() {
        let ok = format!(
            r#"{{"type":"t","payload":{}1{}}}"#,
            "[".repeat(64),
            "]".repeat(64)
        );
        assert!(serde_json::from_str::<Message>(&ok).is_ok());
        let deep = format!(
            r#"{{"type":"t","payload":{}1{}}}"#,
            "[".repeat(65),
            "]".repeat(65)
        );
        let err = serde_json::from_str::<Message>(&deep).unwrap_err();
        assert!(err.to_string().contains("deeper than 64"), "{err}");
        let tricky = r#"{"type":"t","payload":"[[[[\"{{{{"}"#;
        assert_eq!(json_depth(br#""[[[[\"{{{{""#), 0);
        assert!(serde_json::from_str::<Message>(tricky).is_ok());
    }

    #[test]
    fn unique_messages_get_distinct_ids_unless_given() {
        let m = Message::try_new("t", json!(1)).unwrap();
        let a = Message::unique(&m, None, None);
        let b = Message::unique(&m, None, None);
        assert_ne!(a.id(), b.id());
        let given = MessageId::new("m-1").unwrap();
        let c = Message::unique(&m, Some(ListenerId::new("s").unwrap()), Some(given.clone()));
        assert_eq!(c.id(), Some(&given));
        assert_eq!(c.sender_id().unwrap().as_str(), "s");
        assert_eq!(c.payload_value(), json!(1));
    }
}
