//! The resource-style API under `/v1` (documented in `docs/HTTP.md`).

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use eric_core::{
    Broadcast, ChannelId, ChannelSettings, Delivery, IdempotencyKey, ListenerId, Message,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{
    MessageJson, OptionalJson, PathParams, QueryParams, channel_id, listener_id, listener_path,
};
use super::idempotency::{self, WriteKey};
use super::sse::{self, StreamRequest};
use super::state::AppState;
use super::subscriptions::{self, SubscriptionBody};
use crate::broker::{ChannelInfo, ListenerInfo};

/// The `/v1` routes but the stream routes, which `super::routes` declares.
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/v1/channels", get(list_channels).post(create_channel))
        .route(
            "/v1/channels/{channel}",
            get(channel_info).delete(delete_channel),
        )
        .route("/v1/channels/{channel}/messages", post(broadcast))
        .route(
            "/v1/channels/{channel}/listeners",
            get(list_listeners).post(add_listener),
        )
        .route(
            "/v1/channels/{channel}/listeners/{listener}",
            get(listener_info).delete(remove_listener),
        )
        .route(
            "/v1/channels/{channel}/listeners/{listener}/start",
            post(start),
        )
        .route(
            "/v1/channels/{channel}/listeners/{listener}/stop",
            post(stop),
        )
        .route(
            "/v1/channels/{channel}/listeners/{listener}/messages",
            post(dispatch),
        )
        .route(
            "/v1/channels/{channel}/listeners/{listener}/next",
            post(next),
        )
        .route(
            "/v1/channels/{channel}/listeners/{listener}/subscriptions",
            subscriptions::route(),
        )
}

/// The channel's stream (watch): [`super::routes::StreamRoute::Channel`].
pub(super) fn channel_stream() -> MethodRouter<AppState> {
    get(watch).head(head_watch)
}

/// A listener's stream: [`super::routes::StreamRoute::Listener`].
pub(super) fn listener_stream() -> MethodRouter<AppState> {
    get(events).head(head_events)
}

/// The resume point: the `Last-Event-ID` header, else `last_event_id` in the
/// query. An empty value means "from the start"; anything but an id as this
/// server writes them ([`event_id`]) is a 400.
pub(super) fn last_event_id(headers: &HeaderMap, query: Option<&str>) -> ApiResult<Option<u64>> {
    let raw = match headers.get("last-event-id") {
        Some(value) => Some(value.to_str().map_err(|_| bad_resume())?),
        None => query,
    };
    match raw {
        None | Some("") => Ok(None),
        Some(text) => event_id(text).map(Some).ok_or_else(bad_resume),
    }
}

/// `text` as an event id, if it is one exactly as this server writes them:
/// decimal digits, no sign, no space, no leading zero, within a u64. Only
/// one spelling per id, so a proxy or client that rewrites ids is caught
/// rather than guessed at. An id above the last one sent is an id all
/// the same: nothing was sent after it, so nothing is replayed and the
/// stream goes on with what is queued (a browser reconnecting to a
/// listener made anew keeps working).
fn event_id(text: &str) -> Option<u64> {
    let canonical = text.bytes().all(|b| b.is_ascii_digit())
        && !text.is_empty()
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

fn bad_resume() -> ApiError {
    ApiError::bad_request(
        "invalid_last_event_id",
        "Last-Event-ID must be an event id this server sent (decimal digits, no sign, space or leading zero)",
    )
}

/// `POST /v1/channels`: all optional, an empty body included.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewChannel {
    /// The new channel's id; a random UUIDv4 when left out.
    #[schema(value_type = Option<ChannelId>)]
    id: Option<String>,
    /// Only the keys to change: the rest comes from the built-in defaults
    /// (without `settings`, from the server's `[channels]`).
    #[schema(value_type = Option<ChannelSettings>)]
    settings: Option<serde_json::Map<String, Value>>,
}

/// `POST /v1/channels/{channel}/listeners`: all optional, an empty body
/// included.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct NewListener {
    /// The listener's id; a random UUIDv4 when left out. An id that is
    /// registered already is no error, and keeps its queue and state.
    #[schema(value_type = Option<ListenerId>)]
    id: Option<String>,
    /// Held from the moment the listener exists; replace the set of a
    /// listener that exists already.
    #[schema(value_type = Option<Vec<eric_core::Subscription>>)]
    subscriptions: Option<Vec<SubscriptionBody>>,
}

