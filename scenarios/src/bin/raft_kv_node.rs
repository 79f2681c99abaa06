//! `raft-kv-node`: a raft-kv replica as a real process (built with `cargo real-build`), with a
//! small HTTP/JSON API for clients and operators.
//!
//! ```text
//! raft-kv-node --id 0 --listen 127.0.0.1:7100 --http 127.0.0.1:8100 --data ./r0 \
//!              --peers 0=127.0.0.1:7100,1=127.0.0.1:7101,2=127.0.0.1:7102
//! ```
//!
//! Every flag can also come from the environment: `RAFT_KV_ID`, `RAFT_KV_LISTEN`,
//! `RAFT_KV_HTTP`, `RAFT_KV_DATA`, `RAFT_KV_PEERS`, `RAFT_KV_BUGS` (comma-separated planted
//! bugs; default none), `RAFT_KV_FORMAT` (the build: `v1`, the default, or `v2`, whose log
//! layout changed; a v2 replica migrates a v1 log at start). Flags win. Peers may be named by address or by DNS name (a compose
//! service, a kubernetes pod); names are resolved at start, retried for up to 60 s.
//! `GAUNTLET_CLOCK_OFFSET_MS` and `GAUNTLET_CLOCK_DRIFT_PPM` skew the node's clock from the
//! start.
//!
//! HTTP API (HTTP/1.1, one request per connection):
//! * `GET /kv/{key}` → `200 {"value": "..."|null}`;
//! * `PUT /kv/{key}` with the value as the body → `200 {"ok": true}`; with header
//!   `If-Match: <expected>` it is a compare-and-set → `200 {"ok": true|false}`;
//! * `GET /status` → `200` with the replica's status as JSON, and its node clock under `clock`;
//! * `GET /clock` → the node clock (`wall_ms`, `offset_ms`, `drift_ppm`); `PUT /clock` with
//!   `{"offset_ms": N, "drift_ppm": M}` skews it from now on (the deployer's clock-skew fault);
//! * `GET /healthz` → `200 ok`;
//! * a replica that is not the leader answers `421 {"error": "not leader", "leader": id|null}`;
//!   a request that gets no answer in 2 s → `504`.

#[cfg(madsim)]
fn main() {
    gauntlet_sim::assert_real_build();
}

#[cfg(not(madsim))]
fn main() {
    gauntlet_sim::assert_real_build();
    if let Err(e) = real::main() {
        eprintln!("raft-kv-node: {e}");
        std::process::exit(2);
    }
}

#[cfg(not(madsim))]
mod real {
    use futures::channel::{mpsc, oneshot};
    use futures::SinkExt;
    use gauntlet_scenarios::raft::bugs::Bugs;
    use gauntlet_scenarios::raft::core::{ClientCommand, ClientResult};
    use gauntlet_scenarios::raft::driver::{run_with_local, Format, LocalRequest, RaftConfig};
    use gauntlet_scenarios::realnode::{
        clock_from_env, clock_json, clock_route, parse, read_request, required, resolve_peers, respond, setting,
        Request,
    };
    use gauntlet_sim::{Clock, Disk, NodeContext, NodeId, NodeSpec, Transport};
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::net::{TcpListener, TcpStream};

