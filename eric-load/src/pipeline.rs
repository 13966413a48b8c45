//! [`Pipeline`]: HTTP/1.1 pipelining on a raw TCP connection, for `--batch`.
//!
//! A batch of requests goes out in one write and their answers are read back
//! in order. The client then spends a few hundred nanoseconds per request
//! (format once, parse a status line and a `content-length`), so on a small
//! machine shared with the server the figure measures the server, not the
//! client. Only what the server answers to a dispatch is understood:
//! `content-length` bodies, no chunked encoding, plain `http://`.
//!
//! This is the one place (with the socket mode) where the tool writes its
//! own requests instead of calling `eric-client`: a client library sends
//! one request per round trip and spends microseconds on each, which at the
//! rates measured here would hide the server behind the client. The URLs
//! still come from `eric-client`, so the routes are named in one place.

use std::time::Instant;

use eric_client::Url;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::stats::Latencies;
use crate::error::{Error, Result};

/// Read buffer growth step.
const READ_CHUNK: usize = 64 * 1024;

/// Pipelining options, shared by the modes that dispatch.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct Batching {
    /// Pipeline requests (HTTP/1.1): each connection writes a batch of them
    /// at once, then reads their answers; the client's cost per request
    /// becomes small.
    #[arg(long)]
    pub(crate) batch: bool,
    /// Requests per batch with --batch.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) batch_size: u32,
}

/// Where the requests go, from the server's URL.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// `host:port` to connect to.
    addr: String,
    /// The `Host` header.
    host: String,
}

impl Endpoint {
    /// The endpoint of `url` (`http://` only) and the URL's path and query.
    pub(crate) fn parse(parsed: &Url) -> Result<(Self, String)> {
        let host = parsed.host_str().filter(|_| parsed.scheme() == "http");
        let (Some(host), Some(port)) = (host, parsed.port_or_known_default()) else {
            return Err(Error::Unexpected {
                target: parsed.to_string(),
                answer: parsed.scheme().to_owned(),
                expected: "an http:// URL with a host (--batch speaks plain HTTP/1.1)",
            });
        };
        let path = match parsed.query() {
            Some(query) => format!("{}?{query}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let endpoint = Self {
            addr: format!("{host}:{port}"),
            host: format!("{host}:{port}"),
        };
        Ok((endpoint, path))
    }

    /// Appends a `POST path` with a JSON `body` to `out`.
    pub(crate) fn push_post(&self, out: &mut Vec<u8>, path: &str, body: &[u8]) {
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
    }
}

/// How a batch was answered.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answers {
    /// 2xx answers.
    pub(crate) ok: u64,
    /// Other answers.
    pub(crate) failed: u64,
    /// The status of the first failed one.
    pub(crate) first_failure: Option<u16>,
}

/// One keep-alive connection carrying batches of requests.
#[derive(Debug)]
pub(crate) struct Pipeline {
    stream: TcpStream,
    addr: String,
    /// Bytes read and not yet parsed (answers of a batch arrive in pieces).
    buffer: Vec<u8>,
}

impl Pipeline {
    /// Connects to `endpoint`.
    pub(crate) async fn connect(endpoint: &Endpoint) -> Result<Self> {
        let stream = TcpStream::connect(&endpoint.addr)
            .await
            .map_err(Error::io(&endpoint.addr, "connect"))?;
        stream
            .set_nodelay(true)
            .map_err(Error::io(&endpoint.addr, "set TCP_NODELAY"))?;
        Ok(Self {
            stream,
            addr: endpoint.addr.clone(),
            buffer: Vec::with_capacity(READ_CHUNK),
        })
    }

    /// Writes `requests` (`count` requests back to back) and reads their
    /// answers, recording each one's latency from the start of the write.
    pub(crate) async fn round(
        &mut self,
        requests: &[u8],
        count: usize,
        latencies: &mut Latencies,
    ) -> Result<Answers> {
        let began = Instant::now();
        let (mut reader, mut writer) = self.stream.split();
        let addr = self.addr.as_str();
        // Write and read at once: a batch larger than the socket buffers
        // would otherwise deadlock with a server blocked on its answers.
        let write = async {
            writer
                .write_all(requests)
                .await
                .map_err(Error::io(addr, "write"))
        };
        let read = read_answers(&mut reader, &mut self.buffer, addr, count, began, latencies);
        let (written, answers) = tokio::join!(write, read);
        written?;
        answers
    }
}

