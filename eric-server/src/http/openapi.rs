//! The OpenAPI 3.1 document of the HTTP API, served at
//! `GET /v1/openapi.json`.
//!
//! Generated from the code, so it cannot drift from it: each handler
//! carries a `#[utoipa::path]` (method, template, parameters, body, the
//! statuses it answers), and the bodies' schemas are derived from the very
//! types the handlers take and send (`eric-core`'s with its `openapi`
//! feature). What the layers around the handlers add is filled in here,
//! from the same sources the layers use ([`Layers`]): who may call an
//! operation comes from the rights table (`auth::needs`), so the security
//! of each operation is the table's; and the answers the layers give (400
//! `conflicting_tokens`, 401 and 403 with authentication on, 413, 414,
//! 500, 503) are added where they apply.
//!
//! `tests/openapi.rs` holds the document to the router (every route and
//! method is in it, and nothing else) and to a running server: each
//! answer it provokes has a documented status, headers and body schema.

use std::sync::LazyLock;

use axum::http::{Method, header};
use axum::response::IntoResponse;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr, Required, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::auth;
use super::grant::Right;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "eric",
        description = "eric's HTTP API: the `/v1` resource API, its SSE streams, eric-api's routes \
                       and the operations endpoints (docs/HTTP.md). Authentication is off unless \
                       tokens or a JWT key are configured; then each operation needs the right its \
                       `security` and description name, and eric-api's routes answer 404 unless \
                       `http.compat_routes_with_auth` keeps them.",
        license(name = "MIT")
    ),
    paths(
        super::v1::list_channels,
        super::v1::create_channel,
        super::v1::channel_info,
        super::v1::delete_channel,
        super::v1::broadcast,
        super::v1::watch,
        super::v1::head_watch,
        super::v1::list_listeners,
        super::v1::add_listener,
        super::v1::listener_info,
        super::v1::remove_listener,
        super::v1::start,
        super::v1::stop,
        super::v1::dispatch,
        super::v1::next,
        super::v1::events,
        super::v1::head_events,
        super::subscriptions::read,
        super::subscriptions::replace,
        super::subscriptions::edit,
        document,
        super::compat::listing,
        super::compat::channels,
        super::compat::create,
        super::compat::subscribe,
        super::compat::dispatch,
        super::compat::broadcast,
        super::compat::stream,
        super::compat::head_stream,
        super::compat::remove_listener,
        super::compat::remove_channel,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
    ),
    // Named only by parameters, whose schemas utoipa does not collect.
    components(schemas(eric_core::ChannelId, eric_core::ListenerId, eric_core::IdempotencyKey)),
    modifiers(&Layers),
    tags(
        (name = "channels", description = "Channels"),
        (name = "listeners", description = "A channel's listeners"),
        (name = "subscriptions", description = "What broadcasts a listener receives"),
        (name = "messages", description = "Dispatch, broadcast, pull"),
        (name = "streams", description = "SSE streams"),
        (name = "eric-api", description = "eric-api 1.6's routes, for its clients"),
        (name = "operations", description = "Probes, metrics and this document"),
    )
)]
struct ApiDoc;

/// The document, serialised once, on its first request.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    // Strings, numbers and maps with string keys: serialising cannot fail.
    ApiDoc::openapi().to_json().unwrap_or_default()
});

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    responses((
        status = 200,
        description = "The OpenAPI 3.1 document of this API",
        content_type = "application/json",
        body = Object
    ))
)]
pub(super) async fn document() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

/// Fills in what the layers around the handlers do (see the module docs).
struct Layers;

impl Modify for Layers {
    fn modify(&self, doc: &mut Document) {
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT, or a static token")
                    .description(Some("`Authorization: Bearer <token>`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "access_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "access_token",
                "On the stream routes only, for browsers' `EventSource` (which cannot set headers); \
                 so is the cookie `http.auth_cookie` names",
            ))),
        );
        for (template, item) in doc.paths.paths.iter_mut() {
            for (method, operation) in [
                (Method::GET, &mut item.get),
                (Method::PUT, &mut item.put),
                (Method::POST, &mut item.post),
                (Method::DELETE, &mut item.delete),
                (Method::HEAD, &mut item.head),
                (Method::PATCH, &mut item.patch),
            ] {
                if let Some(operation) = operation {
                    complete(&method, template, operation);
                }
            }
        }
    }
}

