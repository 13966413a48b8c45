//! The routes that open an SSE stream, declared once.
//!
//! Three places act on them: the router (which handler answers, `http`),
//! the hyper bypass (`serve::first`: which first requests are answered
//! without hyper) and the rights table (`auth`: a subscribe token may open
//! them, and `?access_token=` counts). Each derives its view from
//! [`StreamRoute::ALL`], so a stream route exists in all three or in none;
//! `tests` checks the router and the rights table agree with it, both ways,
//! and `serve::first`'s tests that the bypass takes every route of it.
//!
//! Templates are written as axum writes them: a `{name}` segment is any one
//! non-empty segment. The rights table uses the same syntax for its other
//! rows, matched by [`fits`].

use percent_encoding::percent_decode_str;

/// A route that opens an SSE stream (`GET`), or tells what opening it
/// would answer (`HEAD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamRoute {
    /// eric-api's listener stream.
    Compat,
    /// `/v1`: a channel's broadcasts, on a temporary listener (watch).
    Channel,
    /// `/v1`: a listener's stream.
    Listener,
}

impl StreamRoute {
    /// Every stream route. A variant left out is never constructed, which
    /// the build's dead-code lint refuses.
    pub(crate) const ALL: [Self; 3] = [Self::Compat, Self::Channel, Self::Listener];

    /// The methods a stream route takes: `GET` opens, `HEAD` probes.
    pub(crate) const METHODS: [&'static str; 2] = ["GET", "HEAD"];

    /// The route's template, as the router registers it.
    pub(crate) const fn template(self) -> &'static str {
        match self {
            Self::Compat => "/stream/{channel}/{listener}",
            Self::Channel => "/v1/channels/{channel}/events",
            Self::Listener => "/v1/channels/{channel}/listeners/{listener}/events",
        }
    }

    /// The stream route `target` (a path, with any query) is, if any.
    pub(crate) fn of_target(target: &str) -> Option<Self> {
        let path = target.split_once('?').map_or(target, |(path, _)| path);
        Self::ALL
            .into_iter()
            .find(|route| fits(route.template(), path))
    }
}

/// Whether `path` fits `template`: the same number of segments, literal
/// segments equal, and a non-empty segment wherever the template has a
/// `{name}`.
pub(crate) fn fits(template: &str, path: &str) -> bool {
    let mut actual = path.split('/');
    let mut wanted = template.split('/');
    loop {
        match (wanted.next(), actual.next()) {
            (None, None) => return true,
            (Some(w), Some(a)) if is_parameter(w) && !a.is_empty() => {}
            (Some(w), Some(a)) if w == a && !is_parameter(w) => {}
            _ => return false,
        }
    }
}

/// The channel and listener segments `path` gives `template`'s `{channel}`
/// and `{listener}`, percent-decoded as the router decodes them; `None`
/// when the path does not fit.
pub(crate) fn captures(template: &str, path: &str) -> Option<Target> {
    if !fits(template, path) {
        return None;
    }
    let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
    let mut target = Target::default();
    for (wanted, actual) in template.split('/').zip(path.split('/')) {
        match wanted {
            "{channel}" => target.channel = Some(decode(actual)),
            "{listener}" => target.listener = Some(decode(actual)),
            _ => {}
        }
    }
    Some(target)
}

/// What a route's path names (see [`captures`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) channel: Option<String>,
    pub(crate) listener: Option<String>,
}