/// `GET /v1/channels`.
#[derive(Debug, Serialize, ToSchema)]
struct ChannelList {
    /// Every channel's id.
    channels: Vec<ChannelId>,
}

/// `POST /v1/channels/{channel}/listeners`: the listener's id.
#[derive(Debug, Serialize, ToSchema)]
struct ListenerCreated {
    id: ListenerId,
}

/// A dispatch's answer.
#[derive(Debug, Serialize, ToSchema)]
struct Dispatched {
    /// The message's sequence number: its SSE `id`, strictly increasing
    /// per listener.
    seq: u64,
}

#[derive(Debug, Deserialize)]
struct ResumeQuery {
    last_event_id: Option<String>,
}

/// `partial` over `defaults`; unknown or ill-typed keys are a 422.
fn merged_settings(
    defaults: &ChannelSettings,
    partial: serde_json::Map<String, Value>,
) -> ApiResult<ChannelSettings> {
    let mut settings = serde_json::to_value(defaults)
        .map_err(|e| eric_core::Error::invalid_format(e.to_string()))?;
    if let Value::Object(base) = &mut settings {
        base.extend(partial);
    }
    serde_json::from_value(settings).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            format!("settings: {e}"),
        )
    })
}

type Ids = PathParams<(String, String)>;

fn ids(path: (String, String)) -> ApiResult<(ChannelId, ListenerId)> {
    listener_path(path)
}

/// Every channel's id.
#[utoipa::path(
    get,
    path = "/v1/channels",
    tag = "channels",
    responses((status = 200, description = "The channels", body = ChannelList))
)]
async fn list_channels(State(s): State<AppState>) -> ApiResult<Json<ChannelList>> {
    Ok(Json(ChannelList {
        channels: s.broker.channel_ids().await?,
    }))
}

/// Creates a channel.
#[utoipa::path(
    post,
    path = "/v1/channels",
    tag = "channels",
    request_body(
        content = Option<NewChannel>,
        description = "Optional: an empty body takes every default",
        content_type = "application/json"
    ),
    responses(
        (status = 201, description = "Created", body = ChannelInfo),
        (status = 400, description = "`invalid_id`, `invalid_message` (settings out of bounds), `malformed_json`", body = ErrorBody),
        (status = 409, description = "`channel_exists`: the id is taken", body = ErrorBody),
        (status = 422, description = "`invalid_body`: an unknown key or a wrong type", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
        (status = 507, description = "`storage_full`", body = ErrorBody),
    )
)]
async fn create_channel(
    State(s): State<AppState>,
    OptionalJson(body): OptionalJson<NewChannel>,
) -> ApiResult<(StatusCode, Json<ChannelInfo>)> {
    let id = body.id.as_deref().map(channel_id).transpose()?;
    let settings = body
        .settings
        .map(|partial| merged_settings(s.broker.defaults(), partial))
        .transpose()?;
    let channel = s.broker.create_channel(id, settings).await?;
    Ok((StatusCode::CREATED, Json(s.broker.info(&channel).await?)))
}

/// A channel: its settings and listeners.
#[utoipa::path(
    get,
    path = "/v1/channels/{channel}",
    tag = "channels",
    params(("channel" = ChannelId, Path, description = "The channel's id")),
    responses(
        (status = 200, description = "The channel", body = ChannelInfo),
        (status = 400, description = "`invalid_id`, `invalid_path`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`", body = ErrorBody),
    )
)]
async fn channel_info(
    State(s): State<AppState>,
    PathParams(channel): PathParams<String>,
) -> ApiResult<Json<ChannelInfo>> {
    Ok(Json(s.broker.info(&channel_id(&channel)?).await?))
}

/// Deletes a channel: its listeners go, their streams end (`removed`).
#[utoipa::path(
    delete,
    path = "/v1/channels/{channel}",
    tag = "channels",
    params(("channel" = ChannelId, Path, description = "The channel's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "`invalid_id`, `invalid_path`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
    )
)]
async fn delete_channel(
    State(s): State<AppState>,
    PathParams(channel): PathParams<String>,
) -> ApiResult<StatusCode> {
    s.broker.delete_channel(&channel_id(&channel)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A channel's listeners, in registration order.
#[utoipa::path(
    get,
    path = "/v1/channels/{channel}/listeners",
    tag = "listeners",
    params(("channel" = ChannelId, Path, description = "The channel's id")),
    responses(
        (status = 200, description = "The listeners", body = Vec<ListenerInfo>),
        (status = 400, description = "`invalid_id`, `invalid_path`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`", body = ErrorBody),
    )
)]
async fn list_listeners(
    State(s): State<AppState>,
    PathParams(channel): PathParams<String>,
) -> ApiResult<Json<Vec<ListenerInfo>>> {
    Ok(Json(s.broker.info(&channel_id(&channel)?).await?.listeners))
}

