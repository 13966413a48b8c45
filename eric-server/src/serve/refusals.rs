//! [`Refusals`]: hyper's own answers to requests it refuses, in the API's
//! JSON error shape.
//!
//! hyper answers a request head it cannot take (malformed: 400; over the
//! header count or the head size: 431; a URI over 64 KiB: 414) by itself,
//! before any handler runs, with an empty body, and has no hook to change
//! that. Clients would get the one answer of the API without its error
//! shape. So the connection under hyper recognises those answers as hyper
//! writes them and writes the JSON error instead.
//!
//! Recognised only with certainty: a write that starts a response with one
//! of those statuses, `content-length: 0` and no `content-type`. The API's
//! own errors always carry a JSON body and its type, so they never match;
//! hyper writes its answer in one buffer, after the previous response was
//! flushed, and closes the connection after it. Should a hyper release
//! change that form, the answer goes out unchanged (empty body), and the
//! `wire_errors` tests say so.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::http::ApiError;

/// A connection whose writes of hyper's refusals are replaced by JSON ones.
#[derive(Debug)]
pub(super) struct Refusals<T> {
    inner: T,
    /// The replacement being written, while one is.
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    bytes: Vec<u8>,
    written: usize,
    /// How many of hyper's bytes the replacement stands for: reported to
    /// hyper once the replacement is out.
    claimed: usize,
}

impl<T> Refusals<T> {
    pub(super) fn new(inner: T) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

/// The JSON answer for `buf` and the length of hyper's answer in it, if
/// `buf` starts with one of hyper's refusals.
fn replacement(buf: &[u8]) -> Option<(Vec<u8>, usize)> {
    let (status, code, message) = match buf.get(..13)? {
        b"HTTP/1.1 400 " => (
            StatusCode::BAD_REQUEST,
            "malformed_request",
            "the request is not well-formed HTTP/1.1",
        ),
        b"HTTP/1.1 414 " => (
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "the request target is too long",
        ),
        b"HTTP/1.1 431 " => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            "the request head has too many or too large header fields",
        ),
        _ => return None,
    };
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = buf[..end].to_ascii_lowercase();
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    if !has(b"\r\ncontent-length: 0\r\n") || has(b"\r\ncontent-type:") {
        return None;
    }
    let answer = ApiError::new(status, code, message).to_http1_bytes();
    Some((answer, end))
}

impl<T: AsyncWrite + Unpin> Refusals<T> {
    /// Writes the pending replacement; then reports hyper's bytes written.
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(Ok(0));
        };
        while pending.written < pending.bytes.len() {
            let rest = &pending.bytes[pending.written..];
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, rest))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            pending.written += n;
        }
        let claimed = pending.claimed;
        self.pending = None;
        Poll::Ready(Ok(claimed))
    }

    fn start(&mut self, buf: &[u8]) -> bool {
        if self.pending.is_none()
            && let Some((bytes, claimed)) = replacement(buf)
        {
            tracing::debug!(
                status = %String::from_utf8_lossy(&buf[9..12]),
                "request refused by the HTTP parser; answered in JSON"
            );
            self.pending = Some(Pending {
                bytes,
                written: 0,
                claimed,
            });
        }
        self.pending.is_some()
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Refusals<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Refusals<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.start(buf) {
            return this.drive(cx);
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        if this.start(first) {
            return this.drive(cx);
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_s_bodiless_refusals_are_replaced() {
        let hyper = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let (answer, claimed) = replacement(hyper).unwrap();
        assert_eq!(claimed, hyper.len());
        let text = String::from_utf8(answer).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 "), "{text}");
        assert!(text.ends_with(r#"{"error":{"code":"headers_too_large","message":"the request head has too many or too large header fields"}}"#), "{text}");
        for not_hyper in [
            &b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 57\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n",
            b"HTTP/1.1 4",
            b"",
        ] {
            assert!(replacement(not_hyper).is_none(), "{not_hyper:?}");
        }
    }
}
