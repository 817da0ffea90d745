//! One HTTP/1.1 connection of the load generator: a bare hyper client connection, with no
//! pool and no per-request allocation beyond the request itself, so the harness measures
//! the server rather than itself.

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
        let (status, body) = self.open_stream(call).await?;
        let bytes = body
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok((status, bytes))
    }

    /// Sends a request; returns its status and the body as it arrives (an event stream).
    pub async fn open_stream(&mut self, call: Call) -> std::io::Result<(u16, Incoming)> {
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
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(std::io::Error::other)?;
        Ok((response.status().as_u16(), response.into_body()))
    }
}
