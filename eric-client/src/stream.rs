//! [`EventStream`]: a listener's or a channel's SSE stream as typed items,
//! reconnecting when the connection drops.
//!
//! A listener's stream resumes: every reconnection sends the id of the last
//! event handed out as `Last-Event-ID`, and the server hands out exactly
//! the messages after it (those it had sent into the broken connection come
//! back from its replay window), so nothing is lost or seen twice. If the
//! window could not cover the gap, the server says so with `eric-gap`,
//! which arrives as [`StreamItem::Gap`]. A channel's stream cannot resume
//! (each connection is a new temporary listener): it reconnects, and what
//! was broadcast meanwhile is missed.
//!
//! Reconnection backs off exponentially (with jitter, so clients of a
//! restarted server do not all knock at once) and gives up after a while
//! without a successful connection. The first connection is not retried:
//! a wrong URL or id should fail at once, not after a minute.
//!
//! The server's notices have no `id` line while every message has one;
//! that, not only the reserved `eric-` type, is how they are told apart.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::Url;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::client::Client;
use crate::error::{EndReason, Error, Result, StreamProblem};
use crate::sse::{Field, Parser, parse_u64};

/// The server's notice that a resume could not be made whole.
const GAP_EVENT: &[u8] = b"eric-gap";
/// The server's notice that the stream is over, with the reason.
const END_EVENT: &[u8] = b"eric-end";
/// Default for [`StreamRequest::idle_timeout`]: above the server's
/// keep-alive interval.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`StreamRequest::give_up_after`].
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);

/// One event of a stream as it came over the wire: a message (or, on a
/// channel's stream, a broadcast) with its payload still JSON text. (Not
/// named `Event`: that name is kept for a trait of typed events, decoded
/// from this.)
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamEvent {
    /// Its SSE id: the message's `seq` (`None` if the server sent none).
    pub id: Option<u64>,
    /// Its SSE event name: the message's type.
    pub event: String,
    /// The message's topic, if its publisher gave one (the `topic:` line).
    pub topic: Option<String>,
    /// Its data: the payload's JSON text as the server sent it (a payload
    /// sent pretty-printed arrives as its lines joined by `\n`).
    pub data: String,
}

impl StreamEvent {
    /// The payload decoded as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(&self.data)
    }
}

/// What a stream yields.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamItem {
    /// A message.
    Event(StreamEvent),
    /// `eric-gap`: on a resume, messages after `after` had left the
    /// server's replay window and are lost (`None` if it did not say).
    Gap {
        /// The id the resume asked to continue after.
        after: Option<u64>,
    },
    /// `eric-end`: the stream is over (no item follows).
    End(EndReason),
    /// The connection broke (the error says how); the stream reconnects
    /// next.
    Disconnected(Error),
    /// A new connection is open.
    Reconnected {
        /// The event id it resumed after (`None` on a channel's stream,
        /// which does not resume, or before any event).
        resumed_after: Option<u64>,
    },
}

/// A stream to open: [`Client::listener_events`] or
/// [`Client::channel_events`] make one.
#[derive(Debug, Clone)]
pub struct StreamRequest {
    client: Client,
    url: Url,
    /// Whether reconnections send `Last-Event-ID` (a listener's stream).
    resumes: bool,
    last_event_id: Option<u64>,
    idle_timeout: Duration,
    give_up_after: Duration,
    reconnect: bool,
}

impl Client {
    /// A listener's stream (opening it starts the listener, for a caller
    /// allowed to). It resumes across reconnections.
    pub fn listener_events(
        &self,
        channel: impl AsRef<str>,
        listener: impl AsRef<str>,
    ) -> StreamRequest {
        let path =
            crate::listeners::listener_path(channel.as_ref(), listener.as_ref(), Some("events"));
        self.stream_request(self.url(&path), true)
    }

    /// A channel's broadcasts, on a temporary listener the server removes
    /// when the stream ends. What is broadcast while it is disconnected is
    /// missed.
    pub fn channel_events(&self, channel: impl AsRef<str>) -> StreamRequest {
        let url = self.url(&["v1", "channels", channel.as_ref(), "events"]);
        self.stream_request(url, false)
    }

    fn stream_request(&self, url: Url, resumes: bool) -> StreamRequest {
        StreamRequest {
            client: self.clone(),
            url,
            resumes,
            last_event_id: None,
            idle_timeout: IDLE_TIMEOUT,
            give_up_after: GIVE_UP_AFTER,
            reconnect: true,
        }
    }
}

impl StreamRequest {
    /// Resume after this event id (one a previous stream handed out).
    pub fn last_event_id(mut self, id: u64) -> Self {
        self.last_event_id = Some(id);
        self
    }

    /// Reconnect when nothing, not even a keep-alive comment, arrives for
    /// this long (default 60 s; keep it above the server's keep-alive
    /// interval).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Give up when reconnecting has failed for this long (default 60 s).
    pub fn give_up_after(mut self, after: Duration) -> Self {
        self.give_up_after = after;
        self
    }

