//! A listener's subscriptions over `/v1`: the JSON shape they travel in,
//! the `filter` query parameters of the channel's stream, and the routes
//! that read and change them (documented in `docs/HTTP.md`).
//!
//! Subscriptions are read as plain strings and validated here rather than
//! by serde, so a bad type is 400 `invalid_id` and a bad filter 400
//! `invalid_topic`, the codes a message's type and topic get, instead of a
//! shape error (422 `invalid_body`).

use axum::Json;
use axum::extract::State;
use axum::routing::{MethodRouter, get};
use eric_core::{
    ChannelId, ListenerId, MessageType, Subscription, SubscriptionChange, Subscriptions,
    TopicFilter, settings::MAX_SUBSCRIPTIONS_LIMIT,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{JsonBody, PathParams, listener_path};
use super::state::AppState;

/// One subscription as a request carries it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SubscriptionBody {
    #[serde(rename = "type")]
    msg_type: String,
    topic: Option<String>,
}

/// `PUT .../subscriptions`: the whole set (`[]`: every broadcast again).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Replace {
    #[schema(value_type = Vec<Subscription>)]
    subscriptions: Vec<SubscriptionBody>,
}

/// `PATCH .../subscriptions`: removals, then additions, in one step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Edit {
    /// Added (present ones are no error).
    #[serde(default)]
    #[schema(value_type = Vec<Subscription>)]
    add: Vec<SubscriptionBody>,
    /// Removed (absent ones are no error).
    #[serde(default)]
    #[schema(value_type = Vec<Subscription>)]
    remove: Vec<SubscriptionBody>,
}

/// The set a listener holds, in the order first added (empty: every
/// broadcast).
#[derive(Debug, Serialize, ToSchema)]
struct SubscriptionSet {
    subscriptions: Subscriptions,
}

fn validated(body: SubscriptionBody) -> ApiResult<Subscription> {
    let msg_type = MessageType::new(body.msg_type).map_err(eric_core::Error::from)?;
    let filter = body
        .topic
        .map(TopicFilter::new)
        .transpose()
        .map_err(eric_core::Error::from)?;
    Ok(Subscription::new(msg_type, filter))
}

/// Validates a request's list. Longer than any channel may allow is refused
/// before any work: the channel's own bound is checked where the set is
/// applied.
pub(super) fn validated_list(list: Vec<SubscriptionBody>) -> ApiResult<Vec<Subscription>> {
    if list.len() > MAX_SUBSCRIPTIONS_LIMIT {
        return Err(too_many(list.len()));
    }
    list.into_iter().map(validated).collect()
}

fn too_many(count: usize) -> ApiError {
    ApiError::bad_request(
        "too_many_subscriptions",
        format!("{count} subscriptions; no channel allows more than {MAX_SUBSCRIPTIONS_LIMIT}"),
    )
}

/// The subscriptions in a query's `filter` parameters, each `TYPE` or
/// `TYPE:TOPIC` (split at the first `:`, so a type containing `:` cannot be
/// named here; a listener's JSON body has no such limit). Other parameters
/// are left to whoever reads them (`access_token`).
pub(super) fn from_query(query: Option<&str>) -> ApiResult<Subscriptions> {
    let mut list = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if key != "filter" {
            continue;
        }
        let (msg_type, topic) = match value.split_once(':') {
            Some((msg_type, topic)) => (msg_type.to_owned(), Some(topic.to_owned())),
            None => (value.into_owned(), None),
        };
        list.push(SubscriptionBody { msg_type, topic });
    }
    Ok(validated_list(list)?.into_iter().collect())
}

fn answer(set: Subscriptions) -> Json<SubscriptionSet> {
    Json(SubscriptionSet { subscriptions: set })
}

type Ids = PathParams<(String, String)>;

/// `/v1/channels/{c}/listeners/{l}/subscriptions`: read, replace, edit.
pub(super) fn route() -> MethodRouter<AppState> {
    get(read).put(replace).patch(edit)
}

