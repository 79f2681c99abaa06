//! HTTP/1.1 over [`gauntlet::sim::net`] streams with hyper, for both sides of pb-kv: the
//! replicas' server and every client of it (the primary shipping its log, the simulated
//! clients, the observer). The same code runs on simulated streams and, in the real build, on
//! tokio's sockets.

use gauntlet::sim::net::TcpStream;
use gauntlet::sim::time;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// The largest request or response body either side reads.
pub const MAX_BODY: usize = 1 << 20;

/// A request's or response's body, read whole (up to [`MAX_BODY`]).
pub async fn read_body(body: Incoming) -> Result<Vec<u8>, String> {
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes().to_vec()),
        Err(e) => Err(format!("body unreadable or over {MAX_BODY} bytes: {e}")),
    }
}

/// A JSON response.
pub fn json(status: u16, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.into())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    r
}

/// A connection to one server: hyper's HTTP/1.1 client over a stream, its driver spawned on the
/// node. Requests go one at a time; one that fails leaves the connection unusable.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    /// Connects to `addr` (`host:port`; under simulation host is a node's name), within
    /// `timeout`.
    pub async fn open(addr: &str, timeout: Duration) -> Result<Conn, String> {
        let connect = async {
            let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
            let _ = stream.set_nodelay(true);
            hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake with {addr}: {e}"))
        };
        let (sender, driver) =
            time::timeout(timeout, connect).await.map_err(|_| format!("connect {addr}: timed out"))??;
        time::spawn_local(async move {
            let _ = driver.await;
        });
        Ok(Conn { sender, host: addr.to_owned() })
    }

    /// Whether the connection can take another request.
    pub fn usable(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends one request and reads the whole answer within `timeout`: status and body, or why
    /// not (a timeout, a reset, a refused connection — the request may or may not have been
    /// handled).
    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(u16, String), String> {
        let mut req = Request::builder().method(method).uri(path).header("host", &self.host);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| format!("bad request {method} {path}: {e}"))?;
        let exchange = async {
            let resp = self.sender.send_request(req).await.map_err(|e| describe(&e))?;
            let status = resp.status().as_u16();
            let body = read_body(resp.into_body()).await?;
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        };
        time::timeout(timeout, exchange).await.map_err(|_| format!("{method} {path}: no answer in {timeout:?}"))?
    }
}

/// hyper's error with the IO error underneath, if any ("connection reset", "timed out").
fn describe(e: &hyper::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    text
}

/// One request on a fresh connection (what a client without a pool does).
pub async fn call_once(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(u16, String), String> {
    let exchange = async {
        let mut conn = Conn::open(addr, timeout).await?;
        conn.call(method, path, headers, body, timeout).await
    };
    time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("{method} {path} to {addr}: no answer in {timeout:?}"))?
}