fn is_parameter(segment: &str) -> bool {
    segment.len() > 2 && segment.starts_with('{') && segment.ends_with('}')
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::http::{Method, Request, Response, header};
    use eric_core::{ChannelSettings, MemoryEngine};
    use tokio_util::sync::CancellationToken;
    use tower::ServiceExt;

    use super::*;
    use crate::config::HttpConfig;
    use crate::http::{AppState, auth, router};
    use crate::{Broker, Metrics};

    /// The whole API on the in-memory engine, with channel `c` and its
    /// listener `l`.
    async fn app() -> Router {
        let metrics = Arc::new(Metrics::new());
        let app = router(
            AppState::new(
                Broker::new(
                    MemoryEngine::with_observer(metrics.clone()),
                    ChannelSettings::default(),
                ),
                HttpConfig::default(),
                metrics,
                CancellationToken::new(),
            )
            .unwrap(),
        );
        let created = send(&app, "PUT", "/create?channel_id=c", "").await;
        assert!(created.status().is_success());
        let added = send(&app, "POST", "/v1/channels/c/listeners", r#"{"id":"l"}"#).await;
        assert!(added.status().is_success());
        app
    }

    async fn send(app: &Router, method: &str, path: &str, body: &str) -> Response<Body> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), app.clone().oneshot(request))
            .await
            .expect("no answer in time")
            .unwrap()
    }

    /// Every route template the router holds, read from its `Debug` form
    /// (axum lists a router's paths there and nowhere else).
    fn router_templates(app: &Router) -> Vec<String> {
        let text = format!("{app:?}");
        let mut templates = Vec::new();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("): \"/") {
            let after = &rest[at + 4..];
            let end = after.find('"').unwrap();
            let template = &after[..end];
            if !template.contains("__private__") {
                templates.push(template.to_owned());
            }
            rest = &after[end..];
        }
        templates
    }

    /// A path that fits `template`, with the ids `app` knows.
    fn path_of(template: &str) -> String {
        template
            .replace("{channel}", "c")
            .replace("{listener}", "l")
    }

    fn is_sse(response: &Response<Body>) -> bool {
        response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
    }

    /// The router, the hyper bypass and the rights table know the same
    /// stream routes: walking the router's routes, a route answers a
    /// stream exactly when the bypass takes it and the rights table lets
    /// a subscribe token with a query token open it; and every rights row
    /// that takes a query token is a stream route's.
    #[tokio::test]
    async fn router_bypass_and_rights_table_agree_on_the_stream_routes() {
        let app = app().await;
        let templates = router_templates(&app);
        for route in StreamRoute::ALL {
            assert!(
                templates.iter().any(|t| t == route.template()),
                "{route:?} not among the router's routes {templates:?}"
            );
        }
        for template in &templates {
            let path = path_of(template);
            let response = send(&app, "GET", &path, "").await;
            let streams = is_sse(&response);
            drop(response);
            let route = StreamRoute::of_target(&path);
            assert_eq!(streams, route.is_some(), "the router on GET {template}");
            for method in [Method::GET, Method::HEAD] {
                let (rule, _) = auth::needs(&method, &path);
                let as_stream =
                    rule.ambient && matches!(rule.right, auth::Right::Read | auth::Right::Watch);
                assert_eq!(
                    as_stream, streams,
                    "the rights table on {method} {template}"
                );
            }
        }
        for row in auth::rules() {
            if row.ambient {
                assert!(
                    StreamRoute::ALL.iter().any(|r| r.template() == row.path)
                        && StreamRoute::METHODS.contains(&row.method),
                    "{row:?} takes an ambient token but is no stream route"
                );
            }
        }
    }

    #[test]
    fn templates_fit_their_paths_only() {
        let template = StreamRoute::Listener.template();
        assert!(fits(template, "/v1/channels/c/listeners/l/events"));
        for path in [
            "/v1/channels/c/listeners/l/events/",
            "/v1/channels//listeners/l/events",
            "/v1/channels/c/listeners/l",
            "v1/channels/c/listeners/l/events",
            "/v1/channels/{channel}/listeners/l/event",
        ] {
            assert!(!fits(template, path), "{path}");
        }
        assert_eq!(
            StreamRoute::of_target("/stream/c/l?access_token=x"),
            Some(StreamRoute::Compat)
        );
        assert_eq!(
            StreamRoute::of_target("/v1/channels/c/events"),
            Some(StreamRoute::Channel)
        );
        assert_eq!(StreamRoute::of_target("/v1/channels/c"), None);
    }
}
