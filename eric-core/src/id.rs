//! Validated ids: [`ChannelId`], [`ListenerId`], [`MemberId`], [`MessageId`],
//! [`IdempotencyKey`].
//!
//! An id is 1 to [`MAX_ID_LEN`] bytes of printable ASCII (`!` to `~`: no
//! spaces, no control characters), so it can appear unescaped in a URL path
//! segment after percent-decoding, in an SSE field, in a log line and in a
//! storage key. New ids are random UUIDv4 strings, as in the reference.
//!
//! Ids may contain characters that mean something in a storage key (`:`, `*`,
//! `{`...). They never reach a key raw: storage layouts embed them through
//! [`ChannelId::key_segment`] (and its siblings), an injective escaping whose
//! output contains none of those characters. So channel `ab` can never match
//! the keys of `abc` or `ab:x`, and `a*` matches nothing but itself.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// Longest accepted id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Characters that mean something in eric's key layouts or in Redis (separator,
/// hash tags, glob patterns) plus `%`, the escape character itself.
const KEY_RESERVED: &[u8] = b"%:{}*?[]\\";

/// [`KEY_RESERVED`] as a byte table: every dispatch to Redis derives a key
/// segment, and a table lookup per byte beats a scan of the list.
static RESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < KEY_RESERVED.len() {
        table[KEY_RESERVED[i] as usize] = true;
        i += 1;
    }
    table
};

fn is_reserved(b: u8) -> bool {
    RESERVED[usize::from(b)]
}

/// What is wrong with a rejected id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdErrorReason {
    /// The id is the empty string.
    Empty,
    /// The id is longer than [`MAX_ID_LEN`] bytes.
    TooLong(usize),
    /// The id holds a character outside `!`..=`~`.
    Forbidden(char),
}

/// An id (or a message type) that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {reason}")]
pub struct IdError {
    /// Which kind of id ("channel id", "message type", ...).
    pub kind: &'static str,
    /// Why it was refused.
    pub reason: IdErrorReason,
}

impl fmt::Display for IdErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty"),
            Self::TooLong(len) => write!(f, "it is {len} bytes long"),
            Self::Forbidden(c) => write!(f, "it contains the forbidden character {c:?}"),
        }
    }
}

fn validate(kind: &'static str, value: &str) -> Result<(), IdError> {
    let reason = if value.is_empty() {
        IdErrorReason::Empty
    } else if value.len() > MAX_ID_LEN {
        IdErrorReason::TooLong(value.len())
    } else if let Some(c) = value.chars().find(|c| !c.is_ascii_graphic()) {
        IdErrorReason::Forbidden(c)
    } else if value == "." || value == ".." {
        // URL clients resolve them as dot segments: no path could name them.
        IdErrorReason::Forbidden('.')
    } else {
        return Ok(());
    };
    Err(IdError { kind, reason })
}

