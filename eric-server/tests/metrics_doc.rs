//! `docs/OPERATIONS.md`'s table of metrics against what running servers
//! expose after some traffic, both ways: every documented metric is
//! exposed (on the engine it is documented for) with the documented type
//! and labels, and every exposed metric is documented.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use eric_redis::test_support::TestRedis;
use eric_server::test_support::{TestServer, config_on};

const DOC: &str = include_str!("../../docs/OPERATIONS.md");
const REDIS_ONLY: &str = "Redis engine only";
const DISK_ONLY: &str = "Disk engine only";
const LINUX_ONLY: &str = "Linux only";

/// A row of the table.
#[derive(Debug)]
struct Documented {
    kind: String,
    labels: BTreeSet<String>,
    redis_only: bool,
    disk_only: bool,
    linux_only: bool,
}

/// The engine a server under test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Memory,
    Redis,
    Disk,
}

/// The rows of the table under `## Metrics`, by metric name.
fn documented() -> BTreeMap<String, Documented> {
    let section = DOC
        .split("\n## Metrics\n")
        .nth(1)
        .expect("a Metrics section");
    let section = section.split("\n## ").next().unwrap();
    let mut rows = BTreeMap::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, name, kind, labels, meaning, _] = cells[..] else {
            panic!("a row of four cells: {line}");
        };
        let labels = labels
            .split(',')
            .map(|l| l.trim().trim_matches('`'))
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        let row = Documented {
            kind: kind.to_owned(),
            labels,
            redis_only: meaning.starts_with(REDIS_ONLY),
            disk_only: meaning.starts_with(DISK_ONLY),
            linux_only: meaning.starts_with(LINUX_ONLY),
        };
        let name = name.trim_matches('`').to_owned();
        assert!(rows.insert(name.clone(), row).is_none(), "{name} twice");
    }
    assert!(rows.len() > 10, "the table parses: {rows:?}");
    rows
}

/// An exposed metric family: its type and the label names its samples
/// carry (`le` aside).
#[derive(Debug, Default)]
struct Exposed {
    kind: String,
    labels: BTreeSet<String>,
}

/// The families of an exposition, by the name a user queries: a
/// counter's with `_total`, others' as their `# TYPE` line says.
fn exposed(text: &str) -> BTreeMap<String, Exposed> {
    let mut families: BTreeMap<String, Exposed> = BTreeMap::new();
    // (family name in `# TYPE`, name queried)
    let mut names: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').unwrap();
            let name = match kind {
                "counter" => format!("{family}_total"),
                _ => family.to_owned(),
            };
            names.push((family.to_owned(), name.clone()));
            let old = families.insert(
                name.clone(),
                Exposed {
                    kind: kind.to_owned(),
                    labels: BTreeSet::new(),
                },
            );
            assert!(old.is_none(), "{name} exposed twice");
        } else if !line.starts_with('#') && !line.is_empty() {
            let sample = line.split([' ', '{']).next().unwrap();
            let (_, name) = names
                .iter()
                .filter(|(family, _)| sample.starts_with(family.as_str()))
                .max_by_key(|(family, _)| family.len())
                .unwrap_or_else(|| panic!("a sample of no family: {line}"));
            if let Some((_, labels)) = line.split_once('{') {
                let labels = labels.split_once('}').unwrap().0;
                let keys = labels
                    .split(',')
                    .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_owned()))
                    .filter(|k| k != "le");
                families.get_mut(name).unwrap().labels.extend(keys);
            }
        }
    }
    families
}

