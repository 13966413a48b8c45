//! Request rates per caller and streams per listener (`http.publish_*`,
//! `http.streams_*`, `http.max_streams_per_listener`; all off by default).
//!
//! - **Rates.** Publishes (a broadcast or a dispatch, on `/v1` and on
//!   eric-api's routes) and stream openings each have a token bucket per
//!   caller: who the token check let through (a JWT's subject, else its
//!   token), else its address. Beyond the bucket: 429
//!   `rate_limited` with `Retry-After` (whole seconds, at least 1). The
//!   buckets are `governor`'s (GCRA: one timestamp per caller, no timer);
//!   callers idle long enough to have a full bucket again are forgotten
//!   every [`PRUNE_EVERY`] checks, so the table holds only recent callers.
//! - **Streams per listener.** A listener may have at most so many streams
//!   open on this node; one more is 429 `too_many_streams`. The slot is
//!   taken before the stream opens and given back when its body ends or
//!   its producer does, whichever is first (`StreamSlot`), so a stream cut
//!   on HTTP/2, whose body lives on until its client reads, frees its slot
//!   at once. Channel streams (`watch`) make a
//!   listener each and are not counted. Counted per node: nodes do not
//!   share the count.
//!
//! Which routes publish and which open streams comes from one list,
//! [`PUBLISH_ROUTES`], and the stream routes' own ([`StreamRoute::ALL`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use http_body_util::BodyExt;

use super::auth;
use super::error::ApiError;
use super::routes::{StreamRoute, captures, fits};
use super::state::ConnectionContext;
use crate::config::HttpConfig;

/// The routes that publish (method, template).
pub(super) const PUBLISH_ROUTES: [(&str, &str); 4] = [
    ("POST", "/v1/channels/{channel}/messages"),
    (
        "POST",
        "/v1/channels/{channel}/listeners/{listener}/messages",
    ),
    ("POST", "/dispatch"),
    ("POST", "/broadcast"),
];

/// Checks between two prunings of idle callers.
const PRUNE_EVERY: u64 = 4096;

type Buckets = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// A rate per caller (see the module docs).
struct Rate {
    buckets: Buckets,
    checks: AtomicU64,
    /// What a refusal says: "too many {what} this caller (http.{setting})".
    what: &'static str,
    setting: &'static str,
}

impl Rate {
    /// `None` when `per_second` is 0 (unlimited).
    fn new(per_second: u32, burst: u32, what: &'static str, setting: &'static str) -> Option<Self> {
        let per_second = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(per_second);
        Some(Self {
            buckets: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            checks: AtomicU64::new(0),
            what,
            setting,
        })
    }

    /// `Ok`, or how many whole seconds (at least 1) the caller must wait.
    fn check(&self, caller: String) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.buckets.retain_recent();
            self.buckets.shrink_to_fit();
        }
        self.buckets.check_key(&caller).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
        })
    }
}

/// Open streams per (channel, listener), as decoded from the path.
type Open = HashMap<(String, String), usize>;

/// The limits of one server (see the module docs).
pub(super) struct Limits {
    publish: Option<Rate>,
    streams: Option<Rate>,
    per_listener: usize,
    open: Arc<Mutex<Open>>,
}

impl Limits {
    /// The limits `http` sets; `None` when it sets none (the router then
    /// adds no layer, and a request pays nothing).
    pub(super) fn new(http: &HttpConfig) -> Option<Arc<Self>> {
        let limits = Self {
            publish: Rate::new(
                http.publish_per_second,
                http.publish_burst,
                "publishes from",
                "publish_per_second",
            ),
            streams: Rate::new(
                http.streams_per_second,
                http.streams_burst,
                "streams opened by",
                "streams_per_second",
            ),
            per_listener: http.max_streams_per_listener,
            open: Arc::default(),
        };
        let any = limits.publish.is_some() || limits.streams.is_some() || limits.per_listener > 0;
        any.then(|| Arc::new(limits))
    }
}

