//! HTTP/2 in clear text with prior knowledge (h2c), over real sockets:
//! streams keep their HTTP/1.1 properties (keep-alive, shutdown), a client
//! that stops reading one stream is cut on that stream alone, and the
//! protocol's limits hold against hostile frames while the server goes on
//! serving. Nothing sleeps to wait: every wait is a deadline on an event.

#![allow(clippy::unwrap_used)]

#[path = "common/wire.rs"]
mod wire;

use eric_server::Config;
use h2::Reason;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use wire::{H2, Running, raw, within};

async fn h2c(server: &Running) -> H2 {
    H2::handshake(TcpStream::connect(server.addr).await.unwrap()).await
}

/// The server still answers a new client.
async fn still_serves(server: &Running) {
    let mut client = h2c(server).await;
    let (status, _) = client.call("GET", "/healthz", None).await;
    assert!(status.is_success(), "{status}");
}

#[tokio::test]
async fn prior_knowledge_serves_the_api_and_streams_with_keep_alive() {
    let server = Running::start(Config::default(), |c| c.http.keep_alive_secs = 1).await;
    let mut client = h2c(&server).await;
    client.channel_with_listeners(&["l"]).await;
    let mut events = client.events("l").await;
    client.dispatch("l", json!(1)).await;
    let event = events.event().await;
    assert!(
        event.contains("id: 1\n") && event.contains("data: 1\n"),
        "{event}"
    );
    events.comment("keep-alive").await;
    client.dispatch("l", json!(2)).await;
    assert!(events.event().await.contains("id: 2\n"));
    server.stop().await;
}

/// A client that leaves (resets its stream) stops consuming: the stream's
/// producer ends, and what it had taken goes back to the queue.
#[tokio::test]
async fn a_reset_stream_stops_consuming() {
    let server = Running::start(Config::default(), |_| {}).await;
    let mut client = h2c(&server).await;
    client.channel_with_listeners(&["l"]).await;
    let events = client.events("l").await;
    server.streams_become(1, 0).await;
    drop(events);
    server.streams_become(0, 0).await;
    client.dispatch("l", json!(1)).await;
    let info = client.ok("GET", "/v1/channels/c/listeners/l", None).await;
    assert_eq!(info["queued"], 1, "{info}");
    server.stop().await;
}

