//! One HTTP/1.1 connection of the load generator: a bare hyper client connection, with no
//! pool and no per-request allocation beyond the request itself, so the harness measures
//! the server rather than itself.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;

/// An open keep-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    authorization: Option<String>,
}

/// A request to send.
pub struct Call {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Body and its content type.
    pub body: Option<(&'static str, Bytes)>,
}

/// A whole answer.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds, where the answer carried one.
    pub retry_after: Option<Duration>,
    /// The body.
    pub body: Bytes,
}

impl Conn {
    /// Connects to `addr`; `key`, if any, is sent as a bearer token.
    pub async fn open(addr: std::net::SocketAddr, key: Option<&str>) -> std::io::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            sender,
            host: addr.to_string(),
            authorization: key.map(|k| format!("Bearer {k}")),
        })
    }

    /// Sends a request and reads the whole answer; returns its status and body.
    pub async fn send(&mut self, call: Call) -> std::io::Result<(u16, Bytes)> {
        let answer = self.send_told(call).await?;
        Ok((answer.status, answer.body))
    }

    /// Sends a request and reads the whole answer, with the wait a refusal asked for.
    pub async fn send_told(&mut self, call: Call) -> std::io::Result<Answer> {
        let response = self.respond(call).await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    /// Sends a request; returns its status and the body as it arrives (an event stream).
    pub async fn open_stream(&mut self, call: Call) -> std::io::Result<(u16, Incoming)> {
        let response = self.respond(call).await?;
        Ok((response.status().as_u16(), response.into_body()))
    }

    /// Sends a request; returns the answer's head, with its body to read.
    async fn respond(&mut self, call: Call) -> std::io::Result<hyper::Response<Incoming>> {
        let mut builder = Request::builder()
            .method(call.method)
            .uri(call.path)
            .header("host", &self.host);
        if let Some(auth) = &self.authorization {
            builder = builder.header("authorization", auth);
        }
        let body = match call.body {
            Some((content_type, bytes)) => {
                builder = builder.header("content-type", content_type);
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).map_err(std::io::Error::other)?;
        self.sender.ready().await.map_err(std::io::Error::other)?;
        self.sender
            .send_request(request)
            .await
            .map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A server of one connection that answers each request with `answers` in turn.
    async fn serve(answers: &'static [&'static str]) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accepts");
            let mut buf = [0u8; 4096];
            for answer in answers {
                let _ = stream.read(&mut buf).await.expect("reads a request");
                stream.write_all(answer.as_bytes()).await.expect("answers");
            }
        });
        addr
    }

    #[tokio::test]
    async fn a_refusal_tells_the_wait_it_asked_for_and_an_answer_without_one_tells_none() {
        let addr = serve(&[
            "HTTP/1.1 503 Service Unavailable\r\nretry-after: 2\r\ncontent-length: 2\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
        ])
        .await;
        let mut conn = Conn::open(addr, None).await.expect("connects");
        let call = || Call {
            method: Method::GET,
            path: "/".into(),
            body: None,
        };
        let refused = conn.send_told(call()).await.expect("answered");
        assert_eq!(refused.status, 503);
        assert_eq!(refused.retry_after, Some(Duration::from_secs(2)));
        let done = conn.send_told(call()).await.expect("answered");
        assert_eq!((done.status, done.retry_after), (200, None));
        assert_eq!(&done.body[..], b"ok");
    }
}
