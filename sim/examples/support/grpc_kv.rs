//! A gRPC key-value service with tonic over HTTP/2 on the simulated streams, shared by the
//! `tonic_kv` example and `tests/tonic`. tonic's own transport server spawns each connection on
//! tokio, outside the simulation's scheduler, so the server is the few lines that transport is
//! made of: accept on `gauntlet_sim::net::TcpListener`, serve each connection with hyper's
//! HTTP/2 server on Gauntlet's executor, route by path to `tonic::server::Grpc`. The client is
//! `tonic::client::Grpc` over hyper's HTTP/2 client on a `gauntlet_sim::net::TcpStream`. The
//! messages use a small text codec, so no protoc is needed; a prost codec plugs in the same way.
#![allow(dead_code)]

use bytes::{Buf, BufMut};
use gauntlet_sim::net::{TcpListener, TcpStream};
use gauntlet_sim::time::spawn;
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
pub struct Text;

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
pub struct SimExec;

impl<F> hyper::rt::Executor<F> for SimExec
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        spawn(fut);
    }
}

pub type Store = Arc<Mutex<BTreeMap<String, String>>>;

/// `kv.Kv/Put` (`"key=value"`) and `kv.Kv/Get` (`"key"`).
#[derive(Clone)]
pub struct Kv {
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

pub async fn route(store: Store, req: http::Request<Incoming>) -> http::Response<tonic::body::Body> {
    let put = match req.uri().path() {
        "/kv.Kv/Put" => true,
        "/kv.Kv/Get" => false,
        _ => return Status::unimplemented(req.uri().path().to_owned()).into_http(),
    };
    tonic::server::Grpc::new(Text).unary(Kv { store, put }, req).await
}

pub fn server(_ctx: gauntlet_sim::NodeContext) -> Pin<Box<dyn Future<Output = ()>>> {
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
pub struct H2(hyper::client::conn::http2::SendRequest<tonic::body::Body>);

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

pub type Client = tonic::client::Grpc<H2>;

pub async fn connect() -> Result<Client, String> {
    let stream = TcpStream::connect("api:50051").await.map_err(|e| format!("{:?}", e.kind()))?;
    let (sender, conn) =
        hyper::client::conn::http2::handshake(SimExec, TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    spawn(async move {
        let _ = conn.await;
    });
    Ok(tonic::client::Grpc::with_origin(H2(sender), "http://api:50051".parse().expect("uri")))
}

/// One call: its answer, or the status's code.
pub async fn call(client: &mut Client, method: &'static str, arg: &str) -> Result<String, String> {
    client.ready().await.map_err(|e| format!("not ready: {e}"))?;
    let path = http::uri::PathAndQuery::from_static(method);
    match client.unary(Request::new(arg.to_owned()), path, Text).await {
        Ok(r) => Ok(r.into_inner()),
        Err(status) => Err(format!("{:?}", status.code())),
    }
}
