//! `listen` and `watch`: follow a stream from `eric-client` and print each
//! event as a JSON line; notes about the stream (reconnections, lost
//! messages, its end) go to stderr.
//!
//! The client does the following: it reconnects when the connection drops,
//! resuming a listener's stream after the last event printed (so nothing
//! is lost or printed twice), backs off, gives up after `--give-up-after`,
//! and tells the server's notices from messages. A channel watch cannot
//! resume: it reconnects and warns that broadcasts sent meanwhile were
//! missed.

use std::time::Duration;

use eric_client::{EndReason, EventStream, StreamEvent, StreamItem, StreamRequest};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::StreamArgs;
use super::output::{self, note};
use crate::error::Result;

/// What is being followed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    /// A listener's messages (`listen`): resumable.
    Listener,
    /// A channel's broadcasts (`watch`).
    Channel,
}

/// Follows `request` until its stream ends, `--max-events` are printed,
/// stdout closes, Ctrl-C, or reconnecting fails for too long.
pub(super) async fn follow(
    request: StreamRequest,
    target: Target,
    args: &StreamArgs,
) -> Result<()> {
    let request = request
        .idle_timeout(Duration::from_secs(args.idle_timeout))
        .give_up_after(Duration::from_secs(args.give_up_after));
    tokio::select! {
        result = follow_stream(request, target, args) => result,
        () = interrupted() => Ok(()),
    }
}

/// Resolves on Ctrl-C. If the handler cannot be installed, never: the
/// default action (the process ends) still applies then.
async fn interrupted() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn follow_stream(request: StreamRequest, target: Target, args: &StreamArgs) -> Result<()> {
    // The first connection is not retried: a wrong URL or id fails at once.
    let mut events: EventStream = request.open().await?;
    let mut printed = 0u64;
    while let Some(item) = events.next().await {
        let item = match item {
            Ok(item) => item,
            Err(eric_client::Error::GaveUp { after, last }) => {
                note(&format!(
                    "could not reconnect for {} s; giving up",
                    after.as_secs()
                ));
                return Err((*last).into());
            }
            Err(error) => return Err(error.into()),
        };
        match item {
            StreamItem::Event(event) => {
                if print_event(&event).await?.is_break() {
                    return Ok(());
                }
                printed += 1;
                if args.max_events.is_some_and(|max| printed >= max) {
                    return Ok(());
                }
            }
            StreamItem::Gap { after } => note(&gap_warning(after)),
            StreamItem::End(reason) => {
                note(&ended(&reason));
                return Ok(());
            }
            StreamItem::Disconnected(why) => {
                // The transport's own words, without the URL.
                note(&format!("connection lost ({}); reconnecting", why.detail()));
            }
            StreamItem::Reconnected { resumed_after } => {
                note(&reconnected(target, resumed_after));
            }
            // A notice this version does not know: nothing to print.
            _ => {}
        }
    }
    Ok(())
}

fn reconnected(target: Target, resumed_after: Option<u64>) -> String {
    match (target, resumed_after) {
        (Target::Channel, _) => {
            "reconnected; broadcasts sent while disconnected were missed".to_owned()
        }
        (Target::Listener, Some(id)) => format!("reconnected; resuming after event {id}"),
        (Target::Listener, None) => "reconnected".to_owned(),
    }
}

/// One printed event: `{"id": 12, "event": "greet", "data": {...}}`.
#[derive(Serialize)]
struct EventLine<'a> {
    id: Option<u64>,
    event: &'a str,
    /// Left out when the message has none, so such lines read as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    data: Data,
}

/// The event's data: JSON when it is JSON, else a string.
#[derive(Serialize)]
#[serde(untagged)]
enum Data {
    /// JSON text on one line, passed through as is (no number rounding).
    Raw(Box<RawValue>),
    /// JSON that spanned several `data:` lines, re-encoded on one line.
    Parsed(Value),
    /// Not JSON.
    Text(String),
}

fn data(text: &str) -> Data {
    if !text.contains(['\n', '\r']) {
        if let Ok(raw) = RawValue::from_string(text.trim().to_owned()) {
            return Data::Raw(raw);
        }
    } else if let Ok(value) = serde_json::from_str(text) {
        return Data::Parsed(value);
    }
    Data::Text(text.to_owned())
}

async fn print_event(event: &StreamEvent) -> Result<output::Flow> {
    output::json_line(&EventLine {
        id: event.id,
        event: &event.event,
        topic: event.topic.as_deref(),
        data: data(&event.data),
    })
    .await
}

fn gap_warning(after: Option<u64>) -> String {
    match after {
        Some(after) => format!(
            "warning: messages after event {after} were lost (they had left the server's replay window)"
        ),
        None => {
            "warning: some messages were lost (they had left the server's replay window)".to_owned()
        }
    }
}

/// The note saying why the stream ended.
fn ended(reason: &EndReason) -> String {
    match reason {
        EndReason::Stopped => "the stream ended: the listener was stopped".to_owned(),
        EndReason::Removed => "the stream ended: the listener was removed".to_owned(),
        EndReason::Other(other) => format!("the stream ended ({other})"),
        _ => "the stream ended".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_json_when_it_can_be() {
        let line = |text: &str| serde_json::to_string(&data(text)).unwrap();
        assert_eq!(line(r#"{"a": [1, 2]}"#), r#"{"a": [1, 2]}"#);
        assert_eq!(line("12345678901234567890123"), "12345678901234567890123");
        assert_eq!(line("{\n\"a\": 1\n}"), r#"{"a":1}"#);
        assert_eq!(line("not json"), r#""not json""#);
        assert_eq!(line(""), r#""""#);
    }

    #[test]
    fn notices_read_as_notes() {
        assert!(gap_warning(Some(7)).contains("after event 7"));
        assert!(ended(&EndReason::Stopped).contains("stopped"));
        assert_eq!(
            reconnected(Target::Listener, Some(3)),
            "reconnected; resuming after event 3"
        );
    }
}