    pub fn main() -> Result<(), String> {
        let args: Vec<String> = std::env::args().collect();
        let id = NodeId(parse("--id", &required(&args, "--id", "RAFT_KV_ID")?)?);
        let listen: SocketAddr = parse("--listen", &required(&args, "--listen", "RAFT_KV_LISTEN")?)?;
        let http: SocketAddr = parse("--http", &required(&args, "--http", "RAFT_KV_HTTP")?)?;
        let data = required(&args, "--data", "RAFT_KV_DATA")?;
        let bugs_text = setting(&args, "--bugs", "RAFT_KV_BUGS").unwrap_or_default();
        let bugs = Bugs::parse(bugs_text.split(',').filter(|b| !b.is_empty()))?;
        let format_text = setting(&args, "--format", "RAFT_KV_FORMAT");
        let format = Format::of(format_text.as_deref()).ok_or_else(|| {
            format!(
                "--format {}: not a build of raft-kv; builds: {}",
                format_text.unwrap_or_default(),
                Format::NAMES.join(", ")
            )
        })?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let local = tokio::task::LocalSet::new();
        let peers_text = required(&args, "--peers", "RAFT_KV_PEERS")?;
        let clock = clock_from_env()?;
        local.block_on(&rt, async move {
            let resolved = resolve_peers(&peers_text, Duration::from_secs(60)).await?;
            let mut peers = BTreeMap::new();
            let mut members = Vec::new();
            for (i, addr) in resolved {
                members.push((NodeId(i), NodeSpec::new(format!("replica-{i}")).role("replica").addr(addr)));
                if NodeId(i) != id {
                    peers.insert(NodeId(i), addr);
                }
            }
            let transport =
                Transport::bind(id, listen, peers).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let http_listener =
                TcpListener::bind(http).await.map_err(|e| format!("cannot serve HTTP on {http}: {e}"))?;
            let disk = Disk::open(&data).map_err(|e| e.to_string())?;
            let spec = NodeSpec::new(format!("replica-{}", id.0)).role("replica").addr(listen);
            let seed = u64::from(id.0) ^ std::process::id() as u64;
            let ctx = NodeContext::new(id, spec, members, transport, disk, clock.clone(), seed);
            let (tx, rx) = mpsc::channel::<LocalRequest>(1024);
            tokio::task::spawn_local(run_with_local(
                ctx,
                RaftConfig { bugs, format, ..RaftConfig::default() },
                Some(rx),
            ));
            eprintln!("raft-kv-node: replica {} raft on {listen}, HTTP on {http}", id.0);
            loop {
                let (stream, _) = http_listener.accept().await.map_err(|e| format!("HTTP accept: {e}"))?;
                tokio::task::spawn_local(serve(stream, tx.clone(), clock.clone()));
            }
        })
    }

    async fn serve(stream: TcpStream, raft: mpsc::Sender<LocalRequest>, clock: Clock) {
        let (status, body, mut stream) = match read_request(stream).await {
            Ok(request) => handle(request, raft, &clock).await,
            Err(bad) => bad,
        };
        let _ = respond(&mut stream, status, &body).await;
    }

    async fn handle(request: Request, mut raft: mpsc::Sender<LocalRequest>, clock: &Clock) -> (u16, String, TcpStream) {
        let (method, path, headers, body, stream) = request;
        if let Some((status, body)) = clock_route(&method, &path, &body, clock) {
            return (status, body, stream);
        }
        let key = path.strip_prefix("/kv/").map(str::to_owned);
        let command = match (method.as_str(), path.as_str(), key) {
            ("GET", "/healthz", _) => return (200, "ok".into(), stream),
            ("GET", "/status", _) => {
                let (tx, rx) = oneshot::channel();
                let _ = raft.send(LocalRequest::Status(tx)).await;
                return match tokio::time::timeout(Duration::from_secs(2), rx).await {
                    Ok(Ok(s)) => {
                        // The replica's status, plus its node clock (so skew is visible).
                        let mut json = serde_json::to_value(&s).expect("status encodes");
                        json["clock"] = clock_json(clock);
                        (200, json.to_string(), stream)
                    }
                    _ => (504, r#"{"error":"no answer"}"#.into(), stream),
                };
            }
            ("GET", _, Some(key)) => ClientCommand::Get { key },
            ("PUT", _, Some(key)) => {
                let value = String::from_utf8_lossy(&body).into_owned();
                match headers.get("if-match") {
                    Some(expected) => ClientCommand::Cas { key, expected: Some(expected.clone()), new: value },
                    None => ClientCommand::Put { key, value },
                }
            }
            _ => return (404, r#"{"error":"no such route"}"#.into(), stream),
        };
        let (tx, rx) = oneshot::channel();
        let _ = raft.send(LocalRequest::Command(command, tx)).await;
        let (status, body) = match tokio::time::timeout(Duration::from_secs(2), rx).await {
            Ok(Ok(ClientResult::Value(v))) => (200, serde_json::json!({ "value": v }).to_string()),
            Ok(Ok(ClientResult::Done)) => (200, r#"{"ok":true}"#.to_owned()),
            Ok(Ok(ClientResult::CasFailed { current })) => {
                (200, serde_json::json!({ "ok": false, "current": current }).to_string())
            }
            Ok(Ok(ClientResult::NotLeader { hint })) => {
                (421, serde_json::json!({ "error": "not leader", "leader": hint }).to_string())
            }
            _ => (504, r#"{"error":"no answer in 2s"}"#.to_owned()),
        };
        (status, body, stream)
    }
}
