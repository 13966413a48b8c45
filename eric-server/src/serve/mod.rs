//! The HTTP accept loop.
//!
//! Hand-written over hyper rather than `axum::serve` for three reasons:
//!
//! - Every connection gets a [`ConnectionContext`] whose token closes it. An
//!   SSE stream whose client stopped reading cannot be ended from inside the
//!   response (hyper no longer polls a body it cannot write), so the stream
//!   cancels the token and the loop drops the connection. The same tokens
//!   close everything when the shutdown grace period runs out. On HTTP/2,
//!   each request gets a token of its own under the connection's (see
//!   `http2`): one stalled stream must not end its neighbours.
//! - A connection whose first request opens a stream is answered without
//!   hyper, whose buffers would cost more than the stream itself (see
//!   `first`); the router still produces every response.
//! - One port speaks HTTP/1.1 and HTTP/2 (h2c with prior knowledge, told by
//!   the first bytes; over TLS, as ALPN chose), and TLS when configured.
//!
//! Accepting (the connection cap, back-off on accept errors, shutdown) is
//! [`crate::accept`]'s loop, shared with the Unix socket. A connection that
//! does not finish its TLS handshake and send a request head within the
//! head timeout is closed.
//!
//! ## Layout
//!
//! - `tls`: [`Tls`], the reloadable certificate and the SIGHUP listener.
//! - `first`: reads a connection's first bytes, recognises stream requests
//!   and the HTTP/2 preface.
//! - `streamed`: writes the answer to a stream request by hand (HTTP/1.1,
//!   clear or TLS).
//! - `http2`: HTTP/2 connections (per-request contexts, limits, PINGs).
//! - `prefixed`: hands the bytes already read to hyper with the connection.
//! - `refusals`: hyper's own answers to heads it refuses, made JSON.

mod first;
mod http2;
mod prefixed;
mod refusals;
mod streamed;
pub(crate) mod tls;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

pub(crate) use self::http2::H2Options;
pub use self::tls::Tls;
use crate::accept;
use crate::http::ConnectionContext;
use crate::metrics::Metrics;

/// Most bytes a request head may take (431 `headers_too_large` beyond; with
/// hyper's 100 headers at most). hyper's default, ~400 KiB, is more than
/// any client needs and a lot to hold per connection. HTTP/2's header list
/// size is the same.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How the loop runs.
#[derive(Debug)]
pub(crate) struct ServeOptions {
    /// Fires once: stop accepting, let streams end, then close.
    pub(crate) shutdown: CancellationToken,
    /// How long connections get to finish after `shutdown`.
    pub(crate) grace: Duration,
    /// Most connections open at once.
    pub(crate) max_connections: usize,
    /// How long a connection may take to send a request head (the TLS
    /// handshake included).
    pub(crate) head_timeout: Duration,
    pub(crate) metrics: Arc<Metrics>,
    /// TLS on the port, when configured: then every connection speaks it.
    pub(crate) tls: Option<Tls>,
    pub(crate) h2: H2Options,
}

/// What every connection is served with.
struct Shared {
    app: Router,
    shutdown: CancellationToken,
    head_timeout: Duration,
    tls: Option<Tls>,
    h2: H2Options,
}

/// Serves `app` on `listener` until shutdown completes.
pub(crate) async fn serve(listener: TcpListener, app: Router, options: ServeOptions) {
    let tracker = TaskTracker::new();
    // Parent of every connection's token: cancelled when the grace ends.
    let close_all = CancellationToken::new();
    let shared = Arc::new(Shared {
        app,
        shutdown: options.shutdown.clone(),
        head_timeout: options.head_timeout,
        tls: options.tls,
        h2: options.h2,
    });
    accept::accept_loop(
        "http",
        &listener,
        options.max_connections,
        &options.shutdown,
        &tracker,
        |stream: TcpStream| {
            let _ = stream.set_nodelay(true);
            let context = ConnectionContext {
                close: close_all.child_token(),
                peer: stream.peer_addr().ok().map(|addr| addr.ip()),
            };
            let (shared, metrics) = (shared.clone(), options.metrics.clone());
            async move {
                metrics.connections.inc();
                connection(stream, &shared, context).await;
                metrics.connections.dec();
            }
        },
    )
    .await;
    drop(listener);
    tracker.close();
    tokio::select! {
        () = tracker.wait() => {}
        () = tokio::time::sleep(options.grace) => {
            tracing::info!(open = tracker.len(), "grace period over; closing connections");
            close_all.cancel();
            tracker.wait().await;
        }
    }
}

/// A connection whose protocol is known.
enum Opened {
    /// Clear text, with the first bytes the client sent.
    Plain(TcpStream, Vec<u8>),
    /// TLS, with the first bytes the client sent over it.
    Tls(Box<TlsStream<TcpStream>>, Vec<u8>),
    /// TLS where ALPN chose HTTP/2: hyper reads the preface itself.
    TlsH2(Box<TlsStream<TcpStream>>),
}

