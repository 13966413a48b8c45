//! eric-api's routes, with its status codes for success, so its clients
//! keep working.
//!
//! Deviations: SSE `data` is JSON (eric-api wrote Python's `str()` of the
//! payload) and events carry an `id`; errors use the API's one JSON shape
//! with 404 for unknown channels and listeners (eric-api answered 400, or 500
//! in memory mode); a boolean payload stays a boolean (pydantic made it an
//! integer); listeners created on other nodes can be streamed here.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::{MethodRouter, delete, get, post, put};
use eric_core::{ChannelId, ListenerId, Message, MessageType};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{JsonBody, PathParams, QueryParams, channel_id, listener_id};
use super::idempotency::{self, WriteKey};
use super::sse::{self, StreamRequest};
use super::state::AppState;
use super::v1::last_event_id;

/// The compatible routes but the stream route, which `super::routes`
/// declares.
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/", get(listing))
        .route("/channels", get(channels))
        .route("/create", put(create))
        .route("/subscribe", post(subscribe))
        .route("/dispatch", post(dispatch))
        .route("/broadcast", post(broadcast))
        .route("/listener/{channel}/{listener}", delete(remove_listener))
        .route("/channel/{channel}", delete(remove_channel))
}

/// The listener stream: [`super::routes::StreamRoute::Compat`].
pub(super) fn stream_route() -> MethodRouter<AppState> {
    get(stream).head(head_stream)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct CreateQuery {
    /// The new channel's id; a random UUIDv4 when left out.
    #[param(value_type = Option<ChannelId>)]
    channel_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ChannelQuery {
    /// The channel's id.
    #[param(value_type = ChannelId)]
    channel_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListenerQuery {
    /// The channel's id.
    #[param(value_type = ChannelId)]
    channel_id: String,
    /// The listener's id.
    #[param(value_type = ListenerId)]
    listener_id: String,
}

/// eric-api's message body: both keys required.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = EricApiMessage)]
struct MessageBody {
    #[serde(rename = "type")]
    msg_type: MessageType,
    /// Any JSON value, `null` included.
    #[schema(value_type = Value)]
    payload: Box<RawValue>,
}

/// `PUT /create`'s answer.
#[derive(Debug, Serialize, ToSchema)]
struct CreatedChannel {
    channel_id: ChannelId,
}

/// `POST /subscribe`'s answer.
#[derive(Debug, Serialize, ToSchema)]
struct Subscribed {
    listener_id: ListenerId,
}

/// The JSON `null` eric-api answers its writes with.
#[derive(Debug, Serialize)]
pub(super) struct Null;

impl utoipa::PartialSchema for Null {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Null)
            .into()
    }
}

impl ToSchema for Null {}

impl MessageBody {
    fn into_message(self) -> Result<Message, ApiError> {
        Message::with_raw_payload(self.msg_type, self.payload).map_err(ApiError::from)
    }
}

/// Every channel with its listeners' ids.
#[utoipa::path(
    get,
    path = "/",
    tag = "eric-api",
    operation_id = "eric_api_listing",
    responses(
        (status = 200, description = "Channel id to listener ids", body = std::collections::HashMap<String, Vec<ListenerId>>),
    )
)]
async fn listing(
    State(s): State<AppState>,
) -> ApiResult<Json<IndexMap<ChannelId, Vec<ListenerId>>>> {
    Ok(Json(s.broker.listing().await?))
}

/// Every channel's id.
#[utoipa::path(
    get,
    path = "/channels",
    tag = "eric-api",
    operation_id = "eric_api_channels",
    responses((status = 200, description = "The channels' ids", body = Vec<ChannelId>))
)]
async fn channels(State(s): State<AppState>) -> ApiResult<Json<Vec<ChannelId>>> {
    Ok(Json(s.broker.channel_ids().await?))
}

/// Creates a channel with the server's `[channels]` settings.
#[utoipa::path(
    put,
    path = "/create",
    tag = "eric-api",
    operation_id = "eric_api_create",
    params(CreateQuery),
    responses(
        (status = 200, description = "Created", body = CreatedChannel),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 409, description = "`channel_exists`", body = ErrorBody),
        (status = 422, description = "`invalid_query`", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
        (status = 507, description = "`storage_full`", body = ErrorBody),
    )
)]
async fn create(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<CreateQuery>,
) -> ApiResult<Json<CreatedChannel>> {
    let id = q.channel_id.as_deref().map(channel_id).transpose()?;
    let channel = s.broker.create_channel(id, None).await?;
    Ok(Json(CreatedChannel {
        channel_id: channel,
    }))
}

/// Adds a listener with a new id.
#[utoipa::path(
    post,
    path = "/subscribe",
    tag = "eric-api",
    operation_id = "eric_api_subscribe",
    params(ChannelQuery),
    responses(
        (status = 200, description = "The listener's id", body = Subscribed),
        (status = 400, description = "`invalid_id`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`", body = ErrorBody),
        (status = 422, description = "`invalid_query`", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
        (status = 507, description = "`storage_full`", body = ErrorBody),
    )
)]
async fn subscribe(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<ChannelQuery>,
) -> ApiResult<Json<Subscribed>> {
    let listener = s
        .broker
        .subscribe(&channel_id(&q.channel_id)?, None, None)
        .await?;
    Ok(Json(Subscribed {
        listener_id: listener,
    }))
}

