//! The HTTP accept loop.
//!
//! Hand-written over hyper rather than `axum::serve` for two reasons:
//!
//! - Every connection gets a [`ConnectionContext`] whose token closes it. An
//!   SSE stream whose client stopped reading cannot be ended from inside the
//!   response (hyper no longer polls a body it cannot write), so the stream
//!   cancels the token and the loop drops the connection. The same tokens
//!   close everything when the shutdown grace period runs out.
//! - A connection whose first request opens a stream is answered without
//!   hyper, whose buffers would cost more than the stream itself (see
//!   `first`); the router still produces every response.
//!
//! Accepting (the connection cap, back-off on accept errors, shutdown) is
//! [`crate::accept`]'s loop, shared with the Unix socket. A connection that
//! sends no request head within the head timeout is closed.
//!
//! ## Layout
//!
//! - `first`: reads a connection's first bytes, recognises stream requests.
//! - `streamed`: writes the answer to a stream request by hand.
//! - `prefixed`: hands the bytes already read to hyper with the connection.
//! - `refusals`: hyper's own answers to heads it refuses, made JSON.

mod first;
mod prefixed;
mod refusals;
mod streamed;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::accept;
use crate::http::ConnectionContext;
use crate::metrics::Metrics;

/// Most bytes a request head may take (431 `headers_too_large` beyond; with
/// hyper's 100 headers at most). hyper's default, ~400 KiB, is more than
/// any client needs and a lot to hold per connection.
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
    /// How long a connection may take to send a request head.
    pub(crate) head_timeout: Duration,
    pub(crate) metrics: Arc<Metrics>,
}

/// Serves `app` on `listener` until shutdown completes.
pub(crate) async fn serve(listener: TcpListener, app: Router, options: ServeOptions) {
    let tracker = TaskTracker::new();
    // Parent of every connection's token: cancelled when the grace ends.
    let close_all = CancellationToken::new();
    let head_timeout = options.head_timeout;
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
            let (app, shutdown, metrics) = (
                app.clone(),
                options.shutdown.clone(),
                options.metrics.clone(),
            );
            async move {
                metrics.connections.inc();
                connection(stream, app, context, shutdown, head_timeout).await;
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

/// Serves one connection until it ends, is cut, or shutdown finishes it.
async fn connection(
    mut stream: TcpStream,
    app: Router,
    context: ConnectionContext,
    shutdown: CancellationToken,
    head_timeout: Duration,
) {
    // Boxed, so the timer and the select are not part of the task's state
    // for the rest of the connection's life.
    let read = Box::pin(async {
        tokio::select! {
            read = tokio::time::timeout(head_timeout, first::read(&mut stream)) => Some(read),
            // No request yet: nothing to finish.
            () = shutdown.cancelled() => None,
            () = context.close.cancelled() => None,
        }
    })
    .await;
    let Some(read) = read else { return };
    let bytes = match read {
        Ok(Ok(bytes)) if !bytes.is_empty() => bytes,
        Ok(Ok(_)) => return,
        Ok(Err(error)) => {
            tracing::debug!(%error, "connection failed before a request");
            return;
        }
        Err(_) => {
            tracing::debug!(timeout = ?head_timeout, "no request head in time; closing");
            return;
        }
    };
    // Each way on is boxed: inline, the connection's task would be sized by
    // the larger of the two (hyper's connection state, several KiB) for its
    // whole life, idle streams included.
    match first::stream_request(&bytes) {
        Some(request) => {
            drop(bytes);
            Box::pin(streamed::serve(stream, request, app, context)).await;
        }
        None => {
            let io = prefixed::Prefixed::new(bytes, stream);
            Box::pin(with_hyper(io, app, context, shutdown, head_timeout)).await;
        }
    }
}

/// Serves the connection's requests with hyper.
async fn with_hyper(
    io: prefixed::Prefixed<TcpStream>,
    app: Router,
    context: ConnectionContext,
    shutdown: CancellationToken,
    head_timeout: Duration,
) {
    let close = context.close.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(context.clone());
        app.clone().oneshot(request.map(Body::new))
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(head_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(refusals::Refusals::new(io)), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = close.cancelled() => return,
        () = shutdown.cancelled() => {
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
