//! `listen` and `watch`: follow an SSE stream, print each event as a JSON
//! line, and reconnect when the connection drops.
//!
//! A listener's stream resumes: every reconnection sends the id of the last
//! event printed as `Last-Event-ID`, and the server hands out exactly the
//! messages after it (those it had sent into the broken connection come
//! back from its replay window), so nothing is lost or printed twice. If
//! the window could not cover the gap, the server says so with `eric-gap`
//! and we warn on stderr. A channel watch cannot resume (each connection
//! is a new temporary listener): it reconnects and warns that broadcasts
//! sent meanwhile were missed.
//!
//! Reconnection backs off exponentially (with jitter, so clients of a
//! restarted server do not all knock at once) and gives up after a while
//! without a successful connection. The first connection is not retried:
//! a wrong URL or id should fail at once, not after a minute.
//!
//! The SSE text is parsed by `eventsource-stream`. It carries an event's
//! `id` over to the next events that have none, as the SSE spec says, and
//! that is how the server's own notices are told from messages: a message
//! always has a fresh id, while `eric-gap` and `eric-end` have no `id` line,
//! so they show the previous id. The server also refuses messages typed
//! `eric-...`; telling notices by their missing id keeps a stream safe even
//! against a server that did not.

use std::ops::ControlFlow;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_util::{Stream, StreamExt};
use reqwest::{Response, Url};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::api::{Api, is_transient};
use super::output::{self, note};
use super::{StreamArgs, backoff::Backoff};
use crate::error::{Error, Result};

/// The server's notice that the resume could not be made whole.
const GAP_EVENT: &str = "eric-gap";
/// The server's notice that the stream is over, with the reason.
const END_EVENT: &str = "eric-end";

/// What is being followed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target<'a> {
    /// A listener's messages (`listen`): resumable.
    Listener {
        /// Its channel.
        channel: &'a str,
        /// The listener.
        listener: &'a str,
        /// Resume after this event at the first connection.
        last_event_id: Option<u64>,
    },
    /// A channel's broadcasts (`watch`).
    Channel {
        /// The channel.
        channel: &'a str,
    },
}

impl Target<'_> {
    fn url(&self, api: &Api) -> Url {
        match *self {
            Self::Listener {
                channel, listener, ..
            } => api.url(&["v1", "channels", channel, "listeners", listener, "events"]),
            Self::Channel { channel } => api.url(&["v1", "channels", channel, "events"]),
        }
    }

    fn resumes(&self) -> bool {
        matches!(self, Self::Listener { .. })
    }
}

/// Follows `target` until its stream ends, `--max-events` are printed,
/// stdout closes, Ctrl-C, or reconnecting fails for too long.
pub(super) async fn follow(api: &Api, target: Target<'_>, args: &StreamArgs) -> Result<()> {
    tokio::select! {
        result = follow_stream(api, target, args) => result,
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

/// Where the stream stands across connections.
#[derive(Debug, Default)]
struct Progress {
    /// The id of the last message printed: the resume point.
    last_id: Option<u64>,
    /// Messages printed so far (for `--max-events`).
    printed: u64,
}

/// How one connection ended.
enum Outcome {
    /// The command is done (stream ended, enough events, stdout closed).
    Done(Result<()>),
    /// The connection broke; `true` if it delivered any message.
    Dropped { why: String, delivered: bool },
}

async fn follow_stream(api: &Api, target: Target<'_>, args: &StreamArgs) -> Result<()> {
    let url = target.url(api);
    let give_up = Duration::from_secs(args.give_up_after);
    let mut progress = Progress {
        last_id: match target {
            Target::Listener { last_event_id, .. } => last_event_id,
            Target::Channel { .. } => None,
        },
        printed: 0,
    };
    let mut backoff = Backoff::default();
    let mut failing_since: Option<Instant> = None;
    let mut connected_before = false;
    loop {
        let resume = progress.last_id.filter(|_| target.resumes());
        match api.open_stream(&url, resume).await {
            Ok(response) => {
                if connected_before {
                    note(&reconnected(target, progress.last_id));
                }
                connected_before = true;
                failing_since = None;
                match read(&url, response, &mut progress, args).await {
                    Outcome::Done(result) => return result,
                    Outcome::Dropped { why, delivered } => {
                        if delivered {
                            backoff = Backoff::default();
                        }
                        note(&format!("connection lost ({why}); reconnecting"));
                    }
                }
            }
            Err(error) if !connected_before || !is_transient(&error) => return Err(error),
            Err(error) => {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= give_up {
                    note(&format!(
                        "could not reconnect for {} s; giving up",
                        args.give_up_after
                    ));
                    return Err(error);
                }
            }
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}

fn reconnected(target: Target<'_>, last_id: Option<u64>) -> String {
    match (target, last_id) {
        (Target::Channel { .. }, _) => {
            "reconnected; broadcasts sent while disconnected were missed".to_owned()
        }
        (Target::Listener { .. }, Some(id)) => format!("reconnected; resuming after event {id}"),
        (Target::Listener { .. }, None) => "reconnected".to_owned(),
    }
}

/// A read of the response body failed.
#[derive(Debug)]
enum ReadError {
    /// The connection failed.
    Transport(reqwest::Error),
    /// Nothing came, not even a keep-alive comment, for the idle timeout.
    Idle(Duration),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(error) => write!(f, "{error}"),
            Self::Idle(after) => write!(f, "nothing received for {} s", after.as_secs()),
        }
    }
}

type Events =
    Pin<Box<dyn Stream<Item = std::result::Result<Event, EventStreamError<ReadError>>> + Send>>;

/// The body's events. The idle timeout watches the bytes, not the events:
/// keep-alive comments prove the connection alive but are no events.
fn events(response: Response, idle: Duration) -> Events {
    let bytes = Box::pin(response.bytes_stream());
    let guarded = futures_util::stream::unfold(Some(bytes), move |state| async move {
        let mut bytes = state?;
        match tokio::time::timeout(idle, bytes.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok::<Bytes, _>(chunk), Some(bytes))),
            Ok(Some(Err(error))) => Some((Err(ReadError::Transport(error)), None)),
            Ok(None) => None,
            Err(_) => Some((Err(ReadError::Idle(idle)), None)),
        }
    });
    Box::pin(guarded.eventsource())
}