/// Queues a message for one listener.
#[utoipa::path(
    post,
    path = "/dispatch",
    tag = "eric-api",
    operation_id = "eric_api_dispatch",
    params(
        ListenerQuery,
        ("Idempotency-Key" = Option<eric_core::IdempotencyKey>, Header, description = "Names the write (see the `/v1` dispatch)"),
    ),
    request_body(content = MessageBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Queued", body = Null, headers(("Idempotent-Replayed" = String, description = "`true` when the write was a repeat within the window, answered as the first was"))),
        (status = 400, description = "`invalid_id`, `invalid_message`, `malformed_json`, `invalid_idempotency_key`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_query`, `invalid_body`", body = ErrorBody),
        (status = 429, description = "`queue_full`, `rate_limited`", body = ErrorBody, headers(("Retry-After" = u64, description = "With `rate_limited`: whole seconds to wait"))),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
        (status = 507, description = "`storage_full`", body = ErrorBody),
    )
)]
async fn dispatch(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<ListenerQuery>,
    write: WriteKey,
    JsonBody(body): JsonBody<MessageBody>,
) -> ApiResult<Response> {
    let (channel, listener) = (channel_id(&q.channel_id)?, listener_id(&q.listener_id)?);
    let message = body.into_message()?;
    let key = write.for_message(&message);
    let applied = s
        .broker
        .dispatch_once(&channel, &listener, message, key.as_ref())
        .await?;
    Ok(idempotency::answer(&applied, Json(Null)))
}

/// Queues a message for every listener of a channel.
#[utoipa::path(
    post,
    path = "/broadcast",
    tag = "eric-api",
    operation_id = "eric_api_broadcast",
    params(
        ChannelQuery,
        ("Idempotency-Key" = Option<eric_core::IdempotencyKey>, Header, description = "Names the write (see the `/v1` broadcast)"),
    ),
    request_body(content = MessageBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Queued", body = Null, headers(("Idempotent-Replayed" = String, description = "`true` when the write was a repeat within the window, answered as the first was"))),
        (status = 400, description = "`invalid_id`, `invalid_message`, `malformed_json`, `invalid_idempotency_key`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_query`, `invalid_body`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody, headers(("Retry-After" = u64, description = "With `rate_limited`: whole seconds to wait"))),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
        (status = 507, description = "`storage_full`", body = ErrorBody),
    )
)]
async fn broadcast(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<ChannelQuery>,
    write: WriteKey,
    JsonBody(body): JsonBody<MessageBody>,
) -> ApiResult<Response> {
    let message = body.into_message()?;
    let key = write.for_message(&message);
    let applied = s
        .broker
        .broadcast_once(&channel_id(&q.channel_id)?, &message, key.as_ref())
        .await?;
    Ok(idempotency::answer(&applied, Json(Null)))
}

/// A listener's stream (SSE).
///
/// Starts a stopped listener for a caller who may change its state.
#[utoipa::path(
    get,
    path = "/stream/{channel}/{listener}",
    tag = "eric-api",
    operation_id = "eric_api_stream",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id"),
    ),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_id`, `invalid_path`, `invalid_last_event_id`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
        (status = 409, description = "`listener_stopped`: a caller who may not start it", body = ErrorBody),
        (status = 429, description = "`rate_limited`, `too_many_streams`", body = ErrorBody, headers(("Retry-After" = u64, description = "With `rate_limited`: whole seconds to wait"))),
    )
)]
async fn stream(
    State(s): State<AppState>,
    PathParams((channel, listener)): PathParams<(String, String)>,
    headers: HeaderMap,
    request: StreamRequest,
) -> Result<Response, ApiError> {
    let (channel, listener) = (channel_id(&channel)?, listener_id(&listener)?);
    let resume = last_event_id(&headers, None)?;
    sse::listener_events(&s, (&channel, &listener), resume, request).await
}

/// The head `GET` would answer; starts nothing.
#[utoipa::path(
    head,
    path = "/stream/{channel}/{listener}",
    tag = "eric-api",
    operation_id = "eric_api_head_stream",
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
async fn head_stream(
    State(s): State<AppState>,
    PathParams((channel, listener)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let (channel, listener) = (channel_id(&channel)?, listener_id(&listener)?);
    sse::head(&s, &channel, Some(&listener)).await
}

/// Removes a listener.
#[utoipa::path(
    delete,
    path = "/listener/{channel}/{listener}",
    tag = "eric-api",
    operation_id = "eric_api_remove_listener",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
    ),
    responses(
        (status = 200, description = "Removed", body = Null),
        (status = 400, description = "`invalid_id`, `invalid_path`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
    )
)]
async fn remove_listener(
    State(s): State<AppState>,
    PathParams((channel, listener)): PathParams<(String, String)>,
) -> ApiResult<Json<Null>> {
    let (channel, listener) = (channel_id(&channel)?, listener_id(&listener)?);
    s.broker.remove_listener(&channel, &listener).await?;
    Ok(Json(Null))
}

/// Deletes a channel.
#[utoipa::path(
    delete,
    path = "/channel/{channel}",
    tag = "eric-api",
    operation_id = "eric_api_remove_channel",
    params(("channel" = ChannelId, Path, description = "The channel's id")),
    responses(
        (status = 200, description = "Deleted", body = Null),
        (status = 400, description = "`invalid_id`, `invalid_path`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
    )
)]
async fn remove_channel(
    State(s): State<AppState>,
    PathParams(channel): PathParams<String>,
) -> ApiResult<Json<Null>> {
    s.broker.delete_channel(&channel_id(&channel)?).await?;
    Ok(Json(Null))
}
