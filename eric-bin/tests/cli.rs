//! The `eric` client subcommands, run as the built binary against a server
//! started in this process.
//!
//! Nothing sleeps to wait: every wait is a deadline on a real signal (a
//! process exiting, a line arriving on a child's stdout).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;

use eric_redis::test_support::TestRedis;
use eric_server::test_support::{TestServer, config_on};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};
use tokio::time::timeout;

use common::{DEADLINE, Run, command};

/// Runs `eric --url URL ARGS...` to completion.
async fn eric(url: &str, args: &[&str]) -> Run {
    common::run(command(url, args)).await
}

/// Runs a command that must succeed; its stdout, trimmed.
async fn ok(url: &str, args: &[&str]) -> String {
    let run = eric(url, args).await;
    assert_eq!(run.code, Some(0), "eric {args:?} failed: {run:?}");
    run.stdout.trim_end().to_owned()
}

/// Runs a command that must succeed and print one JSON line.
async fn ok_json(url: &str, args: &[&str]) -> Value {
    serde_json::from_str(&ok(url, args).await).unwrap()
}

/// Runs a command that must succeed and print JSON lines.
async fn ok_lines(url: &str, args: &[&str]) -> Vec<Value> {
    ok(url, args)
        .await
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Runs a command that must fail with status 1; its stderr.
async fn fails(url: &str, args: &[&str]) -> String {
    let run = eric(url, args).await;
    assert_eq!(run.code, Some(1), "eric {args:?} should fail: {run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "one error line: {run:?}");
    run.stderr
}

/// A running `eric listen`/`watch`, read line by line.
struct Streaming {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Streaming {
    fn spawn(url: &str, args: &[&str]) -> Self {
        let mut child = command(url, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self { child, lines }
    }

    /// The next event line, parsed.
    async fn event(&mut self) -> Value {
        let line = timeout(DEADLINE, self.lines.next_line())
            .await
            .expect("no event line in time")
            .unwrap()
            .expect("stdout closed before the event");
        serde_json::from_str(&line).unwrap()
    }

    /// Kills the process (`kill`) or waits for it to end by itself; its
    /// exit code and stderr.
    async fn end(mut self, kill: bool) -> (Option<i32>, String) {
        if kill {
            self.child.start_kill().unwrap();
        }
        let mut stderr = String::new();
        let mut pipe = self.child.stderr.take().unwrap();
        let read = pipe.read_to_string(&mut stderr);
        timeout(DEADLINE, read).await.unwrap().unwrap();
        if !kill {
            let rest = self.lines.next_line().await.unwrap();
            assert!(rest.is_none(), "extra output: {rest:?}");
        }
        let status = timeout(DEADLINE, self.child.wait()).await.unwrap();
        (status.unwrap().code(), stderr)
    }

    /// Sends SIGINT, as Ctrl-C in a terminal does.
    async fn interrupt(&self) {
        let pid = self.child.id().unwrap().to_string();
        let kill = Command::new("kill").args(["-INT", &pid]).status();
        assert!(timeout(DEADLINE, kill).await.unwrap().unwrap().success());
    }
}

/// A memory server with channel `c` and listener `l` (stopped).
async fn channel_c_with_listener_l() -> (TestServer, String) {
    let server = TestServer::memory().await;
    let url = server.url();
    ok(&url, &["create", "--id", "c"]).await;
    ok(&url, &["add-listener", "c", "--id", "l"]).await;
    (server, url)
}

fn event(id: u64, name: &str, data: Value) -> Value {
    json!({"id": id, "event": name, "data": data})
}

#[tokio::test]
async fn create_list_inspect_and_remove_channels() {
    let server = TestServer::memory().await;
    let url = server.url();
    let args: Vec<&str> = "create --id c1 --retry-ms 250 --queue-capacity 7"
        .split(' ')
        .collect();
    assert_eq!(ok(&url, &args).await, "c1");
    let generated = ok(&url, &["create"]).await;
    assert!(!generated.is_empty() && !generated.contains('\n'));

    let listed = ok(&url, &["channels"]).await;
    let mut ids: Vec<&str> = listed.lines().collect();
    ids.sort_unstable();
    let mut expected = vec!["c1", generated.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);

    let info: Value = ok_json(&url, &["info", "c1"]).await;
    assert_eq!(info["id"], "c1");
    assert_eq!(info["settings"]["retry_timeout_milliseconds"], 250);
    assert_eq!(info["settings"]["queue_capacity"], 7);
    assert_eq!(info["listeners"], json!([]));

    let stderr = fails(&url, &["create", "--id", "c1"]).await;
    assert!(
        stderr.contains("409") && stderr.contains("channel_exists"),
        "{stderr}"
    );

    assert_eq!(ok(&url, &["remove-channel", "c1"]).await, "");
    assert_eq!(ok(&url, &["channels"]).await, generated);
    server.stop().await;
}

#[tokio::test]
async fn add_start_stop_and_remove_listeners() {
    let server = TestServer::memory().await;
    let url = server.url();
    ok(&url, &["create", "--id", "c"]).await;
    let first = ok(&url, &["add-listener", "c"]).await;
    assert_eq!(ok(&url, &["add-listener", "c", "--id", "l2"]).await, "l2");

    let running = |info: &Value, id: &str| {
        let listeners = info["listeners"].as_array().unwrap();
        let listener = listeners.iter().find(|l| l["id"] == id).unwrap();
        listener["running"].as_bool().unwrap()
    };
    let info = |url: String| async move { ok_json(&url, &["info", "c"]).await };
    let before = info(url.clone()).await;
    assert_eq!(before["listeners"].as_array().unwrap().len(), 2);
    assert!(!running(&before, &first) && !running(&before, "l2"));

    assert_eq!(ok(&url, &["start", "c", "l2"]).await, "");
    assert!(running(&info(url.clone()).await, "l2"));
    assert_eq!(ok(&url, &["stop", "c", "l2"]).await, "");
    assert!(!running(&info(url.clone()).await, "l2"));

    assert_eq!(ok(&url, &["remove-listener", "c", &first]).await, "");
    let after = info(url.clone()).await;
    assert_eq!(after["listeners"].as_array().unwrap().len(), 1);
    let stderr = fails(&url, &["start", "c", &first]).await;
    assert!(stderr.contains("listener_not_found"), "{stderr}");
    server.stop().await;
}

#[tokio::test]
async fn dispatch_then_next() {
    let (server, url) = channel_c_with_listener_l().await;
    assert_eq!(
        ok(&url, &["dispatch", "c", "l", "greet", r#"{"a": [1, "x"]}"#]).await,
        "1"
    );
    assert_eq!(ok(&url, &["dispatch", "c", "l", "bare"]).await, "2");

    // A stopped listener hands nothing out; its messages wait.
    let stderr = fails(&url, &["next", "c", "l"]).await;
    assert!(stderr.contains("listener_stopped"), "{stderr}");
    ok(&url, &["start", "c", "l"]).await;

    let first: Value = ok_json(&url, &["next", "c", "l"]).await;
    assert_eq!(first["seq"], 1);
    assert_eq!(first["message"]["type"], "greet");
    assert_eq!(first["message"]["payload"], json!({"a": [1, "x"]}));
    let second: Value = ok_json(&url, &["next", "c", "l"]).await;
    assert_eq!(
        (&second["seq"], &second["message"]["payload"]),
        (&json!(2), &Value::Null)
    );
    // Empty queue: nothing printed, success.
    assert_eq!(ok(&url, &["next", "c", "l"]).await, "");
    server.stop().await;
}

/// A write named by `--idempotency-key` is applied once, however often it
/// is sent; `--retries` needs a key (retrying an unnamed write could apply
/// it twice).
#[tokio::test]
async fn named_writes_apply_once() {
    let (server, url) = channel_c_with_listener_l().await;
    let dispatch = [
        "dispatch",
        "c",
        "l",
        "t",
        "1",
        "--idempotency-key",
        "order-1",
    ];
    assert_eq!(ok(&url, &dispatch).await, "1");
    assert_eq!(
        ok(&url, &dispatch).await,
        "1",
        "the repeat answers the first seq"
    );
    let broadcast = ["broadcast", "c", "t", "2", "--idempotency-key", "b-1"];
    let first = ok_json(&url, &broadcast).await;
    assert_eq!(ok_json(&url, &broadcast).await, first);
    ok(&url, &["start", "c", "l"]).await;
    assert_eq!(ok_json(&url, &["next", "c", "l"]).await["seq"], 1);
    assert_eq!(ok_json(&url, &["next", "c", "l"]).await["seq"], 2);
    assert_eq!(ok(&url, &["next", "c", "l"]).await, "");
    let run = eric(&url, &["dispatch", "c", "l", "t", "1", "--retries", "3"]).await;
    assert_eq!(run.code, Some(2), "{run:?}");
    server.stop().await;
}

#[tokio::test]
async fn broadcast_reaches_two_listeners() {
    let server = TestServer::memory().await;
    let url = server.url();
    ok(&url, &["create", "--id", "c"]).await;
    for listener in ["l1", "l2"] {
        ok(&url, &["add-listener", "c", "--id", listener]).await;
        ok(&url, &["start", "c", listener]).await;
    }
    let outcome: Value = ok_json(&url, &["broadcast", "c", "news", r#""hello""#]).await;
    assert_eq!(outcome, json!({"delivered": 2, "full": []}));
    for listener in ["l1", "l2"] {
        let next: Value = ok_json(&url, &["next", "c", listener]).await;
        assert_eq!(next["message"], json!({"type": "news", "payload": "hello"}));
    }
    server.stop().await;
}

#[tokio::test]
async fn an_invalid_payload_is_refused_before_any_request() {
    let (server, url) = channel_c_with_listener_l().await;
    for payload in ["{not json", "hello"] {
        let stderr = fails(&url, &["dispatch", "c", "l", "t", payload]).await;
        assert!(stderr.contains("PAYLOAD is not valid JSON"), "{stderr}");
        let stderr = fails(&url, &["broadcast", "c", "t", payload]).await;
        assert!(stderr.contains("PAYLOAD is not valid JSON"), "{stderr}");
    }
    // No server at all: the same refusal, so no request was attempted.
    let stderr = fails("http://127.0.0.1:1", &["dispatch", "c", "l", "t", "{"]).await;
    assert!(stderr.contains("PAYLOAD is not valid JSON"), "{stderr}");
    let info: Value = ok_json(&url, &["info", "c"]).await;
    assert_eq!(info["listeners"][0]["queued"], 0);
    server.stop().await;
}

#[tokio::test]
async fn errors_name_the_server_code_or_the_transport() {
    let server = TestServer::memory().await;
    let url = server.url();
    let stderr = fails(&url, &["info", "nope"]).await;
    assert!(stderr.starts_with("eric: "), "{stderr}");
    assert!(
        stderr.contains("404") && stderr.contains("channel_not_found"),
        "{stderr}"
    );
    let stderr = fails(&url, &["listen", "nope", "l"]).await;
    assert!(stderr.contains("channel_not_found"), "{stderr}");
    let stderr = fails(&url, &["info", ".."]).await;
    assert!(stderr.contains("invalid channel id"), "{stderr}");
    server.stop().await;

    // Nothing listens there any more.
    let stderr = fails(&url, &["channels"]).await;
    assert!(
        stderr.contains("request to") && stderr.contains("failed"),
        "{stderr}"
    );
}

#[tokio::test]
async fn listen_prints_events_in_order_and_stops_after_max_events() {
    let (server, url) = channel_c_with_listener_l().await;
    ok(&url, &["dispatch", "c", "l", "a", r#"{"n": 1}"#]).await;
    // The server's notice types are reserved: no message can fake the end.
    let stderr = fails(
        &url,
        &["dispatch", "c", "l", "eric-end", r#"{"reason": "stopped"}"#],
    )
    .await;
    assert!(
        stderr.contains("400") && stderr.contains("reserved"),
        "{stderr}"
    );
    ok(&url, &["dispatch", "c", "l", "b", "[2]"]).await;
    ok(&url, &["dispatch", "c", "l", "c", r#""three""#]).await;
    ok(&url, &["dispatch", "c", "l", "d", "4"]).await;

    let events = ok_lines(&url, &["listen", "c", "l", "--max-events", "3"]).await;
    let expected = [
        event(1, "a", json!({"n": 1})),
        event(2, "b", json!([2])),
        event(3, "c", json!("three")),
    ];
    assert_eq!(events, expected);

    // Resuming after the last printed id gives the rest.
    let args = [
        "listen",
        "c",
        "l",
        "--last-event-id",
        "3",
        "--max-events",
        "1",
    ];
    assert_eq!(ok_json(&url, &args).await, event(4, "d", json!(4)));
    server.stop().await;
}

#[tokio::test]
async fn listen_ends_when_the_listener_stops() {
    let (server, url) = channel_c_with_listener_l().await;
    let mut listen = Streaming::spawn(&url, &["listen", "c", "l"]);
    ok(&url, &["dispatch", "c", "l", "hello"]).await;
    // The first event proves the stream is open before the listener stops.
    assert_eq!(listen.event().await, event(1, "hello", Value::Null));
    ok(&url, &["stop", "c", "l"]).await;
    let (code, stderr) = listen.end(false).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("the listener was stopped"), "{stderr}");
    server.stop().await;
}

#[tokio::test]
async fn listen_stops_on_ctrl_c() {
    let (server, url) = channel_c_with_listener_l().await;
    let mut listen = Streaming::spawn(&url, &["listen", "c", "l"]);
    ok(&url, &["dispatch", "c", "l", "hello", "-1.5"]).await;
    assert_eq!(listen.event().await, event(1, "hello", json!(-1.5)));
    listen.interrupt().await;
    let (code, stderr) = listen.end(false).await;
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    server.stop().await;
}

#[tokio::test]
async fn listen_gives_up_when_the_server_stays_away() {
    let (server, url) = channel_c_with_listener_l().await;
    let args = ["listen", "c", "l", "--give-up-after", "1"];
    let mut listen = Streaming::spawn(&url, &args);
    ok(&url, &["dispatch", "c", "l", "hello"]).await;
    assert_eq!(listen.event().await, event(1, "hello", Value::Null));
    server.stop().await;
    let (code, stderr) = listen.end(false).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("connection lost"), "{stderr}");
    assert!(
        stderr.contains("could not reconnect for 1 s; giving up"),
        "{stderr}"
    );
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("eric: request to") && last.contains("failed"),
        "{stderr}"
    );
}

#[tokio::test]
async fn watch_prints_broadcasts() {
    let server = TestServer::memory().await;
    let url = server.url();
    ok(&url, &["create", "--id", "c"]).await;
    let mut watch = Streaming::spawn(&url, &["watch", "c", "--max-events", "2"]);
    // The watch's temporary listener shows up once the stream is open.
    let opened = async {
        loop {
            let info: Value = ok_json(&url, &["info", "c"]).await;
            if !info["listeners"].as_array().unwrap().is_empty() {
                break;
            }
        }
    };
    timeout(DEADLINE, opened)
        .await
        .expect("the watch never connected");
    ok(&url, &["broadcast", "c", "one", "1"]).await;
    ok(&url, &["broadcast", "c", "two", r#"{"x": 2}"#]).await;
    assert_eq!(watch.event().await, event(1, "one", json!(1)));
    assert_eq!(watch.event().await, event(2, "two", json!({"x": 2})));
    let (code, stderr) = watch.end(false).await;
    assert_eq!(code, Some(0), "{stderr}");
    server.stop().await;
}

/// The Redis engine keeps the channel, listener and queue across servers:
/// server A goes away mid-stream, server B takes its port, and `listen`
/// reconnects and resumes with no message lost or repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_resumes_after_the_server_goes_away() {
    let redis = TestRedis::start().await;
    let mut config = config_on("127.0.0.1:0".parse().unwrap());
    config.redis = Some(redis.config());
    let a = TestServer::start(config.clone()).await;
    let (addr, url) = (a.addr(), a.url());
    ok(&url, &["create", "--id", "c"]).await;
    ok(&url, &["add-listener", "c", "--id", "l"]).await;

    let mut listen = Streaming::spawn(&url, &["listen", "c", "l"]);
    for n in 1..=3 {
        ok(
            &url,
            &["dispatch", "c", "l", "m", &format!(r#"{{"n": {n}}}"#)],
        )
        .await;
    }
    for n in 1..=3 {
        assert_eq!(listen.event().await, event(n, "m", json!({"n": n})));
    }

    a.stop().await;
    config.http.addr = addr;
    let b = TestServer::start(config).await;
    for n in 4..=6 {
        ok(
            &url,
            &["dispatch", "c", "l", "m", &format!(r#"{{"n": {n}}}"#)],
        )
        .await;
    }
    for n in 4..=6 {
        assert_eq!(listen.event().await, event(n, "m", json!({"n": n})));
    }
    // Nothing repeated or extra follows: the next line is the next message.
    ok(&url, &["dispatch", "c", "l", "last"]).await;
    assert_eq!(listen.event().await, event(7, "last", Value::Null));

    let (_, stderr) = listen.end(true).await;
    assert!(stderr.contains("connection lost"), "{stderr}");
    assert!(
        stderr.contains("reconnected; resuming after event 3"),
        "{stderr}"
    );
    b.stop().await;
}

#[tokio::test]
async fn output_that_cannot_be_written_fails_the_command_but_a_closed_pipe_does_not() {
    let (server, url) = channel_c_with_listener_l().await;
    ok(&url, &["dispatch", "c", "l", "a", "1"]).await;
    ok(&url, &["dispatch", "c", "l", "b", "2"]).await;

    // A full disk: what was asked for was not delivered, so status 1.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut to_full = command(&url, &["channels"]);
    to_full.stdout(full).stderr(Stdio::piped());
    let child = to_full.spawn().unwrap();
    let output = timeout(DEADLINE, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write to stdout"), "{stderr}");

    // A reader that went away (`| head -0`) is "enough", not an error.
    let mut to_closed = command(&url, &["listen", "c", "l"]);
    to_closed.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = to_closed.spawn().unwrap();
    drop(child.stdout.take());
    let status = timeout(DEADLINE, child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
    // It printed nothing, and whatever its stream took stays recoverable: a
    // reader resuming from the start gets both events.
    let args = [
        "listen",
        "c",
        "l",
        "--last-event-id",
        "0",
        "--max-events",
        "2",
    ];
    let events = ok_lines(&url, &args).await;
    assert_eq!(events, [event(1, "a", json!(1)), event(2, "b", json!(2))]);
    server.stop().await;
}

#[tokio::test]
async fn the_token_flag_and_variable_authenticate_every_command() {
    let admin = "admin-token-0123456789";
    let reader = "reader-token-0123456789";
    let mut config = config_on("127.0.0.1:0".parse().unwrap());
    config.http.admin_tokens = vec![eric_server::http::Token::new(admin)];
    config.http.subscribe_tokens = vec![eric_server::http::Token::new(reader)];
    let server = TestServer::start(config).await;
    let url = server.url();

    let stderr = fails(&url, &["create", "--id", "c"]).await;
    assert!(
        stderr.contains("401") && stderr.contains("unauthorized"),
        "{stderr}"
    );
    assert_eq!(
        ok(&url, &["--token", admin, "create", "--id", "c"]).await,
        "c"
    );
    let stderr = fails(&url, &["--token", reader, "add-listener", "c"]).await;
    assert!(stderr.contains("403"), "{stderr}");

    // ERIC_TOKEN, as a deployment would set it; a reader listens.
    let mut subscribe = command(&url, &["add-listener", "c", "--id", "l"]);
    subscribe.env("ERIC_TOKEN", admin);
    let output = timeout(DEADLINE, subscribe.output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    ok(&url, &["--token", admin, "dispatch", "c", "l", "hi", "1"]).await;
    // Starting a listener is an admin's: a reader's stream does not.
    let args = ["--token", reader, "listen", "c", "l", "--max-events", "1"];
    let stderr = fails(&url, &args).await;
    assert!(stderr.contains("409: listener_stopped"), "{stderr}");
    ok(&url, &["--token", admin, "start", "c", "l"]).await;
    assert_eq!(ok_json(&url, &args).await, event(1, "hi", json!(1)));
    server.stop().await;
}

/// `publish` (the broadcast) and `dispatch` take `--topic`; `listen` prints
/// a message's topic when it has one, and lines without one stay as they
/// were. A topic the server would refuse is refused before any request.
#[tokio::test]
async fn publish_with_a_topic_and_listen_prints_it() {
    let (server, url) = channel_c_with_listener_l().await;
    let published = ok_lines(
        &url,
        &[
            "publish",
            "c",
            "status",
            r#""idle""#,
            "--topic",
            "kernel.q1",
        ],
    )
    .await;
    assert_eq!(published, [json!({"delivered": 1, "full": []})]);
    ok(&url, &["dispatch", "c", "l", "status", r#""busy""#]).await;
    let args = ["dispatch", "c", "l", "status", "1", "--topic", "q.2"];
    assert_eq!(ok(&url, &args).await, "3");
    let events = ok_lines(&url, &["listen", "c", "l", "--max-events", "3"]).await;
    assert_eq!(
        events,
        [
            json!({"id": 1, "event": "status", "topic": "kernel.q1", "data": "idle"}),
            event(2, "status", json!("busy")),
            json!({"id": 3, "event": "status", "topic": "q.2", "data": 1}),
        ]
    );
    let stderr = fails(&url, &["publish", "c", "status", "1", "--topic", ""]).await;
    assert!(stderr.contains("topic"), "{stderr}");
    server.stop().await;
}

/// Waits until `ready` holds of channel `c`'s info, polling under the
/// deadline.
async fn until_info(url: &str, what: &str, ready: impl Fn(&Value) -> bool) {
    let poll = async {
        loop {
            let info: Value = ok_json(url, &["info", "c"]).await;
            if ready(&info) {
                break;
            }
        }
    };
    timeout(DEADLINE, poll)
        .await
        .unwrap_or_else(|_| panic!("{what} never happened"));
}

/// `subscribe` without a listener reads the channel's stream with its
/// filters: only matching broadcasts arrive, numbered from 1 on this
/// connection; `TYPE:TOPIC` is split at the first `:`.
#[tokio::test]
async fn subscribe_prints_the_broadcasts_its_filters_match() {
    let server = TestServer::memory().await;
    let url = server.url();
    ok(&url, &["create", "--id", "c"]).await;
    let args = [
        "subscribe",
        "c",
        "--filter",
        "status:kernel",
        "--filter",
        "ping",
        "--filter",
        "odd:a:b",
        "--max-events",
        "4",
    ];
    let mut subscribe = Streaming::spawn(&url, &args);
    until_info(&url, "the subscribe stream's listener", |info| {
        !info["listeners"].as_array().unwrap().is_empty()
    })
    .await;
    let publish = |msg_type: &'static str, topic: Option<&'static str>| {
        let url = url.clone();
        async move {
            let mut args = vec!["publish", "c", msg_type, "1"];
            args.extend(topic.map(|t| ["--topic", t]).into_iter().flatten());
            ok(&url, &args).await;
        }
    };
    publish("status", Some("kernel.q1")).await;
    publish("status", Some("kernels")).await;
    publish("status", None).await;
    publish("pong", None).await;
    publish("ping", Some("anything")).await;
    publish("odd", Some("a:b.c")).await;
    publish("status", Some("kernel")).await;
    let topics = [
        Some("kernel.q1"),
        Some("anything"),
        Some("a:b.c"),
        Some("kernel"),
    ];
    for (n, topic) in (1..).zip(topics) {
        let line = subscribe.event().await;
        assert_eq!((&line["id"], line["topic"].as_str()), (&json!(n), topic));
    }
    let (code, stderr) = subscribe.end(false).await;
    assert_eq!(code, Some(0), "{stderr}");
    // Filters the server would refuse are refused before any request.
    let stderr = fails(&url, &["subscribe", "c", "--filter", "status:"]).await;
    assert!(stderr.contains("status:"), "{stderr}");
    server.stop().await;
}

/// `subscribe --listener` creates the listener with the filters as its
/// subscriptions, or replaces an existing one's; its queue is kept, so what
/// it took under the old filters while nobody streamed still arrives.
#[tokio::test]
async fn subscribe_with_a_listener_sets_its_subscriptions_and_keeps_its_queue() {
    let server = TestServer::memory().await;
    let url = server.url();
    ok(&url, &["create", "--id", "c"]).await;
    let client = eric_client::Client::new(&url).unwrap();
    let held = |msg_type: &'static str| {
        let client = client.clone();
        async move {
            let wanted = [eric_client::Subscription::new(msg_type, None)];
            let poll = async {
                while client.subscriptions("c", "l").await.ok().as_deref() != Some(&wanted[..]) {}
            };
            timeout(DEADLINE, poll)
                .await
                .unwrap_or_else(|_| panic!("l never held {msg_type}"));
        }
    };
    let subscribe = |filter: &str, max_events: &str| {
        let args = ["subscribe", "c", "--listener", "l", "--filter", filter];
        let max = ["--max-events", max_events];
        Streaming::spawn(&url, &[&args[..], &max[..]].concat())
    };
    let mut first = subscribe("a", "1");
    held("a").await;
    ok(&url, &["publish", "c", "b", "0"]).await;
    ok(&url, &["publish", "c", "a", "1"]).await;
    assert_eq!(first.event().await, event(1, "a", json!(1)));
    let (code, stderr) = first.end(false).await;
    assert_eq!(code, Some(0), "{stderr}");
    // Queued for l while nobody streams it.
    ok(&url, &["publish", "c", "a", "2"]).await;

    let mut second = subscribe("b", "2");
    held("b").await;
    ok(&url, &["publish", "c", "a", "3"]).await;
    ok(&url, &["publish", "c", "b", "4"]).await;
    assert_eq!(second.event().await, event(2, "a", json!(2)));
    assert_eq!(second.event().await, event(3, "b", json!(4)));
    let (code, stderr) = second.end(false).await;
    assert_eq!(code, Some(0), "{stderr}");
    server.stop().await;
}

/// `eric token` mints, from the configured secret, a token the server takes
/// with the rights asked for and no more; without a secret it says why.
#[tokio::test]
async fn eric_token_mints_a_scoped_token_the_server_accepts() {
    let secret = "a-development-secret-of-32-bytes-or-more";
    let mut config = config_on("127.0.0.1:0".parse().unwrap());
    config.http.jwt_secret = Some(eric_server::http::Token::new(secret));
    let server = TestServer::start(config).await;
    let url = server.url();
    let mint = |args: &'static [&'static str]| {
        let mut command = command(&url, &["token"]);
        command.args(args).env("ERIC__HTTP__JWT_SECRET", secret);
        command
    };
    let minted = |mut command: Command| async move {
        let output = timeout(DEADLINE, command.output()).await.unwrap().unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    };
    let admin = minted(mint(&["--admin", "--subject", "ops"])).await;
    let writer = minted(mint(&["--publish", "c/l", "--ttl-secs", "60"])).await;
    let reader = minted(mint(&["--subscribe", "c/l"])).await;

    ok(&url, &["--token", &admin, "create", "--id", "c"]).await;
    ok(&url, &["--token", &admin, "add-listener", "c", "--id", "l"]).await;
    ok(&url, &["--token", &admin, "add-listener", "c", "--id", "m"]).await;
    ok(&url, &["--token", &admin, "start", "c", "l"]).await;
    ok(&url, &["--token", &writer, "dispatch", "c", "l", "hi", "1"]).await;
    let stderr = fails(&url, &["--token", &writer, "dispatch", "c", "m", "hi", "1"]).await;
    assert!(stderr.contains("403"), "{stderr}");
    let args = [
        "--token",
        reader.as_str(),
        "listen",
        "c",
        "l",
        "--max-events",
        "1",
    ];
    assert_eq!(ok_json(&url, &args).await, event(1, "hi", json!(1)));
    let stderr = fails(&url, &["--token", &reader, "listen", "c", "m"]).await;
    assert!(stderr.contains("403"), "{stderr}");

    // No secret: a clear error, no token.
    let run = eric(&url, &["token", "--admin"]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("http.jwt_secret"), "{run:?}");
    // A pattern the server would refuse is refused here.
    let bad = minted_err(mint(&["--subscribe", "a/b/c"])).await;
    assert!(bad.contains("pattern"), "{bad}");
    server.stop().await;
}

async fn minted_err(mut command: Command) -> String {
    let output = timeout(DEADLINE, command.output()).await.unwrap().unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    String::from_utf8(output.stderr).unwrap()
}

/// Every shell gets a script that knows the subcommands, and bash's parses.
#[tokio::test]
async fn completions_cover_every_shell_and_bash_parses_its_script() {
    // No server: `completions` never connects.
    let url = "http://127.0.0.1:9";
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = ok(url, &["completions", shell]).await;
        for subcommand in ["serve", "completions", "dispatch", "listen"] {
            assert!(
                script.contains(subcommand),
                "{shell}'s script lacks {subcommand}"
            );
        }
    }
    let bash = ok(url, &["completions", "bash"]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eric.bash");
    std::fs::write(&path, bash).unwrap();
    let check = Command::new("bash")
        .arg("-n")
        .arg(&path)
        .stdin(Stdio::null())
        .output();
    let check = timeout(DEADLINE, check).await.unwrap().unwrap();
    assert!(check.status.success(), "bash -n: {check:?}");
    let unknown = eric(url, &["completions", "tcsh"]).await;
    assert_eq!(unknown.code, Some(2), "a usage error: {unknown:?}");
    assert!(unknown.stderr.contains("tcsh"), "{unknown:?}");
}

/// Logs to a pipe (a file, a collector) carry no terminal colour codes,
/// even with `NO_COLOR` unset: the pipe alone decides.
#[tokio::test]
async fn serve_logs_to_a_pipe_without_colour_codes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_eric"))
        .args(["serve", "--http", "127.0.0.1:0", "--memory"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .env_remove("ERIC__LOG__FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let serving = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line);
            if seen.last().unwrap().contains("eric is serving") {
                return;
            }
        }
        panic!("eric's log ended before it served: {seen:?}");
    };
    timeout(DEADLINE, serving)
        .await
        .expect("eric did not serve in time");
    assert!(
        seen.iter().any(|l| l.contains("INFO")),
        "text log: {seen:?}"
    );
    for line in &seen {
        assert!(!line.contains("\x1b["), "colour code in {line:?}");
    }
    child.start_kill().unwrap();
    timeout(DEADLINE, child.wait()).await.unwrap().unwrap();
}
