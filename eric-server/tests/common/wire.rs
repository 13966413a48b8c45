//! Real connections for the TLS and HTTP/2 tests: a server on a free port,
//! an HTTP/2 client (the `h2` crate, which lets a test hold a stream's
//! flow-control window shut) and raw HTTP/2 frames for what no polite
//! client sends.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, StatusCode};
use bytes::{Bytes, BytesMut};
use eric_server::{Config, Metrics, Server, Tls};
use h2::client::SendRequest;
use h2::{Reason, RecvStream};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Longest wait for anything; a healthy run takes a fraction of it.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub async fn within<F: std::future::Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A server serving on a task of the test's runtime.
pub struct Running {
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub tls: Option<Tls>,
    token: CancellationToken,
    task: JoinHandle<eric_server::Result<()>>,
}

impl Running {
    /// `config` on a free loopback port, after `tune`.
    pub async fn start(config: Config, tune: impl FnOnce(&mut Config)) -> Self {
        let mut config = config;
        config.http.addr = "127.0.0.1:0".parse().unwrap();
        // In memory: no data directory to share.
        config.storage.engine = eric_server::StorageEngine::Memory;
        tune(&mut config);
        let server = Server::bind(config).await.unwrap();
        let (addr, metrics, tls) = (server.http_addr().unwrap(), server.metrics(), server.tls());
        let token = CancellationToken::new();
        let task = tokio::spawn(server.run(token.clone()));
        Self {
            addr,
            metrics,
            tls,
            token,
            task,
        }
    }

    /// Starts shutdown.
    pub fn shut_down(&self) {
        self.token.cancel();
    }

    /// Shuts down and waits for the server to stop.
    pub async fn stop(self) {
        self.token.cancel();
        within("the server to stop", self.task)
            .await
            .unwrap()
            .unwrap();
    }

    /// Waits until the server's open and cut stream counts are these.
    pub async fn streams_become(&self, open: i64, cut: u64) {
        let mut events = self.metrics.stream_events();
        within(
            "the server's stream counts",
            events.wait_for(|&(o, c)| o == open && c == cut),
        )
        .await
        .unwrap();
    }
}

/// An HTTP/2 client connection; its driver runs on a task whose end (and
/// error) the test can await.
pub struct H2 {
    pub send: SendRequest<Bytes>,
    pub driver: JoinHandle<Result<(), h2::Error>>,
    /// Sent as `Authorization: Bearer` on every request, when set.
    pub bearer: Option<String>,
}

impl H2 {
    /// The client side of HTTP/2 over `io`, with h2's default windows.
    pub async fn handshake<IO>(io: IO) -> Self
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Self::handshake_with(io, &h2::client::Builder::new()).await
    }

    pub async fn handshake_with<IO>(io: IO, builder: &h2::client::Builder) -> Self
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, connection) = within("the HTTP/2 handshake", builder.handshake(io))
            .await
            .unwrap();
        let driver = tokio::spawn(connection);
        Self {
            send,
            driver,
            bearer: None,
        }
    }

    /// Sends a request; its response head and body stream.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> axum::http::Response<RecvStream> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("http://localhost{path}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        if let Some(token) = &self.bearer {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(()).unwrap();
        let send = within("a stream slot", self.send.clone().ready())
            .await
            .unwrap();
        self.send = send;
        let (response, mut stream) = self.send.send_request(request, body.is_none()).unwrap();
        if let Some(body) = body {
            stream
                .send_data(Bytes::from(body.to_string()), true)
                .unwrap();
        }
        within("a response head", response).await.unwrap()
    }

    /// A request whose answer is read whole: its status and JSON body.
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = self.request(method, path, body).await;
        let status = response.status();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(data) = within("a response body", body.data()).await {
            let data = data.unwrap();
            body.flow_control().release_capacity(data.len()).unwrap();
            bytes.extend_from_slice(&data);
        }
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// A call that must succeed.
    pub async fn ok(&mut self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method, path, body).await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    /// Channel `c` with started listeners `ls`.
    pub async fn channel_with_listeners(&mut self, ls: &[&str]) {
        self.ok("POST", "/v1/channels", Some(serde_json::json!({"id": "c"})))
            .await;
        for l in ls {
            let path = "/v1/channels/c/listeners";
            self.ok("POST", path, Some(serde_json::json!({"id": l})))
                .await;
            let start = format!("/v1/channels/c/listeners/{l}/start");
            self.ok("POST", &start, None).await;
        }
    }

    /// Dispatches `{"type": "n", "payload": payload}` to listener `l`.
    pub async fn dispatch(&mut self, l: &str, payload: Value) {
        let path = format!("/v1/channels/c/listeners/{l}/messages");
        let body = serde_json::json!({"type": "n", "payload": payload});
        self.ok("POST", &path, Some(body)).await;
    }

    /// Opens listener `l`'s stream.
    pub async fn events(&mut self, l: &str) -> Events {
        let response = self
            .request("GET", &format!("/v1/channels/c/listeners/{l}/events"), None)
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        Events::new(response.into_body())
    }
}