/// Serves one connection until it ends, is cut, or shutdown finishes it.
async fn connection(stream: TcpStream, shared: &Shared, context: ConnectionContext) {
    // Boxed, so the timer and the select are not part of the task's state
    // for the rest of the connection's life.
    let opened = Box::pin(async {
        tokio::select! {
            opened = tokio::time::timeout(shared.head_timeout, open(stream, shared.tls.as_ref())) => Some(opened),
            // No request yet: nothing to finish.
            () = shared.shutdown.cancelled() => None,
            () = context.close.cancelled() => None,
        }
    })
    .await;
    let opened = match opened {
        None => return,
        Some(Ok(Ok(opened))) => opened,
        Some(Ok(Err(error))) => {
            tracing::debug!(%error, "connection failed before a request");
            return;
        }
        Some(Err(_)) => {
            tracing::debug!(timeout = ?shared.head_timeout, "no request head in time; closing");
            return;
        }
    };
    // Each way on is boxed: inline, the connection's task would be sized by
    // the largest of them (hyper's connection state, several KiB) for its
    // whole life, idle streams included.
    match opened {
        Opened::Plain(stream, bytes) => Box::pin(speak(stream, bytes, shared, context)).await,
        Opened::Tls(stream, bytes) => Box::pin(speak(*stream, bytes, shared, context)).await,
        Opened::TlsH2(stream) => Box::pin(http2::serve(*stream, h2(shared), context)).await,
    }
}

/// The TLS handshake when configured, then the client's first bytes
/// (unless ALPN chose HTTP/2).
async fn open(mut stream: TcpStream, tls: Option<&Tls>) -> io::Result<Opened> {
    let Some(tls) = tls else {
        let bytes = first::read(&mut stream).await?;
        return Ok(Opened::Plain(stream, bytes));
    };
    let mut stream = Box::new(tls.acceptor().accept(stream).await?);
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        return Ok(Opened::TlsH2(stream));
    }
    let bytes = first::read(&mut *stream).await?;
    Ok(Opened::Tls(stream, bytes))
}

/// Serves a connection by what its first bytes say: HTTP/2 with prior
/// knowledge, a stream request answered by hand, or hyper's HTTP/1.1.
async fn speak<C>(stream: C, bytes: Vec<u8>, shared: &Shared, context: ConnectionContext)
where
    C: streamed::Watched + 'static,
{
    if bytes.is_empty() {
        return;
    }
    if first::is_h2_preface(&bytes) {
        let io = prefixed::Prefixed::new(bytes, stream);
        return Box::pin(http2::serve(io, h2(shared), context)).await;
    }
    match first::stream_request(&bytes) {
        Some(request) => {
            drop(bytes);
            Box::pin(streamed::serve(
                stream,
                request,
                shared.app.clone(),
                context,
            ))
            .await;
        }
        None => {
            let io = prefixed::Prefixed::new(bytes, stream);
            Box::pin(with_hyper(io, shared, context)).await;
        }
    }
}

fn h2(shared: &Shared) -> http2::Serving<'_> {
    http2::Serving {
        app: &shared.app,
        shutdown: &shared.shutdown,
        options: shared.h2,
        idle_timeout: shared.head_timeout,
    }
}

/// Serves the connection's HTTP/1.1 requests with hyper.
async fn with_hyper<IO>(io: prefixed::Prefixed<IO>, shared: &Shared, context: ConnectionContext)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let close = context.close.clone();
    let app = shared.app.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(context.clone());
        app.clone().oneshot(request.map(Body::new))
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(shared.head_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(refusals::Refusals::new(io)), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = close.cancelled() => return,
        () = shared.shutdown.cancelled() => {
            // Finish what is in flight (streams end on the same signal),
            // take no new request.
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                result = conn.as_mut() => result,
                () = close.cancelled() => return,
            }
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A loop whose accepts fail (a listening socket shut down answers
    /// `EINVAL`, for real) backs off; shutdown must end it at once, not
    /// when the back-off's pause runs out.
    #[tokio::test(start_paused = true)]
    async fn a_loop_in_back_off_stops_at_once_on_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        socket2::SockRef::from(&listener)
            .shutdown(std::net::Shutdown::Read)
            .unwrap();
        let shutdown = CancellationToken::new();
        let options = ServeOptions {
            shutdown: shutdown.clone(),
            grace: Duration::from_secs(1),
            max_connections: 4,
            head_timeout: Duration::from_secs(1),
            metrics: Arc::new(Metrics::new()),
            tls: None,
            h2: H2Options {
                max_concurrent_streams: 10,
                ping_interval: Duration::from_secs(1),
                ping_timeout: Duration::from_secs(1),
            },
        };
        let serving = tokio::spawn(serve(listener, Router::new(), options));
        // Paused time moves on only when every task waits: by now the
        // loop has failed many accepts and waits in its back-off.
        tokio::time::sleep(Duration::from_secs(60)).await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_millis(1), serving)
            .await
            .expect("the loop went on sleeping in its back-off after shutdown")
            .unwrap();
    }
}