/// One operation, completed with what the layers add.
fn complete(method: &Method, template: &str, operation: &mut Operation) {
    let (rule, _) = auth::needs(method, template);
    let secured = rule.right != Right::Open;
    operation.security = Some(if !secured {
        vec![SecurityRequirement::default()]
    } else if rule.ambient {
        vec![
            SecurityRequirement::new("bearer", Vec::<String>::new()),
            SecurityRequirement::new("access_token", Vec::<String>::new()),
        ]
    } else {
        vec![SecurityRequirement::new("bearer", Vec::<String>::new())]
    });
    let needs = match (secured, rule.ambient) {
        (false, _) => String::from("Open to everyone: no token needed."),
        (true, false) => format!("With authentication on, needs: {}.", rule.right.name()),
        (true, true) => format!(
            "With authentication on, needs: {} (the token may also come as `access_token` or \
             in the cookie `http.auth_cookie` names).",
            rule.right.name()
        ),
    };
    operation.description = Some(match operation.description.take() {
        Some(text) if !text.is_empty() => format!("{text}\n\n{needs}"),
        _ => needs,
    });
    if let Some(body) = &mut operation.request_body {
        absent_not_null(body);
    }
    let has_body = operation.request_body.is_some();
    let head = *method == Method::HEAD;
    let broker = !matches!(
        template,
        "/healthz" | "/readyz" | "/metrics" | "/v1/openapi.json"
    );
    let mut add = |status: &str, description: &str, header: Option<(&str, &str)>| {
        let responses = &mut operation.responses.responses;
        if responses.contains_key(status) {
            return;
        }
        let mut response = ResponseBuilder::new().description(description);
        if let Some((name, description)) = header {
            let header = HeaderBuilder::new().description(Some(description)).build();
            response = response.header(name, header);
        }
        if !head {
            response = response.content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Error")))
                    .build(),
            );
        }
        responses.insert(status.to_owned(), response.build().into());
    };
    if secured {
        add(
            "400",
            "`conflicting_tokens`: the request carries different tokens",
            None,
        );
        add(
            "401",
            "`unauthorized`: no token, or one that is unknown, expired or badly signed (authentication on)",
            Some(("WWW-Authenticate", "`Bearer`")),
        );
        add(
            "403",
            "`forbidden`: the token does not grant this (authentication on)",
            None,
        );
    }
    if has_body {
        add(
            "413",
            "`payload_too_large`: the body is over `http.max_body_bytes`",
            None,
        );
    }
    add(
        "414",
        "`uri_too_long`: the request target is over 8 KiB",
        None,
    );
    if broker {
        add(
            "500",
            "`internal`: a bug or a corrupt record (logged)",
            None,
        );
    }
    add(
        "503",
        "`timeout`: no response head within `http.request_timeout_secs`; `storage_unavailable`",
        None,
    );
}

/// An optional body (`OptionalJson`) may be left out, but is never `null`
/// (that is 422): utoipa writes `Option<T>` as "null or T", so the null
/// goes.
fn absent_not_null(body: &mut RequestBody) {
    if body.required == Some(Required::True) {
        return;
    }
    let is_null = |schema: &RefOr<Schema>| {
        matches!(schema, RefOr::T(Schema::Object(object))
            if object.schema_type == SchemaType::Type(Type::Null))
    };
    for content in body.content.values_mut() {
        let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema else {
            continue;
        };
        let mut rest = one_of.items.iter().filter(|s| !is_null(s));
        if let (Some(only), None) = (rest.next(), rest.next()) {
            content.schema = Some(only.clone());
        }
    }
}
