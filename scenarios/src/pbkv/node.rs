//! The replica program, one source for both builds: an HTTP/1.1 server (hyper) on a
//! [`TcpListener`] of [`gauntlet::sim::net`] — simulated streams under simulation, tokio's
//! sockets in `pb-kv-node` — and, on the primary, one shipper per backup that streams the log
//! to it over a kept-alive HTTP connection.
//!
//! HTTP API (JSON bodies, at most [`MAX_BODY`](super::http::MAX_BODY) bytes):
//! * `GET /kv/{key}` → `200 {"value": "..."|null}` (primary only);
//! * `PUT /kv/{key}` with the value as the body → `200 {"ok": true}` once the write is durable
//!   on the primary (primary only);
//! * on a backup, both answer `421 {"error": "not the primary", "leader": ID}`;
//! * `POST /replicate` with `{"from": N, "entries": [{"key":…,"value":…},…]}` (backups): keeps
//!   the first `N` entries, appends these, syncs, answers `200 {"len": L}`; a gap (`N` past the
//!   end) answers `409 {"len": L}` so the primary resends from `L`;
//! * `GET /status` → `{"role", "len", "synced", "digest"}`; `GET /healthz` → `200 ok`.

use super::bugs::Bugs;
use super::http::{json, read_body, Conn};
use super::log::{Entry, Log};
use gauntlet::sim::net::TcpListener;
use gauntlet::sim::{time, Disk};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::rc::Rc;
use std::time::Duration;

/// How long the primary waits for a backup's answer before reconnecting.
pub const SHIP_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a shipper with nothing new checks its backup is still in step (a backup that
/// restarted has lost its unsynced tail; a heartbeat finds out).
pub const HEARTBEAT: Duration = Duration::from_millis(200);
/// How often the primary syncs its log under the `ack_before_sync` bug (its group commit).
pub const GROUP_COMMIT: Duration = Duration::from_millis(50);
/// Most entries in one `/replicate`.
pub const BATCH: usize = 256;

/// What a replica is started with.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Its id (what a backup names as `leader` when it redirects).
    pub id: u32,
    /// `true` for the primary, `false` for a backup.
    pub primary: bool,
    /// The primary's id.
    pub primary_id: u32,
    /// Where to listen (`0.0.0.0:8080`).
    pub listen: String,
    /// The backups' addresses (`host:port`), the primary's only.
    pub backups: Vec<String>,
    /// The planted bugs switched on.
    pub bugs: Bugs,
}

struct Replica {
    config: NodeConfig,
    log: Log,
    /// What reads see (the primary's): the acknowledged writes.
    values: BTreeMap<String, String>,
    /// Under `ack_before_sync`: writes acknowledged and not yet in the log (the group commit's
    /// buffer, in the process's memory).
    pending: Vec<Entry>,
}

type Shared = Rc<RefCell<Replica>>;

