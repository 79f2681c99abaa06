//! `ledger-node`: a ledger node (validator or executor) as a real process (built with
//! `cargo real-build`), with an HTTP/JSON API for wallets and operators.
//!
//! ```text
//! ledger-node --id 0 --listen 127.0.0.1:7200 --http 127.0.0.1:8200 --data ./l0 \
//!             --peers 0=validator@127.0.0.1:7200,1=validator@127.0.0.1:7201,...
//! ```
//!
//! `--peers` lists every node as `ID=ROLE@ADDR` (roles `validator` or `executor`; validators
//! are numbered in id order). This node's role is its own entry's. Other settings: `--slot`
//! (epoch length, default `200ms`), `--wallets` (funded client wallets, default 16),
//! `--balance` (each wallet's coins, default 1000000), `--mempool` (bound, default 1000),
//! `--bugs` (comma-separated planted bugs). Every flag can also come from the environment:
//! `LEDGER_ID`, `LEDGER_LISTEN`, `LEDGER_HTTP`, `LEDGER_DATA`, `LEDGER_PEERS`, `LEDGER_SLOT`,
//! `LEDGER_WALLETS`, `LEDGER_BALANCE`, `LEDGER_MEMPOOL`, `LEDGER_BUGS`. Flags win.
//!
//! HTTP API (HTTP/1.1, one request per connection, JSON):
//! * `POST /tx` with `{"from": W, "to": W, "amount": N, "fee": N, "nonce": N}` (wallet
//!   indices; the node signs with wallet `from`'s derived key and, without `nonce`, uses the
//!   next free one) or `{"raw": "<hex of a signed transaction>"}` → `200 {"id": "<hex>"}`, or
//!   `400 {"error": "..."}` when refused;
//! * `GET /balance/{wallet}` → `200 {"balance": N, "height": H}` (after the final blocks);
//! * `GET /block/{height}` → `200` with the final block (and its `hash`), or `404`;
//! * `GET /mempool` → `200 {"pending": ["<id>", ...]}`;
//! * `GET /status` → `200` with the node's status;
//! * `GET /healthz` → `200 ok`.

#[cfg(madsim)]
fn main() {
    gauntlet_sim::assert_real_build();
}

#[cfg(not(madsim))]
fn main() {
    gauntlet_sim::assert_real_build();
    if let Err(e) = real::main() {
        eprintln!("ledger-node: {e}");
        std::process::exit(2);
    }
}

#[cfg(not(madsim))]
mod real {
    use futures::channel::{mpsc, oneshot};
    use futures::SinkExt;
    use gauntlet_scenarios::ledger::app::Options;
    use gauntlet_scenarios::ledger::driver::{self, Answer, Kind, LocalRequest, NodeConfig, Query};
    use gauntlet_scenarios::ledger::tx::{address, wallet, Transfer, Tx};
    use gauntlet_scenarios::ledger::validator::Bugs;
    use gauntlet_scenarios::realnode::{parse, read_request, required, respond, setting, Request};
    use gauntlet_sim::{Clock, Disk, NodeContext, NodeId, NodeSpec, Transport};
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use std::time::Duration;
    use tokio::net::{TcpListener, TcpStream};

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Option<Vec<u8>> {
        if !s.len().is_multiple_of(2) {
            return None;
        }
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
    }

