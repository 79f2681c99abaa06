//! etcd (Debian's `etcd-server`): a 3- or 5-member cluster driven through etcd's v3 JSON
//! gateway. Operations `put`, `get` and `cas` (a transaction comparing the value) on a few
//! keys, and `get_serializable` (a read any member answers from its own state), checked by the
//! built-in `linearizable` expectation with the `kv` model; and `lock`, which takes etcd's
//! lease-based lock (a lease, then the lock service with it) or releases it if the client holds
//! it, checked by the built-in `mutual_exclusion` expectation. A node's state is its
//! `/v3/maintenance/status` (member, leader, raft term and index, revision).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use gauntlet::lincheck::{HistoryOp, KvInput, KvOp, Reply};
use gauntlet::mutex::LockOp;
use gauntlet::real_app::RealApplication;
use gauntlet::workload::HistoryEntry;
use gauntlet::{ClockControl, HttpCall, HttpReply, Launch, NodeSetup, OpOutcome, Operation, Placement};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Where Debian installs the server.
pub const ETCD_BINARY: &str = "/usr/bin/etcd";

/// The environment variable naming another etcd binary to run (default [`ETCD_BINARY`]).
pub const ETCD_BINARY_ENV: &str = "GAUNTLET_ETCD";

/// The etcd binary: `$GAUNTLET_ETCD`, else Debian's.
pub fn etcd_binary() -> String {
    std::env::var(ETCD_BINARY_ENV).unwrap_or_else(|_| ETCD_BINARY.to_owned())
}

/// The etcd application (`app.name = "etcd"`). It keeps each lock client's session (its lease
/// and lock key), as a client library would.
#[derive(Debug, Default)]
pub struct Etcd {
    locks: Mutex<BTreeMap<(String, u32), LockClient>>,
}

/// The lock every `lock` operation contends for.
pub const LOCK_NAME: &str = "gauntlet-lock";

/// The time to live, in seconds, of the lease a lock is taken with (etcd's shortest at its
/// default timing is 2 s). No keep-alive is sent: a client holds the lock for much less.
pub const LOCK_TTL_SECS: u64 = 2;

/// Where one client of the lock is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum LockClient {
    /// Holds nothing.
    #[default]
    Idle,
    /// Asked for a lease.
    Granting,
    /// Asked for the lock with this lease.
    Locking { lease: String, ttl: u64 },
    /// Holds the lock under this key (base64, as etcd gave it).
    Holding { key: String },
    /// Asked to release the lock held under this key.
    Releasing { key: String },
}

fn json_call(path: &str, body: serde_json::Value) -> HttpCall {
    HttpCall::new("POST", path).header("content-type", "application/json").body(body.to_string())
}

impl Etcd {
    fn lock_client(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, u32), LockClient>> {
        self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next call of a `lock` operation: a release when its client holds the lock (or was
    /// releasing it), else a lease to take it with.
    fn lock_request(&self, op: &Operation) -> HttpCall {
        let mut clients = self.lock_client();
        let client = clients.entry((op.workload.clone(), op.user)).or_default();
        match client.clone() {
            LockClient::Holding { key } | LockClient::Releasing { key } => {
                *client = LockClient::Releasing { key: key.clone() };
                json_call("/v3/lock/unlock", serde_json::json!({ "key": key }))
            }
            _ => {
                *client = LockClient::Granting;
                json_call("/v3/lease/grant", serde_json::json!({ "TTL": LOCK_TTL_SECS }))
            }
        }
    }

    /// What an answer to a `lock` operation's step means, and the client's next state.
    fn lock_reply(&self, op: &Operation, status: u16, body: &str) -> HttpReply {
        let v = serde_json::from_str::<serde_json::Value>(body).ok();
        let mut clients = self.lock_client();
        let client = clients.entry((op.workload.clone(), op.user)).or_default();
        let state = client.clone();
        let Some(v) = v.filter(|_| status == 200) else {
            // A release that may not have happened is tried again by the client's next
            // operation; an acquisition that may have happened is left to its lease.
            if !matches!(state, LockClient::Releasing { .. }) {
                *client = LockClient::Idle;
            }
            return HttpReply::Done(OpOutcome::info(format!("HTTP {status}: {}", body.trim())));
        };
        match state {
            LockClient::Granting => {
                let (Some(lease), ttl) = (v["ID"].as_str(), v["TTL"].as_str().and_then(|t| t.parse().ok())) else {
                    *client = LockClient::Idle;
                    return HttpReply::Done(OpOutcome::fail(format!("no lease granted: {body}")));
                };
                *client = LockClient::Locking { lease: lease.to_owned(), ttl: ttl.unwrap_or(LOCK_TTL_SECS) };
                HttpReply::Then(json_call(
                    "/v3/lock/lock",
                    serde_json::json!({ "name": b64(LOCK_NAME), "lease": lease }),
                ))
            }
            LockClient::Locking { lease, ttl } => match v["key"].as_str() {
                Some(key) => {
                    *client = LockClient::Holding { key: key.to_owned() };
                    HttpReply::Done(OpOutcome::ok(format!("acquired {key} lease {lease} ttl {ttl}s")))
                }
                None => {
                    *client = LockClient::Idle;
                    HttpReply::Done(OpOutcome::info(format!("no key in the lock's answer: {body}")))
                }
            },
            LockClient::Releasing { key } => {
                *client = LockClient::Idle;
                HttpReply::Done(OpOutcome::ok(format!("released {key}")))
            }
            LockClient::Idle | LockClient::Holding { .. } => {
                HttpReply::Done(OpOutcome::info(format!("an answer nothing was asked for: {body}")))
            }
        }
    }
}

/// One member's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdState {
    /// Its member id.
    pub member: String,
    /// The leader it knows (`0`: none).
    pub leader: String,
    /// Its raft term.
    pub term: u64,
    /// Its store's revision.
    pub revision: u64,
}

/// The key, value and expected value an operation's argument stands for.
fn parts(arg: u64, keys: u64) -> (String, String, String) {
    (format!("k{}", arg % keys), format!("{}", (arg / 16) % 10), format!("{}", (arg / 256) % 10))
}

/// How many keys the operations touch.
const DEFAULT_KEYS: u64 = 5;

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

impl RealApplication for Etcd {
    type State = EtcdState;