/// Two streams on one connection; the client never takes the data of the
/// first (its window stays shut) and keeps reading the second. The first is
/// cut after the send timeout, its listener released; the second goes on,
/// and the connection with it. When the client finally reads the first, it
/// gets what was buffered and then a reset. The cut stream's slot under
/// `http.max_streams_per_listener` is free at once, while its HTTP/2
/// stream still waits for the client.
#[tokio::test]
async fn a_stalled_stream_is_cut_alone() {
    let server = Running::start(Config::default(), |c| {
        c.http.send_timeout_secs = 1;
        c.http.max_streams_per_listener = 1;
    })
    .await;
    let mut builder = h2::client::Builder::new();
    // Small stream windows, a large connection window: the stalled stream
    // fills its own window without shutting the others'.
    builder
        .initial_window_size(16 * 1024)
        .initial_connection_window_size(8 << 20);
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut client = H2::handshake_with(tcp, &builder).await;
    client.channel_with_listeners(&["stalled", "reading"]).await;
    let stalled = client
        .request("GET", "/v1/channels/c/listeners/stalled/events", None)
        .await;
    let mut reading = client.events("reading").await;
    server.streams_become(2, 0).await;
    // Separate dispatches make separate chunks: more than the window,
    // hyper's buffer and the producer's buffer hold.
    let payload = "x".repeat(16 * 1024);
    for _ in 0..12 {
        client.dispatch("stalled", json!(payload)).await;
    }
    server.streams_become(1, 1).await;
    client.dispatch("reading", json!("still here")).await;
    assert!(reading.event().await.contains("still here"));
    // Released: nothing consumes the listener any more, so what is
    // dispatched to it now stays queued (with what the cut stream gave
    // back).
    let path = "/v1/channels/c/listeners/stalled";
    let before = client.ok("GET", path, None).await["queued"]
        .as_u64()
        .unwrap();
    client.dispatch("stalled", json!("after the cut")).await;
    let after = client.ok("GET", path, None).await["queued"]
        .as_u64()
        .unwrap();
    assert_eq!(after, before + 1);
    // The listener's one stream slot is free again: a new stream opens
    // and takes what was queued.
    let mut other = h2c(&server).await;
    let mut again = other.events("stalled").await;
    assert!(again.event().await.contains("data: "));
    drop(again);
    // Reading the cut stream now: the buffered bytes, then a reset.
    let mut cut = wire::Events::new(stalled.into_body());
    let end = loop {
        match cut.block().await {
            Ok(Some(_)) => {}
            other => break other,
        }
    };
    let error = end.expect_err("the cut stream ended cleanly");
    assert!(error.is_reset(), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_ends_streams_cleanly_and_says_goaway() {
    let server = Running::start(Config::default(), |_| {}).await;
    let mut client = h2c(&server).await;
    client.channel_with_listeners(&["a", "b"]).await;
    let mut a = client.events("a").await;
    let mut b = client.events("b").await;
    server.streams_become(2, 0).await;
    server.shut_down();
    for events in [&mut a, &mut b] {
        events.comment("shutting down").await;
        assert_eq!(events.block().await.unwrap(), None, "not a clean end");
    }
    let H2 { send, driver, .. } = client;
    drop(send);
    within("the client's connection to end", driver)
        .await
        .unwrap()
        .unwrap();
    server.stop().await;
}

/// A connection with no request open for the head timeout is closed.
#[tokio::test]
async fn an_idle_connection_is_closed() {
    let server = Running::start(Config::default(), |c| c.http.request_timeout_secs = 1).await;
    let mut client = h2c(&server).await;
    client.call("GET", "/healthz", None).await;
    let H2 { send, driver, .. } = client;
    within("the idle connection to close", driver)
        .await
        .unwrap()
        .unwrap();
    drop(send);
    server.stop().await;
}

/// A client that does not answer keep-alive PINGs (it stopped reading the
/// whole connection, or is gone) loses the connection, its stream with it.
#[tokio::test]
async fn a_client_that_answers_no_ping_is_closed() {
    let server = Running::start(Config::default(), |c| {
        c.http.keep_alive_secs = 1;
        c.http.send_timeout_secs = 1;
    })
    .await;
    let mut setup = h2c(&server).await;
    setup.channel_with_listeners(&["l"]).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    raw::open(&mut tcp).await;
    let get = raw::get(1, "/v1/channels/c/listeners/l/events", &[]);
    tcp.write_all(&get).await.unwrap();
    let mut pinged = false;
    while let Some(frame) = within("the connection to close", raw::read(&mut tcp)).await {
        pinged |= frame.kind == raw::PING;
    }
    assert!(pinged, "closed without a PING");
    server.streams_become(0, 0).await;
    still_serves(&server).await;
    server.stop().await;
}

/// More streams at once than `h2_max_concurrent_streams`: the extra one is
/// refused by the protocol; the others and the server go on.
#[tokio::test]
async fn streams_past_the_limit_are_refused() {
    let server = Running::start(Config::default(), |c| c.http.h2_max_concurrent_streams = 2).await;
    let mut setup = h2c(&server).await;
    setup.channel_with_listeners(&["a", "b", "c"]).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    raw::open(&mut tcp).await;
    let mut three = Vec::new();
    for (id, l) in [(1, "a"), (3, "b"), (5, "c")] {
        three.extend(raw::get(
            id,
            &format!("/v1/channels/c/listeners/{l}/events"),
            &[],
        ));
    }
    tcp.write_all(&three).await.unwrap();
    loop {
        let frame = within("a refusal", raw::read(&mut tcp))
            .await
            .expect("the connection closed instead");
        if frame.kind == raw::RST_STREAM {
            assert_eq!((frame.stream, frame.reason()), (5, Reason::REFUSED_STREAM));
            break;
        }
        assert_ne!(frame.kind, raw::GOAWAY, "{frame:?}");
    }
    server.streams_become(2, 0).await;
    still_serves(&server).await;
    server.stop().await;
}

/// Rapid reset (CVE-2023-44487): streams opened and reset at once, many
/// times. The connection is told to go away; the server goes on.
#[tokio::test]
async fn rapid_reset_gets_goaway() {
    let server = Running::start(Config::default(), |_| {}).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    raw::open(&mut tcp).await;
    let mut flood = Vec::new();
    for i in 0..1000u32 {
        let id = 2 * i + 1;
        flood.extend(raw::get(id, "/healthz", &[]));
        flood.extend(raw::rst(id, 0x8)); // CANCEL
    }
    // The server may close before taking it all.
    let _ = tcp.write_all(&flood).await;
    let mut goaway = None;
    while let Some(frame) = within("the connection to close", raw::read(&mut tcp)).await {
        if frame.kind == raw::GOAWAY {
            goaway = Some(frame.reason());
        }
    }
    assert_eq!(goaway, Some(Reason::ENHANCE_YOUR_CALM));
    still_serves(&server).await;
    server.stop().await;
}

/// A header block over the limit (64 KiB): refused (431, a reset or the
/// connection), and the server goes on.
#[tokio::test]
async fn a_huge_header_block_is_refused() {
    let server = Running::start(Config::default(), |_| {}).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    raw::open(&mut tcp).await;
    let big = "v".repeat(100 * 1024);
    let _ = tcp
        .write_all(&raw::get(1, "/healthz", &[("x-big", &big)]))
        .await;
    let refusal = loop {
        let Some(frame) = within("a refusal", raw::read(&mut tcp)).await else {
            break "closed".to_owned();
        };
        match frame.kind {
            raw::HEADERS => {
                // `:status` (static index 8) with the value 431, as h2
                // encodes it: Huffman-coded, or (another encoder) plain.
                let huffman = [0x48, 0x83, 0x69, 0x90, 0xff];
                assert!(
                    frame.payload.starts_with(&huffman)
                        || frame.payload.windows(3).any(|w| w == b"431"),
                    "an answer that is not 431: {frame:?}"
                );
                break "431".to_owned();
            }
            raw::RST_STREAM | raw::GOAWAY => break format!("{:?}", frame.reason()),
            _ => {}
        }
    };
    assert!(!refusal.is_empty());
    still_serves(&server).await;
    server.stop().await;
}
