//! The client subcommands: drive a running server over its `/v1` HTTP API.
//!
//! Results go to stdout as plain ids or one JSON value per line, so scripts
//! can read them; notes (stream warnings, reconnections) go to stderr.
//! Failures are [`Error`](crate::error::Error)s, which `main` prints as one line
//! before exiting with status 1: [`Error::Request`](crate::error::Error::Request)
//! when the server cannot be reached, [`Error::Answer`](crate::error::Error::Answer)
//! with the server's error code and message otherwise.
//! Arguments the server would refuse (ids, message types, a PAYLOAD that is
//! not JSON) are refused here first, before any request.
//!
//! ## Layout
//!
//! - this file: [`ClientCommand`] and the dispatch of the one-shot commands.
//! - `api`: the typed HTTP client and its error mapping.
//! - `listen`: `listen` and `watch`, the streaming commands (reconnection).
//! - `backoff`: the waits between reconnection attempts.
//! - `output`: writing results and notes.

mod api;
mod backoff;
mod listen;
mod output;

use eric_core::id::IdErrorReason;
use eric_core::{ChannelId, IdError, ListenerId, MessageType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::Result;
use api::Api;

/// The client subcommands (`--url` names the server).
#[derive(Debug, clap::Subcommand)]
pub(crate) enum ClientCommand {
    /// Create a channel; prints its id.
    Create(CreateArgs),
    /// List the channels' ids, one per line.
    Channels,
    /// Show a channel's settings and listeners (one JSON line).
    Info {
        /// The channel.
        channel: String,
    },
    /// Delete a channel; its listeners go and their streams end.
    RemoveChannel {
        /// The channel.
        channel: String,
    },
    /// Add a listener (stopped until started or streamed); prints its id.
    Subscribe {
        /// The channel.
        channel: String,
        /// The listener's id (default: a new UUID); an existing listener
        /// keeps its queue.
        #[arg(long)]
        id: Option<String>,
    },
    /// Remove a listener; its queued messages go and its streams end.
    RemoveListener {
        /// The channel.
        channel: String,
        /// The listener.
        listener: String,
    },
    /// Start a listener: it can take messages (`next`, streams).
    Start {
        /// The channel.
        channel: String,
        /// The listener.
        listener: String,
    },
    /// Stop a listener: its streams end, its messages stay queued.
    Stop {
        /// The channel.
        channel: String,
        /// The listener.
        listener: String,
    },
    /// Queue a message for one listener; prints its sequence number.
    ///
    /// The sequence number is the message's SSE event id.
    Dispatch {
        /// The channel.
        channel: String,
        /// The listener.
        listener: String,
        /// The message type (the SSE event name).
        #[arg(value_name = "TYPE")]
        msg_type: String,
        /// The payload, as JSON text (a string is quoted: '"hello"').
        #[arg(default_value = "null", allow_negative_numbers = true)]
        payload: String,
        #[command(flatten)]
        once: Once,
    },
    /// Queue a message for every listener of a channel.
    ///
    /// Prints `{"delivered": N, "full": [listeners whose queue was full]}`.
    Broadcast {
        /// The channel.
        channel: String,
        /// The message type (the SSE event name).
        #[arg(value_name = "TYPE")]
        msg_type: String,
        /// The payload, as JSON text (a string is quoted: '"hello"').
        #[arg(default_value = "null", allow_negative_numbers = true)]
        payload: String,
        #[command(flatten)]
        once: Once,
    },
    /// Take a running listener's next message (nothing if its queue is empty).
    ///
    /// Prints the message as the server sends it:
    /// `{"seq": N, "message": {"type": ..., "payload": ...}}`.
    Next {
        /// The channel.
        channel: String,
        /// The listener.
        listener: String,
    },
    /// Stream a listener's messages (starting it), one JSON line per event.
    ///
    /// Prints `{"id": N, "event": TYPE, "data": PAYLOAD}` per event (`data`
    /// is a string if it is not JSON). When the connection drops, reconnects
    /// and resumes after the last event printed, so nothing is lost or
    /// repeated; a warning on stderr says if the server could not make the
    /// resume whole. Ends when the listener is stopped or removed (saying so
    /// on stderr), after --max-events, on Ctrl-C, or when reconnecting has
    /// failed for --give-up-after seconds (exit status 1).
    Listen {
        /// The channel.
        channel: String,
        /// The listener.
        listener: String,
        /// Resume after this event id (the last one a previous run printed).
        #[arg(long)]
        last_event_id: Option<u64>,
        /// How the stream is followed.
        #[command(flatten)]
        stream: StreamArgs,
    },
    /// Stream a channel's broadcasts, one JSON line per event.
    ///
    /// Prints events as `listen` does, from a temporary listener that the
    /// server removes when the stream ends. Reconnects when the connection
    /// drops, but broadcasts sent while disconnected are missed.
    Watch {
        /// The channel.
        channel: String,
        /// How the stream is followed.
        #[command(flatten)]
        stream: StreamArgs,
    },
}

/// The settings of a new channel; those not given take the built-in
/// defaults (with no setting given, the server's configured defaults).
#[derive(Debug, clap::Args)]
pub(crate) struct CreateArgs {
    /// The channel's id (default: a new UUID).
    #[arg(long)]
    pub id: Option<String>,
    /// The SSE `retry` hint sent to clients, in milliseconds.
    #[arg(long)]
    pub retry_ms: Option<u64>,
    /// Most messages a listener's queue holds.
    #[arg(long)]
    pub queue_capacity: Option<usize>,
    /// Messages per listener kept after sending, so a resume can recover them.
    #[arg(long)]
    pub replay_window: Option<usize>,
}

/// How `listen` and `watch` follow their stream.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StreamArgs {
    /// Stop after printing this many events.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_events: Option<u64>,
    /// Give up when reconnecting has failed for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub give_up_after: u64,
    /// Reconnect when nothing, not even a keep-alive comment, arrives for
    /// this many seconds (above the server's keep-alive interval).
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
}

