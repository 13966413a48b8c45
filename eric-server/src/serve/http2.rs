//! HTTP/2 connections: over TLS when ALPN chose `h2`, or in clear text
//! with prior knowledge (h2c), served by hyper's HTTP/2 server.
//!
//! What differs from HTTP/1.1:
//!
//! - **Each request gets its own [`ConnectionContext`]**, whose `close` is
//!   a child of the connection's token. A stream whose client stopped
//!   reading cancels it, which ends that stream's producer (its listener
//!   is released, what it took but did not send goes back) and no other
//!   stream of the connection. hyper does not poll a body whose
//!   flow-control window is closed, so the HTTP/2 stream itself stays open
//!   with what was already buffered for it (at most [`MAX_SEND_BUF`] in
//!   hyper plus the producer's few chunks) until the client reads again
//!   (it then gets those bytes and a `RST_STREAM`), resets the stream, or
//!   the connection closes. The connection's token still closes the
//!   whole connection (at the end of the shutdown grace).
//! - **Limits** are HTTP/2 settings: streams at once
//!   (`http.h2_max_concurrent_streams`; more are refused by the protocol),
//!   the header list size ([`super::MAX_HEAD_BYTES`], as HTTP/1.1's head),
//!   and the rapid-reset bounds ([`MAX_PENDING_ACCEPT_RESETS`],
//!   [`MAX_LOCAL_ERROR_RESETS`]; a client past them gets `GOAWAY`).
//! - **Keep-alive PINGs** every `http.keep_alive_secs`; a client that does
//!   not answer one within `http.send_timeout_secs` (it stopped reading the
//!   whole connection, or is gone) loses the connection.
//! - **Idle connections** close as HTTP/1.1's do: no request open for the
//!   head timeout (a new connection, or between requests) ends it with a
//!   `GOAWAY`.
//! - **Shutdown** sends `GOAWAY`: requests in flight finish (streams end
//!   on the shutdown token, as on HTTP/1.1), no new one is taken.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::MAX_HEAD_BYTES;
use crate::http::ConnectionContext;

/// Streams a client may reset before the server took them, counted per
/// connection, before it gets `GOAWAY` (the rapid-reset attack,
/// CVE-2023-44487): h2's default, set here so it cannot drift.
pub(super) const MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams the server may reset for a client's protocol errors per
/// connection before it sends `GOAWAY` (RUSTSEC-2024-0003): hyper's
/// default, set here likewise.
pub(super) const MAX_LOCAL_ERROR_RESETS: usize = 1024;
/// Bytes hyper buffers per stream beyond what the client's window lets
/// out: one SSE chunk at most (hyper's default, 400 KiB, would be held by
/// every stalled stream).
pub(super) const MAX_SEND_BUF: usize = 64 * 1024;

/// HTTP/2 settings from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct H2Options {
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`.
    pub(crate) max_concurrent_streams: u32,
    /// Time between keep-alive PINGs.
    pub(crate) ping_interval: Duration,
    /// How long a PING may go unanswered before the connection closes.
    pub(crate) ping_timeout: Duration,
}

/// What the connection is served with.
pub(super) struct Serving<'a> {
    pub(super) app: &'a Router,
    pub(super) shutdown: &'a CancellationToken,
    pub(super) options: H2Options,
    /// No request open for this long closes the connection.
    pub(super) idle_timeout: Duration,
}

/// Serves an HTTP/2 connection until it ends, is closed, or shutdown
/// finishes it.
pub(super) async fn serve<IO>(io: IO, serving: Serving<'_>, connection: ConnectionContext)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ConnectionContext { close, peer } = connection;
    let (active, mut idle) = watch::channel(0usize);
    let active = Arc::new(active);
    let service = {
        let (app, close) = (serving.app.clone(), close.clone());
        hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            // The request's own token: a stream that cuts its client must
            // not take the connection's other streams with it.
            request.extensions_mut().insert(ConnectionContext {
                close: close.child_token(),
                peer,
            });
            let open = Open::start(&active);
            let response = app.clone().oneshot(request.map(Body::new));
            async move {
                let response = response.await?;
                Ok::<_, std::convert::Infallible>(
                    response.map(|body| Body::new(Tracked { body, _open: open })),
                )
            }
        })
    };
    let options = serving.options;
    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .max_concurrent_streams(options.max_concurrent_streams)
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESETS)
        .max_send_buf_size(MAX_SEND_BUF)
        .keep_alive_interval(options.ping_interval)
        .keep_alive_timeout(options.ping_timeout)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => Some(result),
        () = close.cancelled() => return,
        () = serving.shutdown.cancelled() => finish(conn.as_mut(), &close).await,
        () = idle_for(&mut idle, serving.idle_timeout) => {
            tracing::debug!(timeout = ?serving.idle_timeout, "HTTP/2 connection idle; closing");
            // Bounded: a client that never sent its preface is still in
            // the handshake, which a graceful close waits out.
            tokio::time::timeout(serving.idle_timeout, finish(conn.as_mut(), &close))
                .await
                .ok()
                .flatten()
        }
    };
    if let Some(Err(error)) = result {
        tracing::debug!(%error, "HTTP/2 connection ended with an error");
    }
}

/// Sends `GOAWAY` and lets the requests in flight finish (`None`: the
/// connection's token closed it first).
async fn finish<IO, S>(
    mut conn: Pin<&mut hyper::server::conn::http2::Connection<TokioIo<IO>, S, TokioExecutor>>,
    close: &CancellationToken,
) -> Option<hyper::Result<()>>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming, ResBody = Body>,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    conn.as_mut().graceful_shutdown();
    tokio::select! {
        result = conn => Some(result),
        () = close.cancelled() => None,
    }
}

/// Resolves once no request has been open for `timeout`.
async fn idle_for(open: &mut watch::Receiver<usize>, timeout: Duration) {
    loop {
        // The sender lives as long as the connection's service: while it
        // does, these waits cannot fail.
        // (Each wait's guard is dropped at once: it must not be held
        // across the next await.)
        let quiet = open.wait_for(|n| *n == 0).await.is_ok();
        let busy = tokio::time::timeout(timeout, open.wait_for(|n| *n > 0))
            .await
            .map(|busy| busy.is_ok());
        match (quiet, busy) {
            (true, Err(_)) => return,
            (true, Ok(true)) => {}
            _ => return std::future::pending().await,
        }
    }
}

/// One request open on the connection, from its head until its response
/// body is done or dropped.
struct Open(Arc<watch::Sender<usize>>);

impl Open {
    fn start(active: &Arc<watch::Sender<usize>>) -> Self {
        active.send_modify(|n| *n += 1);
        Self(active.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A response body that keeps its request counted as open.
struct Tracked {
    body: Body,
    _open: Open,
}

impl HttpBody for Tracked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
