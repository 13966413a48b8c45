//! [`stored_size`]: what a queued message counts against its queue's byte
//! bound.

use std::io;

use crate::message::Message;

/// Counts what is written, keeping nothing.
struct Counter(usize);

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The length of `message`'s stored JSON (`{"type":..,"payload":..}` with
/// `sender_id` and `id` when set): the bytes a queue's `queue_max_bytes`
/// counts for it.
///
/// Every engine counts the same number: it is exactly the JSON the Redis
/// engine stores (and its scripts measure with `#`), so a bound means the
/// same on both. Nothing is allocated: the payload is kept as JSON text
/// and is counted, not copied; only the type and the ids are scanned for
/// escapes.
///
/// ```
/// use eric_core::{Message, queue::stored_size};
/// let m = Message::try_new("t", serde_json::json!([1, 2])).unwrap();
/// assert_eq!(stored_size(&m), serde_json::to_string(&m).unwrap().len());
/// ```
pub fn stored_size(message: &Message) -> usize {
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, message) {
        Ok(()) => counter.0,
        // Unreachable (string keys, a payload that is JSON already); the
        // payload is most of a message, so it is still counted.
        Err(_) => message.payload().get().len(),
    }
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
        for m in [plain, signed, unique] {
            assert_eq!(stored_size(&m), serde_json::to_string(&m).unwrap().len());
        }
    }
}
