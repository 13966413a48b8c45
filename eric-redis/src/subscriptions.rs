//! A listener's subscriptions as Redis stores them: the JSON of eric-core's
//! `Subscriptions` in the channel's `subs` hash, the empty string for none
//! (a listener without subscriptions has no field there). The scripts index
//! them from that JSON (`scripts`), so this is the only encoder.

use eric_core::{Error, Result, Subscriptions};

/// The stored form of `subscriptions`: `""` when there are none.
pub(crate) fn encode(subscriptions: &Subscriptions) -> Result<String> {
    if subscriptions.is_empty() {
        return Ok(String::new());
    }
    serde_json::to_string(subscriptions).map_err(|e| Error::repository("encoding subscriptions", e))
}

/// Reads a stored set (`""` or absent: none).
pub(crate) fn decode(stored: &str) -> Result<Subscriptions> {
    if stored.is_empty() {
        return Ok(Subscriptions::default());
    }
    serde_json::from_str(stored).map_err(|source| {
        crate::Error::Decode {
            operation: "reading a listener's subscriptions",
            source,
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use eric_core::Subscription;

    use super::*;

    #[test]
    fn none_is_the_empty_string_and_sets_round_trip() {
        assert_eq!(encode(&Subscriptions::default()).unwrap(), "");
        assert!(decode("").unwrap().is_empty());
        let set = Subscriptions::new([Subscription::new(
            "t".parse().unwrap(),
            Some("a.b".parse().unwrap()),
        )]);
        let stored = encode(&set).unwrap();
        assert_eq!(stored, r#"[{"type":"t","topic":"a.b"}]"#);
        assert_eq!(decode(&stored).unwrap(), set);
        assert!(decode("{").is_err());
    }
}