/// Prints one connection's events until it ends or breaks.
async fn read(
    url: &Url,
    response: Response,
    progress: &mut Progress,
    args: &StreamArgs,
) -> Outcome {
    let mut events = events(response, Duration::from_secs(args.idle_timeout));
    // The id the parser carries over: a notice without an `id` line shows it.
    let mut carried_id = String::new();
    let mut delivered = false;
    loop {
        let event = match events.next().await {
            Some(Ok(event)) => event,
            Some(Err(error)) => {
                let why = match error {
                    EventStreamError::Transport(error) => error.to_string(),
                    other => format!("unreadable stream: {other}"),
                };
                return Outcome::Dropped { why, delivered };
            }
            None => {
                let why = "the server closed the stream".to_owned();
                return Outcome::Dropped { why, delivered };
            }
        };
        let notice = event.id == carried_id;
        carried_id.clone_from(&event.id);
        if notice && event.event == GAP_EVENT {
            note(&gap_warning(&event.data));
            continue;
        }
        if notice && event.event == END_EVENT {
            return Outcome::Done(ended(url, &event.data).map(|why| note(&why)));
        }
        delivered = true;
        match print_event(&event, progress).await {
            Ok(ControlFlow::Continue(())) => {}
            Ok(ControlFlow::Break(())) => return Outcome::Done(Ok(())),
            Err(e) => return Outcome::Done(Err(e)),
        }
        if args.max_events.is_some_and(|max| progress.printed >= max) {
            return Outcome::Done(Ok(()));
        }
    }
}

/// One printed event: `{"id": 12, "event": "greet", "data": {...}}`.
#[derive(Serialize)]
struct EventLine<'a> {
    id: Value,
    event: &'a str,
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

async fn print_event(event: &Event, progress: &mut Progress) -> Result<output::Flow> {
    let id = match event.id.parse::<u64>() {
        Ok(seq) => {
            progress.last_id = Some(seq);
            Value::from(seq)
        }
        Err(_) if event.id.is_empty() => Value::Null,
        Err(_) => Value::String(event.id.clone()),
    };
    progress.printed += 1;
    output::json_line(&EventLine {
        id,
        event: &event.event,
        data: data(&event.data),
    })
    .await
}

fn gap_warning(data: &str) -> String {
    let after = serde_json::from_str::<Value>(data)
        .ok()
        .and_then(|v| v.get("after").and_then(Value::as_u64));
    match after {
        Some(after) => format!(
            "warning: messages after event {after} were lost (they had left the server's replay window)"
        ),
        None => {
            "warning: some messages were lost (they had left the server's replay window)".to_owned()
        }
    }
}

/// The stream's end: the note saying why, or an error if the server failed.
fn ended(url: &Url, data: &str) -> Result<String> {
    let reason = serde_json::from_str::<Value>(data)
        .ok()
        .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| data.to_owned());
    Ok(match reason.as_str() {
        "stopped" => "the stream ended: the listener was stopped".to_owned(),
        "removed" => "the stream ended: the listener was removed".to_owned(),
        // The server's storage failed in a way retrying cannot fix.
        "failed" => {
            return Err(Error::Answer {
                url: url.to_string(),
                status: 200,
                body: "eric-end: the server could not go on streaming (reason \"failed\")"
                    .to_owned(),
            });
        }
        other => format!("the stream ended ({other})"),
    })
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
    fn notices_read_their_data() {
        assert!(gap_warning(r#"{"after":7}"#).contains("after event 7"));
        let url: Url = "http://127.0.0.1:1/events".parse().unwrap();
        let stopped = ended(&url, r#"{"reason":"stopped"}"#).unwrap();
        assert!(stopped.contains("stopped"), "{stopped}");
        let failed = ended(&url, r#"{"reason":"failed"}"#)
            .unwrap_err()
            .to_string();
        assert!(
            failed.contains("/events") && failed.contains("failed"),
            "{failed}"
        );
    }
}