/// A stream's place in its listener's count, held by the response body
/// and by the stream's producer, and given back by the **first** of them
/// to let go: the body when the client leaves or the connection closes,
/// the producer when it cuts the stream (an HTTP/2 stream's body lives on
/// until its client reads, but the stream is over) or the handler fails.
#[derive(Clone)]
pub(super) struct StreamSlot(Arc<Slot>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.release();
    }
}

struct Slot {
    open: Arc<Mutex<Open>>,
    key: (String, String),
    released: AtomicBool,
}

// Map updates cannot leave it half-changed: poison is harmless.
fn lock(open: &Mutex<Open>) -> MutexGuard<'_, Open> {
    open.lock().unwrap_or_else(|p| p.into_inner())
}

impl Slot {
    fn release(&self) {
        if self.released.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut open = lock(&self.open);
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Who the caller is, for its bucket: the one the token check let through
/// (a JWT's subject, else its token), else its address. Never an
/// unchecked token: with authentication off, a client could otherwise
/// draw on a fresh bucket with every made-up token.
fn caller(request: &Request) -> String {
    if let Some(caller) = request.extensions().get::<auth::Caller>() {
        return caller.key.to_string();
    }
    let peer: Option<IpAddr> = request
        .extensions()
        .get::<ConnectionContext>()
        .and_then(|context| context.peer);
    peer.map_or_else(|| String::from("a ?"), |ip| format!("a {ip}"))
}

/// The (channel, listener) a listener stream's path names, decoded.
fn listener_of(route: StreamRoute, path: &str) -> Option<(String, String)> {
    let target = captures(route.template(), path)?;
    Some((target.channel?, target.listener?))
}

fn too_many(code: &'static str, message: String, retry_after: Option<u64>) -> Response {
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, code, message).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Counts `request` against `rate` (none: unlimited); past it, the 429 to
/// answer.
fn refusal(rate: &Option<Rate>, request: &Request) -> Option<Response> {
    let rate = rate.as_ref()?;
    rate.check(caller(request)).err().map(|secs| {
        too_many(
            "rate_limited",
            format!("too many {} this caller (http.{})", rate.what, rate.setting),
            Some(secs),
        )
    })
}

/// The middleware (see the module docs).
pub(super) async fn limit(
    State(limits): State<Arc<Limits>>,
    request: Request,
    next: Next,
) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    if PUBLISH_ROUTES
        .iter()
        .any(|(m, template)| method.as_str() == *m && fits(template, &path))
    {
        if let Some(refused) = refusal(&limits.publish, &request) {
            return refused;
        }
        return next.run(request).await;
    }
    let Some(route) = (method == Method::GET)
        .then(|| StreamRoute::of_target(&path))
        .flatten()
    else {
        return next.run(request).await;
    };
    if let Some(refused) = refusal(&limits.streams, &request) {
        return refused;
    }
    let slot = match listener_of(route, &path).filter(|_| limits.per_listener > 0) {
        None => None,
        Some(key) => {
            let mut open = lock(&limits.open);
            let n = open.entry(key.clone()).or_default();
            if *n >= limits.per_listener {
                return too_many(
                    "too_many_streams",
                    format!(
                        "listener {} of channel {} has {} streams open on this node (http.max_streams_per_listener)",
                        key.1, key.0, limits.per_listener
                    ),
                    None,
                );
            }
            *n += 1;
            Some(Slot {
                open: limits.open.clone(),
                key,
                released: AtomicBool::new(false),
            })
        }
    };
    let Some(slot) = slot.map(|slot| StreamSlot(Arc::new(slot))) else {
        return next.run(request).await;
    };
    let mut request = request;
    // The stream handler moves this one into the stream's producer.
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    if response.status() != StatusCode::OK {
        return response;
    }
    let (parts, body) = response.into_parts();
    // The closure owns the other one: it goes when the body does.
    let body = Body::new(body.map_frame(move |frame| {
        let _ = &slot;
        frame
    }));
    Response::from_parts(parts, body)
}
