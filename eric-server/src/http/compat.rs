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
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult};
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

#[derive(Debug, Deserialize)]
struct CreateQuery {
    channel_id: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ChannelQuery {
    channel_id: String,
}

#[derive(Debug, Deserialize)]
struct ListenerQuery {
    channel_id: String,
    listener_id: String,
}

/// eric-api's message body: both keys required.
#[derive(Debug, Deserialize)]
struct MessageBody {
    #[serde(rename = "type")]
    msg_type: MessageType,
    payload: Box<RawValue>,
}

impl MessageBody {
    fn into_message(self) -> Result<Message, ApiError> {
        Message::with_raw_payload(self.msg_type, self.payload).map_err(ApiError::from)
    }
}

async fn listing(
    State(s): State<AppState>,
) -> ApiResult<Json<IndexMap<ChannelId, Vec<ListenerId>>>> {
    Ok(Json(s.broker.listing().await?))
}

async fn channels(State(s): State<AppState>) -> ApiResult<Json<Vec<ChannelId>>> {
    Ok(Json(s.broker.channel_ids().await?))
}

async fn create(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<CreateQuery>,
) -> ApiResult<Json<Value>> {
    let id = q.channel_id.as_deref().map(channel_id).transpose()?;
    let channel = s.broker.create_channel(id, None).await?;
    Ok(Json(json!({"channel_id": channel})))
}

async fn subscribe(
    State(s): State<AppState>,
    QueryParams(q): QueryParams<ChannelQuery>,
) -> ApiResult<Json<Value>> {
    let listener = s
        .broker
        .subscribe(&channel_id(&q.channel_id)?, None, None)
        .await?;
    Ok(Json(json!({"listener_id": listener})))
}

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
    Ok(idempotency::answer(&applied, Json(Value::Null)))
}

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
    Ok(idempotency::answer(&applied, Json(Value::Null)))
}

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

async fn head_stream(
    State(s): State<AppState>,
    PathParams((channel, listener)): PathParams<(String, String)>,
) -> Result<Response, ApiError> {
    let (channel, listener) = (channel_id(&channel)?, listener_id(&listener)?);
    sse::head(&s, &channel, Some(&listener)).await
}

async fn remove_listener(
    State(s): State<AppState>,
    PathParams((channel, listener)): PathParams<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (channel, listener) = (channel_id(&channel)?, listener_id(&listener)?);
    s.broker.remove_listener(&channel, &listener).await?;
    Ok(Json(Value::Null))
}

async fn remove_channel(
    State(s): State<AppState>,
    PathParams(channel): PathParams<String>,
) -> ApiResult<Json<Value>> {
    s.broker.delete_channel(&channel_id(&channel)?).await?;
    Ok(Json(Value::Null))
}
