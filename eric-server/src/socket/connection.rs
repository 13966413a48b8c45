//! One connection: read the request to end of file, run it, answer.
//!
//! The read is bounded in size (`max_request_bytes`) and in time
//! ([`REQUEST_TIMEOUT`]); every write is bounded in time
//! (`socket.write_timeout_ms`, 30 s by default) and gives way to shutdown,
//! so no client can hold a task forever. After an answer the server
//! half-closes: the client reads to end of file.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::commands::{self, Outcome};
use super::protocol::{self, Failure};
use super::shared::{Shared, send};
use super::stream;

/// How long a client may take to send its request and half-close.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most bytes read and dropped after an oversized request, so that its
/// client, still writing, reaches its read and gets the error text.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// What reading a request gave.
enum Read {
    Whole(Vec<u8>),
    TooLarge,
}

/// Serves one connection.
pub(super) async fn handle(mut socket: UnixStream, shared: Arc<Shared>) {
    let Some(request) = receive(&mut socket, &shared).await else {
        return;
    };
    let outcome = match protocol::parse(&request) {
        Ok(request) => {
            tracing::debug!(
                verb = request.verb.as_str(),
                channel = request.channel.as_deref(),
                listener = request.receiver.as_deref(),
                "socket command"
            );
            commands::execute(&shared.broker, request).await
        }
        Err(failure) => {
            tracing::debug!(%failure, "malformed socket request");
            Outcome::Reply(failure.text())
        }
    };
    match outcome {
        Outcome::Reply(text) => answer(&mut socket, &text, &shared).await,
        Outcome::Stream(opened) => {
            stream::serve(&mut socket, opened, &shared).await;
            // The end of file after the last line; best effort.
            let _ = tokio::time::timeout(shared.write_timeout, socket.shutdown()).await;
        }
    }
}

/// Reads the request. When that fails, answers why (if the client can
/// still hear it) and gives `None`.
async fn receive(socket: &mut UnixStream, shared: &Shared) -> Option<Vec<u8>> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let read = tokio::select! {
        biased;
        () = shared.shutdown.cancelled() => return None,
        read = tokio::time::timeout_at(deadline, read_request(socket, shared.max_request_bytes)) => read,
    };
    let why = match read {
        Ok(Ok(Read::Whole(request))) => return Some(request),
        Ok(Ok(Read::TooLarge)) => format!("request larger than {} bytes", shared.max_request_bytes),
        Ok(Err(error)) => {
            tracing::debug!(%error, "reading a socket request failed");
            return None;
        }
        Err(_elapsed) => format!(
            "request not complete after {} s: half-close the connection after writing it",
            REQUEST_TIMEOUT.as_secs()
        ),
    };
    tracing::debug!(%why, "socket request refused");
    answer(socket, &Failure::format(&why).text(), shared).await;
    // An oversized request's client may still be writing: let it finish.
    drain(socket, deadline, &shared.shutdown).await;
    None
}

/// Reads to end of file, at most `max` bytes.
async fn read_request(socket: &mut UnixStream, max: usize) -> std::io::Result<Read> {
    let mut request = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    (&mut *socket).take(limit).read_to_end(&mut request).await?;
    if request.len() > max {
        return Ok(Read::TooLarge);
    }
    Ok(Read::Whole(request))
}

/// Writes `text` and half-closes.
async fn answer(socket: &mut UnixStream, text: &str, shared: &Shared) {
    if let Err(error) = send(socket, text.as_bytes(), &mut 0, shared).await {
        tracing::debug!(%error, "socket answer not delivered");
        return;
    }
    let _ = tokio::time::timeout(shared.write_timeout, socket.shutdown()).await;
}

/// Reads and drops what an oversized request still sends, up to
/// [`DRAIN_LIMIT`] and the request deadline, so the client sees the answer
/// rather than a reset.
async fn drain(socket: &mut UnixStream, deadline: Instant, shutdown: &CancellationToken) {
    let mut rest = (&mut *socket).take(DRAIN_LIMIT);
    let mut sink = tokio::io::sink();
    let discard = tokio::io::copy(&mut rest, &mut sink);
    tokio::select! {
        biased;
        () = shutdown.cancelled() => {}
        _ = tokio::time::timeout_at(deadline, discard) => {}
    }
}