    /// Whether a broken connection is reopened (default `true`); without,
    /// it ends the stream with its error.
    pub fn reconnect(mut self, reconnect: bool) -> Self {
        self.reconnect = reconnect;
        self
    }

    /// Adds `key=value` to the URL's query (the channel stream's
    /// `filter`s).
    pub(crate) fn query_pair(mut self, key: &str, value: &str) -> Self {
        self.url.query_pairs_mut().append_pair(key, value);
        self
    }

    /// The stream's URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// Opens the stream. Returns once the server's first bytes have
    /// arrived, so the stream is registered on the server: a message sent
    /// after this returns is delivered on it.
    pub async fn open(self) -> Result<EventStream> {
        let mut follow = Follow {
            last_id: self.last_event_id,
            request: self,
            body: None,
            parser: Parser::default(),
            queue: VecDeque::new(),
            backoff: Backoff::default(),
            delivered: false,
            done: false,
        };
        follow.connect().await?;
        Ok(EventStream {
            last_id: follow.last_id,
            retry: follow.parser.retry(),
            state: Some(Box::new(follow)),
            pending: None,
        })
    }
}

type Body = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;
type Pending = Pin<Box<dyn Future<Output = (Box<Follow>, Option<Result<StreamItem>>)> + Send>>;

/// An open stream: a [`Stream`] of [`StreamItem`]s. It ends after
/// [`StreamItem::End`], or after an error it cannot get past (a refusal on
/// reconnecting, giving up, a `failed` end). Dropping it closes the
/// connection.
pub struct EventStream {
    /// Copies of the state's figures, readable while a read is pending.
    last_id: Option<u64>,
    retry: Option<Duration>,
    /// The state, when no read is pending.
    state: Option<Box<Follow>>,
    /// A read in progress: it owns the state until it completes.
    pending: Option<Pending>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("last_event_id", &self.last_id)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl EventStream {
    /// The id of the last event handed out: where a later stream resumes.
    pub fn last_event_id(&self) -> Option<u64> {
        self.last_id
    }

    /// The server's `retry` hint, once it has sent one.
    pub fn retry(&self) -> Option<Duration> {
        self.retry
    }

    fn settle(&mut self, follow: Box<Follow>) {
        self.last_id = follow.last_id;
        self.retry = follow.parser.retry();
        self.state = Some(follow);
    }
}

impl Stream for EventStream {
    type Item = Result<StreamItem>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.pending.is_none() {
            let Some(mut follow) = this.state.take() else {
                return Poll::Ready(None);
            };
            // The common case, events already parsed from a chunk, needs
            // no future.
            if let Some(item) = follow.pop() {
                this.settle(follow);
                return Poll::Ready(Some(item));
            }
            this.pending = Some(Box::pin(async move {
                let item = follow.next().await;
                (follow, item)
            }));
        }
        let Some(pending) = this.pending.as_mut() else {
            return Poll::Ready(None);
        };
        match pending.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((follow, item)) => {
                this.pending = None;
                this.settle(follow);
                Poll::Ready(item)
            }
        }
    }
}

/// The state of a stream across its connections.
struct Follow {
    request: StreamRequest,
    /// The id of the last event handed out: the resume point.
    last_id: Option<u64>,
    /// The open connection's body.
    body: Option<Body>,
    parser: Parser,
    /// Items parsed from a chunk, not yet handed out.
    queue: VecDeque<Result<StreamItem>>,
    backoff: Backoff,
    /// Whether the open connection delivered a message (then the backoff
    /// starts over when it breaks).
    delivered: bool,
    /// Nothing more comes.
    done: bool,
}

impl Follow {
    /// Opens a connection and reads its first chunk.
    async fn connect(&mut self) -> Result<()> {
        let resume = self.last_id.filter(|_| self.request.resumes);
        let url = &self.request.url;
        let response = self.request.client.open_stream(url, resume).await?;
        let mut body: Body = Box::pin(response.bytes_stream());
        self.parser = Parser::default();
        self.delivered = false;
        let first = read(url, self.request.idle_timeout, &mut body).await?;
        self.feed(&first);
        self.body = Some(body);
        Ok(())
    }
}

/// The next chunk of `body`, from `url`, under the `idle` timeout. (Not a
/// method: a borrowed `Follow` held across the await would have to be
/// `Sync`, which the response body is not.)
async fn read(url: &Url, idle: Duration, body: &mut Body) -> Result<Bytes> {
    let stream_error = |problem| Error::Stream {
        url: url.to_string(),
        problem,
    };
    match tokio::time::timeout(idle, body.next()).await {
        Ok(Some(Ok(chunk))) => Ok(chunk),
        Ok(Some(Err(source))) => Err(Error::request(url)(source)),
        Ok(None) => Err(stream_error(StreamProblem::Closed)),
        Err(_) => Err(stream_error(StreamProblem::Idle(idle))),
    }
}

impl Follow {
    fn feed(&mut self, chunk: &[u8]) {
        let url = &self.request.url;
        let queue = &mut self.queue;
        self.parser
            .feed(chunk, |field| queue.push_back(item(url, field)));
    }