/// Adds a listener (stopped), or keeps the one of that id.
#[utoipa::path(
    post,
    path = "/v1/channels/{channel}/listeners",
    tag = "listeners",
    params(("channel" = ChannelId, Path, description = "The channel's id")),
    request_body(
        content = Option<NewListener>,
        description = "Optional: an empty body makes a listener with a new id and no subscriptions",
        content_type = "application/json"
    ),
    responses(
        (status = 201, description = "The listener's id", body = ListenerCreated),
        (status = 400, description = "`invalid_id`, `invalid_topic`, `too_many_subscriptions`, `malformed_json`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
        (status = 507, description = "`storage_full`", body = ErrorBody),
    )
)]
async fn add_listener(
    State(s): State<AppState>,
    PathParams(channel): PathParams<String>,
    OptionalJson(body): OptionalJson<NewListener>,
) -> ApiResult<(StatusCode, Json<ListenerCreated>)> {
    let id = body.id.as_deref().map(listener_id).transpose()?;
    let subscriptions = body
        .subscriptions
        .map(subscriptions::validated_list)
        .transpose()?
        .map(|list| list.into_iter().collect());
    let listener = s
        .broker
        .subscribe(&channel_id(&channel)?, id, subscriptions)
        .await?;
    Ok((StatusCode::CREATED, Json(ListenerCreated { id: listener })))
}

/// A listener: its state and queue length.
#[utoipa::path(
    get,
    path = "/v1/channels/{channel}/listeners/{listener}",
    tag = "listeners",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
    ),
    responses(
        (status = 200, description = "The listener", body = ListenerInfo),
        (status = 400, description = "`invalid_id`, `invalid_path`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
    )
)]
async fn listener_info(
    State(s): State<AppState>,
    PathParams(p): Ids,
) -> ApiResult<Json<ListenerInfo>> {
    let (channel, listener) = ids(p)?;
    let info = s.broker.info(&channel).await?;
    info.listeners
        .into_iter()
        .find(|l| l.id == listener)
        .map(Json)
        .ok_or_else(|| eric_core::Error::InvalidListener { channel, listener }.into())
}

/// Removes a listener: its queue goes, its streams end (`removed`).
#[utoipa::path(
    delete,
    path = "/v1/channels/{channel}/listeners/{listener}",
    tag = "listeners",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "`invalid_id`, `invalid_path`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
    )
)]
async fn remove_listener(State(s): State<AppState>, PathParams(p): Ids) -> ApiResult<StatusCode> {
    let (channel, listener) = ids(p)?;
    s.broker.remove_listener(&channel, &listener).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a listener: its messages are handed out.
#[utoipa::path(
    post,
    path = "/v1/channels/{channel}/listeners/{listener}/start",
    tag = "listeners",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
    ),
    responses(
        (status = 204, description = "Running"),
        (status = 400, description = "`invalid_id`, `invalid_path`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
    )
)]
async fn start(State(s): State<AppState>, PathParams(p): Ids) -> ApiResult<StatusCode> {
    let (channel, listener) = ids(p)?;
    s.broker.set_running(&channel, &listener, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stops a listener: its streams end (`stopped`), its messages stay queued.
#[utoipa::path(
    post,
    path = "/v1/channels/{channel}/listeners/{listener}/stop",
    tag = "listeners",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
    ),
    responses(
        (status = 204, description = "Stopped"),
        (status = 400, description = "`invalid_id`, `invalid_path`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
    )
)]
async fn stop(State(s): State<AppState>, PathParams(p): Ids) -> ApiResult<StatusCode> {
    let (channel, listener) = ids(p)?;
    s.broker.set_running(&channel, &listener, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a message for one listener (dispatch).
#[utoipa::path(
    post,
    path = "/v1/channels/{channel}/listeners/{listener}/messages",
    tag = "messages",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
        ("Idempotency-Key" = Option<IdempotencyKey>, Header, description = "Names the write: a retry within the channel's window is answered as the first was, with `Idempotent-Replayed: true`"),
    ),
    request_body(content = Message, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued", body = Dispatched, headers(("Idempotent-Replayed" = String, description = "`true` when the write was a repeat within the window, answered as the first was"))),
        (status = 400, description = "`invalid_id`, `invalid_topic`, `invalid_message`, `malformed_json`, `invalid_idempotency_key`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not declared JSON", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 429, description = "`queue_full`, `rate_limited` (with `Retry-After`)", body = ErrorBody, headers(("Retry-After" = u64, description = "With `rate_limited`: whole seconds to wait"))),
        (status = 504, description = "`outcome_unknown`: retry with the same `Idempotency-Key`", body = ErrorBody),
        (status = 507, description = "`storage_full`", body = ErrorBody),
    )
)]
async fn dispatch(
    State(s): State<AppState>,
    PathParams(p): Ids,
    write: WriteKey,
    MessageJson(message): MessageJson,
) -> ApiResult<Response> {
    let (channel, listener) = ids(p)?;
    let key = write.for_message(&message);
    let applied = s
        .broker
        .dispatch_once(&channel, &listener, message, key.as_ref())
        .await?;
    let body = Dispatched { seq: applied.value };
    Ok(idempotency::answer(
        &applied,
        (StatusCode::ACCEPTED, Json(body)),
    ))
}