    fn name(&self) -> &str {
        "etcd"
    }

    fn roles(&self) -> Vec<String> {
        vec!["replica".into()]
    }

    fn operations(&self) -> Vec<String> {
        // `get_serializable` reads whatever the member it reaches has (etcd's `serializable`
        // range): faster, and not linearizable by design, so a plan that mixes it in expects
        // the checker to say so.
        // `lock` takes or releases etcd's lease-based lock, in turn.
        ["get", "put", "cas", "get_serializable", "lock"].map(str::to_owned).to_vec()
    }

    fn launch(&self, setup: &NodeSetup, placement: &Placement) -> Launch {
        let hint = "Debian's etcd-server package (apt-get install etcd-server)";
        // Asked without a placement (which binary runs?): just the binary.
        let Some(me) = placement.get(&setup.node.name) else {
            return Launch::binary(etcd_binary()).install_hint(hint);
        };
        let (client, peer) = (me.port_base, me.port_base + 1);
        let cluster: Vec<String> =
            placement.nodes.iter().map(|p| format!("{}=http://{}:{}", p.node.name, p.host, p.port_base + 1)).collect();
        Launch::binary(etcd_binary())
            .install_hint(hint)
            .arg(format!("--name={}", setup.node.name))
            .arg(format!("--data-dir={}", me.data_dir))
            .arg(format!("--listen-client-urls=http://{}:{client}", me.bind))
            .arg(format!("--advertise-client-urls=http://{}:{client}", me.host))
            .arg(format!("--listen-peer-urls=http://{}:{peer}", me.bind))
            .arg(format!("--initial-advertise-peer-urls=http://{}:{peer}", me.host))
            .arg(format!("--initial-cluster={}", cluster.join(",")))
            .arg("--initial-cluster-state=new")
            .arg("--initial-cluster-token=gauntlet")
            .arg("--logger=zap")
            .arg("--log-outputs=stderr")
            .http(client)
            .port(peer)
            .health("/health")
    }

    fn request(&self, op: &Operation) -> HttpCall {
        if op.op == "lock" {
            return self.lock_request(op);
        }
        let (key, value, expected) = parts(op.arg, DEFAULT_KEYS);
        let body = match op.op.as_str() {
            "put" => serde_json::json!({"key": b64(&key), "value": b64(&value)}),
            "cas" => serde_json::json!({
                "compare": [{"key": b64(&key), "target": "VALUE", "result": "EQUAL", "value": b64(&expected)}],
                "success": [{"requestPut": {"key": b64(&key), "value": b64(&value)}}],
            }),
            "get_serializable" => serde_json::json!({"key": b64(&key), "serializable": true}),
            _ => serde_json::json!({"key": b64(&key)}),
        };
        let path = match op.op.as_str() {
            "put" => "/v3/kv/put",
            "cas" => "/v3/kv/txn",
            _ => "/v3/kv/range",
        };
        json_call(path, body)
    }

