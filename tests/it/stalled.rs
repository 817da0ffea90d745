//! A client that stops reading: a raw connection that sends a request and then reads
//! nothing until asked, so the server's writes back up (once the kernel's buffers on both
//! sides are full, some megabytes).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Connects and sends `GET path`.
pub async fn open(addr: SocketAddr, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\naccept: text/event-stream\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    stream
}

/// Everything the server sent, read until a `reset` event has arrived (or 20 s pass).
pub async fn read_all(mut stream: TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buf[..n]),
            _ => break,
        }
        if received.windows(12).any(|w| w == b"event: reset") {
            break;
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}
