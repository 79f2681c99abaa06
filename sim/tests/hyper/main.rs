//! hyper's HTTP/1.1 server and client, unchanged, over the simulated streams: the only
//! Gauntlet-specific lines are the listener and the connector (`gauntlet_sim::net`), and
//! `auto_date_header(false)` (hyper stamps each response with a `Date` from a per-thread cache of
//! the system clock; without it, responses carry no clock bytes at all).

#![cfg(madsim)]

use crate::common;

use common::*;
use gauntlet_sim::net::{TcpListener, TcpStream};
use gauntlet_sim::time::{elapsed, sleep, spawn};
use gauntlet_sim::{Fault, LinkConfig, NodeSpec, TcpConfig, World, WorldBuilder};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

type Store = Arc<Mutex<BTreeMap<String, String>>>;

/// `GET /kv/K` and `PUT /kv/K` (the value as the body) on a map.
async fn kv(store: Store, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let key = req.uri().path().trim_start_matches("/kv/").to_owned();
    let reply = |status, body: String| Response::builder().status(status).body(Full::new(Bytes::from(body)));
    let r = match *req.method() {
        Method::GET => match store.lock().unwrap().get(&key) {
            Some(v) => reply(StatusCode::OK, v.clone()),
            None => reply(StatusCode::NOT_FOUND, String::new()),
        },
        Method::PUT => {
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            store.lock().unwrap().insert(key, String::from_utf8_lossy(&body).into_owned());
            reply(StatusCode::NO_CONTENT, String::new())
        }
        _ => reply(StatusCode::METHOD_NOT_ALLOWED, String::new()),
    };
    Ok(r.expect("a valid response"))
}

/// The server's program: a fresh map each start, hyper serving each connection.
fn server(_ctx: gauntlet_sim::NodeContext) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
    Box::pin(async move {
        let store: Store = Arc::default();
        let listener = TcpListener::bind("0.0.0.0:8080").await.expect("bind");
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let store = store.clone();
            spawn(async move {
                let service = hyper::service::service_fn(move |req| kv(store.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .auto_date_header(false)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// One HTTP/1.1 connection to the server, its driver spawned.
async fn connect() -> std::io::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect("api:8080").await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request; the status and body, or the error as hyper reports it (with the IO
/// error's kind underneath, when there is one).
async fn call(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    method: Method,
    path: &str,
    body: &str,
) -> Result<(u16, String), String> {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "api")
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("a valid request");
    match sender.send_request(req).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        }
        Err(e) => {
            let io = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<std::io::Error>());
            Err(match io {
                Some(io) => format!("{:?}", io.kind()),
                None => e.to_string(),
            })
        }
    }
}

fn world<F, Fut>(client: F) -> WorldBuilder
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    World::builder()
        .seed(9)
        .default_link(LinkConfig::fixed(ms(3)))
        .node(NodeSpec::new("api"), server)
        .node(NodeSpec::new("client"), move |_ctx| client())
}

#[test]
fn hyper_serves_and_calls_over_simulated_streams_deterministically() {
    let run = || {
        let seen: Log<String> = log();
        let out = seen.clone();
        let report = world(move || {
            let out = out.clone();
            async move {
                let mut s = connect().await.expect("connect");
                for i in 0..20 {
                    let put = call(&mut s, Method::PUT, &format!("/kv/k{}", i % 3), &i.to_string()).await;
                    let get = call(&mut s, Method::GET, &format!("/kv/k{}", i % 3), "").await;
                    out.lock().unwrap().push(format!("{put:?} {get:?} {:?}", elapsed()));
                }
            }
        })
        .build()
        .unwrap()
        .run(|sim| async move { sim.sleep(secs(2)).await })
        .unwrap();
        let seen = seen.lock().unwrap().clone();
        (report.trace_hash(), seen)
    };
    let (a, seen) = run();
    assert_eq!(seen.len(), 20, "{seen:?}");
    assert!(seen[19].starts_with(r#"Ok((204, "")) Ok((200, "19"))"#), "{}", seen[19]);
    let (b, again) = run();
    assert_eq!((a, &seen), (b, &again), "same seed, same run");
}

#[test]
fn a_partition_past_the_user_timeout_fails_the_request_as_a_timed_out_connection() {
    let seen = twice(|| {
        let seen: Log<String> = log();
        let out = seen.clone();
        let w = world(move || {
            let out = out.clone();
            async move {
                let mut s = connect().await.expect("connect");
                let first = call(&mut s, Method::PUT, "/kv/a", "1").await;
                sleep(ms(500)).await;
                let cut = call(&mut s, Method::GET, "/kv/a", "").await;
                out.lock().unwrap().push(format!("{first:?} / {cut:?} at {}s", elapsed().as_secs()));
            }
        })
        .tcp(TcpConfig { user_timeout: secs(4), ..TcpConfig::default() });
        let report = w
            .build()
            .unwrap()
            .run(|sim| async move {
                sim.sleep(ms(300)).await;
                sim.apply(&Fault::Partition { groups: vec![vec!["api".into()], vec!["client".into()]] }).unwrap();
                sim.sleep(secs(10)).await;
            })
            .unwrap();
        let seen = seen.lock().unwrap().clone();
        (report.trace_hash(), seen)
    });
    assert_eq!(seen, vec![r#"Ok((204, "")) / Err("TimedOut") at 4s"#.to_owned()]);
}

#[test]
fn a_crashed_server_fails_the_open_connection_and_its_restart_serves_new_ones() {
    let seen = twice(|| {
        let seen: Log<String> = log();
        let out = seen.clone();
        let w = world(move || {
            let out = out.clone();
            async move {
                let mut s = connect().await.expect("connect");
                let before = call(&mut s, Method::PUT, "/kv/a", "1").await;
                sleep(ms(500)).await;
                // The server crashed meanwhile: the old connection is reset.
                let during = call(&mut s, Method::GET, "/kv/a", "").await;
                sleep(secs(1)).await;
                let mut fresh = connect().await.expect("the restarted server accepts");
                // Its map started empty: what was put before the crash is gone.
                let after = call(&mut fresh, Method::GET, "/kv/a", "").await;
                out.lock().unwrap().push(format!("{before:?} / {during:?} / {after:?}"));
            }
        });
        let report = w.build().unwrap().run(crash_restart("api", ms(200), ms(500), secs(3))).unwrap();
        let seen = seen.lock().unwrap().clone();
        (report.trace_hash(), seen)
    });
    assert_eq!(seen.len(), 1);
    // The idle connection's driver read the reset and ended it, so hyper cancels the next
    // request on it, as it does on a real socket the server reset.
    assert_eq!(seen[0], r#"Ok((204, "")) / Err("operation was canceled") / Ok((404, ""))"#);
}
