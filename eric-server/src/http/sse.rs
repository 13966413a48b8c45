//! SSE responses: a producer task per stream feeding the response body.
//!
//! The task owns the listener's [`MessageStream`] and writes wire bytes into
//! a small bounded buffer that the response body drains. Owning the stream
//! in a task (rather than in the body) lets it notice, on its own:
//!
//! * a client that left: the body is dropped, the buffer closes, the task
//!   ends and the stream gives back what it took but did not send (the
//!   reference kept consuming an abandoned stream's messages);
//! * a client that stopped reading: the buffer stays full for the send
//!   timeout, the task ends (giving back what it took but did not send)
//!   and cancels its [`ConnectionContext`]'s `close`. On HTTP/1.1 that
//!   token is the connection's: the connection is cut. On HTTP/2 it is the
//!   request's own, so the connection and its other streams go on; hyper
//!   does not poll a body whose flow-control window is closed, so the
//!   HTTP/2 stream stays open with what was already buffered for it until
//!   the client reads again (then it gets those bytes and a `RST_STREAM`:
//!   the body ends with an error), resets it or closes the connection;
//! * shutdown: it writes a last comment and ends the response cleanly.
//!
//! Wire format: a first chunk with `retry:` (the channel's setting, sent once
//! rather than on every event) and a comment that flushes the headers
//! through proxies; then events with `id` (the sequence number, for
//! `Last-Event-ID`), `event` and JSON `data`; a `: keep-alive` comment after
//! each idle `keep_alive`; `event: eric-gap` when a resume could not be made
//! whole, and `event: eric-end` with the reason when the stream ends.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use eric_core::{
    ChannelId, ListenerId, MessageStream, SseMessage, StreamEnd, StreamItem, Subscriptions,
};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::auth::Caller;
use super::error::ApiResult;
use super::limits::StreamSlot;
use super::state::{AppState, ConnectionContext};
use crate::broker::OpenedStream;

/// Chunks buffered between the producer and the connection.
const BUFFER_CHUNKS: usize = 4;
/// Bytes gathered into one chunk at most (events that are ready at once go
/// out in one write).
const CHUNK_BYTES: usize = 64 * 1024;

/// What a stream needs to run.
struct StreamSetup {
    /// The channel's `retry` hint, in milliseconds.
    retry_ms: u64,
    /// Seconds without data before a keep-alive comment.
    keep_alive: Duration,
    /// How long a full buffer may wait for the client.
    send_timeout: Duration,
}

/// The SSE response of `listener`'s stream, resumed after `resume`. A
/// stopped listener is started first (as eric-api's route does) for a
/// caller who may change listener state, else refused (409
/// `listener_stopped`): see the rights table in `auth`.
pub(super) async fn listener_events(
    state: &AppState,
    (channel, listener): (&ChannelId, &ListenerId),
    resume: Option<u64>,
    request: StreamRequest,
) -> ApiResult<Response> {
    let start = Caller::may_change_listener_state(request.caller.as_ref(), channel.as_str());
    let opened = state
        .broker
        .stream(channel, listener, resume, start)
        .await?;
    Ok(respond(state, opened, request))
}

/// `HEAD` of a stream route: the head a `GET` would get, with no side
/// effect (no listener started, no watch opened); 404 for an unknown
/// channel or listener, as the `GET` would answer.
pub(super) async fn head(
    state: &AppState,
    channel: &ChannelId,
    listener: Option<&ListenerId>,
) -> ApiResult<Response> {
    state.broker.ensure_exists(channel, listener).await?;
    let mut response = StatusCode::OK.into_response();
    stream_headers(response.headers_mut());
    Ok(response)
}

/// The SSE response of a watch of `channel` (a temporary listener holding
/// `subscriptions`).
pub(super) async fn channel_events(
    state: &AppState,
    channel: &ChannelId,
    subscriptions: Subscriptions,
    request: StreamRequest,
) -> ApiResult<Response> {
    let opened = state.broker.watch(channel, subscriptions).await?;
    Ok(respond(state, opened, request))
}

/// What a stream request carries from the layers before its handler: the
/// caller (`auth`), the connection (`serve`) and the listener's stream
/// slot (`limits`), which the stream's producer then holds.
pub(super) struct StreamRequest {
    caller: Option<Caller>,
    connection: Option<ConnectionContext>,
    slot: Option<StreamSlot>,
}

impl<S: Send + Sync> FromRequestParts<S> for StreamRequest {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self {
            caller: parts.extensions.get::<Caller>().cloned(),
            connection: parts.extensions.get::<ConnectionContext>().cloned(),
            slot: parts.extensions.remove::<StreamSlot>(),
        })
    }
}

