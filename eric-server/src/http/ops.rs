//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`.

use axum::Json;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::state::AppState;

/// `/healthz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Health {
    /// Always `ok`: the process answers.
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
}

/// `/readyz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub(super) struct Readiness {
    /// Whether the node can serve.
    ready: bool,
    /// Why not, when not: one of a few fixed phrases, never a cause.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(
        value_type = Option<String>,
        example = "redis unavailable",
        pattern = "^(redis unavailable|redis subscriber disconnected|disk writes failed|shutting down)$"
    )]
    reason: Option<&'static str>,
}

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is up", body = Health))
)]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `?wait=ready|unready`: hold the answer until readiness is that (or the
/// request time limit nears), so scripts and tests await the change instead
/// of polling.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct ReadyQuery {
    /// Hold the answer until the node is this, or the request time limit
    /// nears.
    #[param(pattern = "^(ready|unready)$")]
    wait: Option<String>,
}

/// Whether the node can serve.
///
/// It can when storage answers and (Redis) the subscriber that wakes
/// streams is connected. 503 with a fixed reason otherwise (`redis
/// unavailable`, `redis subscriber disconnected`, `disk writes failed`:
/// the disk engine stopped writing after an error), and while shutting down
/// (`shutting down`), so load balancers stop sending new clients first.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    params(ReadyQuery),
    responses(
        (status = 200, description = "The node can serve", body = Readiness),
        (status = 503, description = "The node cannot serve, or is shutting down", body = Readiness),
    )
)]
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
        Ok(()) => Json(Readiness {
            ready: true,
            reason: None,
        })
        .into_response(),
        Err(not) => {
            // The probe is unauthenticated: the cause (addresses, OS errors)
            // goes to the log only.
            let cause = std::error::Error::source(&not);
            tracing::warn!(error = %not, cause = ?cause, "not ready");
            not_ready(not.reason())
        }
    }
}

fn not_ready(reason: &'static str) -> Response {
    let body = Readiness {
        ready: false,
        reason: Some(reason),
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}

/// Prometheus text exposition.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((
        status = 200,
        description = "Every metric of docs/OPERATIONS.md, in the OpenMetrics text format",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8",
        body = String
    ))
)]
pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    let text = s.metrics.render(&s.broker).await;
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}