/// Runs a replica until its program is stopped; `Err` says why it could not start.
pub async fn run(config: NodeConfig, disk: Disk) -> Result<(), String> {
    let log = Log::load(disk).await.map_err(|e| format!("cannot load the log: {e}"))?;
    let values = log.map(log.len());
    let listener =
        TcpListener::bind(&config.listen).await.map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let shared: Shared = Rc::new(RefCell::new(Replica { config: config.clone(), log, values, pending: Vec::new() }));
    // Serialises the primary's writes: append, sync, apply, in log order.
    let write_lock = Rc::new(tokio::sync::Mutex::new(()));
    let news = Rc::new(tokio::sync::Notify::new());
    if config.primary {
        for addr in &config.backups {
            time::spawn_local(ship(shared.clone(), addr.clone(), news.clone()));
        }
        if config.bugs.ack_before_sync {
            time::spawn_local(group_commit(shared.clone(), write_lock.clone(), news.clone()));
        }
    }
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| format!("accept: {e}"))?;
        let (shared, write_lock, news) = (shared.clone(), write_lock.clone(), news.clone());
        time::spawn_local(async move {
            let service =
                hyper::service::service_fn(move |req| handle(shared.clone(), write_lock.clone(), news.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .auto_date_header(false)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    shared: Shared,
    write_lock: Rc<tokio::sync::Mutex<()>>,
    news: Rc<tokio::sync::Notify>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (method, path) = (req.method().as_str().to_owned(), req.uri().path().to_owned());
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(e) => return Ok(json(400, serde_json::json!({ "error": e }).to_string())),
    };
    let (primary, primary_id) = {
        let r = shared.borrow();
        (r.config.primary, r.config.primary_id)
    };
    let key = path.strip_prefix("/kv/").filter(|k| !k.is_empty()).map(str::to_owned);
    Ok(match (method.as_str(), path.as_str(), key) {
        ("GET", "/healthz", _) => json(200, "ok"),
        ("GET", "/status", _) => {
            let r = shared.borrow();
            let role = if r.config.primary { "primary" } else { "backup" };
            let status = Status { role: role.into(), len: r.log.len(), synced: r.log.synced(), digest: r.log.digest() };
            json(200, serde_json::to_string(&status).expect("a status encodes"))
        }
        ("GET" | "PUT", _, Some(_)) if !primary => {
            json(421, serde_json::json!({ "error": "not the primary", "leader": primary_id }).to_string())
        }
        ("GET", _, Some(key)) => {
            let value = shared.borrow().values.get(&key).cloned();
            json(200, serde_json::json!({ "value": value }).to_string())
        }
        ("PUT", _, Some(key)) => {
            let entry = Entry { key, value: String::from_utf8_lossy(&body).into_owned() };
            if !entry.valid() {
                return Ok(json(400, r#"{"error":"keys and values are one line without tabs"}"#));
            }
            match write(&shared, &write_lock, entry).await {
                Ok(()) => {
                    news.notify_waiters();
                    json(200, r#"{"ok":true}"#)
                }
                Err(e) => json(500, serde_json::json!({ "error": e }).to_string()),
            }
        }
        ("POST", "/replicate", _) if !primary => match serde_json::from_slice::<Replicate>(&body) {
            Ok(batch) => {
                let _serial = write_lock.lock().await;
                replicate(&shared, batch).await
            }
            Err(e) => json(400, serde_json::json!({ "error": format!("bad batch: {e}") }).to_string()),
        },
        _ => json(404, r#"{"error":"no such route"}"#),
    })
}

/// The primary's write: durable before it is visible and acknowledged — unless the
/// `ack_before_sync` bug leaves writing and syncing to the group commit.
async fn write(shared: &Shared, write_lock: &tokio::sync::Mutex<()>, entry: Entry) -> Result<(), String> {
    let _serial = write_lock.lock().await;
    if shared.borrow().config.bugs.ack_before_sync {
        let mut r = shared.borrow_mut();
        r.values.insert(entry.key.clone(), entry.value.clone());
        r.pending.push(entry);
        return Ok(());
    }
    shared.borrow_mut().log.append([entry.clone()]).map_err(|e| e.to_string())?;
    sync(shared).await?;
    shared.borrow_mut().values.insert(entry.key, entry.value);
    Ok(())
}

/// Syncs the log, without holding the replica across the wait (reads and status go on).
async fn sync(shared: &Shared) -> Result<(), String> {
    let (disk, upto) = {
        let r = shared.borrow();
        (r.log.disk(), r.log.len())
    };
    disk.sync(super::log::FILE).await.map_err(|e| format!("sync: {e}"))?;
    shared.borrow_mut().log.mark_synced(upto);
    Ok(())
}

/// The `ack_before_sync` bug's group commit: every [`GROUP_COMMIT`] the writes acknowledged
/// since the last one are appended to the log and synced; a crash in between loses them (on a
/// real machine too: they were only ever in the process's memory).
async fn group_commit(shared: Shared, write_lock: Rc<tokio::sync::Mutex<()>>, news: Rc<tokio::sync::Notify>) {
    loop {
        time::sleep(GROUP_COMMIT).await;
        let _serial = write_lock.lock().await;
        let batch = std::mem::take(&mut shared.borrow_mut().pending);
        if batch.is_empty() {
            continue;
        }
        if shared.borrow_mut().log.append(batch).is_err() || sync(&shared).await.is_err() {
            return;
        }
        news.notify_waiters();
    }
}

/// A backup takes a batch: keeps the first `from` entries, appends the batch, syncs.
async fn replicate(shared: &Shared, batch: Replicate) -> Response<Full<Bytes>> {
    let len = shared.borrow().log.len();
    if batch.from > len {
        return json(409, serde_json::json!({ "len": len }).to_string());
    }
    if let Some(bad) = batch.entries.iter().find(|e| !e.valid()) {
        return json(400, serde_json::json!({ "error": format!("entry {bad:?} is not one line") }).to_string());
    }
    let done = {
        let mut r = shared.borrow_mut();
        r.log.truncate(batch.from).and_then(|()| r.log.append(batch.entries))
    };
    if let Err(e) = done {
        return json(500, serde_json::json!({ "error": e.to_string() }).to_string());
    }
    if let Err(e) = sync(shared).await {
        return json(500, serde_json::json!({ "error": e }).to_string());
    }
    json(200, serde_json::json!({ "len": shared.borrow().log.len() }).to_string())
}

/// The primary's shipper for one backup: sends what the backup lacks of the durable log over one
/// kept-alive connection, reconnecting after a failure; with nothing new, a heartbeat every
/// [`HEARTBEAT`] finds a backup that restarted and lost its tail.
async fn ship(shared: Shared, addr: String, news: Rc<tokio::sync::Notify>) {
    // Where the backup's log is believed to end: the primary's own end at start (a backup
    // that holds more is cut back to it; one that holds less answers 409 with its end).
    let mut acked = shared.borrow().log.len();
    let mut conn: Option<Conn> = None;
    loop {
        let (from, entries) = {
            let r = shared.borrow();
            let end = r.log.synced();
            let from = acked.min(end);
            let upto = end.min(from + BATCH);
            (from, r.log.since(from)[..upto - from].to_vec())
        };
        let idle = entries.is_empty() && from == acked;
        if idle {
            // Wake on a new write or after a heartbeat's time, whichever is first.
            let _ = time::timeout(HEARTBEAT, news.notified()).await;
        }
        if conn.as_ref().is_none_or(|c| !c.usable()) {
            conn = Conn::open(&addr, SHIP_TIMEOUT).await.ok();
            if conn.is_none() {
                time::sleep(HEARTBEAT).await;
                continue;
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let body = serde_json::to_vec(&Replicate { from, entries }).expect("a batch encodes");
        let answer = c
            .call("POST", "/replicate", &[("content-type".into(), "application/json".into())], body, SHIP_TIMEOUT)
            .await;
        match answer {
            Ok((200 | 409, text)) => {
                let len = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v["len"].as_u64());
                match len {
                    Some(len) => acked = len as usize,
                    None => conn = None,
                }
            }
            Ok(_) | Err(_) => {
                conn = None;
                time::sleep(HEARTBEAT).await;
            }
        }
    }
}

/// `POST /replicate`'s body.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Replicate {
    /// Where the entries start in the primary's log.
    pub from: usize,
    /// The entries.
    pub entries: Vec<Entry>,
}

/// A replica's status (`GET /status`): what the observer records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Status {
    /// `primary` or `backup`.
    pub role: String,
    /// Entries in its log.
    pub len: usize,
    /// Entries durable on its disk.
    pub synced: usize,
    /// The log's digest (equal logs, equal digests).
    pub digest: u64,
}