/// Reads `count` answers from `reader` through `buffer`, recording each
/// one's latency since `began`.
async fn read_answers(
    reader: &mut (impl AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
    addr: &str,
    count: usize,
    began: Instant,
    latencies: &mut Latencies,
) -> Result<Answers> {
    let mut answers = Answers::default();
    let mut start = 0;
    while answers.ok + answers.failed < count as u64 {
        match parse_answer(&buffer[start..]) {
            Ok(Some((status, length))) => {
                start += length;
                latencies.record(began.elapsed());
                if (200..300).contains(&status) {
                    answers.ok += 1;
                } else {
                    answers.failed += 1;
                    answers.first_failure.get_or_insert(status);
                }
            }
            Ok(None) => {
                buffer.drain(..start);
                start = 0;
                buffer.reserve(READ_CHUNK);
                let read = reader
                    .read_buf(buffer)
                    .await
                    .map_err(Error::io(addr, "read"))?;
                if read == 0 {
                    return Err(Error::Unexpected {
                        target: addr.to_owned(),
                        answer: "end of stream".to_owned(),
                        expected: "an answer for every pipelined request",
                    });
                }
            }
            Err(expected) => {
                let text = String::from_utf8_lossy(&buffer[start..]);
                return Err(Error::Unexpected {
                    target: addr.to_owned(),
                    answer: text.chars().take(120).collect(),
                    expected,
                });
            }
        }
    }
    buffer.drain(..start);
    Ok(answers)
}

/// The status and the length of the answer at the start of `buf`, once it
/// is all there; the error says what was expected instead.
fn parse_answer(buf: &[u8]) -> Result<Option<(u16, usize)>, &'static str> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let mut lines = buf[..head_end].split(|&b| b == b'\n');
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix(b"HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(decimal)
        .and_then(|s| u16::try_from(s).ok())
        .ok_or("an HTTP/1.x status line")?;
    let mut length = None;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"content-length") {
            length = Some(decimal(value).ok_or("a numeric content-length")?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err("a content-length answer (chunked answers are not read)");
        }
    }
    let length = usize::try_from(length.ok_or("a content-length header")?)
        .map_err(|_| "a content-length that fits in memory")?;
    let total = head_end + 4 + length;
    Ok((buf.len() >= total).then_some((status, total)))
}

/// A bare unsigned decimal number (no sign, no space).
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &[u8] =
        b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\nContent-Length: 9\r\n\r\n{\"seq\":1}";

    #[test]
    fn answers_are_read_once_complete() {
        assert_eq!(parse_answer(ANSWER), Ok(Some((202, ANSWER.len()))));
        for cut in 0..ANSWER.len() {
            assert_eq!(parse_answer(&ANSWER[..cut]), Ok(None), "cut at {cut}");
        }
        let mut two = ANSWER.to_vec();
        two.extend_from_slice(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(parse_answer(&two), Ok(Some((202, ANSWER.len()))));
        assert_eq!(
            parse_answer(&two[ANSWER.len()..]),
            Ok(Some((429, two.len() - ANSWER.len())))
        );
    }

    #[test]
    fn unsupported_answers_are_errors() {
        assert!(parse_answer(b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
    }

    #[test]
    fn endpoints_come_from_http_urls() {
        let url = |text: &str| Url::parse(text).unwrap();
        let (endpoint, path) =
            Endpoint::parse(&url("http://127.0.0.1:9/v1/channels/c?x=1")).unwrap();
        assert_eq!(
            (endpoint.addr.as_str(), path.as_str()),
            ("127.0.0.1:9", "/v1/channels/c?x=1")
        );
        let mut out = Vec::new();
        endpoint.push_post(&mut out, &path, b"{}");
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("POST /v1/channels/c?x=1 HTTP/1.1\r\nhost: 127.0.0.1:9\r\n"),
            "{text}"
        );
        assert!(text.ends_with("content-length: 2\r\n\r\n{}"), "{text}");
        assert!(Endpoint::parse(&url("https://example.com/")).is_err());
        assert!(Endpoint::parse(&url("mailto:someone")).is_err());
    }
}