/// An SSE body read block by block.
pub struct Events {
    pub body: RecvStream,
    buf: Vec<u8>,
}

impl Events {
    pub fn new(body: RecvStream) -> Self {
        Self {
            body,
            buf: Vec::new(),
        }
    }

    /// The next block (`\n\n`-terminated) as text; `Ok(None)`: the stream
    /// ended cleanly. Releases flow-control capacity as it reads.
    pub async fn block(&mut self) -> Result<Option<String>, h2::Error> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                return Ok(Some(String::from_utf8(block).unwrap()));
            }
            match within("stream data", self.body.data()).await {
                None => return Ok(None),
                Some(data) => {
                    let data = data?;
                    self.body
                        .flow_control()
                        .release_capacity(data.len())
                        .unwrap();
                    self.buf.extend_from_slice(&data);
                }
            }
        }
    }

    /// The next event's block (comments and the `retry:` block skipped).
    pub async fn event(&mut self) -> String {
        loop {
            let block = self.block().await.unwrap().expect("the stream ended");
            if block.lines().any(|l| l.starts_with("id:")) {
                return block;
            }
        }
    }

    /// The next block that is a comment containing `text`.
    pub async fn comment(&mut self, text: &str) {
        loop {
            let block = self.block().await.unwrap().expect("the stream ended");
            if block.starts_with(':') && block.contains(text) {
                return;
            }
        }
    }
}

/// Raw HTTP/2 frames, for what no well-behaved client sends.
pub mod raw {
    use super::*;

    pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const CONTINUATION: u8 = 9;
    pub const END_STREAM: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;

    /// One frame.
    pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut out = len.to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags]);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// An HPACK integer with a 7-bit prefix (no Huffman flag).
    fn int7(mut n: usize, out: &mut Vec<u8>) {
        if n < 127 {
            out.push(n as u8);
            return;
        }
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push((n % 128) as u8 | 0x80);
            n /= 128;
        }
        out.push(n as u8);
    }

    /// A header block of literal fields (never indexed by the decoder).
    pub fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in fields {
            out.push(0x00);
            int7(name.len(), &mut out);
            out.extend_from_slice(name.as_bytes());
            int7(value.len(), &mut out);
            out.extend_from_slice(value.as_bytes());
        }
        out
    }

    /// A `GET path` request on `stream`, its block split into frames of
    /// at most 16 KiB (HEADERS, then CONTINUATIONs).
    pub fn get(stream: u32, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut fields = vec![
            (":method", "GET"),
            (":scheme", "http"),
            (":path", path),
            (":authority", "localhost"),
        ];
        fields.extend_from_slice(extra);
        let block = header_block(&fields);
        let pieces: Vec<&[u8]> = block.chunks(16 * 1024).collect();
        let mut out = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let last = if i + 1 == pieces.len() {
                END_HEADERS
            } else {
                0
            };
            let (kind, flags) = if i == 0 {
                (HEADERS, END_STREAM | last)
            } else {
                (CONTINUATION, last)
            };
            out.extend(frame(kind, flags, stream, piece));
        }
        out
    }

    pub fn rst(stream: u32, code: u32) -> Vec<u8> {
        frame(RST_STREAM, 0, stream, &code.to_be_bytes())
    }

    /// A frame read back: kind, flags, stream, payload.
    #[derive(Debug)]
    pub struct Frame {
        pub kind: u8,
        pub flags: u8,
        pub stream: u32,
        pub payload: Bytes,
    }

    impl Frame {
        /// The error code of a RST_STREAM or GOAWAY.
        pub fn reason(&self) -> Reason {
            let at = if self.kind == GOAWAY { 4 } else { 0 };
            let code: [u8; 4] = self.payload[at..at + 4].try_into().unwrap();
            Reason::from(u32::from_be_bytes(code))
        }
    }

    /// The next frame, or `None` at the end of the connection (or an error
    /// reading it: the server dropped it).
    pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> Option<Frame> {
        let mut head = [0u8; 9];
        r.read_exact(&mut head).await.ok()?;
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = BytesMut::zeroed(len);
        r.read_exact(&mut payload).await.ok()?;
        Some(Frame {
            kind: head[3],
            flags: head[4],
            stream: u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff,
            payload: payload.freeze(),
        })
    }

    /// Opens a connection the raw way: preface and empty SETTINGS, then
    /// waits for the server's SETTINGS and acknowledges them (so the
    /// server's limits are in force for what follows).
    pub async fn open<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) {
        let mut hello = PREFACE.to_vec();
        hello.extend(frame(SETTINGS, 0, 0, &[]));
        s.write_all(&hello).await.unwrap();
        loop {
            let f = within("the server's SETTINGS", read(s)).await.unwrap();
            if f.kind == SETTINGS && f.flags & 1 == 0 {
                s.write_all(&frame(SETTINGS, 1, 0, &[])).await.unwrap();
                return;
            }
        }
    }
}