/// Escapes `value` for use inside a storage key: every byte of
/// [`KEY_RESERVED`] becomes `%XX`. Injective, and the output holds none of
/// the reserved characters except the `%` of its escapes.
fn key_segment(value: &str) -> Cow<'_, str> {
    if !value.bytes().any(is_reserved) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c.is_ascii() && is_reserved(c as u8) {
            out.push_str(&format!("%{:02X}", c as u8));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The inverse of [`key_segment`]: `None` if `segment` is not one.
fn from_key_segment(segment: &str) -> Option<Cow<'_, str>> {
    if !segment.contains('%') {
        return Some(Cow::Borrowed(segment));
    }
    let mut out = Vec::with_capacity(segment.len());
    let mut bytes = segment.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            let decoded = u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?;
            // Only reserved characters are escaped, so only they may decode.
            if !is_reserved(decoded) {
                return None;
            }
            out.push(decoded);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// A validated text newtype: `$name(Arc<str>)` whose only constructor runs
/// `$validate(kind, value)`, with the impls every such type shares (text
/// access, parsing, formatting, serde that validates). Ids, message types,
/// topics and topic filters are all made by it.
macro_rules! define_text {
    ($(#[$meta:meta])* $name:ident, $kind:expr, $validate:path) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// Validates `value`.
            pub fn new(value: impl AsRef<str>) -> Result<Self, $crate::id::IdError> {
                let value = value.as_ref();
                $validate($kind, value)?;
                Ok(Self(std::sync::Arc::from(value)))
            }

            /// The text.
            #[inline]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::id::IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::id::IdError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = $crate::id::IdError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::new(&*s).map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use define_text;

/// The rule of texts that travel as a line of a text protocol (an SSE field,
/// a log line): 1 to `max` bytes, no CR, LF or NUL, which would end or
/// corrupt the line; any other Unicode is fine. Message types and topics
/// follow it.
pub(crate) fn validate_line(kind: &'static str, value: &str, max: usize) -> Result<(), IdError> {
    let reason = if value.is_empty() {
        IdErrorReason::Empty
    } else if value.len() > max {
        IdErrorReason::TooLong(value.len())
    } else if let Some(c) = value.chars().find(|c| matches!(c, '\r' | '\n' | '\0')) {
        IdErrorReason::Forbidden(c)
    } else {
        return Ok(());
    };
    Err(IdError { kind, reason })
}

/// The OpenAPI schema of a validated text (feature `openapi`): a string
/// with the bounds its constructor checks, so a client's validator refuses
/// what the server would. Lengths in a schema count characters, not bytes:
/// for ids (ASCII) they are the same; for line texts the byte bound, told
/// in the description, is the stricter one.
#[cfg(feature = "openapi")]
macro_rules! text_schema {
    ($name:ident, $description:expr, $max:expr, $pattern:expr) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some($description))
                    .min_length(Some(1))
                    .max_length(Some($max))
                    .pattern(Some($pattern))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
#[cfg(feature = "openapi")]
pub(crate) use text_schema;

/// The pattern of a text that travels as a line ([`validate_line`]): no
/// CR, LF or NUL.
#[cfg(feature = "openapi")]
pub(crate) const LINE_PATTERN: &str = r"^[^\r\n\x00]+$";

macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        define_text!($(#[$meta])* $name, $kind, validate);

        #[cfg(feature = "openapi")]
        text_schema!(
            $name,
            concat!(
                "An id (", $kind, "): 1 to 128 bytes of printable ASCII ",
                "(`!` to `~`), not `.` or `..`."
            ),
            MAX_ID_LEN,
            "^[!-~]+$"
        );

        impl $name {
            /// A fresh random id (a UUIDv4 string, as the reference makes).
            pub fn generate() -> Self {
                Self(Arc::from(uuid::Uuid::new_v4().to_string()))
            }

            /// The id escaped for a storage key: no `:`, `{`, `}` or glob
            /// character survives, and distinct ids give distinct segments.
            pub fn key_segment(&self) -> Cow<'_, str> {
                key_segment(&self.0)
            }

            /// The id a [`key_segment`](Self::key_segment) was made from.
            pub fn from_key_segment(segment: &str) -> Result<Self, IdError> {
                let decoded = from_key_segment(segment).ok_or(IdError {
                    kind: $kind,
                    reason: IdErrorReason::Forbidden('%'),
                })?;
                Self::new(decoded)
            }
        }
    };
}

define_id!(
    /// Identifies a channel.
    ///
    /// ```
    /// use eric_core::ChannelId;
    /// let id: ChannelId = "news:sport".parse().unwrap();
    /// assert_eq!(id.key_segment(), "news%3Asport");
    /// assert!("has space".parse::<ChannelId>().is_err());
    /// ```
    ChannelId,
    "channel id"
);

define_id!(
    /// Identifies a listener within a channel; also names its queue.
    ///
    /// ```
    /// use eric_core::ListenerId;
    /// assert_eq!(ListenerId::generate().as_str().len(), 36);
    /// assert!(ListenerId::new("").is_err());
    /// ```
    ListenerId,
    "listener id"
);

define_id!(
    /// Identifies a member (a listener paired with its queue), as the
    /// reference keys its persisted records.
    ///
    /// ```
    /// use eric_core::MemberId;
    /// assert!(MemberId::new("x".repeat(129)).is_err());
    /// ```
    MemberId,
    "member id"
);

define_id!(
    /// Identifies a message (the reference's `UniqueMessage.id`).
    ///
    /// ```
    /// use eric_core::MessageId;
    /// assert_ne!(MessageId::generate(), MessageId::generate());
    /// ```
    MessageId,
    "message id"
);

define_id!(
    /// Names one write (a dispatch or a broadcast) so that retrying it
    /// applies it at most once (see [`crate::idempotency`]).
    ///
    /// ```
    /// use eric_core::IdempotencyKey;
    /// let key: IdempotencyKey = "order-1234/attempt".parse().unwrap();
    /// assert_eq!(key.key_segment(), "order-1234/attempt");
    /// assert!("two words".parse::<IdempotencyKey>().is_err());
    /// ```
    IdempotencyKey,
    "idempotency key"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_uuid_v4_strings() {
        let id = ChannelId::generate();
        let parsed = uuid::Uuid::parse_str(id.as_str()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
    }

    #[test]
    fn rejects_empty_long_and_unprintable() {
        assert_eq!(ChannelId::new("").unwrap_err().reason, IdErrorReason::Empty);
        assert_eq!(
            ChannelId::new("a".repeat(MAX_ID_LEN + 1))
                .unwrap_err()
                .reason,
            IdErrorReason::TooLong(MAX_ID_LEN + 1)
        );
        assert!(ChannelId::new("a".repeat(MAX_ID_LEN)).is_ok());
        for bad in [
            "a b", "a\nb", "a\rb", "a\0b", "é", "a\tb", "\u{7f}", ".", "..",
        ] {
            assert!(ListenerId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn error_names_the_kind_and_the_reason() {
        let err = ListenerId::new("a b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid listener id: it contains the forbidden character ' '"
        );
    }

    #[test]
    fn key_segments_are_injective_and_free_of_reserved_characters() {
        let ids = [
            "ab", "abc", "ab:x", "a*", "a?", "[ab]", "a%3A", "a:", "{x}", "a\\",
        ];
        let segments: Vec<String> = ids
            .iter()
            .map(|s| ChannelId::new(s).unwrap().key_segment().into_owned())
            .collect();
        for (i, a) in segments.iter().enumerate() {
            assert!(
                !a.contains([':', '{', '}', '*', '?', '[', ']', '\\']),
                "{a}"
            );
            for b in &segments[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // No segment is a prefix-with-separator of another: "ab:" never starts "ab%3Ax:".
        assert!(!format!("{}:", segments[2]).starts_with(&format!("{}:", segments[0])));
    }

    #[test]
    fn key_segments_decode_back_to_their_ids() {
        for raw in ["ab", "ab:x", "a*", "[ab]", "a%3A", "{x}", "a\\b", "%"] {
            let id = ListenerId::new(raw).unwrap();
            let back = ListenerId::from_key_segment(&id.key_segment()).unwrap();
            assert_eq!(back, id);
        }
        for bad in ["%", "%4", "%zz", "%41", "a b"] {
            assert!(
                ListenerId::from_key_segment(bad).is_err(),
                "{bad:?} decoded"
            );
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// Ids drawn mostly from the characters that matter to the escaping
        /// (so near-collisions are common), and from all printable ASCII.
        fn id() -> impl Strategy<Value = String> {
            prop_oneof![r"[%:{}*?\\\[\]aAcF0-9]{1,12}", "[!-~]{1,128}",]
                .prop_filter("dot segments are refused", |s| s != "." && s != "..")
        }

        proptest! {
            /// Distinct ids give distinct segments.
            #[test]
            fn key_segments_are_injective(a in id(), b in id()) {
                let (sa, sb) = (ChannelId::new(&a).unwrap(), ChannelId::new(&b).unwrap());
                prop_assert_eq!(a == b, sa.key_segment() == sb.key_segment());
            }

            /// A segment decodes back to its id (which makes it injective).
            #[test]
            fn key_segments_decode_back(a in id()) {
                let id = ListenerId::new(&a).unwrap();
                prop_assert_eq!(ListenerId::from_key_segment(&id.key_segment()).unwrap(), id);
            }

            /// No separator, brace or glob character survives, and every `%`
            /// starts an escape of two uppercase hex digits: the Redis layout
            /// relies on it for its global tag `{%}`, which no segment can be.
            #[test]
            fn key_segments_hold_no_reserved_character(a in id()) {
                let id = ChannelId::new(&a).unwrap();
                let segment = id.key_segment();
                prop_assert!(!segment.contains([':', '{', '}', '*', '?', '[', ']', '\\']), "{}", segment);
                let bytes = segment.as_bytes();
                for (i, b) in bytes.iter().enumerate() {
                    if *b == b'%' {
                        let hex = bytes.get(i + 1..i + 3);
                        prop_assert!(
                            hex.is_some_and(|h| h.iter().all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))),
                            "{}", segment
                        );
                    }
                }
                prop_assert_ne!(segment.as_ref(), "%");
            }
        }
    }

    #[test]
    fn serde_round_trip_validates() {
        let id: ChannelId = serde_json::from_str("\"c-1\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"c-1\"");
        assert!(serde_json::from_str::<ChannelId>("\"a b\"").is_err());
    }
}
