//! The client subcommands: drive a running server over its `/v1` HTTP API.
//!
//! Results go to stdout as plain ids or one JSON value per line, so scripts
//! can read them; notes (stream warnings, reconnections) go to stderr.
//! Calls go through `eric-client`. Failures are
//! [`Error`](crate::error::Error)s, which `main` prints as one line before
//! exiting with status 1: the client's `Request` error when the server
//! cannot be reached, its `Api` error with the server's status, error code
//! and message otherwise.
//! Arguments the server would refuse (ids, message types, a PAYLOAD that is
//! not JSON) are refused here first, before any request.
//!
//! ## Layout
//!
//! - this file: [`ClientCommand`] and the dispatch of the one-shot commands.
//! - `listen`: `listen`, `watch` and `subscribe`, the streaming commands:
//!   what they print of the client's stream items.
//! - `output`: writing results and notes.

mod listen;
mod output;

use std::path::PathBuf;

use eric_client::{CaCertificates, Client, Message, NewChannel, Subscription, Write, Written};
use eric_core::id::IdErrorReason;
use eric_core::{ChannelId, IdError, ListenerId, MessageType, Topic, TopicFilter};
use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::Result;

/// The client subcommands (`--url` names the server; `--token` and
/// `--ca-file` say how to reach it).
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
    AddListener {
        /// The channel.
        channel: String,
        /// The listener's id (default: a new UUID); an existing listener
        /// keeps its queue.
        #[arg(long)]
        id: Option<String>,
    },
    /// Stream a channel's events that match filters, one JSON line per event.
    ///
    /// Prints events as `listen` does. Without --listener, from the
    /// channel's stream with these filters, on a temporary listener the
    /// server removes when the stream ends: what is published while
    /// disconnected is missed. With --listener, from that listener, created
    /// if missing, its subscriptions replaced by these filters (none: every
    /// broadcast); it resumes after a dropped connection as `listen` does,
    /// and stays on the server afterwards.
    Subscribe {
        /// The channel.
        channel: String,
        /// Receive messages of TYPE, about TOPIC or below it (`a.b` takes
        /// `a.b` and `a.b.c`) when given; split at the first `:`.
        /// Repeatable; none: every broadcast.
        #[arg(long = "filter", value_name = "TYPE[:TOPIC]")]
        filters: Vec<String>,
        /// Stream this listener instead, with these filters as its
        /// subscriptions.
        #[arg(long, value_name = "ID")]
        listener: Option<String>,
        /// Resume after this event id (with --listener).
        #[arg(long, requires = "listener")]
        last_event_id: Option<u64>,
        /// How the stream is followed.
        #[command(flatten)]
        stream: StreamArgs,
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
        /// What the message is about (1 to 256 bytes, no CR, LF or NUL):
        /// consumers see it on the event's `topic:` line and in `next`.
        #[arg(long, value_name = "TOPIC")]
        topic: Option<String>,
        #[command(flatten)]
        once: Once,
    },
    /// Queue a message for every listener of a channel (also `publish`).
    ///
    /// Prints `{"delivered": N, "full": [listeners whose queue was full]}`.
    #[command(visible_alias = "publish")]
    Broadcast {
        /// The channel.
        channel: String,
        /// The message type (the SSE event name).
        #[arg(value_name = "TYPE")]
        msg_type: String,
        /// The payload, as JSON text (a string is quoted: '"hello"').
        #[arg(default_value = "null", allow_negative_numbers = true)]
        payload: String,
        /// What the message is about (1 to 256 bytes, no CR, LF or NUL):
        /// consumers see it on the event's `topic:` line and in `next`.
        #[arg(long, value_name = "TOPIC")]
        topic: Option<String>,
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
    /// is a string if it is not JSON), with `"topic": T` after the type when
    /// the message has one. When the connection drops, reconnects
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
    /// How the write is sent: once without a key, with retries with one.
    fn write(&self) -> Write {
        match &self.idempotency_key {
            Some(key) => Write::once(key.as_str()).retries(self.retries),
            None => Write::new(),
        }
    }
}

