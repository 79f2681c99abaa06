//! A small HTTP/1.1 client on real tokio (one request per connection, as the node binaries
//! serve): enough for operations, `/status`, `/healthz` and `/clock`.

use gauntlet::HttpCall;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No connection: the request was certainly not received.
    #[error("cannot connect to {0}: {1}")]
    Connect(SocketAddr, String),
    /// The connection broke or timed out after the request may have been received.
    #[error("no complete answer from {0}: {1}")]
    NoAnswer(SocketAddr, String),
}

/// Sends `call` to `addr` and reads the answer: `(status, body)`. `timeout` bounds the whole
/// exchange.
pub async fn request(addr: SocketAddr, call: &HttpCall, timeout: Duration) -> Result<(u16, String), HttpError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(HttpError::Connect(addr, e.to_string())),
        Err(_) => return Err(HttpError::Connect(addr, format!("timed out after {timeout:?}"))),
    };
    let _ = stream.set_nodelay(true);
    let mut head = format!("{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n", call.method, call.path);
    for (k, v) in &call.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", call.body.len()));
    let exchange = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&call.body).await?;
        stream.flush().await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err(HttpError::NoAnswer(addr, e.to_string())),
        Err(_) => return Err(HttpError::NoAnswer(addr, format!("timed out after {timeout:?}"))),
    };
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| HttpError::NoAnswer(addr, format!("not an HTTP answer: {:?}", head.lines().next())))?;
    Ok((status, body.to_owned()))
}

/// `GET path` on `addr`.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<(u16, String), HttpError> {
    request(addr, &HttpCall::new("GET", path), timeout).await
}