/// A listener's subscriptions.
#[utoipa::path(
    get,
    path = "/v1/channels/{channel}/listeners/{listener}/subscriptions",
    tag = "subscriptions",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
    ),
    responses(
        (status = 200, description = "The set held", body = SubscriptionSet),
        (status = 400, description = "`invalid_id`, `invalid_path`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
    )
)]
async fn read(
    State(s): State<AppState>,
    PathParams(path): Ids,
) -> ApiResult<Json<SubscriptionSet>> {
    let (channel, listener) = listener_path(path)?;
    Ok(answer(s.broker.subscriptions(&channel, &listener).await?))
}

/// Replaces a listener's subscriptions, atomically.
#[utoipa::path(
    put,
    path = "/v1/channels/{channel}/listeners/{listener}/subscriptions",
    tag = "subscriptions",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
    ),
    request_body(content = Replace, content_type = "application/json"),
    responses(
        (status = 200, description = "The set now held", body = SubscriptionSet),
        (status = 400, description = "`invalid_id`, `invalid_topic`, `too_many_subscriptions`, `malformed_json`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not declared JSON", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
    )
)]
async fn replace(
    State(s): State<AppState>,
    PathParams(path): Ids,
    JsonBody(body): JsonBody<Replace>,
) -> ApiResult<Json<SubscriptionSet>> {
    let (channel, listener) = listener_path(path)?;
    let set = validated_list(body.subscriptions)?.into_iter().collect();
    let change = SubscriptionChange::Replace(set);
    let now = s
        .broker
        .change_subscriptions(&channel, &listener, change)
        .await?;
    Ok(answer(now))
}

/// Edits a listener's subscriptions: removals, then additions, atomically.
#[utoipa::path(
    patch,
    path = "/v1/channels/{channel}/listeners/{listener}/subscriptions",
    tag = "subscriptions",
    params(
        ("channel" = ChannelId, Path, description = "The channel's id"),
        ("listener" = ListenerId, Path, description = "The listener's id"),
    ),
    request_body(content = Edit, content_type = "application/json"),
    responses(
        (status = 200, description = "The set now held", body = SubscriptionSet),
        (status = 400, description = "`invalid_id`, `invalid_topic`, `too_many_subscriptions`, `malformed_json`", body = ErrorBody),
        (status = 404, description = "`channel_not_found`, `listener_not_found`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not declared JSON", body = ErrorBody),
        (status = 422, description = "`invalid_body`", body = ErrorBody),
        (status = 504, description = "`outcome_unknown`", body = ErrorBody),
    )
)]
async fn edit(
    State(s): State<AppState>,
    PathParams(path): Ids,
    JsonBody(body): JsonBody<Edit>,
) -> ApiResult<Json<SubscriptionSet>> {
    let (channel, listener) = listener_path(path)?;
    let count = body.add.len() + body.remove.len();
    if count > MAX_SUBSCRIPTIONS_LIMIT {
        return Err(too_many(count));
    }
    let change = SubscriptionChange::Edit {
        remove: validated_list(body.remove)?,
        add: validated_list(body.add)?,
    };
    let now = s
        .broker
        .change_subscriptions(&channel, &listener, change)
        .await?;
    Ok(answer(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_filters_split_at_the_first_colon_and_skip_other_keys() {
        let set = from_query(Some("filter=a&access_token=x&filter=b%3Ax.y%3Az&filter=a")).unwrap();
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"[{"type":"a"},{"type":"b","topic":"x.y:z"}]"#);
        assert!(from_query(None).unwrap().is_empty());
        assert!(from_query(Some("filter=")).is_err(), "an empty type");
        assert!(from_query(Some("filter=a:")).is_err(), "an empty filter");
        assert!(from_query(Some("filter=a:b%0Ac")).is_err(), "a line break");
    }
}
