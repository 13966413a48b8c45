//! `eric export` / `eric import`, run as the built binary: a round trip
//! disk → file → Redis → file → disk, a Redis listener's pending
//! broadcasts read from the log, refusals (a channel the target has,
//! malformed input, a directory in use) that write nothing.
//!
//! State is made through the engines' own library, in this process, and
//! let go of (the directory's lock released) before `eric` runs.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use eric_core::persistence::ChannelRepository as _;
use eric_core::{
    Channel, ChannelSettings, MemoryEngine, Message, Queue as _, RawAdapter, Subscriptions,
};
use eric_disk::{DiskConfig, DiskEngine, Fsync};
use eric_redis::RedisEngine;
use eric_redis::test_support::TestRedis;
use serde_json::{Value, json};

use common::{Run, command};

/// Runs `eric ARGS...` to completion.
async fn eric(args: &[&str]) -> Run {
    // No server is involved: the URL is never used.
    common::run(command("http://127.0.0.1:9", args)).await
}

/// Runs `eric ARGS...`, which must succeed; its stdout.
async fn ok(args: &[&str]) -> String {
    let run = eric(args).await;
    assert_eq!(run.code, Some(0), "eric {args:?} failed: {run:?}");
    run.stdout
}

/// Runs `eric ARGS...`, which must fail; its stderr.
async fn refused(args: &[&str]) -> String {
    let run = eric(args).await;
    assert_eq!(run.code, Some(1), "eric {args:?} should fail: {run:?}");
    run.stderr
}

fn message(kind: &str, n: u64) -> Message {
    Message::try_new(kind, json!({ "n": n })).unwrap()
}

fn subscriptions(value: Value) -> Subscriptions {
    serde_json::from_value(value).unwrap()
}

/// Two channels on a data directory: listeners with and without
/// subscriptions, one running, queued dispatches and broadcasts, and
/// messages handed out (in replay windows). Everything is let go of
/// before returning.
async fn disk_state(dir: &Path) {
    let config = DiskConfig {
        data_dir: dir.to_owned(),
        fsync: Fsync::Always,
    };
    let engine = DiskEngine::open(config, MemoryEngine::new()).unwrap();
    let persistence = engine.persistence::<RawAdapter>();
    let settings = ChannelSettings {
        replay_window: 4,
        queue_capacity: 50,
        ..ChannelSettings::default()
    };
    let orders: Channel<DiskEngine, RawAdapter> =
        Channel::new(&engine, Some("orders".parse().unwrap()), settings).unwrap();
    let all = orders.add_listener().await.unwrap();
    orders
        .add_listener_with(subscriptions(json!([{ "type": "price" }])))
        .await
        .unwrap();
    orders.add_listener().await.unwrap();
    // One running, the others not: the flag must travel.
    orders.start_listener(all.id()).await.unwrap();
    persistence.persist(&orders).await.unwrap();
    for n in 1..=3 {
        orders
            .dispatch(all.id(), message("order", n))
            .await
            .unwrap();
    }
    orders.broadcast(&message("price", 4)).await.unwrap();
    orders.broadcast(&message("news", 5)).await.unwrap();
    // Two handed out: in `all`'s window from now on.
    let taken = orders.member(all.id()).await.unwrap().queue().take(2).await;
    assert_eq!(taken.unwrap().deliveries.len(), 2);

    let news: Channel<DiskEngine, RawAdapter> = Channel::new(
        &engine,
        Some("news".parse().unwrap()),
        ChannelSettings::default(),
    )
    .unwrap();
    let reader = news.add_listener().await.unwrap();
    persistence.persist(&news).await.unwrap();
    news.dispatch(reader.id(), message("headline", 1))
        .await
        .unwrap();
    engine.close();
}

/// An export's lines as JSON, with what the engines may number or order
/// differently left out: `next_seq` (Redis numbers a channel, the disk
/// each listener), checked to be above the listener's last message, and
/// the listeners' order (Redis keeps registration order, a data directory
/// orders by id), sorted by id.
fn normalized(export: &str) -> Vec<Value> {
    let mut lines: Vec<Value> = export
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    for line in lines.iter_mut().skip(1) {
        let listeners = line["listeners"].as_array_mut().unwrap();
        listeners.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        for listener in listeners {
            let listener = listener.as_object_mut().unwrap();
            let next = listener.remove("next_seq").unwrap().as_u64().unwrap();
            let last = ["window", "queue"]
                .iter()
                .flat_map(|k| listener[*k].as_array().unwrap().iter())
                .map(|d| d["seq"].as_u64().unwrap())
                .max()
                .unwrap_or(0);
            assert!(next > last, "next_seq {next} not above {last}");
        }
    }
    lines
}