    /// The next parsed item, if any, noting what it changes.
    fn pop(&mut self) -> Option<Result<StreamItem>> {
        if self.done {
            return None;
        }
        let item = self.queue.pop_front()?;
        match &item {
            Ok(StreamItem::Event(event)) => {
                self.delivered = true;
                if event.id.is_some() {
                    self.last_id = event.id;
                }
            }
            Ok(StreamItem::End(_)) | Err(_) => self.finish(),
            Ok(_) => {}
        }
        Some(item)
    }

    fn finish(&mut self) {
        self.done = true;
        self.body = None;
        self.queue.clear();
    }

    async fn next(&mut self) -> Option<Result<StreamItem>> {
        loop {
            if self.done {
                return None;
            }
            if let Some(item) = self.pop() {
                return Some(item);
            }
            let Some(mut body) = self.body.take() else {
                return Some(self.reconnect().await);
            };
            let (url, idle) = (&self.request.url, self.request.idle_timeout);
            match read(url, idle, &mut body).await {
                Ok(chunk) => {
                    self.feed(&chunk);
                    self.body = Some(body);
                }
                Err(error) if self.request.reconnect => {
                    if self.delivered {
                        self.backoff = Backoff::default();
                    }
                    return Some(Ok(StreamItem::Disconnected(error)));
                }
                Err(error) => {
                    self.finish();
                    return Some(Err(error));
                }
            }
        }
    }

    /// Reopens the stream, with growing pauses, until it opens, fails for
    /// good, or the give-up time has passed.
    async fn reconnect(&mut self) -> Result<StreamItem> {
        let mut failing_since: Option<Instant> = None;
        loop {
            tokio::time::sleep(self.backoff.next_delay()).await;
            match self.connect().await {
                Ok(()) => {
                    let resumed_after = self.last_id.filter(|_| self.request.resumes);
                    return Ok(StreamItem::Reconnected { resumed_after });
                }
                Err(error) if !error.is_transient() => {
                    self.finish();
                    return Err(error);
                }
                Err(error) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.request.give_up_after {
                        self.finish();
                        return Err(Error::GaveUp {
                            after: self.request.give_up_after,
                            last: Box::new(error),
                        });
                    }
                }
            }
        }
    }
}

/// The item an event of the wire makes.
fn item(url: &Url, field: Field<'_>) -> Result<StreamItem> {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    if field.id.is_none() && field.event == GAP_EVENT {
        let after = notice_field(field.data, "after").and_then(|v| v.as_u64());
        return Ok(StreamItem::Gap { after });
    }
    if field.id.is_none() && field.event == END_EVENT {
        let reason = notice_field(field.data, "reason")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| text(field.data));
        return match reason.as_str() {
            "stopped" => Ok(StreamItem::End(EndReason::Stopped)),
            "removed" => Ok(StreamItem::End(EndReason::Removed)),
            "failed" => Err(Error::Stream {
                url: url.to_string(),
                problem: StreamProblem::Failed,
            }),
            _ => Ok(StreamItem::End(EndReason::Other(reason))),
        };
    }
    Ok(StreamItem::Event(StreamEvent {
        id: field.id.and_then(parse_u64),
        event: text(field.event),
        topic: field.topic.map(text),
        data: text(field.data),
    }))
}

/// A key of a notice's JSON data.
fn notice_field(data: &[u8], key: &str) -> Option<serde_json::Value> {
    let mut value: serde_json::Value = serde_json::from_slice(data).ok()?;
    Some(value.get_mut(key)?.take())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn items(wire: &[u8]) -> Vec<Result<StreamItem>> {
        let url: Url = "http://127.0.0.1:1/events".parse().unwrap();
        let mut parser = Parser::default();
        let mut out = Vec::new();
        parser.feed(wire, |field| out.push(item(&url, field)));
        out
    }

    #[test]
    fn notices_are_typed_and_only_without_an_id() {
        let wire = b"event: eric-gap\ndata: {\"after\":7}\n\nid: 8\nevent: eric-end\ndata: {\"reason\":\"stopped\"}\n\nevent: eric-end\ndata: {\"reason\":\"removed\"}\n\n";
        let got = items(wire);
        assert!(matches!(got[0], Ok(StreamItem::Gap { after: Some(7) })));
        let Ok(StreamItem::Event(event)) = &got[1] else {
            panic!("{got:?}")
        };
        assert_eq!((event.id, event.event.as_str()), (Some(8), "eric-end"));
        assert!(matches!(got[2], Ok(StreamItem::End(EndReason::Removed))));
        let failed = items(b"event: eric-end\ndata: {\"reason\":\"failed\"}\n\n");
        let error = failed.into_iter().next().unwrap().unwrap_err();
        assert!(matches!(
            error,
            Error::Stream {
                problem: StreamProblem::Failed,
                ..
            }
        ));
        assert!(error.to_string().contains("/events"), "{error}");
    }
}
