//! A Redis older than 7.0 is refused with a typed error naming its version
//! (eric notifies through sharded pub/sub, which 7.0 brought).
//!
//! No real Redis 6 here: a stand-in on a free port answers as one would
//! (`INFO server` says `redis_version:6.2.14`, anything else `+OK`).

#![allow(clippy::unwrap_used)]

use std::io::{BufReader, Write};
use std::net::TcpListener;

use eric_core::channel::RawAdapter;
use eric_core::{Channel, ChannelSettings};
use eric_redis::{Error, RedisConfig, RedisEngine};
use redis::Value;

/// Serves one connection on its own thread (blocking I/O, outside the
/// runtime); ends when the client hangs up.
fn redis_six() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut parser = redis::Parser::new();
                while let Ok(Value::Array(request)) = parser.parse_value(&mut reader) {
                    let words: Vec<String> = request
                        .iter()
                        .filter_map(|v| match v {
                            Value::BulkString(b) => Some(String::from_utf8_lossy(b).to_lowercase()),
                            _ => None,
                        })
                        .collect();
                    let text = match words.as_slice() {
                        [info, section] if info == "info" && section == "server" => {
                            "# Server\r\nredis_version:6.2.14\r\n"
                        }
                        [info, ..] if info == "info" => "# Cluster\r\ncluster_enabled:0\r\n",
                        _ => {
                            let _ = stream.write_all(b"+OK\r\n");
                            continue;
                        }
                    };
                    let answer = format!("${}\r\n{text}\r\n", text.len());
                    if stream.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_before_seven_is_refused_naming_its_version() {
    let config = RedisConfig::with_url(redis_six()).with_prefix("old");
    let engine = RedisEngine::connect(config).unwrap();
    let refused = engine.check_server().await.unwrap_err();
    assert!(
        matches!(&refused, Error::UnsupportedServer { version } if version == "6.2.14"),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("7.0"), "{refused}");
    // Every command says the same, not "unavailable": retrying cannot help.
    let ch: Channel<RedisEngine, RawAdapter> = Channel::new(
        &engine,
        Some("c".parse().unwrap()),
        ChannelSettings::default(),
    )
    .unwrap();
    let failed = ch.add_listener().await.unwrap_err();
    assert!(!failed.is_transient(), "{failed:?}");
    assert!(format!("{failed:?}").contains("6.2.14"), "{failed:?}");
}
