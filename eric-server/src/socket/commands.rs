//! Running a parsed [`Request`] against the [`Broker`].
//!
//! Channels are the broker's: one created with `c` is visible over HTTP and
//! the other way round. Lookups answer the reference's texts; an id that no
//! channel or listener can have (eric validates ids) is simply not found.
//! Where a verb does more than the reference's did, `docs/SOCKET.md` lists
//! it under the deviations.

use eric_core::{ChannelId, Error, ListenerId, Message};

use super::protocol::{Failure, Request, Verb};
use super::stream::Opened;
use crate::broker::Broker;

/// The reference's answer to a command that worked.
const ACK: &str = "ack";
/// The reference's class for listener errors.
const INVALID_LISTENER: &str = "InvalidListenerException";

/// What a command produced.
#[derive(Debug)]
pub(super) enum Outcome {
    /// A text, then end of file.
    Reply(String),
    /// A stream to serve.
    Stream(Opened),
}

/// Runs `request`; a failure becomes its error text.
pub(super) async fn execute(broker: &Broker, request: Request) -> Outcome {
    let verb = request.verb;
    match run(broker, request).await {
        Ok(outcome) => outcome,
        Err(failure) => {
            tracing::debug!(verb = verb.as_str(), %failure, "socket command failed");
            Outcome::Reply(failure.text())
        }
    }
}

async fn run(broker: &Broker, request: Request) -> Result<Outcome, Failure> {
    let Request {
        verb,
        channel,
        receiver,
        message,
    } = request;
    let fail = |error: Error| failure(verb, &error);
    let channel_text = channel.as_deref();
    let channel = || channel_id(channel_text);
    let receiver = receiver.as_deref();
    match verb {
        Verb::Create => {
            let id = channel_text
                .map(str::parse::<ChannelId>)
                .transpose()
                .map_err(|e| Failure::from_core(&Error::InvalidId(e)))?;
            let created = broker.create_channel(id, None).await.map_err(fail)?;
            Ok(Outcome::Reply(created.to_string()))
        }
        Verb::Register => {
            let listener = broker
                .subscribe(&channel()?, None, None)
                .await
                .map_err(fail)?;
            Ok(Outcome::Reply(listener.to_string()))
        }
        Verb::Dispatch => {
            let channel = channel()?;
            let listener = listener_id(broker, &channel, verb, receiver).await?;
            let message = required(message)?;
            broker
                .dispatch(&channel, &listener, message)
                .await
                .map_err(fail)?;
            Ok(Outcome::Reply(ACK.to_owned()))
        }
        Verb::Broadcast => {
            let channel = channel()?;
            let outcome = broker
                .broadcast(&channel, &required(message)?)
                .await
                .map_err(fail)?;
            if !outcome.full.is_empty() {
                tracing::debug!(%channel, full = outcome.full.len(), "broadcast skipped full queues");
            }
            Ok(Outcome::Reply(ACK.to_owned()))
        }
        Verb::Listen => {
            let channel = channel()?;
            let listener = listener_id(broker, &channel, verb, receiver).await?;
            let opened = broker
                .stream(&channel, &listener, None, true)
                .await
                .map_err(fail)?;
            Ok(Outcome::Stream(Opened::new(
                channel,
                opened,
                Some(listener),
            )))
        }
        Verb::Watch => {
            let channel = channel()?;
            let opened = broker
                .watch(&channel, Default::default())
                .await
                .map_err(fail)?;
            Ok(Outcome::Stream(Opened::new(channel, opened, None)))
        }
        Verb::RemoveListener => {
            let channel = channel()?;
            let listener = listener_id(broker, &channel, verb, receiver).await?;
            broker
                .remove_listener(&channel, &listener)
                .await
                .map_err(fail)?;
            Ok(Outcome::Reply(ACK.to_owned()))
        }
        Verb::RemoveChannel => {
            // Its listeners go too, and their streams end.
            broker.delete_channel(&channel()?).await.map_err(fail)?;
            Ok(Outcome::Reply(ACK.to_owned()))
        }
    }
}

/// The message `parse` attached to `d` and `b`.
fn required(message: Option<Message>) -> Result<Message, Failure> {
    message.ok_or_else(|| Failure::format("a message needs its type t"))
}

/// The channel id, or the reference's not-found text.
fn channel_id(text: Option<&str>) -> Result<ChannelId, Failure> {
    text.and_then(|id| id.parse().ok())
        .ok_or_else(|| Failure::no_channel(text))
}

/// The listener id, or the verb's not-found text. The channel is checked
/// first, as the reference looked it up before the listener.
async fn listener_id(
    broker: &Broker,
    channel: &ChannelId,
    verb: Verb,
    text: Option<&str>,
) -> Result<ListenerId, Failure> {
    if let Some(id) = text.and_then(|id| id.parse().ok()) {
        return Ok(id);
    }
    broker
        .ensure_exists(channel, None)
        .await
        .map_err(|e| failure(verb, &e))?;
    Err(no_listener(verb, text))
}

/// A broker error, with the verb's text for an unknown listener.
fn failure(verb: Verb, error: &Error) -> Failure {
    match error {
        Error::InvalidListener { listener, .. } => no_listener(verb, Some(listener.as_str())),
        other => Failure::from_core(other),
    }
}

/// The reference's texts for an unknown listener, which differ by verb.
fn no_listener(verb: Verb, id: Option<&str>) -> Failure {
    match (verb, id) {
        (Verb::Dispatch, id) => Failure::new(
            INVALID_LISTENER,
            &format!("Invalid listener {}", id.unwrap_or("None")),
        ),
        (Verb::RemoveListener, Some(id)) => Failure::new(INVALID_LISTENER, id),
        (Verb::RemoveListener, None) => Failure::with_args(INVALID_LISTENER, "None".to_owned()),
        _ => Failure::bare(INVALID_LISTENER),
    }
}
