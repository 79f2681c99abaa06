//! A small HTTP/1.1 client on real tokio (one request per connection, as the node binaries
//! serve): enough for operations, `/status`, `/healthz` and `/clock`; and, for servers that
//! speak no HTTP, Redis's protocol (RESP2): a call's commands pipelined on one connection.

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
/// A RESP call ([`HttpCall::resp`]) answers as described there.
pub async fn request(addr: SocketAddr, call: &HttpCall, timeout: Duration) -> Result<(u16, String), HttpError> {
    if call.is_resp() {
        return resp_request(addr, call, timeout).await;
    }
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

/// The most a RESP answer may hold.
pub const MAX_RESP_ANSWER: usize = 16 << 20;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Value(serde_json::Value),
    Error(String),
}

/// Encodes one command as a RESP array of bulk strings.
fn encode_command(args: &[String]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses one reply at the start of `buf`: `Ok(None)` if it is not complete yet, else the
/// reply and the bytes it took.
fn parse_reply(buf: &[u8]) -> Result<Option<(Resp, usize)>, String> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else { return Ok(None) };
    let line = String::from_utf8_lossy(&buf[1..end]).into_owned();
    let after = end + 2;
    let number = |l: &str| l.parse::<i64>().map_err(|_| format!("not a RESP length: {l:?}"));
    match buf.first() {
        Some(b'+') => Ok(Some((Resp::Value(line.into()), after))),
        Some(b'-') => Ok(Some((Resp::Error(line), after))),
        Some(b':') => Ok(Some((Resp::Value(number(&line)?.into()), after))),
        Some(b'$') => {
            let n = number(&line)?;
            if n < 0 {
                return Ok(Some((Resp::Value(serde_json::Value::Null), after)));
            }
            let n = n as usize;
            if buf.len() < after + n + 2 {
                return Ok(None);
            }
            let text = String::from_utf8_lossy(&buf[after..after + n]).into_owned();
            Ok(Some((Resp::Value(text.into()), after + n + 2)))
        }
        Some(b'*') => {
            let n = number(&line)?;
            if n < 0 {
                return Ok(Some((Resp::Value(serde_json::Value::Null), after)));
            }
            let (mut items, mut at) = (Vec::new(), after);
            for _ in 0..n {
                match parse_reply(&buf[at..])? {
                    None => return Ok(None),
                    // An error inside an array (EXEC's) is kept as its text.
                    Some((Resp::Error(e), used)) => {
                        items.push(serde_json::Value::String(format!("ERR {e}")));
                        at += used;
                    }
                    Some((Resp::Value(v), used)) => {
                        items.push(v);
                        at += used;
                    }
                }
            }
            Ok(Some((Resp::Value(items.into()), at)))
        }
        Some(other) => Err(format!("not a RESP reply (first byte {other:#04x})")),
        None => Ok(None),
    }
}

async fn resp_request(addr: SocketAddr, call: &HttpCall, timeout: Duration) -> Result<(u16, String), HttpError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut stream = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(HttpError::Connect(addr, e.to_string())),
        Err(_) => return Err(HttpError::Connect(addr, format!("timed out after {timeout:?}"))),
    };
    let _ = stream.set_nodelay(true);
    let request: Vec<u8> = call.resp.iter().flat_map(|c| encode_command(c)).collect();
    let exchange = async {
        stream.write_all(&request).await.map_err(|e| e.to_string())?;
        let (mut buf, mut replies) = (Vec::new(), Vec::new());
        let mut chunk = [0u8; 8192];
        while replies.len() < call.resp.len() {
            match parse_reply(&buf)? {
                Some((reply, used)) => {
                    replies.push(reply);
                    buf.drain(..used);
                }
                None => {
                    let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
                    if n == 0 {
                        return Err("the connection closed before every reply came".to_owned());
                    }
                    if buf.len() + n > MAX_RESP_ANSWER {
                        return Err(format!("an answer over {MAX_RESP_ANSWER} bytes"));
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
        Ok::<_, String>(replies)
    };
    let replies = match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(HttpError::NoAnswer(addr, e)),
        Err(_) => return Err(HttpError::NoAnswer(addr, format!("timed out after {timeout:?}"))),
    };
    let mut values = Vec::new();
    for r in replies {
        match r {
            Resp::Error(e) => return Ok((500, e)),
            Resp::Value(v) => values.push(v),
        }
    }
    let body = if values.len() == 1 { values.remove(0) } else { values.into() };
    Ok((200, body.to_string()))
}

#[cfg(test)]
mod resp_tests {
    use super::*;

    #[test]
    fn replies_parse_whole_or_wait_for_more() {
        let r = |b: &[u8]| parse_reply(b).unwrap();
        assert_eq!(r(b"+OK\r\n"), Some((Resp::Value("OK".into()), 5)));
        assert_eq!(r(b":42\r\n"), Some((Resp::Value(42.into()), 5)));
        assert_eq!(r(b"$-1\r\n"), Some((Resp::Value(serde_json::Value::Null), 5)));
        assert_eq!(r(b"$3\r\nabc\r\n"), Some((Resp::Value("abc".into()), 9)));
        assert_eq!(r(b"$3\r\nab"), None, "a bulk string still arriving");
        assert_eq!(r(b"*2\r\n$1\r\na\r\n:1\r\n"), Some((Resp::Value(serde_json::json!(["a", 1])), 15)));
        assert_eq!(r(b"*2\r\n$1\r\na\r\n"), None, "an array still arriving");
        assert_eq!(r(b"-READONLY no\r\n"), Some((Resp::Error("READONLY no".into()), 14)));
        assert!(parse_reply(b"HTTP/1.1 200 OK\r\n").is_err(), "not RESP");
        assert!(parse_reply(b"$x\r\n").is_err());
    }

    #[test]
    fn commands_encode_as_arrays_of_bulk_strings() {
        assert_eq!(
            encode_command(&["SADD".into(), "s".into(), "7".into()]),
            b"*3\r\n$4\r\nSADD\r\n$1\r\ns\r\n$1\r\n7\r\n"
        );
    }
}
