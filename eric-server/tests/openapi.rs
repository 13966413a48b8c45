//! The OpenAPI document (`GET /v1/openapi.json`) against the server it
//! describes: it is OpenAPI 3.1 whose references all resolve; it lists
//! every route the router holds, with the methods it takes, and no other;
//! and every answer a real server gives to the requests below is
//! documented for its operation, its JSON body valid under the documented
//! schema (draft 2020-12, as OpenAPI 3.1's schemas are).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};

use axum::Router;
use axum::http::StatusCode;
use eric_server::config::HttpConfig;
use eric_server::http::Token;
use eric_server::test_support::{TestServer, config_on};
use serde_json::{Value, json};

/// The document, as the router serves it.
async fn document(app: &Router) -> Value {
    let response = common::send(app, "GET", "/v1/openapi.json", None, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert_eq!(content_type, "application/json");
    let (_, value) = common::call(app, "GET", "/v1/openapi.json", None).await;
    value
}

const METHODS: [&str; 6] = ["get", "put", "post", "delete", "head", "patch"];

/// Every operation of the document: (method, template, operation).
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut all = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            assert!(METHODS.contains(&method.as_str()), "{method} {template}");
            all.push((method.to_uppercase(), template.clone(), operation));
        }
    }
    all
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => out.push(target),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_whose_references_resolve() {
    let doc = document(&common::app()).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "eric");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearer"]["scheme"], "bearer");

    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        let pointer = target
            .strip_prefix('#')
            .expect("a reference inside the document");
        assert!(
            doc.pointer(pointer).is_some(),
            "{target} resolves to nothing"
        );
    }

    // The schemas bite: through their references, on the constraints of
    // eric's ids.
    let schema = |name: &str| {
        let mut schema = json!({"$ref": format!("#/components/schemas/{name}")});
        schema["components"] = doc["components"].clone();
        jsonschema::draft202012::new(&schema).unwrap()
    };
    let error = schema("Error");
    assert!(error.is_valid(&json!({"error": {"code": "x", "message": "y"}})));
    assert!(!error.is_valid(&json!({"error": {"code": "x"}})));
    let listener = schema("ListenerInfo");
    assert!(listener.is_valid(&json!({"id": "l", "running": true, "queued": 0})));
    assert!(!listener.is_valid(&json!({"id": "a b", "running": true, "queued": 0})));
    let message = schema("Message");
    assert!(message.is_valid(&json!({"type": "t", "topic": "a.b", "other": 1})));
    assert!(!message.is_valid(&json!({"type": "a\nb"})));
    assert!(!message.is_valid(&json!({"payload": 1})));

    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut ids = BTreeSet::new();
    for (method, template, operation) in operations(&doc) {
        let at = format!("{method} {template}");
        let id = operation["operationId"].as_str().unwrap();
        assert!(ids.insert(id.to_owned()), "{at}: operationId {id} twice");
        for tag in operation["tags"].as_array().unwrap() {
            assert!(tags.contains(tag.as_str().unwrap()), "{at}: tag {tag}");
        }
        assert!(operation["security"].is_array(), "{at}: no security");
        // The path parameters are exactly the template's.
        let in_template: BTreeSet<&str> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect();
        let declared: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter(|p| p["in"] == "path")
                    .inspect(|p| assert_eq!(p["required"], true, "{at}: {p}"))
                    .map(|p| p["name"].as_str().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(declared, in_template, "{at}: path parameters");
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{at}: no success documented"
        );
        for (status, response) in responses {
            assert!(response["description"].is_string(), "{at} {status}");
        }
    }
}

/// Every route template the router holds, read from its `Debug` form
/// (axum lists a router's paths there and nowhere else).
fn router_templates(app: &Router) -> BTreeSet<String> {
    let text = format!("{app:?}");
    let mut templates = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("): \"/") {
        let after = &rest[at + 4..];
        let end = after.find('"').unwrap();
        let template = &after[..end];
        if !template.contains("__private__") {
            templates.insert(template.to_owned());
        }
        rest = &after[end..];
    }
    templates
}