/// Queues a message for a channel's listeners (broadcast).
///
/// Each listener whose subscriptions admit it gets it (every listener
/// without subscriptions).
#[utoipa::path(
    post,
    path = "/v1/channels/{channel}/messages",
    tag = "messages",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("Idempotency-Key" = Option<IdempotencyKey>, Header, description = "Names the write: a retry within the channel's window is answered as the first was, with `Idempotent-Replayed: true`"),
    ),
    request_body(content = Message, content_type = "application/json"),
    responses(
        (status = 202, description = "Queued; listeners whose queue was full are named", body = Broadcast, headers(("Idempotent-Replayed" = String, description = "`true` when the write was a repeat within the window, answered as the first was"))),
        (status = 400, description = "`invalid_id`, `invalid_topic`, `invalid_message`, `malformed_json`, `invalid_idempotency_key`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not declared JSON", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 429, description = "`rate_limited` (with `Retry-After`)", body = ErrorBody, headers(("Retry-After" = u64, description = "With `rate_limited`: whole seconds to wait"))),
        (status = 504, description = "`outcome_unknown`: retry with the same `Idempotency-Key`", body = ErrorBody),
        (status = 507, description = "`storage_full`", body = ErrorBody),
    )
)]
async fn broadcast(
    State(s): State<AppState>,
    PathParams(channel): PathParams<String>,
    write: WriteKey,
    MessageJson(message): MessageJson,
) -> ApiResult<Response> {
    let key = write.for_message(&message);
    let applied = s
        .broker
        .broadcast_once(&channel_id(&channel)?, &message, key.as_ref())
        .await?;
    Ok(idempotency::answer(
        &applied,
        (StatusCode::ACCEPTED, Json(&applied.value)),
    ))
}