/// How a write is sent: named by an idempotency key, it is retried through
/// transient failures and still applied once.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Once {
    /// Name the write with this key (1 to 128 printable ASCII bytes, e.g.
    /// an order number): the server applies it at most once within the
    /// channel's idempotency window, so it is retried when the server is
    /// unreachable, busy or did not confirm it (503, 504).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// How many times a named write is retried before giving up.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        requires = "idempotency_key"
    )]
    pub retries: u32,
}

impl Once {
    /// `POST`s `body` to `path`: once without a key, with retries with one.
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        api: &Api,
        path: &[&str],
        body: &impl Serialize,
    ) -> Result<T> {
        match &self.idempotency_key {
            Some(key) => api.post_once(path, body, key, self.retries).await,
            None => api.post(path, Some(body)).await,
        }
    }
}

/// Runs `command` against the server at `url`, with `token` as the bearer
/// token of every request when given.
pub(crate) async fn run(url: &str, token: Option<&str>, command: ClientCommand) -> Result<()> {
    let api = Api::new(url, token)?;
    match command {
        ClientCommand::Create(args) => create(&api, args).await,
        ClientCommand::Channels => {
            let list: ChannelList = api.get(&["v1", "channels"]).await?;
            for id in &list.channels {
                if output::line(id).await?.is_break() {
                    break;
                }
            }
            Ok(())
        }
        ClientCommand::Info { channel } => {
            let info: Value = api.get(&["v1", "channels", channel_id(&channel)?]).await?;
            print_json(&info).await
        }
        ClientCommand::RemoveChannel { channel } => {
            api.delete(&["v1", "channels", channel_id(&channel)?]).await
        }
        ClientCommand::Subscribe { channel, id } => {
            let id = id.as_deref().map(listener_id).transpose()?;
            let body = id.map(|id| NewListener { id });
            let path = ["v1", "channels", channel_id(&channel)?, "listeners"];
            let created: Created = api.post(&path, body.as_ref()).await?;
            print_line(&created.id).await
        }
        ClientCommand::RemoveListener { channel, listener } => {
            api.delete(&listener_path(&channel, &listener, None)?).await
        }
        ClientCommand::Start { channel, listener } => {
            api.post_empty(&listener_path(&channel, &listener, Some("start"))?)
                .await
        }
        ClientCommand::Stop { channel, listener } => {
            api.post_empty(&listener_path(&channel, &listener, Some("stop"))?)
                .await
        }
        ClientCommand::Dispatch {
            channel,
            listener,
            msg_type,
            payload,
            once,
        } => {
            let body = message(&msg_type, &payload)?;
            let path = listener_path(&channel, &listener, Some("messages"))?;
            let queued: Queued = once.post(&api, &path, &body).await?;
            print_line(&queued.seq.to_string()).await
        }
        ClientCommand::Broadcast {
            channel,
            msg_type,
            payload,
            once,
        } => {
            let body = message(&msg_type, &payload)?;
            let path = ["v1", "channels", channel_id(&channel)?, "messages"];
            let outcome: Value = once.post(&api, &path, &body).await?;
            print_json(&outcome).await
        }
        ClientCommand::Next { channel, listener } => {
            let path = listener_path(&channel, &listener, Some("next"))?;
            match api.post_maybe::<Value>(&path).await? {
                Some(delivery) => print_json(&delivery).await,
                None => Ok(()),
            }
        }
        ClientCommand::Listen {
            channel,
            listener,
            last_event_id,
            stream,
        } => {
            let target = listen::Target::Listener {
                channel: channel_id(&channel)?,
                listener: listener_id(&listener)?,
                last_event_id,
            };
            listen::follow(&api, target, &stream).await
        }
        ClientCommand::Watch { channel, stream } => {
            let target = listen::Target::Channel {
                channel: channel_id(&channel)?,
            };
            listen::follow(&api, target, &stream).await
        }
    }
}