    fn reply(&self, op: &Operation, status: u16, body: &str) -> HttpReply {
        if op.op == "lock" {
            return self.lock_reply(op, status, body);
        }
        // Anything but a 200 (a timeout, "no leader", a stopped member) may or may not have
        // taken effect: etcd can commit a request it timed out answering.
        if status != 200 {
            return HttpReply::Done(OpOutcome::info(format!("HTTP {status}: {}", body.trim())));
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
            return HttpReply::Done(OpOutcome::info(format!("not JSON: {body}")));
        };
        let outcome = match op.op.as_str() {
            "put" => OpOutcome::ok("ok"),
            // proto3 JSON leaves out `false`: no `succeeded` is a compare that did not match.
            "cas" => OpOutcome::ok(if v["succeeded"] == true { "true" } else { "false" }),
            _ => match v["kvs"][0]["value"].as_str() {
                None => OpOutcome::ok("nil"),
                Some(b) => match B64.decode(b).ok().and_then(|d| String::from_utf8(d).ok()) {
                    Some(value) => OpOutcome::ok(value),
                    None => OpOutcome::info(format!("undecodable value {b:?}")),
                },
            },
        };
        HttpReply::Done(outcome)
    }

    fn status_call(&self) -> HttpCall {
        HttpCall::new("POST", "/v3/maintenance/status").header("content-type", "application/json").body("{}")
    }

    fn parse_state(&self, body: &str) -> Result<EtcdState, String> {
        let v: serde_json::Value =
            serde_json::from_str(body).map_err(|e| format!("status is not JSON ({e}): {body}"))?;
        let text = |x: &serde_json::Value| x.as_str().unwrap_or("0").to_owned();
        let num = |x: &serde_json::Value| x.as_str().and_then(|s| s.parse().ok()).unwrap_or(0);
        Ok(EtcdState {
            member: text(&v["header"]["member_id"]),
            leader: text(&v["leader"]),
            term: num(&v["raftTerm"]),
            revision: num(&v["header"]["revision"]),
        })
    }

    fn ready(&self, s: &EtcdState) -> bool {
        s.leader != "0"
    }

    fn describe(&self, s: &EtcdState) -> String {
        let role = if s.member == s.leader { "leader" } else { "follower" };
        format!("{role} term {} rev {}", s.term, s.revision)
    }

    fn elects_leaders(&self) -> bool {
        true
    }

    fn clock_control(&self) -> ClockControl {
        ClockControl::Unsupported(
            "etcd is a Go program: it reads the clock without libc, so libfaketime cannot skew it".into(),
        )
    }

    fn leader_epoch(&self, s: &EtcdState) -> Option<u64> {
        (s.member == s.leader).then_some(s.term)
    }

    fn converged(&self, states: &[(&str, &EtcdState)]) -> Result<(), String> {
        let Some(((first, a), rest)) = states.split_first() else { return Ok(()) };
        match rest.iter().find(|(_, b)| b.revision != a.revision || b.leader != a.leader) {
            Some((name, b)) => Err(format!(
                "{first} is at revision {} under leader {} but {name} at {} under {}",
                a.revision, a.leader, b.revision, b.leader
            )),
            None => Ok(()),
        }
    }

    fn history_op(&self, e: &HistoryEntry) -> Option<HistoryOp> {
        let (key, value, expected) = parts(e.arg, DEFAULT_KEYS);
        let done = e.outcome == gauntlet::sim::OpPhase::Ok;
        let (op, reply) = match e.op.as_str() {
            "put" => (KvOp::Put(value.into()), done.then_some(Reply::Ack)),
            "cas" => (
                KvOp::Cas { expected: Some(expected.into()), new: value.into() },
                done.then(|| Reply::Cas(e.result == "true")),
            ),
            "get" | "get_serializable" => (
                KvOp::Get,
                done.then(|| Reply::Value(if e.result == "nil" { None } else { Some(e.result.as_str().into()) })),
            ),
            _ => return None,
        };
        Some(HistoryOp::kv(KvInput { key, op }, reply))
    }