/// The server the client subcommands talk to, and how (the global
/// options).
#[derive(Debug)]
pub(crate) struct Server<'a> {
    /// Its URL (`--url`).
    pub url: &'a str,
    /// The bearer token of every request (`--token`).
    pub token: Option<&'a str>,
    /// CA certificates to trust beyond the system's roots (`--ca-file`).
    pub ca_file: Option<PathBuf>,
}

/// Runs `command` against `server`.
pub(crate) async fn run(server: Server<'_>, command: ClientCommand) -> Result<()> {
    let mut client = Client::builder(server.url);
    if let Some(token) = server.token {
        client = client.token(token);
    }
    if let Some(path) = server.ca_file {
        // Read here without blocking the runtime (`ca_file` would read it
        // in `build`).
        client = client.ca_certificates(CaCertificates::load(path).await?);
    }
    let client = client.build()?;
    match command {
        ClientCommand::Create(args) => create(&client, args).await,
        ClientCommand::Channels => {
            for id in &client.channels().await? {
                if output::line(id).await?.is_break() {
                    break;
                }
            }
            Ok(())
        }
        ClientCommand::Info { channel } => {
            let info = client.channel(channel_id(&channel)?).await?;
            print_json(&info).await
        }
        ClientCommand::RemoveChannel { channel } => {
            Ok(client.delete_channel(channel_id(&channel)?).await?)
        }
        ClientCommand::AddListener { channel, id } => {
            let id = id.as_deref().map(listener_id).transpose()?;
            let created = client.add_listener(channel_id(&channel)?, id).await?;
            print_line(&created).await
        }
        ClientCommand::RemoveListener { channel, listener } => {
            let (channel, listener) = ids(&channel, &listener)?;
            Ok(client.remove_listener(channel, listener).await?)
        }
        ClientCommand::Start { channel, listener } => {
            let (channel, listener) = ids(&channel, &listener)?;
            Ok(client.start(channel, listener).await?)
        }
        ClientCommand::Stop { channel, listener } => {
            let (channel, listener) = ids(&channel, &listener)?;
            Ok(client.stop(channel, listener).await?)
        }
        ClientCommand::Dispatch {
            channel,
            listener,
            msg_type,
            payload,
            topic,
            once,
        } => {
            let message = message(&msg_type, &payload, topic)?;
            let (channel, listener) = ids(&channel, &listener)?;
            let Written { value, .. } = client
                .dispatch(channel, listener, &message, &once.write())
                .await?;
            print_line(&value.seq.to_string()).await
        }
        ClientCommand::Broadcast {
            channel,
            msg_type,
            payload,
            topic,
            once,
        } => {
            let message = message(&msg_type, &payload, topic)?;
            let channel = channel_id(&channel)?;
            let Written { value, .. } = client.broadcast(channel, &message, &once.write()).await?;
            print_json(&value).await
        }
        ClientCommand::Next { channel, listener } => {
            let (channel, listener) = ids(&channel, &listener)?;
            match client.next(channel, listener).await? {
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
            let (channel, listener) = ids(&channel, &listener)?;
            let mut request = client.listener_events(channel, listener);
            if let Some(id) = last_event_id {
                request = request.last_event_id(id);
            }
            listen::follow(request, listen::Target::Listener, &stream).await
        }
        ClientCommand::Subscribe {
            channel,
            filters,
            listener,
            last_event_id,
            stream,
        } => {
            let subscriptions = subscriptions(&filters)?;
            let channel = channel_id(&channel)?;
            let Some(listener) = listener else {
                let request = client.channel_events_matching(channel, &subscriptions)?;
                return listen::follow(request, listen::Target::Channel, &stream).await;
            };
            let listener = listener_id(&listener)?;
            client
                .add_listener_with(channel, Some(listener), &subscriptions)
                .await?;
            let mut request = client.listener_events(channel, listener);
            if let Some(id) = last_event_id {
                request = request.last_event_id(id);
            }
            listen::follow(request, listen::Target::Listener, &stream).await
        }
        ClientCommand::Watch { channel, stream } => {
            let request = client.channel_events(channel_id(&channel)?);
            listen::follow(request, listen::Target::Channel, &stream).await
        }
    }
}

async fn create(client: &Client, args: CreateArgs) -> Result<()> {
    let mut channel = NewChannel::new();
    if let Some(id) = args.id.as_deref() {
        channel = channel.id(channel_id(id)?);
    }
    if let Some(millis) = args.retry_ms {
        channel = channel.retry_ms(millis);
    }
    if let Some(capacity) = args.queue_capacity {
        channel = channel.queue_capacity(capacity as u64);
    }
    if let Some(window) = args.replay_window {
        channel = channel.replay_window(window as u64);
    }
    let created = client.create_channel(&channel).await?;
    print_line(&created.id).await
}

/// A message body, checked here: the type must be a message type, the
/// payload JSON (kept as written, so nothing is rounded or reordered) and
/// the topic, if any, a topic.
fn message(msg_type: &str, payload: &str, topic: Option<String>) -> Result<Message> {
    MessageType::new(msg_type).map_err(eric_core::Error::from)?;
    let payload = serde_json::from_str::<Box<RawValue>>(payload).map_err(|e| {
        eric_core::Error::invalid_format(format!(
            "PAYLOAD is not valid JSON ({e}); write JSON text, e.g. '{{\"a\": 1}}' or '\"text\"'"
        ))
    })?;
    let message = Message::raw(msg_type, payload);
    Ok(match topic {
        Some(topic) => {
            Topic::new(&topic).map_err(eric_core::Error::from)?;
            message.with_topic(topic)
        }
        None => message,
    })
}

/// `--filter` values as subscriptions, each checked here: a message type,
/// and a topic filter after the first `:` if there is one.
fn subscriptions(filters: &[String]) -> Result<Vec<Subscription>> {
    filters
        .iter()
        .map(|filter| {
            let subscription: Subscription = filter.parse()?;
            MessageType::new(&subscription.msg_type).map_err(eric_core::Error::from)?;
            if let Some(topic) = &subscription.topic {
                TopicFilter::new(topic).map_err(eric_core::Error::from)?;
            }
            Ok(subscription)
        })
        .collect()
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

/// A channel id and a listener id, checked.
fn ids<'a>(channel: &'a str, listener: &'a str) -> Result<(&'a str, &'a str)> {
    Ok((channel_id(channel)?, listener_id(listener)?))
}

/// Prints a line; a closed stdout is not an error (see `output`).
async fn print_line(text: &str) -> Result<()> {
    output::line(text).await.map(drop)
}

/// Prints `value` as one JSON line, as the server sent it. Through a
/// `serde_json::Value`, whose key order is the one this command always
/// printed.
async fn print_json(value: &impl Serialize) -> Result<()> {
    let value = serde_json::to_value(value)
        .map_err(|e| crate::error::Error::Output { source: e.into() })?;
    output::json_line(&value).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_must_be_json() {
        let body = message("greet", r#"{"a": 12345678901234567890123}"#, None).unwrap();
        assert_eq!(body.payload.get(), r#"{"a": 12345678901234567890123}"#);
        let err = message("greet", "{oops", None).err().unwrap().to_string();
        assert!(err.contains("PAYLOAD is not valid JSON"), "{err}");
        assert!(message("greet", "hello", None).is_err());
        assert!(message("", "null", None).is_err());
        assert!(message("a\nb", "null", None).is_err());
    }

    #[test]
    fn filters_split_at_the_first_colon_and_are_checked() {
        let filters = ["A".to_owned(), "B:x.y".to_owned(), "C:a:b".to_owned()];
        let parsed = subscriptions(&filters).unwrap();
        assert_eq!(
            parsed,
            [
                Subscription::new("A", None),
                Subscription::new("B", Some("x.y")),
                Subscription::new("C", Some("a:b")),
            ]
        );
        for bad in [":x", "A:", "A\nB", "A:a\nb"] {
            assert!(subscriptions(&[bad.to_owned()]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_must_name_a_path_segment() {
        assert_eq!(channel_id("a/b").unwrap(), "a/b");
        assert!(channel_id("..").is_err());
        assert!(listener_id(".").is_err());
        assert!(channel_id("has space").is_err());
        assert_eq!(ids("c", "l").unwrap(), ("c", "l"));
        assert!(ids("c", "..").is_err());
    }
}