/// An SSE response streaming what `opened` holds.
fn respond(
    state: &AppState,
    OpenedStream { stream, retry_ms }: OpenedStream,
    StreamRequest {
        connection, slot, ..
    }: StreamRequest,
) -> Response {
    let cut = connection.as_ref().map(|c| c.close.clone());
    let (tx, rx) = mpsc::channel::<Bytes>(BUFFER_CHUNKS);
    let setup = StreamSetup {
        retry_ms,
        keep_alive: state.http.keep_alive(),
        send_timeout: state.http.send_timeout(),
    };
    let producer = Producer {
        tx,
        stream,
        setup,
        shutdown: state.shutdown.clone(),
        connection,
        metrics: state.metrics.clone(),
        _slot: slot,
    };
    tokio::spawn(producer.run());
    let chunks = ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
    // After the last chunk: an error if the stream was cut, so the client
    // is told (HTTP/2: the stream is reset) rather than seeing a clean end.
    let end =
        futures_util::stream::once(async move { cut.filter(CancellationToken::is_cancelled) })
            .filter_map(|cut| async move {
                cut.map(|_| {
                    Err(std::io::Error::other(
                        "the client stopped reading; stream cut",
                    ))
                })
            });
    let body = Body::from_stream(chunks.chain(end));
    let mut response = (StatusCode::OK, body).into_response();
    stream_headers(response.headers_mut());
    response
}

fn stream_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
}

struct Producer {
    tx: mpsc::Sender<Bytes>,
    stream: MessageStream<SseMessage>,
    setup: StreamSetup,
    shutdown: CancellationToken,
    connection: Option<ConnectionContext>,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Given back when the producer ends, however it ends.
    _slot: Option<StreamSlot>,
}

/// Why the producer stopped.
enum Stop {
    ClientGone,
    Stalled,
    Done,
}

impl Producer {
    async fn run(mut self) {
        self.metrics.stream_opened();
        let stop = self.serve().await;
        // Dropping the stream now gives back what it took but did not send,
        // before anyone is told the stream closed.
        drop(self.stream);
        let stalled = matches!(stop, Stop::Stalled);
        if stalled {
            tracing::info!("SSE client stopped reading; connection cut");
            if let Some(connection) = &self.connection {
                connection.close.cancel();
            }
        }
        self.metrics.stream_closed(stalled);
    }

    async fn serve(&mut self) -> Stop {
        let first = format!("retry: {}\n: connected\n\n", self.setup.retry_ms);
        if let Some(stop) = self.send(Bytes::from(first)).await {
            return stop;
        }
        let mut idle_since = Instant::now();
        loop {
            let closed = self
                .connection
                .as_ref()
                .map(|c| c.close.clone())
                .unwrap_or_default();
            let item = tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {
                    let _ = self.tx.try_send(Bytes::from_static(b": the server is shutting down\n\n"));
                    return Stop::Done;
                }
                () = closed.cancelled() => return Stop::ClientGone,
                () = self.tx.closed() => return Stop::ClientGone,
                item = self.stream.next() => item,
                () = tokio::time::sleep_until(idle_since + self.setup.keep_alive) => {
                    if let Some(stop) = self.send(Bytes::from_static(b": keep-alive\n\n")).await {
                        return stop;
                    }
                    idle_since = Instant::now();
                    continue;
                }
            };
            let Some(item) = item else {
                return Stop::Done;
            };
            let (chunk, ended) = self.gather(item);
            if let Some(stop) = self.send(chunk).await {
                return stop;
            }
            if ended {
                return Stop::Done;
            }
            idle_since = Instant::now();
        }
    }

    /// Encodes `first` and every further item ready right now, up to
    /// [`CHUNK_BYTES`]; says whether the stream ended.
    fn gather(&mut self, first: StreamItem<SseMessage>) -> (Bytes, bool) {
        let mut out = Vec::with_capacity(256);
        let mut item = Some(first);
        while let Some(current) = item.take() {
            if encode(current, &mut out) {
                return (Bytes::from(out), true);
            }
            if out.len() >= CHUNK_BYTES {
                break;
            }
            item = self.stream.next().now_or_never().flatten();
        }
        (Bytes::from(out), false)
    }

    /// Sends a chunk; `Some` when the stream must stop.
    async fn send(&mut self, chunk: Bytes) -> Option<Stop> {
        match tokio::time::timeout(self.setup.send_timeout, self.tx.send(chunk)).await {
            Ok(Ok(())) => None,
            Ok(Err(_)) => Some(Stop::ClientGone),
            Err(_) => Some(Stop::Stalled),
        }
    }
}

/// Appends one item's wire text; `true` for the last item of a stream.
fn encode(item: StreamItem<SseMessage>, out: &mut Vec<u8>) -> bool {
    match item {
        StreamItem::Message(mut event) => {
            // Sent once, in the first chunk.
            event.retry_ms = None;
            event.encode_into(out);
            false
        }
        StreamItem::Rejected { seq, error } => {
            tracing::debug!(seq, %error, "message rejected by its hook; not sent");
            false
        }
        StreamItem::Gap { after } => {
            let text = format!("event: eric-gap\ndata: {{\"after\":{after}}}\n\n");
            out.extend_from_slice(text.as_bytes());
            false
        }
        StreamItem::End(end) => {
            let reason = match end {
                StreamEnd::Stopped => "stopped",
                StreamEnd::Removed => "removed",
                StreamEnd::Failed(error) => {
                    tracing::warn!(%error, "stream failed");
                    "failed"
                }
            };
            let text = format!("event: eric-end\ndata: {{\"reason\":\"{reason}\"}}\n\n");
            out.extend_from_slice(text.as_bytes());
            true
        }
    }
}