    fn lock_op(&self, e: &HistoryEntry) -> Option<LockOp> {
        if e.op != "lock" {
            return None;
        }
        // "acquired KEY lease ID ttl 2s"; anything else (a release, an acquisition that failed
        // or timed out) ends whatever hold its client had.
        let ttl =
            e.result.strip_prefix("acquired ").and_then(|r| r.rsplit(' ').next()?.strip_suffix('s')?.parse().ok());
        Some(match ttl {
            Some(ttl) => LockOp::Acquire { lease: Some(Duration::from_secs(ttl)) },
            None => LockOp::Release,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str, arg: u64) -> Operation {
        Operation { workload: "w".into(), op: name.into(), user: 0, id: 0, arg }
    }

    #[test]
    fn a_lock_client_takes_a_lease_then_the_lock_then_releases_it() {
        let e = Etcd::default();
        let lock = op("lock", 0);
        let grant = e.request(&lock);
        assert_eq!(grant.path, "/v3/lease/grant");
        let HttpReply::Then(take) = e.reply(&lock, 200, r#"{"header":{},"ID":"77","TTL":"2"}"#) else {
            panic!("a granted lease goes on to the lock")
        };
        assert_eq!(take.path, "/v3/lock/lock");
        let body: serde_json::Value = serde_json::from_slice(&take.body).unwrap();
        assert_eq!(body, serde_json::json!({"name": b64(LOCK_NAME), "lease": "77"}));
        let acquired = e.reply(&lock, 200, r#"{"header":{},"key":"a2V5"}"#);
        let HttpReply::Done(OpOutcome::Ok(result)) = acquired else { panic!("acquired: {acquired:?}") };
        assert_eq!(result, "acquired a2V5 lease 77 ttl 2s");
        let entry = |result: &str| HistoryEntry {
            workload: "w".into(),
            user: 0,
            id: 0,
            op: "lock".into(),
            arg: 0,
            invoke: Duration::ZERO,
            complete: None,
            outcome: gauntlet::sim::OpPhase::Ok,
            result: result.into(),
        };
        assert_eq!(e.lock_op(&entry(&result)), Some(LockOp::Acquire { lease: Some(Duration::from_secs(2)) }));
        // The client's next operation releases it; an unknown answer leaves it releasing.
        let release = e.request(&lock);
        assert_eq!(release.path, "/v3/lock/unlock");
        assert!(matches!(e.reply(&lock, 503, "timed out"), HttpReply::Done(OpOutcome::Info(_))));
        assert_eq!(e.request(&lock).path, "/v3/lock/unlock", "a release that may not have happened is retried");
        let released = e.reply(&lock, 200, r#"{"header":{}}"#);
        let HttpReply::Done(OpOutcome::Ok(text)) = released else { panic!("released: {released:?}") };
        assert_eq!(e.lock_op(&entry(&text)), Some(LockOp::Release));
        // Another client is on its own; a failed acquisition holds nothing.
        let other = Operation { user: 1, ..lock.clone() };
        assert_eq!(e.request(&other).path, "/v3/lease/grant");
        assert!(matches!(e.reply(&other, 200, r#"{"error":"x"}"#), HttpReply::Done(OpOutcome::Fail(_))));
        assert_eq!(e.request(&lock).path, "/v3/lease/grant");
    }

    #[test]
    fn operations_become_v3_gateway_requests_and_replies_read_back() {
        let e = Etcd::default();
        let put = e.request(&op("put", 52));
        assert_eq!((put.method.as_str(), put.path.as_str()), ("POST", "/v3/kv/put"));
        let body: serde_json::Value = serde_json::from_slice(&put.body).unwrap();
        assert_eq!(body, serde_json::json!({"key": b64("k2"), "value": b64("3")}));
        let get = op("get", 1);
        let found =
            format!(r#"{{"header":{{}},"kvs":[{{"key":"{}","value":"{}"}}],"count":"1"}}"#, b64("k1"), b64("7"));
        assert!(matches!(e.reply(&get, 200, &found), HttpReply::Done(OpOutcome::Ok(v)) if v == "7"));
        assert!(matches!(e.reply(&get, 200, r#"{"header":{}}"#), HttpReply::Done(OpOutcome::Ok(v)) if v == "nil"));
        let cas = op("cas", 0);
        assert!(matches!(e.reply(&cas, 200, r#"{"header":{}}"#), HttpReply::Done(OpOutcome::Ok(v)) if v == "false"));
        assert!(
            matches!(e.reply(&cas, 200, r#"{"succeeded":true}"#), HttpReply::Done(OpOutcome::Ok(v)) if v == "true")
        );
        let timeout = e.reply(&cas, 503, r#"{"error":"etcdserver: request timed out"}"#);
        assert!(matches!(timeout, HttpReply::Done(OpOutcome::Info(_))), "a timeout may have committed");
    }

    #[test]
    fn status_reads_the_leader_and_its_term() {
        let body = r#"{"header":{"member_id":"42","revision":"9","raft_term":"3"},"leader":"42","raftTerm":"3"}"#;
        let etcd = Etcd::default();
        let s = etcd.parse_state(body).unwrap();
        assert_eq!(etcd.leader_epoch(&s), Some(3));
        assert_eq!(etcd.describe(&s), "leader term 3 rev 9");
        let follower = EtcdState { member: "7".into(), ..s.clone() };
        assert_eq!(etcd.leader_epoch(&follower), None);
        assert!(etcd.converged(&[("a", &s), ("b", &follower)]).is_ok());
        let behind = EtcdState { revision: 8, ..follower };
        assert!(etcd.converged(&[("a", &s), ("b", &behind)]).unwrap_err().contains("revision 9"));
    }
}