fn path_of(template: &str) -> String {
    template
        .replace("{channel}", "c")
        .replace("{listener}", "l")
}

/// The router's routes, each with the methods it takes, are the
/// document's operations, both ways. A method is taken unless the router
/// answers 405; `HEAD`, which axum answers on every `GET` route, is
/// documented where it is a route of its own: on the routes whose `GET`
/// opens a stream. The web console's routes are left out.
#[tokio::test]
async fn the_document_has_every_route_and_method_and_no_other() {
    let doc = document(&common::app()).await;
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, template, _)| (method, template))
        .collect();

    // Eric-api's routes are on (authentication off), as in the document.
    let streams = common::app();
    common::channel_c_with_listener_l(&streams, &[]).await;
    let probe = common::app();
    let templates = router_templates(&probe);
    assert!(templates.contains("/v1/openapi.json"), "{templates:?}");
    let mut routed = BTreeSet::new();
    // The web console's page and files are not the API: docs/OPERATIONS.md
    // describes them, the document does not.
    for template in templates
        .iter()
        .filter(|t| *t != "/ui" && !t.starts_with("/ui/"))
    {
        let path = path_of(template);
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
            let (status, body) = common::call(&probe, method, &path, None).await;
            if status == StatusCode::METHOD_NOT_ALLOWED {
                assert_eq!(common::code(&body), "method_not_allowed");
            } else {
                routed.insert((method.to_owned(), template.clone()));
            }
        }
        let (_, headers, _) = common::exchange(&streams, "GET", &path, None, &[]).await;
        if headers.get("content-type").map(|v| v.as_bytes()) == Some(b"text/event-stream") {
            routed.insert(("HEAD".to_owned(), template.clone()));
        }
    }
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(missing.is_empty(), "routed, not documented: {missing:?}");
    assert!(extra.is_empty(), "documented, not routed: {extra:?}");
}

const ADMIN: &str = "admin-token-0123456789";
const READER: &str = "reader-token-0123456789";
const MAX_BODY: usize = 16 * 1024;

/// A real server and the document it serves, and what was checked.
struct Checker {
    http: reqwest::Client,
    base: String,
    doc: Value,
    /// (method, template) → statuses seen.
    seen: BTreeMap<(String, String), BTreeSet<u16>>,
}

/// One request to check.
struct Call<'a> {
    method: &'a str,
    template: &'a str,
    path: String,
    body: Option<String>,
    json: bool,
    token: Option<&'a str>,
    headers: Vec<(&'a str, String)>,
}

fn call<'a>(method: &'a str, template: &'a str) -> Call<'a> {
    Call {
        method,
        template,
        path: path_of(template),
        body: None,
        json: true,
        token: Some(ADMIN),
        headers: Vec::new(),
    }
}

impl<'a> Call<'a> {
    fn path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }
    fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }
    fn not_json(mut self) -> Self {
        self.json = false;
        self
    }
    fn token(mut self, token: Option<&'a str>) -> Self {
        self.token = token;
        self
    }
    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