fn file(dir: &Path, name: &str) -> String {
    dir.join(name).to_str().unwrap().to_owned()
}

#[tokio::test]
async fn disk_to_redis_to_disk_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let source = file(tmp.path(), "source");
    disk_state(Path::new(&source)).await;
    let first = file(tmp.path(), "first.jsonl");
    ok(&["export", "--data-dir", &source, "--output", &first]).await;
    let first_text = std::fs::read_to_string(&first).unwrap();
    let lines = normalized(&first_text);

    // What the disk held, as written.
    assert_eq!(lines[0], json!({ "eric_export": 1 }));
    assert_eq!(lines.len(), 3, "{first_text}");
    let news = &lines[1];
    assert_eq!(news["channel"], "news");
    let orders = &lines[2];
    assert_eq!(orders["channel"], "orders");
    assert_eq!(orders["settings"]["replay_window"], 4);
    let listeners = orders["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 3);
    let payloads = |l: &Value, k: &str| -> Vec<u64> {
        l[k].as_array()
            .unwrap()
            .iter()
            .map(|d| d["message"]["payload"]["n"].as_u64().unwrap())
            .collect()
    };
    let all = listeners
        .iter()
        .find(|l| l["subscriptions"].is_null() && l["running"] == true)
        .unwrap();
    assert_eq!(payloads(all, "window"), [1, 2]);
    assert_eq!(payloads(all, "queue"), [3, 4, 5]);
    let prices = listeners
        .iter()
        .find(|l| !l["subscriptions"].is_null())
        .unwrap();
    assert_eq!(prices["subscriptions"], json!([{ "type": "price" }]));
    assert_eq!(payloads(prices, "queue"), [4]);
    assert_eq!(listeners.iter().filter(|l| l["running"] == true).count(), 1);

    // Into Redis and out again.
    let redis = TestRedis::start().await;
    let prefix = redis.unique_prefix();
    let target = ["--redis", redis.url(), "--redis-prefix", &prefix];
    ok(&[&["import", "--input", &first][..], &target[..]].concat()).await;
    let second = ok(&[&["export"][..], &target[..]].concat()).await;
    assert_eq!(normalized(&second), lines, "Redis gave back another state");

    // A second import is refused, naming the channel, unless --replace.
    let stderr = refused(&[&["import", "--input", &first][..], &target[..]].concat()).await;
    assert!(
        stderr.contains("channel news exists in the target"),
        "{stderr}"
    );
    ok(&[&["import", "--replace", "--input", &first][..], &target[..]].concat()).await;
    let replaced = ok(&[&["export"][..], &target[..]].concat()).await;
    assert_eq!(normalized(&replaced), lines);

    // The imported state works: a resume after 1 gives back the window's
    // 2, then the listener's messages come out in order, and the channel
    // numbers new ones after them.
    let engine = RedisEngine::connect(redis.config().with_prefix(prefix.clone())).unwrap();
    let record = engine
        .channel_repository()
        .load_one(&"orders".parse().unwrap())
        .await
        .unwrap();
    let live = engine
        .persistence::<RawAdapter>()
        .load_one(&record.id)
        .await
        .unwrap();
    let id: eric_core::ListenerId = all["id"].as_str().unwrap().parse().unwrap();
    let member = live.member(&id).await.unwrap();
    let rewind = member.queue().rewind(1).await.unwrap();
    assert_eq!((rewind.restored, rewind.gap), (1, false));
    for (n, seq) in [(2, 2), (3, 3), (4, 4), (5, 5)] {
        let delivery = live.deliver_next(&id).await.unwrap();
        assert_eq!(
            (delivery.message.payload_value()["n"].clone(), delivery.seq),
            (json!(n), seq)
        );
    }
    assert!(live.dispatch(&id, message("order", 6)).await.unwrap() > 5);
    engine.shutdown();

    // Back onto a new data directory.
    let second_file = file(tmp.path(), "second.jsonl");
    std::fs::write(&second_file, &second).unwrap();
    let copy = file(tmp.path(), "copy");
    ok(&["import", "--data-dir", &copy, "--input", &second_file]).await;
    let third = ok(&["export", "--data-dir", &copy]).await;
    assert_eq!(
        normalized(&third),
        lines,
        "the disk gave back another state"
    );
    let stderr = refused(&["import", "--data-dir", &copy, "--input", &second_file]).await;
    assert!(
        stderr.contains("channel news exists in the target"),
        "{stderr}"
    );
    ok(&[
        "import",
        "--replace",
        "--data-dir",
        &copy,
        "--input",
        &first,
    ])
    .await;
    let fourth = ok(&["export", "--data-dir", &copy]).await;
    assert_eq!(normalized(&fourth), lines);
}