async fn create(api: &Api, args: CreateArgs) -> Result<()> {
    let id = args.id.as_deref().map(channel_id).transpose()?;
    let settings = Settings {
        retry_timeout_milliseconds: args.retry_ms,
        queue_capacity: args.queue_capacity,
        replay_window: args.replay_window,
    };
    // Without any setting, no `settings` key: the server's configured
    // defaults apply then, not the built-in ones.
    let any = settings.retry_timeout_milliseconds.is_some()
        || settings.queue_capacity.is_some()
        || settings.replay_window.is_some();
    let body = NewChannel {
        id,
        settings: any.then_some(settings),
    };
    let created: Created = api.post(&["v1", "channels"], Some(&body)).await?;
    print_line(&created.id).await
}

// What goes over the wire, field for field as `http/v1.rs` reads and writes it.

#[derive(Serialize)]
struct NewChannel<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    settings: Option<Settings>,
}

#[derive(Serialize)]
struct Settings {
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_timeout_milliseconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    queue_capacity: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    replay_window: Option<usize>,
}

#[derive(Serialize)]
struct NewListener<'a> {
    id: &'a str,
}

#[derive(Serialize)]
struct MessageBody<'a> {
    #[serde(rename = "type")]
    msg_type: &'a str,
    payload: Box<RawValue>,
}

#[derive(Deserialize)]
struct Created {
    id: String,
}

#[derive(Deserialize)]
struct ChannelList {
    channels: Vec<String>,
}

#[derive(Deserialize)]
struct Queued {
    seq: u64,
}

/// A message body, checked here: the type must be a message type and the
/// payload JSON (kept as written, so nothing is rounded or reordered).
fn message<'a>(msg_type: &'a str, payload: &str) -> Result<MessageBody<'a>> {
    MessageType::new(msg_type).map_err(eric_core::Error::from)?;
    let payload = serde_json::from_str::<Box<RawValue>>(payload).map_err(|e| {
        eric_core::Error::invalid_format(format!(
            "PAYLOAD is not valid JSON ({e}); write JSON text, e.g. '{{\"a\": 1}}' or '\"text\"'"
        ))
    })?;
    Ok(MessageBody { msg_type, payload })
}

/// `raw`, if it is a channel id that can name a URL path segment.
fn channel_id(raw: &str) -> Result<&str> {
    ChannelId::new(raw).map_err(eric_core::Error::from)?;
    path_segment("channel id", raw)
}

/// `raw`, if it is a listener id that can name a URL path segment.
fn listener_id(raw: &str) -> Result<&str> {
    ListenerId::new(raw).map_err(eric_core::Error::from)?;
    path_segment("listener id", raw)
}

/// Refuses `.` and `..`: valid ids, but URL clients (ours included) read
/// them as "this" and "parent" path segments, so no request can name them.
fn path_segment<'a>(kind: &'static str, raw: &'a str) -> Result<&'a str> {
    if raw == "." || raw == ".." {
        let error = IdError {
            kind,
            reason: IdErrorReason::Forbidden('.'),
        };
        return Err(eric_core::Error::from(error).into());
    }
    Ok(raw)
}

/// `/v1/channels/{c}/listeners/{l}[/{action}]`.
fn listener_path<'a>(
    channel: &'a str,
    listener: &'a str,
    action: Option<&'a str>,
) -> Result<Vec<&'a str>> {
    let mut path = vec!["v1", "channels", channel_id(channel)?, "listeners"];
    path.push(listener_id(listener)?);
    path.extend(action);
    Ok(path)
}

/// Prints a line; a closed stdout is not an error (see `output`).
async fn print_line(text: &str) -> Result<()> {
    output::line(text).await.map(drop)
}

async fn print_json(value: &Value) -> Result<()> {
    output::json_line(value).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_must_be_json() {
        let body = message("greet", r#"{"a": 12345678901234567890123}"#).unwrap();
        assert_eq!(body.payload.get(), r#"{"a": 12345678901234567890123}"#);
        let err = message("greet", "{oops").err().unwrap().to_string();
        assert!(err.contains("PAYLOAD is not valid JSON"), "{err}");
        assert!(message("greet", "hello").is_err());
        assert!(message("", "null").is_err());
        assert!(message("a\nb", "null").is_err());
    }

    #[test]
    fn ids_must_name_a_path_segment() {
        assert_eq!(channel_id("a/b").unwrap(), "a/b");
        assert!(channel_id("..").is_err());
        assert!(listener_id(".").is_err());
        assert!(channel_id("has space").is_err());
        let path = listener_path("c", "l", Some("start")).unwrap();
        assert_eq!(path, ["v1", "channels", "c", "listeners", "l", "start"]);
    }
}
