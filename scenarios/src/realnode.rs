//! What the real node binaries share (real build only): flags that may also come from the
//! environment, peers by name or address, the node clock a deployer can skew, and a small
//! HTTP/1.1 server side (one request per connection, JSON bodies).

use gauntlet_sim::Clock;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};
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

/// Parses `ID=HOST:PORT,…` and resolves every host (an address, or a name such as a compose
/// service or a kubernetes pod, whose DNS entry may appear only once it starts: names that do
/// not resolve yet are retried for up to `patience`).
pub async fn resolve_peers(list: &str, patience: Duration) -> Result<Vec<(u32, SocketAddr)>, String> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut out = Vec::new();
    for entry in list.split(',').filter(|e| !e.is_empty()) {
        let (id, host) = entry.split_once('=').ok_or_else(|| format!("--peers entry {entry:?} is not ID=HOST:PORT"))?;
        let id: u32 = parse("--peers id", id)?;
        let addr = loop {
            match tokio::net::lookup_host(host).await.map(|mut a| a.next()) {
                Ok(Some(addr)) => break addr,
                Ok(None) | Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(None) => return Err(format!("--peers entry {entry:?}: {host} has no address")),
                Err(e) => return Err(format!("--peers entry {entry:?}: cannot resolve {host}: {e}")),
            }
        };
        out.push((id, addr));
    }
    Ok(out)
}

/// Environment variable with the node clock's offset in milliseconds at start (may be negative).
pub const CLOCK_OFFSET_ENV: &str = "GAUNTLET_CLOCK_OFFSET_MS";
/// Environment variable with the node clock's drift in parts per million at start.
pub const CLOCK_DRIFT_ENV: &str = "GAUNTLET_CLOCK_DRIFT_PPM";

/// The node's clock, skewed as the deployer set it in the environment (default: true time).
pub fn clock_from_env() -> Result<Clock, String> {
    let get = |var: &str| std::env::var(var).ok().map(|v| parse::<i64>(var, &v)).transpose();
    Ok(Clock::new(get(CLOCK_OFFSET_ENV)?.unwrap_or(0), get(CLOCK_DRIFT_ENV)?.unwrap_or(0)))
}

/// The clock as JSON: its wall time (UNIX milliseconds), offset and drift.
pub fn clock_json(clock: &Clock) -> serde_json::Value {
    let wall = clock.now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let (offset, drift) = clock.skew();
    serde_json::json!({ "wall_ms": wall, "offset_ms": offset, "drift_ppm": drift })
}

/// The control route every node serves: `GET /clock` answers [`clock_json`]; `PUT /clock`
/// with `{"offset_ms": N, "drift_ppm": M}` skews the node's clock from now on (how a deployer
/// injects clock skew into a static binary, where libfaketime cannot reach). `None`: another
/// route.
pub fn clock_route(method: &str, path: &str, body: &[u8], clock: &Clock) -> Option<(u16, String)> {
    if path != "/clock" {
        return None;
    }
    Some(match method {
        "GET" => (200, clock_json(clock).to_string()),
        "PUT" | "POST" => match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(v) if v["offset_ms"].is_i64() || v["drift_ppm"].is_i64() => {
                clock.set_skew(v["offset_ms"].as_i64().unwrap_or(0), v["drift_ppm"].as_i64().unwrap_or(0));
                (200, clock_json(clock).to_string())
            }
            _ => (400, r#"{"error":"expected {\"offset_ms\": N, \"drift_ppm\": M}"}"#.to_owned()),
        },
        _ => (404, r#"{"error":"GET or PUT /clock"}"#.to_owned()),
    })
}