    pub fn main() -> Result<(), String> {
        let args: Vec<String> = std::env::args().collect();
        let id = NodeId(parse("--id", &required(&args, "--id", "LEDGER_ID")?)?);
        let listen: SocketAddr = parse("--listen", &required(&args, "--listen", "LEDGER_LISTEN")?)?;
        let http: SocketAddr = parse("--http", &required(&args, "--http", "LEDGER_HTTP")?)?;
        let data = required(&args, "--data", "LEDGER_DATA")?;
        // The plan options this node needs, checked as a plan's would be.
        let mut options = toml::Table::new();
        if let Some(v) = setting(&args, "--slot", "LEDGER_SLOT") {
            options.insert("slot".into(), v.into());
        }
        for (flag, env, key) in [
            ("--wallets", "LEDGER_WALLETS", "wallets"),
            ("--balance", "LEDGER_BALANCE", "balance"),
            ("--mempool", "LEDGER_MEMPOOL", "mempool"),
        ] {
            if let Some(v) = setting(&args, flag, env) {
                options.insert(key.into(), toml::Value::Integer(parse(flag, &v)?));
            }
        }
        let o = Options::parse(&options)
            .map_err(|p| p.iter().map(|(k, m)| format!("{k}: {m}")).collect::<Vec<_>>().join("; "))?;
        let bugs_text = setting(&args, "--bugs", "LEDGER_BUGS").unwrap_or_default();
        let bugs = Bugs::parse(bugs_text.split(',').filter(|b| !b.is_empty()))?;
        let mut peers = BTreeMap::new();
        let mut members = Vec::new();
        let mut role = None;
        for entry in required(&args, "--peers", "LEDGER_PEERS")?.split(',') {
            let bad = || format!("--peers entry {entry:?} is not ID=ROLE@ADDR");
            let (i, rest) = entry.split_once('=').ok_or_else(bad)?;
            let (r, addr) = rest.split_once('@').ok_or_else(bad)?;
            if r != "validator" && r != "executor" {
                return Err(format!("--peers entry {entry:?}: role {r:?} is not validator or executor"));
            }
            let (i, addr): (u32, SocketAddr) = (parse("--peers id", i)?, parse("--peers address", addr)?);
            members.push((NodeId(i), NodeSpec::new(format!("{r}-{i}")).role(r).addr(addr)));
            if NodeId(i) == id {
                role = Some(r.to_owned());
            } else {
                peers.insert(NodeId(i), addr);
            }
        }
        let role = role.ok_or_else(|| format!("--peers does not list this node's id {}", id.0))?;
        let kind = if role == "validator" { Kind::Validator } else { Kind::Executor };
        let node = NodeConfig { cfg: o.cfg, bugs, genesis: driver::genesis(o.wallets, o.balance), kind };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let transport =
                Transport::bind(id, listen, peers).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let http_listener =
                TcpListener::bind(http).await.map_err(|e| format!("cannot serve HTTP on {http}: {e}"))?;
            let disk = Disk::open(&data).map_err(|e| e.to_string())?;
            let spec = NodeSpec::new(format!("{role}-{}", id.0)).role(role.as_str()).addr(listen);
            let seed = u64::from(id.0) ^ std::process::id() as u64;
            let ctx = NodeContext::new(id, spec, members, transport, disk, Clock::new(0, 0), seed);
            let (tx, rx) = mpsc::channel::<LocalRequest>(1024);
            tokio::task::spawn_local(driver::run_with_local(ctx, node, Some(rx)));
            eprintln!("ledger-node: {role} {} on {listen}, HTTP on {http}", id.0);
            loop {
                let (stream, _) = http_listener.accept().await.map_err(|e| format!("HTTP accept: {e}"))?;
                tokio::task::spawn_local(serve(stream, tx.clone()));
            }
        })
    }

    async fn serve(stream: TcpStream, node: mpsc::Sender<LocalRequest>) {
        let (status, body, mut stream) = match read_request(stream).await {
            Ok(request) => handle(request, node).await,
            Err(bad) => bad,
        };
        let _ = respond(&mut stream, status, &body).await;
    }

    async fn query(node: &mut mpsc::Sender<LocalRequest>, q: Query) -> Option<Answer> {
        let (tx, rx) = oneshot::channel();
        node.send(LocalRequest::Query(q, tx)).await.ok()?;
        tokio::time::timeout(Duration::from_secs(2), rx).await.ok()?.ok()
    }

    fn error(status: u16, why: impl std::fmt::Display) -> (u16, String) {
        (status, serde_json::json!({ "error": why.to_string() }).to_string())
    }

    /// The transaction a `POST /tx` body stands for.
    async fn transaction(body: &[u8], node: &mut mpsc::Sender<LocalRequest>) -> Result<Vec<u8>, String> {
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
        if let Some(raw) = v.get("raw") {
            return raw.as_str().and_then(unhex).ok_or_else(|| "raw is not a hex string".to_owned());
        }
        let field = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).ok_or_else(|| format!("{k} is missing"));
        let (from, to) = (field("from")? as u32, field("to")? as u32);
        let key = wallet(from);
        let nonce = match v.get("nonce").and_then(serde_json::Value::as_u64) {
            Some(n) => n,
            None => match query(node, Query::Nonce(address(&key))).await {
                Some(Answer::Nonce(n)) => n,
                _ => return Err("the node did not answer".into()),
            },
        };
        let t = Transfer {
            from: address(&key),
            to: address(&wallet(to)),
            amount: field("amount")?,
            fee: field("fee")?,
            nonce,
        };
        Ok(t.sign(&key).encode())
    }

    async fn handle(request: Request, mut node: mpsc::Sender<LocalRequest>) -> (u16, String, TcpStream) {
        let (method, path, _headers, body, stream) = request;
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (status, body) = match (method.as_str(), segments.as_slice()) {
            ("GET", ["healthz"]) => (200, "ok".to_owned()),
            ("GET", ["status"]) => match query(&mut node, Query::Status).await {
                Some(Answer::Status(s)) => (200, serde_json::to_string(&s).expect("a status encodes")),
                _ => error(504, "no answer in 2s"),
            },
            ("GET", ["mempool"]) => match query(&mut node, Query::Mempool).await {
                Some(Answer::Mempool(ids)) => {
                    let ids: Vec<String> = ids.iter().map(|id| hex(&id.0)).collect();
                    (200, serde_json::json!({ "pending": ids }).to_string())
                }
                _ => error(504, "no answer in 2s"),
            },
            ("GET", ["balance", w]) => match w.parse::<u32>() {
                Err(_) => error(400, format!("{w:?} is not a wallet index")),
                Ok(w) => match query(&mut node, Query::Balance(address(&wallet(w)))).await {
                    Some(Answer::Balance { balance, height }) => {
                        (200, serde_json::json!({ "balance": balance, "height": height }).to_string())
                    }
                    _ => error(504, "no answer in 2s"),
                },
            },
            ("GET", ["block", h]) => match h.parse::<u64>() {
                Err(_) => error(400, format!("{h:?} is not a height")),
                Ok(h) => match query(&mut node, Query::Block(h)).await {
                    Some(Answer::Block(Some(b))) => {
                        let mut v = serde_json::to_value(&b).expect("a block encodes");
                        v["hash"] = hex(&b.hash()).into();
                        v["tx_ids"] = b.txs.iter().map(|t: &Tx| hex(&t.id().0)).collect::<Vec<_>>().into();
                        (200, v.to_string())
                    }
                    Some(Answer::Block(None)) => error(404, format!("no final block at height {h}")),
                    _ => error(504, "no answer in 2s"),
                },
            },
            ("POST", ["tx"]) => match transaction(&body, &mut node).await {
                Err(e) => error(400, e),
                Ok(bytes) => {
                    let (tx, rx) = oneshot::channel();
                    let _ = node.send(LocalRequest::Submit(bytes, tx)).await;
                    match tokio::time::timeout(Duration::from_secs(2), rx).await {
                        Ok(Ok(Ok(id))) => (200, serde_json::json!({ "id": hex(&id.0) }).to_string()),
                        Ok(Ok(Err(why))) => error(400, why),
                        _ => error(504, "no answer in 2s"),
                    }
                }
            },
            _ => error(404, "no such route"),
        };
        (status, body, stream)
    }
}