/// A Redis listener's pending broadcasts live in the channel's log, not in
/// its list: the export reads them after its cursor, filtered by its
/// subscriptions, merged with its list by number, without taking them.
#[tokio::test]
async fn redis_pending_broadcasts_are_exported_without_being_taken() {
    let redis = TestRedis::start().await;
    let config = redis.config();
    let engine = RedisEngine::connect(config.clone()).unwrap();
    let channel: Channel<RedisEngine, RawAdapter> = Channel::new(
        &engine,
        Some("feed".parse().unwrap()),
        ChannelSettings::default(),
    )
    .unwrap();
    engine
        .channel_repository()
        .create(&eric_core::persistence::ChannelRecord {
            id: channel.id().clone(),
            settings: channel.settings().clone(),
        })
        .await
        .unwrap();
    let all = channel.add_listener().await.unwrap();
    let prices = channel
        .add_listener_with(subscriptions(json!([{ "type": "price" }])))
        .await
        .unwrap();
    // A channel stream: a temporary listener, held by this node's lease.
    let watch = channel.watch().await.unwrap();
    assert_eq!(channel.listener_ids().await.unwrap().len(), 3);
    channel.broadcast(&message("price", 1)).await.unwrap();
    channel
        .dispatch(all.id(), message("order", 2))
        .await
        .unwrap();
    channel.broadcast(&message("news", 3)).await.unwrap();
    channel
        .dispatch(prices.id(), message("order", 4))
        .await
        .unwrap();

    let target = ["--redis", redis.url(), "--redis-prefix", &config.prefix];
    let exported = ok(&[&["export"][..], &target[..]].concat()).await;
    let lines = normalized(&exported);
    let listeners = lines[1]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 2, "the temporary listener is left out");
    let queue = |id: &str| -> Vec<(u64, u64)> {
        let listener = listeners.iter().find(|l| l["id"] == id).unwrap();
        listener["queue"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let n = d["message"]["payload"]["n"].as_u64().unwrap();
                (d["seq"].as_u64().unwrap(), n)
            })
            .collect()
    };
    let all_queue = queue(all.id().as_str());
    assert_eq!(
        all_queue.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(
        all_queue.windows(2).all(|w| w[0].0 < w[1].0),
        "{all_queue:?}"
    );
    let price_queue = queue(prices.id().as_str());
    assert_eq!(
        price_queue.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        [1, 4]
    );

    // Nothing was taken: the listeners still have all of it.
    assert_eq!(channel.queue_len(all.id()).await.unwrap(), 3);
    assert_eq!(channel.queue_len(prices.id()).await.unwrap(), 2);

    // And a data directory takes it as it was.
    let tmp = tempfile::tempdir().unwrap();
    let input = file(tmp.path(), "feed.jsonl");
    std::fs::write(&input, &exported).unwrap();
    let dir = file(tmp.path(), "data");
    ok(&["import", "--data-dir", &dir, "--input", &input]).await;
    let back = ok(&["export", "--data-dir", &dir]).await;
    assert_eq!(normalized(&back), lines);
    drop(watch);
    engine.shutdown();
}

/// Each malformed input is refused with its line number, before the
/// target is even opened: the directory is never created.
#[tokio::test]
async fn malformed_input_is_refused_by_line_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let good = r#"{"channel":"c","settings":{},"listeners":[]}"#;
    let cases: [(&str, String, &str); 6] = [
        (
            "bad json",
            format!("{{\"eric_export\":1}}\n{good}\n{{oops\n"),
            "input line 3:",
        ),
        (
            "wrong header",
            format!("{{\"eric\":1}}\n{good}\n"),
            "input line 1 is not an eric export header",
        ),
        (
            "version",
            format!("{{\"eric_export\":9}}\n{good}\n"),
            "export format version 9",
        ),
        (
            "unknown field",
            format!(
                "{{\"eric_export\":1}}\n{good}\n{}\n",
                good.replace("\"c\"", "\"d\",\"colour\":1")
            ),
            "input line 3: unknown field `colour`",
        ),
        (
            "oversized",
            format!(
                "{{\"eric_export\":1}}\n{good}\n{{\"channel\":\"{}\"}}\n",
                "x".repeat(300)
            ),
            "input line 3 is longer than 200 bytes",
        ),
        (
            "twice",
            format!("{{\"eric_export\":1}}\n{good}\n{good}\n"),
            "channel c is already on line 2",
        ),
    ];
    for (name, text, expected) in cases {
        let input = file(tmp.path(), name);
        std::fs::write(&input, text).unwrap();
        let dir = file(tmp.path(), &format!("{name}-data"));
        let args = [
            "import",
            "--data-dir",
            &dir,
            "--input",
            &input,
            "--max-line-bytes",
            "200",
        ];
        let stderr = refused(&args).await;
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(stderr.contains("nothing was imported"), "{name}: {stderr}");
        assert!(!Path::new(&dir).exists(), "{name}: the target was created");
    }
}