/// Some traffic on every kind of route: writes, reads, a stream that is
/// opened and left, a 404. Then the exposition.
async fn scrape_after_traffic(addr: SocketAddr) -> String {
    let http = eric_client::http_client_builder(None, false)
        .build()
        .unwrap();
    let base = format!("http://{addr}");
    common::channel_c_with_listener_l_and_a_broadcast(&http, &base).await;
    let mut stream = http
        .get(format!("{base}/v1/channels/c/listeners/l/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(10), stream.chunk())
        .await
        .expect("the stream sends its message");
    assert!(first.unwrap().is_some());
    drop(stream);
    let missing = http.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text
}

/// Every family `text` exposes is documented with its type and labels;
/// every documented one meant for this engine is exposed.
fn check(text: &str, engine: Engine) {
    let documented = documented();
    let exposed = exposed(text);
    for (name, family) in &exposed {
        let row = documented
            .get(name)
            .unwrap_or_else(|| panic!("{name} is exposed but not in docs/OPERATIONS.md"));
        assert_eq!(row.kind, family.kind, "{name}'s type");
        assert!(
            family.labels.is_subset(&row.labels),
            "{name} has labels {:?}, documented {:?}",
            family.labels,
            row.labels
        );
    }
    for (name, row) in &documented {
        let expected = (engine == Engine::Redis || !row.redis_only)
            && (engine == Engine::Disk || !row.disk_only)
            && (cfg!(target_os = "linux") || !row.linux_only);
        assert_eq!(
            exposed.contains_key(name),
            expected,
            "{name}: documented ({row:?}), exposed: {}",
            exposed.contains_key(name)
        );
    }
    // The traffic gave the per-route families samples with every label.
    for name in [
        "eric_http_requests_total",
        "eric_http_request_duration_seconds",
    ] {
        assert_eq!(exposed[name].labels, documented[name].labels, "{name}");
    }
    assert!(
        text.contains(r#"route="/v1/channels/{channel}/listeners/{listener}/events",status="200""#),
        "the stream is counted under its template:\n{text}"
    );
    assert!(text.contains(r#"route="unmatched",status="404""#), "{text}");
}

#[tokio::test]
async fn the_table_is_what_the_memory_engine_exposes() {
    let server = TestServer::memory().await;
    let text = scrape_after_traffic(server.addr()).await;
    check(&text, Engine::Memory);
    server.stop().await;
}

#[tokio::test]
async fn the_table_is_what_the_redis_engine_exposes() {
    let redis = TestRedis::start().await;
    let mut config = config_on(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.redis = Some(redis.config());
    let server = TestServer::start(config).await;
    let text = scrape_after_traffic(server.addr()).await;
    check(&text, Engine::Redis);
    server.stop().await;
}

#[tokio::test]
async fn the_table_is_what_the_disk_engine_exposes() {
    let data = tempfile::tempdir().unwrap();
    let mut config = config_on(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.storage.engine = eric_server::StorageEngine::Disk;
    config.storage.data_dir = data.path().to_owned();
    let server = TestServer::start(config).await;
    let text = scrape_after_traffic(server.addr()).await;
    check(&text, Engine::Disk);
    server.stop().await;
}

/// The metric names an expression reads: identifiers starting with `eric_`
/// or `process_`, a histogram's `_bucket` series named by its family.
fn metrics_in(expr: &str) -> BTreeSet<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    expr.split(|c: char| !is_name(c))
        .filter(|word| word.starts_with("eric_") || word.starts_with("process_"))
        .map(|word| {
            word.strip_suffix("_bucket")
                .or_else(|| word.strip_suffix("_sum"))
                .or_else(|| word.strip_suffix("_count"))
                .unwrap_or(word)
                .to_owned()
        })
        .collect()
}

/// `deploy/grafana/eric.json` charts documented metrics only (so a renamed
/// metric cannot leave an empty panel), each query scoped to the chosen
/// nodes, and every part of the table has a panel: HTTP, streams,
/// messages, queues, Redis, the process.
#[test]
fn the_grafana_dashboard_reads_documented_metrics() {
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../deploy/grafana/eric.json")).unwrap();
    let documented = documented();
    let mut charted = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            assert!(
                expr.contains("$instance"),
                "{expr}: not scoped to $instance"
            );
            let names = metrics_in(expr);
            assert!(!names.is_empty(), "{expr}: reads no metric");
            for name in names {
                assert!(
                    documented.contains_key(&name),
                    "{name} ({expr}) is not in docs/OPERATIONS.md"
                );
                charted.insert(name);
            }
        }
    }
    for family in [
        "eric_http_",
        "eric_sse_",
        "eric_messages_",
        "eric_queue_",
        "eric_redis_",
        "process_",
    ] {
        assert!(
            charted.iter().any(|name| name.starts_with(family)),
            "no panel reads {family}*"
        );
    }
}
