//! An ordinary hyper service under simulation: a key-value server on hyper's HTTP/1.1 server
//! and a client on hyper's client, both on `gauntlet_sim::net` streams, with the server crashed
//! and restarted in the middle. Run twice with the same seed, it prints the same lines and the
//! same trace hash.
//!
//! ```sh
//! cargo run -p gauntlet-sim --example hyper_kv            # seed 1
//! cargo run -p gauntlet-sim --example hyper_kv -- 7       # another seed
//! ```

#[cfg(not(madsim))]
fn main() {
    eprintln!("hyper_kv runs under simulation: build it without `cargo real-*`");
}

#[cfg(madsim)]
fn main() {
    use gauntlet_sim::net::{TcpListener, TcpStream};
    use gauntlet_sim::time::{elapsed, sleep, spawn};
    use gauntlet_sim::{LinkConfig, NodeSpec, World};
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper::{Method, Request, Response};
    use hyper_util::rt::TokioIo;
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let seed: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut link = LinkConfig::fixed(Duration::from_millis(2));
    link.loss = 0.05;
    let world = World::builder()
        .seed(seed)
        .default_link(link)
        .node(NodeSpec::new("api"), |_ctx| async move {
            let store: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
            // The only Gauntlet-specific line of the server: the listener.
            let listener = TcpListener::bind("0.0.0.0:8080").await.expect("bind");
            while let Ok((stream, _)) = listener.accept().await {
                let store = store.clone();
                spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let store = store.clone();
                        async move {
                            let key = req.uri().path().trim_start_matches("/kv/").to_owned();
                            let body = if req.method() == Method::PUT {
                                let v = req.into_body().collect().await?.to_bytes();
                                store.lock().unwrap().insert(key, String::from_utf8_lossy(&v).into_owned());
                                String::new()
                            } else {
                                store.lock().unwrap().get(&key).cloned().unwrap_or_default()
                            };
                            Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(body))))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .auto_date_header(false)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
        .node(NodeSpec::new("client"), |_ctx| async move {
            for round in 0..6u32 {
                // The only Gauntlet-specific line of the client: the connector.
                let line = match TcpStream::connect("api:8080").await {
                    Err(e) => format!("connect: {e}"),
                    Ok(stream) => {
                        let (mut sender, conn) =
                            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
                        spawn(async move {
                            let _ = conn.await;
                        });
                        let put = Request::put("/kv/round")
                            .header("host", "api")
                            .body(Full::new(Bytes::from(round.to_string())));
                        let get = Request::get("/kv/round").header("host", "api").body(Full::new(Bytes::new()));
                        let _ = sender.send_request(put.expect("request")).await;
                        match sender.send_request(get.expect("request")).await {
                            Ok(resp) => {
                                let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                                format!("read back {:?}", String::from_utf8_lossy(&body))
                            }
                            Err(e) => format!("request: {e}"),
                        }
                    }
                };
                println!("{:>8.1?}  round {round}: {line}", elapsed());
                sleep(Duration::from_millis(300)).await;
            }
        });
    let report = world
        .build()
        .expect("world")
        .run(|sim| async move {
            sim.sleep(Duration::from_millis(700)).await;
            println!("  (the server crashes)");
            sim.crash(sim.node_id("api").expect("api"));
            sim.sleep(Duration::from_millis(400)).await;
            println!("  (the server restarts)");
            sim.restart(sim.node_id("api").expect("api"));
            sim.sleep(Duration::from_secs(3)).await;
        })
        .expect("run");
    println!(
        "seed {seed}: trace hash {:016x}, tcp events {}",
        report.trace_hash(),
        report.trace.counts_by_kind()["tcp"]
    );
}
