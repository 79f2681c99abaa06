//! tonic's gRPC server and client layers over HTTP/2 on the simulated streams. tonic's own
//! transport server spawns each connection on tokio, outside the simulation's scheduler, so
//! the server here is the few lines that transport is made of: accept on
//! `gauntlet_sim::net::TcpListener`, serve each connection with hyper's HTTP/2 server on
//! Gauntlet's executor, route by path to `tonic::server::Grpc`. The client is
//! `tonic::client::Grpc` over hyper's HTTP/2 client on a `gauntlet_sim::net::TcpStream`.
//! The service's messages use a small text codec, so no protoc is needed; a prost codec plugs
//! in the same way.

#![cfg(madsim)]

#[path = "../common/mod.rs"]
mod common;

use bytes::{Buf, BufMut};
use common::*;
use gauntlet_sim::net::{TcpListener, TcpStream};
use gauntlet_sim::time::{elapsed, sleep, spawn};
use gauntlet_sim::{Fault, LinkConfig, NodeSpec, TcpConfig, World, WorldBuilder};
use hyper::body::Incoming;
use hyper::http;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::server::UnaryService;
use tonic::{Request, Response, Status};

/// Messages as UTF-8 text.
#[derive(Debug, Clone, Copy, Default)]
struct Text;

impl Codec for Text {
    type Encode = String;
    type Decode = String;
    type Encoder = Text;
    type Decoder = Text;
    fn encoder(&mut self) -> Text {
        Text
    }
    fn decoder(&mut self) -> Text {
        Text
    }
}

impl Encoder for Text {
    type Item = String;
    type Error = Status;
    fn encode(&mut self, item: String, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(item.as_bytes());
        Ok(())
    }
}

impl Decoder for Text {
    type Item = String;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<String>, Status> {
        let bytes = src.copy_to_bytes(src.remaining());
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// hyper's executor: Gauntlet's `spawn` (a task on the current node, under its scheduler).
#[derive(Debug, Clone, Copy)]
struct SimExec;

impl<F> hyper::rt::Executor<F> for SimExec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        spawn(fut);
    }
}

type Store = Arc<Mutex<BTreeMap<String, String>>>;

/// `kv.Kv/Put` (`"key=value"`) and `kv.Kv/Get` (`"key"`).
#[derive(Clone)]
struct Kv {
    store: Store,
    put: bool,
}

impl UnaryService<String> for Kv {
    type Response = String;
    type Future = std::future::Ready<Result<Response<String>, Status>>;
    fn call(&mut self, request: Request<String>) -> Self::Future {
        let text = request.into_inner();
        let mut store = self.store.lock().unwrap();
        std::future::ready(if self.put {
            let (k, v) = text.split_once('=').unwrap_or((&text, ""));
            store.insert(k.to_owned(), v.to_owned());
            Ok(Response::new("ok".to_owned()))
        } else {
            store.get(&text).cloned().map(Response::new).ok_or_else(|| Status::not_found(text))
        })
    }
}

async fn route(store: Store, req: http::Request<Incoming>) -> http::Response<tonic::body::Body> {
    let put = match req.uri().path() {
        "/kv.Kv/Put" => true,
        "/kv.Kv/Get" => false,
        _ => return Status::unimplemented(req.uri().path().to_owned()).into_http(),
    };
    tonic::server::Grpc::new(Text).unary(Kv { store, put }, req).await
}