impl Checker {
    /// A server with tokens, eric-api's routes kept, small limits, and
    /// what `tune` changes.
    async fn start(tune: impl FnOnce(&mut HttpConfig)) -> (TestServer, Self) {
        let mut config = config_on(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        config.http = HttpConfig {
            admin_tokens: vec![Token::new(ADMIN)],
            subscribe_tokens: vec![Token::new(READER)],
            compat_routes_with_auth: true,
            max_body_bytes: MAX_BODY,
            max_streams_per_listener: 1,
            ..config.http
        };
        tune(&mut config.http);
        let server = TestServer::start(config).await;
        let http = eric_client::http_client_builder(None, false)
            .build()
            .unwrap();
        let base = server.url();
        // Open to everyone, as the document says.
        let doc = http
            .get(format!("{base}/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let checker = Self {
            http,
            base,
            doc,
            seen: BTreeMap::new(),
        };
        (server, checker)
    }

    /// Sends `call`, expects `want`, and checks the answer against the
    /// document. Returns the body (JSON, `null` when none) and, for a
    /// stream, the open response (dropping it closes the stream).
    async fn check(&mut self, call: Call<'_>, want: u16) -> (Value, Option<reqwest::Response>) {
        let at = format!("{} {} ({})", call.method, call.template, call.path);
        let method = reqwest::Method::from_bytes(call.method.as_bytes()).unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{}", self.base, call.path));
        if let Some(token) = call.token {
            request = request.bearer_auth(token);
        }
        if call.json && call.body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = call.body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let operation = &self.doc["paths"][call.template][call.method.to_lowercase()];
        assert!(operation.is_object(), "{at}: not in the document");
        let documented = &operation["responses"][status.to_string()];
        assert!(
            documented.is_object(),
            "{at}: {status} not documented (got {content_type:?})"
        );
        // eric's own answer headers are documented where they come.
        for name in ["idempotent-replayed", "retry-after", "www-authenticate"] {
            if response.headers().contains_key(name) {
                let listed = documented["headers"]
                    .as_object()
                    .is_some_and(|h| h.keys().any(|k| k.eq_ignore_ascii_case(name)));
                assert!(listed, "{at}: {status} sends {name}, not documented");
            }
        }
        self.seen
            .entry((call.method.to_owned(), call.template.to_owned()))
            .or_default()
            .insert(status);
        if call.method == "HEAD" {
            // A head only: its status is what is checked.
            assert_eq!(status, want, "{at}");
            return (Value::Null, None);
        }
        let content = documented["content"].as_object();
        if content_type.as_deref() == Some("text/event-stream") {
            assert!(
                content.is_some_and(|c| c.contains_key("text/event-stream")),
                "{at}: {status} is a stream, documented as {documented}"
            );
            assert_eq!(status, want, "{at}");
            return (Value::Null, Some(response));
        }
        let bytes = response.bytes().await.unwrap();
        assert_eq!(status, want, "{at}: {}", String::from_utf8_lossy(&bytes));
        if bytes.is_empty() {
            assert!(
                content.is_none(),
                "{at}: {status} has no body, documented as {documented}"
            );
            return (Value::Null, None);
        }
        let content_type = content_type.unwrap_or_default();
        let content = content.unwrap_or_else(|| panic!("{at}: {status} documented without a body"));
        let media = content
            .get(&content_type)
            .unwrap_or_else(|| panic!("{at}: {status} as {content_type}, documented {content:?}"));
        if content_type != "application/json" {
            return (Value::Null, None);
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        let mut schema = media["schema"].clone();
        // `#/components/...` resolves against the schema's root: the
        // document's components go beside it.
        schema["components"] = self.doc["components"].clone();
        let validator = jsonschema::draft202012::new(&schema)
            .unwrap_or_else(|e| panic!("{at}: {status}'s schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{at}: {status} {body} against {}: {errors:?}",
            media["schema"]
        );
        (body, None)
    }
}

const CHANNEL: &str = "/v1/channels/{channel}";
const LISTENERS: &str = "/v1/channels/{channel}/listeners";
const LISTENER: &str = "/v1/channels/{channel}/listeners/{listener}";
const SUBSCRIPTIONS: &str = "/v1/channels/{channel}/listeners/{listener}/subscriptions";
const BROADCAST: &str = "/v1/channels/{channel}/messages";
const DISPATCH: &str = "/v1/channels/{channel}/listeners/{listener}/messages";
const NEXT: &str = "/v1/channels/{channel}/listeners/{listener}/next";
const EVENTS: &str = "/v1/channels/{channel}/listeners/{listener}/events";
const WATCH: &str = "/v1/channels/{channel}/events";

#[tokio::test]
async fn every_answer_provoked_is_documented_and_fits_its_schema() {
    let (server, mut c) = Checker::start(|_| {}).await;
    operations_and_channels(&mut c).await;
    listeners_and_subscriptions(&mut c).await;
    messages(&mut c).await;
    streams(&mut c).await;
    access(&mut c).await;
    eric_api(&mut c).await;
    removals(&mut c).await;

    // Every operation was called, and answered its success at least once.
    for (method, template, operation) in operations(&c.doc) {
        let seen = c.seen.get(&(method.clone(), template.clone()));
        let success: Vec<&String> = operation["responses"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|s| s.starts_with('2'))
            .collect();
        assert!(
            seen.is_some_and(|s| s.iter().any(|s| success.contains(&&s.to_string()))),
            "{method} {template}: no success checked (saw {seen:?})"
        );
    }
    server.stop().await;
}

async fn operations_and_channels(c: &mut Checker) {
    for template in ["/healthz", "/readyz", "/metrics", "/v1/openapi.json"] {
        c.check(call("GET", template), 200).await;
    }
    c.check(call("GET", "/readyz").path("/readyz?wait=ready"), 200)
        .await;
    let create = "/v1/channels";
    c.check(call("POST", create).body(r#"{"id": "c"}"#), 201)
        .await;
    c.check(call("POST", create).body(r#"{"id": "c"}"#), 409)
        .await;
    c.check(call("POST", create), 201).await;
    let small = r#"{"id": "q", "settings": {"queue_capacity": 1}}"#;
    c.check(call("POST", create).body(small), 201).await;
    c.check(call("POST", create).body(r#"{"id": "a b"}"#), 400)
        .await;
    c.check(call("POST", create).body("{"), 400).await;
    let zero = r#"{"settings": {"queue_capacity": 0}}"#;
    c.check(call("POST", create).body(zero), 400).await;
    c.check(call("POST", create).body(r#"{"name": "c"}"#), 422)
        .await;
    // Optional bodies may be left out, but are not `null`.
    c.check(call("POST", create).body("null"), 422).await;
    let huge = format!(r#"{{"id": "{}"}}"#, "x".repeat(MAX_BODY));
    c.check(call("POST", create).body(huge), 413).await;
    c.check(call("GET", create), 200).await;
    c.check(call("GET", CHANNEL), 200).await;
    c.check(call("GET", CHANNEL).path("/v1/channels/none"), 404)
        .await;
    c.check(call("GET", CHANNEL).path("/v1/channels/%FF"), 400)
        .await;
    let long = format!("/v1/channels/{}", "x".repeat(9000));
    c.check(call("GET", CHANNEL).path(long), 414).await;
}

async fn listeners_and_subscriptions(c: &mut Checker) {
    c.check(call("POST", LISTENERS).body(r#"{"id": "l"}"#), 201)
        .await;
    let with = r#"{"id": "l2", "subscriptions": [{"type": "t", "topic": "a.b"}]}"#;
    c.check(call("POST", LISTENERS).body(with), 201).await;
    c.check(call("POST", LISTENERS).body(r#"{"id": "l3"}"#), 201)
        .await;
    c.check(
        call("POST", LISTENERS).path("/v1/channels/q/listeners"),
        201,
    )
    .await;
    let bad_topic = r#"{"subscriptions": [{"type": "t", "topic": ""}]}"#;
    c.check(call("POST", LISTENERS).body(bad_topic), 400).await;
    c.check(call("POST", LISTENERS).body(r#"{"ids": "l"}"#), 422)
        .await;
    let none = "/v1/channels/none/listeners";
    c.check(call("POST", LISTENERS).path(none), 404).await;
    c.check(call("GET", LISTENERS), 200).await;
    c.check(call("GET", LISTENERS).path(none), 404).await;
    c.check(call("GET", LISTENER), 200).await;
    c.check(
        call("GET", LISTENER).path("/v1/channels/c/listeners/none"),
        404,
    )
    .await;

    let (body, _) = c.check(call("GET", SUBSCRIPTIONS), 200).await;
    assert_eq!(body, json!({"subscriptions": []}));
    let set = r#"{"subscriptions": [{"type": "t"}, {"type": "u", "topic": "x.y"}]}"#;
    c.check(call("PUT", SUBSCRIPTIONS).body(set), 200).await;
    let edit = r#"{"add": [{"type": "v"}], "remove": [{"type": "t"}]}"#;
    let (body, _) = c.check(call("PATCH", SUBSCRIPTIONS).body(edit), 200).await;
    assert_eq!(body["subscriptions"].as_array().unwrap().len(), 2);
    let bad = r#"{"add": [{"type": "v", "topic": ""}]}"#;
    c.check(call("PATCH", SUBSCRIPTIONS).body(bad), 400).await;
    c.check(call("PUT", SUBSCRIPTIONS).body(set).not_json(), 415)
        .await;
    c.check(call("PUT", SUBSCRIPTIONS).body(r#"{"add": []}"#), 422)
        .await;
    let gone = "/v1/channels/c/listeners/none/subscriptions";
    c.check(call("PUT", SUBSCRIPTIONS).path(gone).body(set), 404)
        .await;
    c.check(call("GET", SUBSCRIPTIONS).path(gone), 404).await;
    // Every broadcast again.
    let all = r#"{"subscriptions": []}"#;
    c.check(call("PUT", SUBSCRIPTIONS).body(all), 200).await;
}

async fn messages(c: &mut Checker) {
    let message = r#"{"type": "t", "payload": {"a": [1, 2]}, "topic": "a.b"}"#;
    let (body, _) = c.check(call("POST", BROADCAST).body(message), 202).await;
    assert_eq!(body["delivered"], 3, "{body}");
    let keyed = || {
        call("POST", BROADCAST)
            .body(message)
            .header("idempotency-key", "k1")
    };
    c.check(keyed(), 202).await;
    c.check(keyed(), 202).await;
    let bad_key = call("POST", BROADCAST)
        .body(message)
        .header("idempotency-key", "a b");
    c.check(bad_key, 400).await;
    c.check(call("POST", BROADCAST).body(r#"{"type": "eric-end"}"#), 400)
        .await;
    c.check(
        call("POST", BROADCAST).body(r#"{"type": "t", "topic": ""}"#),
        400,
    )
    .await;
    c.check(call("POST", BROADCAST).body(message).not_json(), 415)
        .await;
    c.check(call("POST", BROADCAST).body(r#"{"payload": 1}"#), 422)
        .await;
    let none = "/v1/channels/none/messages";
    c.check(call("POST", BROADCAST).path(none).body(message), 404)
        .await;

    let (body, _) = c.check(call("POST", DISPATCH).body(message), 202).await;
    assert!(body["seq"].is_u64(), "{body}");
    let gone = "/v1/channels/c/listeners/none/messages";
    c.check(call("POST", DISPATCH).path(gone).body(message), 404)
        .await;
    // Channel q holds one message per queue.
    let q = c
        .check(call("GET", LISTENERS).path("/v1/channels/q/listeners"), 200)
        .await
        .0;
    let ql = q[0]["id"].as_str().unwrap().to_owned();
    let full = format!("/v1/channels/q/listeners/{ql}/messages");
    c.check(call("POST", DISPATCH).path(full.clone()).body(message), 202)
        .await;
    c.check(call("POST", DISPATCH).path(full).body(message), 429)
        .await;

    c.check(call("POST", NEXT), 409).await;
    let start = "/v1/channels/{channel}/listeners/{listener}/start";
    let stop = "/v1/channels/{channel}/listeners/{listener}/stop";
    c.check(call("POST", start), 204).await;
    c.check(
        call("POST", start).path("/v1/channels/c/listeners/none/start"),
        404,
    )
    .await;
    let (delivery, _) = c.check(call("POST", NEXT), 200).await;
    assert_eq!(delivery["message"]["topic"], "a.b", "{delivery}");
    // Then the keyed broadcast (once) and the dispatch.
    c.check(call("POST", NEXT), 200).await;
    c.check(call("POST", NEXT), 200).await;
    c.check(call("POST", NEXT), 204).await;
    c.check(
        call("POST", NEXT).path("/v1/channels/c/listeners/none/next"),
        404,
    )
    .await;
    c.check(call("POST", stop), 204).await;
    c.check(
        call("POST", stop).path("/v1/channels/none/listeners/l/stop"),
        404,
    )
    .await;
}

async fn streams(c: &mut Checker) {
    let (_, open) = c.check(call("GET", EVENTS), 200).await;
    // One stream per listener on this server.
    c.check(call("GET", EVENTS), 429).await;
    drop(open);
    let l2 = "/v1/channels/c/listeners/l2/events";
    let resume = call("GET", EVENTS).path(format!("{l2}?last_event_id=+1"));
    c.check(resume, 400).await;
    let resume = call("GET", EVENTS).path(l2).header("last-event-id", "01");
    c.check(resume, 400).await;
    c.check(
        call("GET", EVENTS).path("/v1/channels/c/listeners/none/events"),
        404,
    )
    .await;
    // A subscribe token may not start a stopped listener.
    let l3 = "/v1/channels/c/listeners/l3/events";
    c.check(call("GET", EVENTS).path(l3).token(Some(READER)), 409)
        .await;
    c.check(call("HEAD", EVENTS).path(l3), 200).await;
    c.check(
        call("HEAD", EVENTS).path("/v1/channels/c/listeners/none/events"),
        404,
    )
    .await;

    let (_, watch) = c
        .check(
            call("GET", WATCH).path("/v1/channels/c/events?filter=t:a"),
            200,
        )
        .await;
    drop(watch);
    c.check(
        call("GET", WATCH).path("/v1/channels/c/events?filter=t:"),
        400,
    )
    .await;
    c.check(call("GET", WATCH).path("/v1/channels/none/events"), 404)
        .await;
    c.check(call("HEAD", WATCH), 200).await;
    c.check(call("HEAD", WATCH).path("/v1/channels/none/events"), 404)
        .await;
}

async fn access(c: &mut Checker) {
    c.check(call("GET", "/v1/channels").token(None), 401).await;
    c.check(
        call("GET", "/v1/channels").token(Some("not-a-token-0123456789")),
        401,
    )
    .await;
    c.check(call("GET", "/v1/channels").token(Some(READER)), 403)
        .await;
    c.check(call("POST", BROADCAST).body("{}").token(Some(READER)), 403)
        .await;
    c.check(call("GET", "/metrics").token(None), 401).await;
    // Stream routes take a query token; two different ones are refused.
    let query = format!("/v1/channels/c/events?access_token={READER}");
    let (_, watch) = c
        .check(call("GET", WATCH).path(query.clone()).token(None), 200)
        .await;
    drop(watch);
    c.check(call("GET", WATCH).path(query), 400).await;
    // Open to everyone.
    for template in ["/healthz", "/readyz", "/v1/openapi.json"] {
        c.check(call("GET", template).token(None), 200).await;
    }
}

async fn eric_api(c: &mut Checker) {
    c.check(call("GET", "/"), 200).await;
    c.check(call("GET", "/channels"), 200).await;
    let create = "/create";
    c.check(call("PUT", create).path("/create?channel_id=e"), 200)
        .await;
    c.check(call("PUT", create).path("/create?channel_id=e"), 409)
        .await;
    c.check(call("PUT", create).path("/create?channel_id=a%20b"), 400)
        .await;
    c.check(call("PUT", create), 200).await;
    let (body, _) = c
        .check(
            call("POST", "/subscribe").path("/subscribe?channel_id=e"),
            200,
        )
        .await;
    let l = body["listener_id"].as_str().unwrap().to_owned();
    c.check(call("POST", "/subscribe"), 422).await;
    c.check(
        call("POST", "/subscribe").path("/subscribe?channel_id=none"),
        404,
    )
    .await;
    let message = r#"{"type": "t", "payload": null}"#;
    let dispatch = format!("/dispatch?channel_id=e&listener_id={l}");
    c.check(
        call("POST", "/dispatch")
            .path(dispatch.clone())
            .body(message),
        200,
    )
    .await;
    c.check(
        call("POST", "/dispatch")
            .path(dispatch.clone())
            .body(r#"{"type": "t"}"#),
        422,
    )
    .await;
    c.check(
        call("POST", "/dispatch")
            .path(dispatch)
            .body(message)
            .not_json(),
        415,
    )
    .await;
    let none = "/dispatch?channel_id=e&listener_id=none";
    c.check(call("POST", "/dispatch").path(none).body(message), 404)
        .await;
    let broadcast = "/broadcast?channel_id=e";
    c.check(
        call("POST", "/broadcast").path(broadcast).body(message),
        200,
    )
    .await;
    c.check(
        call("POST", "/broadcast")
            .path(broadcast)
            .body("[")
            .not_json(),
        415,
    )
    .await;
    c.check(call("POST", "/broadcast").path(broadcast).body("["), 400)
        .await;
    let stream = "/stream/{channel}/{listener}";
    let (_, open) = c
        .check(call("GET", stream).path(format!("/stream/e/{l}")), 200)
        .await;
    drop(open);
    c.check(call("GET", stream).path("/stream/e/none"), 404)
        .await;
    c.check(call("HEAD", stream).path(format!("/stream/e/{l}")), 200)
        .await;
    c.check(call("HEAD", stream).path("/stream/e/none"), 404)
        .await;
    let listener = "/listener/{channel}/{listener}";
    c.check(
        call("DELETE", listener).path(format!("/listener/e/{l}")),
        200,
    )
    .await;
    c.check(
        call("DELETE", listener).path(format!("/listener/e/{l}")),
        404,
    )
    .await;
    c.check(call("DELETE", "/channel/{channel}").path("/channel/e"), 200)
        .await;
    c.check(call("DELETE", "/channel/{channel}").path("/channel/e"), 404)
        .await;
}

async fn removals(c: &mut Checker) {
    let l2 = "/v1/channels/c/listeners/l2";
    c.check(call("DELETE", LISTENER).path(l2), 204).await;
    c.check(call("DELETE", LISTENER).path(l2), 404).await;
    c.check(call("DELETE", CHANNEL).path("/v1/channels/q"), 204)
        .await;
    c.check(call("DELETE", CHANNEL).path("/v1/channels/q"), 404)
        .await;
    c.check(call("DELETE", CHANNEL).path("/v1/channels/%FF"), 400)
        .await;
}

/// Rate limits, on a server of their own: one publish and one stream
/// opening per second for each caller.
#[tokio::test]
async fn rate_limited_answers_are_documented_with_their_header() {
    let (server, mut c) = Checker::start(|http| {
        (http.publish_per_second, http.publish_burst) = (1, 1);
        (http.streams_per_second, http.streams_burst) = (1, 1);
    })
    .await;
    c.check(call("POST", "/v1/channels").body(r#"{"id": "c"}"#), 201)
        .await;
    c.check(call("POST", LISTENERS).body(r#"{"id": "l"}"#), 201)
        .await;
    let message = r#"{"type": "t", "payload": 1}"#;
    c.check(call("POST", BROADCAST).body(message), 202).await;
    c.check(call("POST", BROADCAST).body(message), 429).await;
    c.check(call("POST", DISPATCH).body(message), 429).await;
    let broadcast = call("POST", "/broadcast").path("/broadcast?channel_id=c");
    c.check(broadcast.body(message), 429).await;
    let (_, open) = c.check(call("GET", WATCH), 200).await;
    c.check(call("GET", EVENTS), 429).await;
    c.check(
        call("GET", "/stream/{channel}/{listener}").path("/stream/c/l"),
        429,
    )
    .await;
    drop(open);
    server.stop().await;
}
