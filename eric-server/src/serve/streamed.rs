//! Answers a stream request recognised by [`super::first`] without hyper:
//! the router produces the response, this writes it to the socket.
//!
//! An SSE response goes out with chunked encoding, one write per body chunk,
//! and `connection: close`: the stream holds the connection until it ends,
//! and then the connection closes. While it streams, the read side is
//! watched, so a client that leaves is noticed at once (its stream then
//! gives back what it took but did not send); a client that sends more than
//! a few KiB instead is cut, as reading on would let it keep the server
//! busy. Any other response (an error
//! before the stream started) goes out whole with its length, and the
//! connection closes. The connection's token cuts everything short: the
//! stream cancels it when its client stops reading, the server when the
//! shutdown grace runs out.

use std::future::Future;
use std::io;
use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use bytes::{Buf, Bytes};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tower::ServiceExt;

use crate::http::ConnectionContext;

/// The largest non-stream answer (an error) collected to be written whole.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// What a stream's client may send after its request head before the
/// connection is closed: room for a pipelined request or two, nothing a
/// client that means well sends more of.
const MAX_AFTER_HEAD: usize = 8 * 1024;

/// A connection this writer serves: one it can write to and watch for its
/// client leaving.
pub(super) trait Watched: AsyncRead + AsyncWrite + Unpin + Send {
    /// Waits for the client to send something, reads it and drops it:
    /// how many bytes (0: the client closed its side).
    fn discard(&mut self) -> impl Future<Output = io::Result<usize>> + Send;
}

impl Watched for TcpStream {
    async fn discard(&mut self) -> io::Result<usize> {
        loop {
            self.readable().await?;
            // Declared after the wait, so the future does not hold it while
            // the stream idles (a KiB per stream).
            let mut sink = [0u8; 1024];
            match self.try_read(&mut sink) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                read => return read,
            }
        }
    }
}

impl Watched for TlsStream<TcpStream> {
    /// Reads through TLS: the bytes must be decrypted to be seen (and
    /// rustls holds buffers of its own, far larger than this one).
    async fn discard(&mut self) -> io::Result<usize> {
        let mut sink = [0u8; 1024];
        self.read(&mut sink).await
    }
}

/// Answers `request` on `stream` until the answer ends, the client leaves
/// or the connection's token fires.
pub(super) async fn serve<C: Watched>(
    mut stream: C,
    mut request: Request<Body>,
    app: Router,
    context: ConnectionContext,
) {
    let close = context.close.clone();
    request.extensions_mut().insert(context);
    let response = tokio::select! {
        response = app.oneshot(request) => match response {
            Ok(response) => response,
            Err(infallible) => match infallible {},
        },
        () = close.cancelled() => return,
    };
    let outcome = tokio::select! {
        outcome = write_response(&mut stream, response) => outcome,
        () = close.cancelled() => return,
    };
    match outcome {
        Ok(()) => {
            let _ = stream.shutdown().await;
        }
        Err(error) => tracing::debug!(%error, "stream connection ended with an error"),
    }
}

async fn write_response<C: Watched>(stream: &mut C, response: Response<Body>) -> io::Result<()> {
    let (parts, body) = response.into_parts();
    let is_stream = parts.status == StatusCode::OK
        && parts
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        let bytes = axum::body::to_bytes(body, MAX_ANSWER_BYTES)
            .await
            .map_err(io::Error::other)?;
        let head = encode_head(parts.status, &parts.headers, Length::Known(bytes.len()));
        stream.write_all(&head).await?;
        stream.write_all(&bytes).await?;
        return stream.flush().await;
    }
    // The head and the response's parts go before the stream's long wait:
    // whatever is alive across it is held for the stream's whole life.
    let head = encode_head(parts.status, &parts.headers, Length::Chunked);
    drop(parts);
    stream.write_all(&head).await?;
    drop(head);
    // Writes are flushed one by one: a TLS connection holds what it was
    // given until flushed (a plain one sends it at once).
    stream.flush().await?;
    let mut body = body;
    loop {
        let frame = tokio::select! {
            frame = body.frame() => frame,
            done = client_done(stream) => return done,
        };
        match frame {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                {
                    stream.write_all_buf(&mut chunk(data)).await?;
                    stream.flush().await?;
                }
            }
            Some(Err(error)) => return Err(io::Error::other(error)),
            None => {
                stream.write_all(b"0\r\n\r\n").await?;
                return stream.flush().await;
            }
        }
    }
}

/// Resolves when the client closed its side, the connection broke, or the
/// client sent more than [`MAX_AFTER_HEAD`] bytes. Bytes it sends meanwhile
/// are read and dropped (the answer says `connection: close`, so no further
/// request is served on it), but only up to that bound: a client that keeps
/// sending would otherwise keep this task reading, and a flood of them the
/// whole server. Past the bound the connection is closed.
async fn client_done<C: Watched>(stream: &mut C) -> io::Result<()> {
    let mut taken = 0usize;
    loop {
        match stream.discard().await? {
            0 => return Ok(()),
            n => {
                taken += n;
                if taken > MAX_AFTER_HEAD {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "the client sent over {MAX_AFTER_HEAD} bytes after a stream request"
                        ),
                    ));
                }
            }
        }
    }
}

/// One chunk of chunked encoding around `data`, for one vectored write.
fn chunk(data: Bytes) -> impl Buf {
    let size = Bytes::from(format!("{:x}\r\n", data.len()));
    size.chain(data).chain(&b"\r\n"[..])
}

enum Length {
    Known(usize),
    Chunked,
}

/// The status line and headers. The framing headers are this writer's
/// (any from the handler are dropped); `date` as hyper would add it.
fn encode_head(status: StatusCode, headers: &HeaderMap, length: Length) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        if [
            header::CONTENT_LENGTH,
            header::TRANSFER_ENCODING,
            header::CONNECTION,
            header::DATE,
        ]
        .contains(name)
        {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match length {
        Length::Known(len) => {
            out.extend_from_slice(format!("content-length: {len}\r\n").as_bytes())
        }
        Length::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"connection: close\r\ndate: ");
    out.extend_from_slice(httpdate::fmt_http_date(SystemTime::now()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn heads_carry_the_handlers_headers_and_this_framing() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        let head = encode_head(StatusCode::OK, &headers, Length::Chunked);
        let text = String::from_utf8(head).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"));
        assert!(text.contains("transfer-encoding: chunked\r\nconnection: close\r\ndate: "));
        assert!(!text.contains("99"));
        assert!(text.ends_with(" GMT\r\n\r\n"));

        let head = encode_head(StatusCode::NOT_FOUND, &HeaderMap::new(), Length::Known(12));
        let text = String::from_utf8(head).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\ncontent-length: 12\r\n"));
    }

    #[test]
    fn chunks_are_framed_with_their_hex_size() {
        let mut buf = chunk(Bytes::from(vec![b'x'; 26]));
        let bytes = buf.copy_to_bytes(buf.remaining());
        assert_eq!(&bytes[..4], b"1a\r\n");
        assert!(bytes.ends_with(b"x\r\n"));
        assert_eq!(bytes.len(), 4 + 26 + 2);
    }
}
