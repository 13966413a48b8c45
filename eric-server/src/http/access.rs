//! The access log (target `eric::access`, at `info`) and the per-route
//! request metrics, as the router's outermost layer.
//!
//! A request is counted, and its latency observed, when its response head
//! is ready: for an SSE stream that is when the stream starts, so stream
//! lifetimes stay out of the latency histogram. The log line is written
//! when the body ends (or is dropped: the client left), so it carries the
//! bytes sent and, for a stream, its whole duration; a stream's lifetime
//! also goes into `eric_sse_stream_duration_seconds` then.
//!
//! The path is logged without its query: a query may carry an
//! `access_token` (browsers' `EventSource` cannot send headers).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Frame, SizeHint};

use crate::metrics::{Metrics, Route, method_label};

/// The access log's `tracing` target.
pub(super) const TARGET: &str = "eric::access";

/// Counts and times the request, and wraps its body to log it when done.
pub(super) async fn track(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .cloned()
        .map_or(Route::Unmatched, Route::Matched);
    let log = tracing::enabled!(target: TARGET, tracing::Level::INFO);
    // Only what is logged is kept: the path alone, never the query.
    let path = log.then(|| req.uri().path().to_owned());
    let response = next.run(req).await;
    let status = response.status();
    metrics.request_answered(
        method,
        &route,
        status.as_u16(),
        start.elapsed().as_secs_f64(),
    );
    let stream = is_stream(&response);
    if !log && !stream {
        return response;
    }
    let (parts, inner) = response.into_parts();
    let done = Done {
        metrics,
        start,
        method,
        route,
        path,
        status,
        stream,
        bytes: 0,
        complete: false,
    };
    Response::from_parts(parts, Body::new(Tracked { inner, done }))
}

fn is_stream(response: &Response) -> bool {
    response.status() == StatusCode::OK
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
}

/// A response body that counts what it hands out; dropped, it logs.
struct Tracked {
    inner: Body,
    done: Done,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.done.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.done.complete = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Hyper stops polling a body that says it has ended (a whole
        // answer after its one frame, an empty one before any), so its
        // end is not always seen as a `None`.
        self.done.complete |= http_body::Body::is_end_stream(&self.inner);
        self.done.finish();
    }
}

/// What the log line says, written when the body is dropped.
struct Done {
    metrics: Arc<Metrics>,
    start: Instant,
    method: &'static str,
    route: Route,
    /// `None` when the access log is off.
    path: Option<String>,
    status: StatusCode,
    stream: bool,
    bytes: u64,
    /// The body was sent to its end (not cut by the client leaving or the
    /// connection closing).
    complete: bool,
}

impl Done {
    fn finish(&self) {
        let elapsed = self.start.elapsed();
        if self.stream {
            self.metrics
                .stream_ended(self.method, &self.route, elapsed.as_secs_f64());
        }
        let Some(path) = &self.path else {
            return;
        };
        tracing::info!(
            target: TARGET,
            method = self.method,
            route = self.route.as_str(),
            path = %path,
            status = self.status.as_u16(),
            duration_ms = elapsed.as_secs_f64() * 1e3,
            bytes = self.bytes,
            stream = self.stream,
            complete = self.complete,
            "request",
        );
    }
}
