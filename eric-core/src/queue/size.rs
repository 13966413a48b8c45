//! [`stored_size`]: what a queued message counts against its queue's byte
//! bound.

use crate::message::Message;

/// The length of `message`'s stored JSON (`{"type":..,"payload":..}` with
/// `sender_id`, `id` and `topic` when set): the bytes a queue's `queue_max_bytes`
/// counts for it.
///
/// Every engine counts the same number: it is exactly the JSON the Redis
/// engine stores (and its scripts measure with `#`), so a bound means the
/// same on both. It is measured once, when the message is made
/// ([`Message::stored_size`]), so counting costs nothing per queue.
///
/// ```
/// use eric_core::{Message, queue::stored_size};
/// let m = Message::try_new("t", serde_json::json!([1, 2])).unwrap();
/// assert_eq!(stored_size(&m), serde_json::to_string(&m).unwrap().len());
/// ```
#[inline]
pub fn stored_size(message: &Message) -> usize {
    message.stored_size()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::id::{ListenerId, MessageId};

    #[test]
    fn equals_the_stored_json_for_every_shape() {
        let plain = Message::try_new("a \"quoted\" type ü", json!({"x": "\n"})).unwrap();
        let signed = Message::signed(
            ListenerId::new("s\"1").unwrap(),
            "t".parse().unwrap(),
            json!(null),
        );
        let unique = Message::unique(&plain, None, Some(MessageId::new("m-1").unwrap()));
        let about = unique
            .clone()
            .with_topic("caf\u{e9}.\"q\"\t".parse().unwrap());
        for m in [plain, signed, unique, about] {
            assert_eq!(stored_size(&m), serde_json::to_string(&m).unwrap().len());
        }
    }

    #[test]
    fn a_deserialised_message_is_measured_too() {
        let text = r#"{"type":"t\u0001","payload":[1,"\"x\""],"id":"k\\1"}"#;
        let m: Message = serde_json::from_str(text).unwrap();
        assert_eq!(stored_size(&m), serde_json::to_string(&m).unwrap().len());
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::Value;

        use super::*;

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<String>().prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 16, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    prop::collection::btree_map(any::<String>(), inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Any type (control characters, quotes, backslashes, any
            /// Unicode), payload, sender, id and topic: the measured size is
            /// the serialised length.
            #[test]
            fn the_measure_is_the_serialised_length(
                msg_type in "[^\r\n\x00]{1,40}",
                payload in json(),
                sender in proptest::option::of("[!-~]{3,20}"),
                id in proptest::option::of("[!-~]{3,20}"),
                topic in proptest::option::of("[^\r\n\x00]{1,40}"),
            ) {
                let base = Message::try_new(&msg_type, payload).unwrap();
                let m = match &sender {
                    Some(s) => Message::signed(
                        ListenerId::new(s).unwrap(),
                        base.msg_type().clone(),
                        base.payload_value(),
                    ),
                    None => base,
                };
                let m = match &id {
                    Some(i) => Message::unique(&m, None, Some(MessageId::new(i).unwrap())),
                    None => m,
                };
                let m = match &topic {
                    Some(t) => m.with_topic(t.parse().unwrap()),
                    None => m,
                };
                prop_assert_eq!(stored_size(&m), serde_json::to_string(&m).unwrap().len());
            }
        }
    }
}
