//! What the real node binaries share (real build only): flags that may also come from the
//! environment, and a small HTTP/1.1 server side (one request per connection, JSON bodies).

use std::collections::BTreeMap;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A flag's value, or its environment variable's. Flags win.
pub fn setting(args: &[String], flag: &str, env: &str) -> Option<String> {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned().or_else(|| std::env::var(env).ok())
}

/// A setting that must be given.
pub fn required(args: &[String], flag: &str, env: &str) -> Result<String, String> {
    setting(args, flag, env).ok_or_else(|| format!("missing {flag} (or {env}); see the usage in the binary's docs"))
}

/// Parses a setting's value, naming it if it does not parse.
pub fn parse<T: std::str::FromStr>(what: &str, v: &str) -> Result<T, String> {
    v.parse().map_err(|_| format!("{what} {v:?} is not valid"))
}

/// One HTTP request: method, path, headers (lower-cased names), body, and the connection to
/// answer on.
pub type Request = (String, String, BTreeMap<String, String>, Vec<u8>, TcpStream);

/// Reads one request (bodies up to 1 MiB); a request that cannot be read is answered with
/// the status and JSON error returned alongside the connection.
pub async fn read_request(stream: TcpStream) -> Result<Request, (u16, String, TcpStream)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).await.is_err() {
        return Err((400, r#"{"error":"unreadable request"}"#.into(), reader.into_inner()));
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned());
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await.is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
        if headers.len() > 100 {
            break;
        }
    }
    let len: usize = headers.get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0).min(1 << 20);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).await.is_err() {
        return Err((400, r#"{"error":"short body"}"#.into(), reader.into_inner()));
    }
    Ok((method, path, headers, body, reader.into_inner()))
}

/// Writes a JSON (or plain) response and closes.
pub async fn respond(stream: &mut TcpStream, status: u16, body: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        421 => "Misdirected Request",
        _ => "Gateway Timeout",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await
}