/// Takes the next message off a running listener's queue.
#[utoipa::path(
    post,
    path = "/v1/channels/{channel}/listeners/{listener}/next",
    tag = "messages",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
    ),
    responses(
        (status = 200, description = "The next message", body = Delivery),
        (status = 204, description = "The queue is empty"),
        (status = 400, description = "`invalid_id`, `invalid_path`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
        (status = 409, description = "`listener_stopped`", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
    )
)]
async fn next(State(s): State<AppState>, PathParams(p): Ids) -> ApiResult<Response> {
    let (channel, listener) = ids(p)?;
    Ok(match s.broker.next(&channel, &listener).await? {
        Some(delivery) => Json(delivery).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// A listener's stream (SSE).
///
/// Starts a stopped listener for a caller who may change its state.
#[utoipa::path(
    get,
    path = "/v1/channels/{channel}/listeners/{listener}/events",
    tag = "streams",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id (decimal digits as the server writes them; empty: from the start)"),
        ("last_event_id" = Option<String>, Query, description = "As `Last-Event-ID`, for clients that cannot set headers; the header wins"),
    ),
    responses(
        (status = 200, description = "The event stream (`docs/HTTP.md`, SSE streams)", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_id`, `invalid_path`, `invalid_last_event_id`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
        (status = 409, description = "`listener_stopped`: a caller who may not start it", body = ErrorBody),
        (status = 422, description = "`invalid_query`", body = ErrorBody),
        (status = 429, description = "`rate_limited` (with `Retry-After`), `too_many_streams`", body = ErrorBody, headers(("Retry-After" = u64, description = "With `rate_limited`: whole seconds to wait"))),
    )
)]
async fn events(
    State(s): State<AppState>,
    PathParams(p): Ids,
    headers: HeaderMap,
    QueryParams(q): QueryParams<ResumeQuery>,
    request: StreamRequest,
) -> ApiResult<Response> {
    let (channel, listener) = ids(p)?;
    let resume = last_event_id(&headers, q.last_event_id.as_deref())?;
    sse::listener_events(&s, (&channel, &listener), resume, request).await
}

/// The head `GET` would answer; starts nothing.
#[utoipa::path(
    head,
    path = "/v1/channels/{channel}/listeners/{listener}/events",
    tag = "streams",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
    ),
    responses(
        (status = 200, description = "A stream would open", content_type = "text/event-stream"),
        (status = 400, description = "`invalid_id`, `invalid_path`"),
        (status = 404, description = "`channel_not_found`, `listener_not_found`"),
    )
)]
async fn head_events(State(s): State<AppState>, PathParams(p): Ids) -> ApiResult<Response> {
    let (channel, listener) = ids(p)?;
    sse::head(&s, &channel, Some(&listener)).await
}

/// The head `GET` would answer; makes no listener.
#[utoipa::path(
    head,
    path = "/v1/channels/{channel}/events",
    tag = "streams",
    params(("channel" = ChannelId, Path, description = "The channel's id")),
    responses(
        (status = 200, description = "A stream would open", content_type = "text/event-stream"),
        (status = 400, description = "`invalid_id`, `invalid_path`"),
        (status = 404, description = "`channel_not_found`"),
    )
)]
async fn head_watch(
    State(s): State<AppState>,
    PathParams(channel): PathParams<String>,
) -> ApiResult<Response> {
    sse::head(&s, &channel_id(&channel)?, None).await
}

/// A channel's broadcasts (SSE), on a temporary listener (watch).
#[utoipa::path(
    get,
    path = "/v1/channels/{channel}/events",
    tag = "streams",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("filter" = Option<Vec<String>>, Query, style = Form, explode, description = "`TYPE` or `TYPE:TOPIC` (split at the first `:`), repeatable: only broadcasts one of them admits"),
    ),
    responses(
        (status = 200, description = "The event stream (`docs/HTTP.md`, SSE streams)", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_id`, `invalid_path`, `invalid_topic`, `too_many_subscriptions`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`", body = ErrorBody),
        (status = 429, description = "`rate_limited` (with `Retry-After`)", body = ErrorBody, headers(("Retry-After" = u64, description = "With `rate_limited`: whole seconds to wait"))),
    )
)]
async fn watch(
    State(s): State<AppState>,
    PathParams(channel): PathParams<String>,
    RawQuery(query): RawQuery,
    request: StreamRequest,
) -> ApiResult<Response> {
    let filters = subscriptions::from_query(query.as_deref())?;
    sse::channel_events(&s, &channel_id(&channel)?, filters, request).await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::event_id;

    proptest! {
        /// Every id this server can write reads back as itself.
        #[test]
        fn every_written_id_reads_back(id in any::<u64>()) {
            prop_assert_eq!(event_id(&id.to_string()), Some(id));
        }

        /// Whatever is accepted is written exactly that way: one spelling
        /// per id (no sign, space, leading zero or other digits).
        #[test]
        fn only_the_written_spelling_is_taken(text in any::<String>()) {
            if let Some(id) = event_id(&text) {
                prop_assert_eq!(id.to_string(), text);
            }
        }

        /// A written id with a sign, a space or a leading zero is refused.
        #[test]
        fn decorated_ids_are_refused(id in any::<u64>(), decoration in 0..5usize) {
            let text = match decoration {
                0 => format!("+{id}"),
                1 => format!(" {id}"),
                2 => format!("{id} "),
                3 => format!("0{id}"),
                _ => format!("-{id}"),
            };
            prop_assert_eq!(event_id(&text), None);
        }
    }

    #[test]
    fn ids_past_u64_are_refused() {
        assert_eq!(event_id("18446744073709551615"), Some(u64::MAX));
        assert_eq!(event_id("18446744073709551616"), None);
        assert_eq!(event_id(""), None);
        assert_eq!(event_id("0"), Some(0));
    }
}
