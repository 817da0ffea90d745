//! Answers to requests hyper could not parse, as problem+json like every other error.
//!
//! hyper answers a request it cannot parse (a repeated or negative `Content-Length`, a NUL
//! in a header, a bad request line, headers over the limit) itself, before any service
//! runs, with an empty `400`, `414` or `431`, and it has no hook to change that answer. So
//! the connection's stream is wrapped: a write that is exactly such an answer (a head alone,
//! `content-length: 0`, one of those statuses, which no handler of ours ever sends) is
//! replaced by the same status with a problem+json body. Every other write passes through
//! untouched; the check is a prefix comparison on the first bytes of a write.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's stream whose parse-error answers are rewritten.
pub struct ProblemOnParseError<S> {
    inner: S,
    /// The replacement still to write, and how much of it has been.
    pending: Option<(&'static [u8], usize)>,
}

impl<S> ProblemOnParseError<S> {
    /// Wraps a connection's stream.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/problem+json\r\ncontent-length: 222\r\n\r\n{\"type\":\"/problems/malformed-request\",\"title\":\"Malformed request\",\"status\":400,\"detail\":\"the request is not valid HTTP/1.1: a bad request line, a header with a forbidden byte, or a Content-Length repeated or not a number\"}";
const URI_TOO_LONG: &[u8] = b"HTTP/1.1 414 URI Too Long\r\nconnection: close\r\ncontent-type: application/problem+json\r\ncontent-length: 129\r\n\r\n{\"type\":\"/problems/uri-too-long\",\"title\":\"URI too long\",\"status\":414,\"detail\":\"the request line is longer than the server reads\"}";
const HEADERS_TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-type: application/problem+json\r\ncontent-length: 161\r\n\r\n{\"type\":\"/problems/headers-too-large\",\"title\":\"Request header fields too large\",\"status\":431,\"detail\":\"the request's headers are larger than --max-header-bytes\"}";

/// The problem to send instead of `write`, if `write` is one of hyper's bare parse-error
/// answers.
fn replacement(write: &[u8]) -> Option<&'static [u8]> {
    const BARE: &[u8] = b"\r\nconnection: close\r\ncontent-length: 0\r\n";
    let rest = write.strip_prefix(b"HTTP/1.1 ")?;
    let problem = match rest.get(..4)? {
        b"400 " => BAD_REQUEST,
        b"414 " => URI_TOO_LONG,
        b"431 " => HEADERS_TOO_LARGE,
        _ => return None,
    };
    let head_end = write.windows(4).position(|w| w == b"\r\n\r\n")?;
    let is_bare = head_end + 4 == write.len() && write.windows(BARE.len()).any(|w| w == BARE);
    is_bare.then_some(problem)
}

impl<S: AsyncWrite + Unpin> ProblemOnParseError<S> {
    /// Writes what is left of a replacement; ready once it is all written.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while let Some((bytes, written)) = self.pending {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[written..]))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.pending = (written + n < bytes.len()).then_some((bytes, written + n));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemOnParseError<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProblemOnParseError<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(problem) = replacement(buf) {
            self.pending = Some((problem, 0));
            // The caller's bytes count as written; the replacement goes out in their place
            // (now as far as the socket takes it, the rest before any flush or shutdown).
            let _ = self.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        // A bare answer is one head in one buffer.
        if let [only] = bufs
            && replacement(only).is_some()
        {
            return self.poll_write(cx, only);
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn well_formed(answer: &[u8], status: u16) {
        let text = std::str::from_utf8(answer).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .and_then(|v| v.parse().ok())
            .expect("a content length");
        assert_eq!(body.len(), length, "{text}");
        let problem: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(problem["status"], status);
    }

    #[test]
    fn the_replacements_are_well_formed_problems() {
        well_formed(BAD_REQUEST, 400);
        well_formed(URI_TOO_LONG, 414);
        well_formed(HEADERS_TOO_LARGE, 431);
    }

    #[test]
    fn only_hypers_bare_answers_are_replaced() {
        let bare = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sat, 28 Nov 2026 17:48:21 GMT\r\n\r\n";
        assert_eq!(replacement(bare), Some(BAD_REQUEST));
        let large = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(replacement(large), Some(HEADERS_TOO_LARGE));
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 10\r\n\r\n{\"a\":1234}";
        assert_eq!(replacement(ours), None, "a handler's answer has a body");
        let ok = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(replacement(ok), None);
        assert_eq!(replacement(b"HTTP/1.1 400"), None);
    }
}