fn server(_ctx: gauntlet_sim::NodeContext) -> Pin<Box<dyn Future<Output = ()>>> {
    Box::pin(async move {
        let store: Store = Arc::default();
        let listener = TcpListener::bind("0.0.0.0:50051").await.expect("bind");
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let store = store.clone();
                    async move { Ok::<_, Infallible>(route(store, req).await) }
                });
                let _ = hyper::server::conn::http2::Builder::new(SimExec)
                    .auto_date_header(false)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

/// hyper's HTTP/2 client as the tower service tonic's client drives.
struct H2(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

impl tower_service::Service<http::Request<tonic::body::Body>> for H2 {
    type Response = http::Response<Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, hyper::Error>> + Send>>;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(self.0.send_request(req))
    }
}

type Client = tonic::client::Grpc<H2>;

async fn connect() -> Result<Client, String> {
    let stream = TcpStream::connect("api:50051").await.map_err(|e| format!("{:?}", e.kind()))?;
    let (sender, conn) =
        hyper::client::conn::http2::handshake(SimExec, TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    spawn(async move {
        let _ = conn.await;
    });
    Ok(tonic::client::Grpc::with_origin(H2(sender), "http://api:50051".parse().expect("uri")))
}

/// One call: its answer, or the status's code.
async fn call(client: &mut Client, method: &'static str, arg: &str) -> Result<String, String> {
    client.ready().await.map_err(|e| format!("not ready: {e}"))?;
    let path = http::uri::PathAndQuery::from_static(method);
    match client.unary(Request::new(arg.to_owned()), path, Text).await {
        Ok(r) => Ok(r.into_inner()),
        Err(status) => Err(format!("{:?}", status.code())),
    }
}

fn world<F, Fut>(client: F) -> WorldBuilder
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    World::builder()
        .seed(4)
        .default_link(LinkConfig::fixed(ms(3)))
        .node(NodeSpec::new("api"), server)
        .node(NodeSpec::new("client"), move |_ctx| client())
}

#[test]
fn grpc_calls_over_simulated_streams_are_deterministic() {
    let run = || {
        let seen: Log<String> = log();
        let out = seen.clone();
        let report = world(move || {
            let out = out.clone();
            async move {
                let mut c = connect().await.expect("connect");
                for i in 0..10 {
                    let put = call(&mut c, "/kv.Kv/Put", &format!("k{}={i}", i % 3)).await;
                    let get = call(&mut c, "/kv.Kv/Get", &format!("k{}", i % 3)).await;
                    out.lock().unwrap().push(format!("{put:?} {get:?} {:?}", elapsed()));
                }
                let missing = call(&mut c, "/kv.Kv/Get", "nope").await;
                out.lock().unwrap().push(format!("{missing:?}"));
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
    assert_eq!(seen.len(), 11, "{seen:?}");
    assert!(seen[9].starts_with(r#"Ok("ok") Ok("9")"#), "{}", seen[9]);
    assert_eq!(seen[10], r#"Err("NotFound")"#);
    let (b, again) = run();
    assert_eq!((a, &seen), (b, &again), "same seed, same run");
}

#[test]
fn a_partition_past_the_user_timeout_fails_the_call_with_the_timeout_underneath() {
    let seen: Log<String> = log();
    let out = seen.clone();
    let timed_out: Log<String> = log();
    let messages = timed_out.clone();
    let w = world(move || {
        let (out, messages) = (out.clone(), messages.clone());
        async move {
            let mut c = connect().await.expect("connect");
            let first = call(&mut c, "/kv.Kv/Put", "a=1").await;
            sleep(ms(500)).await;
            c.ready().await.expect("ready");
            let path = http::uri::PathAndQuery::from_static("/kv.Kv/Get");
            let cut = match c.unary(Request::new("a".to_owned()), path, Text).await {
                Ok(r) => Ok(r.into_inner()),
                Err(status) => {
                    messages.lock().unwrap().push(format!("{status}"));
                    Err(format!("{:?}", status.code()))
                }
            };
            out.lock().unwrap().push(format!("{first:?} / {cut:?} at {}s", elapsed().as_secs()));
        }
    })
    .tcp(TcpConfig { user_timeout: secs(4), ..TcpConfig::default() });
    w.build()
        .unwrap()
        .run(|sim| async move {
            sim.sleep(ms(300)).await;
            sim.apply(&Fault::Partition { groups: vec![vec!["api".into()], vec!["client".into()]] }).unwrap();
            sim.sleep(secs(10)).await;
        })
        .unwrap();
    // tonic's client layer reports a broken connection as Unknown (its transport's Channel
    // would say Unavailable); the IO error underneath is the timeout a real client gets.
    assert_eq!(*seen.lock().unwrap(), vec![r#"Ok("ok") / Err("Unknown") at 4s"#.to_owned()]);
    assert!(timed_out.lock().unwrap().iter().any(|m| m.contains("timed out")), "{:?}", timed_out.lock().unwrap());
}

#[test]
fn a_crashed_server_fails_calls_and_its_restart_serves_a_new_channel() {
    let seen: Log<String> = log();
    let out = seen.clone();
    let w = world(move || {
        let out = out.clone();
        async move {
            let mut c = connect().await.expect("connect");
            let before = call(&mut c, "/kv.Kv/Put", "a=1").await;
            sleep(ms(500)).await;
            let during = call(&mut c, "/kv.Kv/Get", "a").await;
            sleep(secs(1)).await;
            let mut fresh = connect().await.expect("the restarted server accepts");
            let after = call(&mut fresh, "/kv.Kv/Get", "a").await;
            out.lock().unwrap().push(format!("{before:?} / {during:?} / {after:?}"));
        }
    });
    w.build()
        .unwrap()
        .run(|sim| async move {
            sim.sleep(ms(200)).await;
            sim.crash(sim.node_id("api").unwrap());
            sim.sleep(ms(500)).await;
            sim.restart(sim.node_id("api").unwrap());
            sim.sleep(secs(3)).await;
        })
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    // The restarted server's map is empty: what was put before the crash is gone.
    assert!(seen[0].starts_with(r#"Ok("ok") / Err("#), "{}", seen[0]);
    assert!(seen[0].ends_with(r#" / Err("NotFound")"#), "{}", seen[0]);
}