#[tokio::test]
async fn a_directory_in_use_or_without_data_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = file(tmp.path(), "data");
    let engine = DiskEngine::open(DiskConfig::new(&dir), MemoryEngine::new()).unwrap();
    let stderr = refused(&["export", "--data-dir", &dir]).await;
    assert!(
        stderr.contains(&format!("data directory {dir} is in use")),
        "{stderr}"
    );
    assert!(stderr.contains("stop it first"), "{stderr}");
    engine.close();
    drop(engine);

    let empty = file(tmp.path(), "empty");
    let stderr = refused(&["export", "--data-dir", &empty]).await;
    assert!(stderr.contains("holds no eric data"), "{stderr}");
    assert!(!Path::new(&empty).exists());

    // A prefix is for Redis only (clap's usage error).
    let run = eric(&["export", "--data-dir", &dir, "--redis-prefix", "p"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(
        run.stderr.contains("--redis-prefix goes with --redis"),
        "{run:?}"
    );

    // The output file appears only once complete.
    let output = file(tmp.path(), "out.jsonl");
    let stderr = refused(&["export", "--data-dir", &empty, "--output", &output]).await;
    assert!(stderr.contains("holds no eric data"), "{stderr}");
    assert!(!Path::new(&output).exists());
}

/// What a real server wrote to its data directory exports once it has
/// stopped; while it runs, its lock refuses the export.
#[tokio::test]
async fn a_served_directory_exports_once_its_server_stopped() {
    use eric_server::StorageEngine;
    use eric_server::test_support::{TestServer, config_on};

    let tmp = tempfile::tempdir().unwrap();
    let dir = file(tmp.path(), "data");
    let mut config = config_on(([127, 0, 0, 1], 0).into());
    config.storage.engine = StorageEngine::Disk;
    config.storage.data_dir = dir.clone().into();
    let server = TestServer::start(config).await;
    let url = server.url();
    let client = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let url = url.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = common::run(command(&url, &args)).await;
            assert_eq!(run.code, Some(0), "eric {args:?} failed: {run:?}");
        }
    };
    client(&["create", "--id", "live", "--replay-window", "3"]).await;
    client(&["add-listener", "live", "--id", "a"]).await;
    client(&["add-listener", "live", "--id", "b"]).await;
    client(&["dispatch", "live", "a", "order", "1"]).await;
    client(&["dispatch", "live", "a", "order", "2"]).await;
    client(&["broadcast", "live", "news", "3"]).await;
    client(&["start", "live", "a"]).await;
    client(&["next", "live", "a"]).await;

    let stderr = refused(&["export", "--data-dir", &dir]).await;
    assert!(stderr.contains("is in use"), "{stderr}");
    server.stop().await;

    let exported = ok(&["export", "--data-dir", &dir]).await;
    let lines = normalized(&exported);
    assert_eq!(lines.len(), 2, "{exported}");
    assert_eq!(lines[1]["channel"], "live");
    assert_eq!(lines[1]["settings"]["replay_window"], 3);
    let waiting = |id: &str| -> Vec<Value> {
        let listeners = lines[1]["listeners"].as_array().unwrap();
        let listener = listeners.iter().find(|l| l["id"] == id).unwrap();
        listener["queue"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["message"]["payload"].clone())
            .collect()
    };
    assert_eq!(waiting("a"), [json!(2), json!(3)]);
    assert_eq!(waiting("b"), [json!(3)]);
    let running: Vec<bool> = lines[1]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["running"].as_bool().unwrap())
        .collect();
    assert_eq!(running, [true, false]);

    // Piped: `eric export ... | eric import ...` (stdin).
    let copy = file(tmp.path(), "copy");
    let mut import = command("http://127.0.0.1:9", &["import", "--data-dir", &copy]);
    import.stdin(std::process::Stdio::piped());
    import.stdout(std::process::Stdio::piped());
    import.stderr(std::process::Stdio::piped());
    let mut child = import.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, exported.as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = tokio::time::timeout(common::DEADLINE, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("imported channels: 1, listeners: 2, queued messages: 3"),
        "{stderr}"
    );
    let copied = ok(&["export", "--data-dir", &copy]).await;
    assert_eq!(normalized(&copied), lines);
}
