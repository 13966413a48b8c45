//! The export format: JSON lines, a header then one line per channel, and
//! their conversion from and to `eric-core`'s persistence records.
//!
//! Every record type refuses fields it does not know, so a file written by
//! a later format, or edited by hand with a typo, is refused with its line
//! number instead of silently losing what the field held.

use eric_core::persistence::{ChannelRecord, ListenerRecord, MemberRecord};
use eric_core::queue::QueueSnapshot;
use eric_core::{ChannelId, ChannelSettings, Delivery, ListenerId, MemberId, Subscriptions};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;

/// The first line: which format, and which version of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Header {
    /// The version; its name makes the file recognisable at a glance.
    pub(crate) eric_export: u32,
}

/// One channel: its settings and every listener with its messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelLine {
    pub(crate) channel: ChannelId,
    pub(crate) settings: ChannelSettings,
    pub(crate) listeners: Vec<ListenerLine>,
}

/// One listener of a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenerLine {
    pub(crate) id: ListenerId,
    /// The member id the channel knows it by (kept, so references to it,
    /// e.g. in idempotency records or logs, still mean the same listener).
    pub(crate) member: MemberId,
    pub(crate) running: bool,
    #[serde(default, skip_serializing_if = "Subscriptions::is_empty")]
    pub(crate) subscriptions: Subscriptions,
    /// The number its queue gives next: a target that numbers per listener
    /// (disk) continues from it, so resumes by `Last-Event-ID` stay valid.
    pub(crate) next_seq: u64,
    /// Handed-out messages kept for resumes, oldest first.
    #[serde(default)]
    pub(crate) window: Vec<Delivery>,
    /// Messages waiting for it, oldest first.
    #[serde(default)]
    pub(crate) queue: Vec<Delivery>,
}

impl ChannelLine {
    /// The line for a stored channel and its members (a member stored
    /// without a queue has none waiting).
    pub(crate) fn from_records(record: ChannelRecord, members: Vec<MemberRecord>) -> Self {
        let listeners = members
            .into_iter()
            .map(|member| {
                let queue = member.queue.unwrap_or(QueueSnapshot {
                    next_seq: 1,
                    messages: Vec::new(),
                    window: Vec::new(),
                });
                ListenerLine {
                    id: member.listener.id,
                    member: member.id,
                    running: member.listener.running,
                    subscriptions: member.listener.subscriptions,
                    next_seq: queue.next_seq,
                    window: queue.window,
                    queue: queue.messages,
                }
            })
            .collect();
        Self {
            channel: record.id,
            settings: record.settings,
            listeners,
        }
    }

    /// Checks what JSON cannot: one listener per id and per member id, and
    /// numbers that strictly increase from the window into the queue and
    /// stay below `next_seq`. `line` names the input line in errors.
    pub(crate) fn check(&self, line: usize) -> Result<()> {
        let invalid = |reason: String| Error::InvalidRecord { line, reason };
        let mut ids = std::collections::HashSet::new();
        let mut members = std::collections::HashSet::new();
        for listener in &self.listeners {
            if !ids.insert(&listener.id) {
                return Err(invalid(format!("listener {} appears twice", listener.id)));
            }
            if !members.insert(&listener.member) {
                return Err(invalid(format!(
                    "member id {} appears twice",
                    listener.member.as_str()
                )));
            }
            let mut last = 0;
            for delivery in listener.window.iter().chain(&listener.queue) {
                if delivery.seq <= last {
                    return Err(invalid(format!(
                        "listener {}: message numbers must strictly increase from \
                         `window` into `queue` ({} after {last})",
                        listener.id, delivery.seq
                    )));
                }
                last = delivery.seq;
            }
            if listener.next_seq <= last {
                return Err(invalid(format!(
                    "listener {}: next_seq {} is not above its last message ({last})",
                    listener.id, listener.next_seq
                )));
            }
        }
        Ok(())
    }

    /// The records a repository stores.
    pub(crate) fn into_records(self) -> (ChannelRecord, Vec<MemberRecord>) {
        let members = self
            .listeners
            .into_iter()
            .map(|listener| MemberRecord {
                id: listener.member,
                listener: ListenerRecord {
                    id: listener.id,
                    running: listener.running,
                    subscriptions: listener.subscriptions,
                },
                queue: Some(QueueSnapshot {
                    next_seq: listener.next_seq,
                    messages: listener.queue,
                    window: listener.window,
                }),
            })
            .collect();
        let record = ChannelRecord {
            id: self.channel,
            settings: self.settings,
        };
        (record, members)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn unknown_fields_are_refused() {
        let line = r#"{"channel":"c","settings":{},"listeners":[],"extra":1}"#;
        let error = serde_json::from_str::<ChannelLine>(line).unwrap_err();
        assert!(
            error.to_string().contains("unknown field `extra`"),
            "{error}"
        );
        assert!(serde_json::from_str::<Header>(r#"{"eric_export":1,"x":2}"#).is_err());
    }

    #[test]
    fn numbers_must_increase_from_window_into_queue() {
        let line = r#"{"channel":"c","settings":{},"listeners":[{"id":"l","member":"m",
            "running":true,"next_seq":9,
            "window":[{"seq":5,"message":{"type":"t","payload":1}}],
            "queue":[{"seq":5,"message":{"type":"t","payload":2}}]}]}"#;
        let parsed: ChannelLine = serde_json::from_str(line).unwrap();
        let error = parsed.check(7).unwrap_err();
        assert!(error.to_string().starts_with("input line 7:"), "{error}");
    }
}
