//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`.

use axum::Json;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::state::AppState;

/// The process is up.
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `?wait=ready|unready`: hold the answer until readiness is that (or the
/// request time limit nears), so scripts and tests await the change instead
/// of polling.
#[derive(Debug, Deserialize)]
pub(super) struct ReadyQuery {
    wait: Option<String>,
}

/// The node can serve: storage answers and (Redis) the subscriber that wakes
/// streams is connected. 503 with a fixed reason otherwise (`redis
/// unavailable`, `redis subscriber disconnected`), and while shutting down
/// (`shutting down`), so load balancers stop sending new clients first.
pub(super) async fn readyz(State(s): State<AppState>, Query(q): Query<ReadyQuery>) -> Response {
    if let (Some(wanted), Some(mut changes)) = (q.wait.as_deref(), s.broker.readiness_changes()) {
        let wanted = wanted == "ready";
        // Leave room to answer within the request time limit.
        let bound = s
            .http
            .request_timeout()
            .saturating_sub(Duration::from_secs(1));
        let _ = tokio::time::timeout(bound, changes.wait_for(|ready| *ready == wanted)).await;
    }
    if s.shutdown.is_cancelled() {
        return not_ready("shutting down");
    }
    match s.broker.readiness().await {
        Ok(()) => Json(json!({"ready": true})).into_response(),
        Err(not) => {
            // The probe is unauthenticated: the cause (addresses, OS errors)
            // goes to the log only.
            let cause = std::error::Error::source(&not);
            tracing::warn!(error = %not, cause = ?cause, "not ready");
            not_ready(not.reason())
        }
    }
}

fn not_ready(reason: &str) -> Response {
    let body = json!({"ready": false, "reason": reason});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Prometheus text exposition.
pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    let text = s.metrics.render(&s.broker).await;
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}
