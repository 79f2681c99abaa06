//! Redis (Debian's `redis-server` and `redis-sentinel`): a primary with replicas and Sentinels
//! that fail it over, driven over Redis's own protocol (RESP). Clients add unique elements to
//! one set and read it back, checked by the built-in `no_lost_writes` expectation: every add
//! the primary acknowledged must be in the last read. Replication is asynchronous, so a primary
//! cut off from its replicas and Sentinels keeps acknowledging adds that the new primary never
//! had, and when the network heals the old primary becomes a replica of the new one and drops
//! them (documented by Redis, shown by Jepsen in 2013). `add_wait` follows each add with
//! `WAIT 1 200` and counts it acknowledged only when a replica has it.
//!
//! Roles: `redis` (the first is the initial primary, the others its replicas) and `sentinel`
//! (they serve no client operations). A node's state is its `INFO`.

use gauntlet::lost_writes::SetOp;
use gauntlet::real_app::RealApplication;
use gauntlet::workload::HistoryEntry;
use gauntlet::{ClockControl, HttpCall, HttpReply, Launch, NodeSetup, OpOutcome, Operation, Placement};

/// Where Debian installs `redis-server` and `redis-sentinel`.
pub const REDIS_DIR: &str = "/usr/bin";
/// The environment variable naming another directory holding both (default [`REDIS_DIR`]).
pub const REDIS_DIR_ENV: &str = "GAUNTLET_REDIS_DIR";

/// The path of Redis's program `name`: in `$GAUNTLET_REDIS_DIR`, else Debian's.
pub fn redis_binary(name: &str) -> String {
    format!("{}/{name}", std::env::var(REDIS_DIR_ENV).unwrap_or_else(|_| REDIS_DIR.to_owned()))
}
/// The set every client adds to.
pub const SET_KEY: &str = "gauntlet-set";
/// The name Sentinels monitor the primary by.
pub const MASTER_NAME: &str = "gauntlet";
/// How long `add_wait` waits for a replica, in milliseconds.
pub const WAIT_MS: u64 = 200;

/// The Redis application (`app.name = "redis"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Redis;

/// One node's `INFO`, as far as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisState {
    /// A server: `master` or `slave`, its replication offset, and, for a replica, the primary
    /// it follows (`host:port`) and whether its link to it is up.
    Server {
        /// `master` or `slave`.
        role: String,
        /// `master_repl_offset`.
        offset: u64,
        /// The primary it replicates (`host:port`), for a replica.
        primary: Option<String>,
        /// `master_link_status:up`, for a replica.
        link_up: bool,
    },
    /// A Sentinel: the primary it believes in and that primary's status.
    Sentinel {
        /// `address=` of `master0`.
        primary: String,
        /// `status=` of `master0` (`ok`, `sdown`, `odown`).
        status: String,
    },
}

/// The element an add puts in the set: unique per workload and operation.
fn element(workload: &str, id: u64) -> String {
    format!("{workload}:{id}")
}

/// `INFO` text as `key → value`.
fn info_fields(text: &str) -> std::collections::BTreeMap<&str, &str> {
    text.lines().filter_map(|l| l.trim_end_matches('\r').split_once(':')).collect()
}

impl RealApplication for Redis {
    type State = RedisState;

    fn name(&self) -> &str {
        "redis"
    }

    fn roles(&self) -> Vec<String> {
        vec!["redis".into(), "sentinel".into()]
    }

    fn operations(&self) -> Vec<String> {
        ["add", "add_wait", "read"].map(str::to_owned).to_vec()
    }

    fn serves(&self, role: &str) -> bool {
        role == "redis"
    }

    fn launch(&self, setup: &NodeSetup, placement: &Placement) -> Launch {
        let sentinel = setup.node.role == "sentinel";
        let (binary, hint) = if sentinel {
            (redis_binary("redis-sentinel"), "Debian's redis-sentinel package (apt-get install redis-sentinel)")
        } else {
            (redis_binary("redis-server"), "Debian's redis-server package (apt-get install redis-server)")
        };
        let Some(me) = placement.get(&setup.node.name) else {
            return Launch::binary(binary).install_hint(hint);
        };
        let primary = placement.nodes.iter().find(|p| p.node.role == "redis");
        let port = me.port_base;
        let ping = HttpCall::resp([vec!["PING"]]);
        if sentinel {
            // Sentinel insists on a configuration file it can rewrite; it is written once, and a
            // restarted Sentinel keeps what it learnt.
            let (host, primary_port) = primary.map_or(("127.0.0.1".to_owned(), 0), |p| (p.host.clone(), p.port_base));
            // The replicas are named up front: a Sentinel finds them itself only from the
            // primary's INFO, every 10 s, and cannot fail over before it has.
            let replicas: String = placement
                .nodes
                .iter()
                .filter(|p| p.node.role == "redis" && p.node.name != primary.map_or("", |q| q.node.name.as_str()))
                .map(|p| format!("sentinel known-replica {MASTER_NAME} {} {}\n", p.host, p.port_base))
                .collect();
            let conf = format!(
                "port {port}\nbind {bind}\nprotected-mode no\ndir {dir}\nsentinel resolve-hostnames yes\n\
                 sentinel announce-ip {me_host}\nsentinel monitor {MASTER_NAME} {host} {primary_port} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\nsentinel failover-timeout {MASTER_NAME} 5000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n{replicas}",
                bind = me.bind,
                dir = me.data_dir,
                me_host = me.host,
            );
            return Launch::binary(binary)
                .install_hint(hint)
                .arg(format!("{}/sentinel.conf", me.data_dir))
                .file("sentinel.conf", conf)
                .http(port)
                .health_call(ping);
        }
        let mut launch = Launch::binary(binary)
            .install_hint(hint)
            .arg("--port")
            .arg(port.to_string())
            .arg("--bind")
            .arg(me.bind.clone())
            .arg("--protected-mode")
            .arg("no")
            .arg("--dir")
            .arg(me.data_dir.clone())
            // No snapshots: replication is what is under test, and a restarted primary that
            // comes back empty is a different (documented) way to lose everything.
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            .arg("--replica-announce-ip")
            .arg(me.host.clone())
            .http(port)
            .health_call(ping);
        if let Some(p) = primary.filter(|p| p.node.name != setup.node.name) {
            launch = launch.arg("--replicaof").arg(p.host.clone()).arg(p.port_base.to_string());
        }
        launch
    }

    fn request(&self, op: &Operation) -> HttpCall {
        let e = element(&op.workload, op.id);
        match op.op.as_str() {
            "add" => HttpCall::resp([vec!["SADD".to_owned(), SET_KEY.into(), e]]),
            "add_wait" => HttpCall::resp([
                vec!["SADD".to_owned(), SET_KEY.into(), e],
                vec!["WAIT".to_owned(), "1".into(), WAIT_MS.to_string()],
            ]),
            // ROLE first: a replica's (stale) copy is not read.
            _ => HttpCall::resp([vec!["ROLE"], vec!["SMEMBERS", SET_KEY]]),
        }
    }

    fn reply(&self, op: &Operation, status: u16, body: &str) -> HttpReply {
        if status != 200 {
            // A replica refuses writes: the add did not happen there; try the next server.
            if body.starts_with("READONLY") {
                return HttpReply::Elsewhere(None);
            }
            return HttpReply::Done(OpOutcome::fail(body.trim().to_owned()));
        }
        let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
            return HttpReply::Done(OpOutcome::info(format!("not a RESP answer: {body}")));
        };
        match op.op.as_str() {
            "add" => HttpReply::Done(OpOutcome::ok(v.to_string())),
            "add_wait" => match v[1].as_u64() {
                Some(n) if n >= 1 => HttpReply::Done(OpOutcome::ok(format!("on {n} replicas"))),
                // Written on this primary but on no replica in time: not acknowledged, and its
                // fate is unknown (it may replicate later, or vanish in a failover).
                _ => HttpReply::Done(OpOutcome::info(format!("on no replica within {WAIT_MS} ms"))),
            },
            _ => {
                if v[0][0] != "master" {
                    return HttpReply::Elsewhere(None);
                }
                let mut members: Vec<String> =
                    v[1].as_array().into_iter().flatten().filter_map(|m| m.as_str().map(str::to_owned)).collect();
                members.sort();
                HttpReply::Done(OpOutcome::ok(members.join(",")))
            }
        }
    }

    fn status_call(&self) -> HttpCall {
        HttpCall::resp([vec!["INFO"]])
    }

    fn parse_state(&self, body: &str) -> Result<RedisState, String> {
        let text: String = serde_json::from_str(body).map_err(|e| format!("INFO is not a string ({e}): {body}"))?;
        let f = info_fields(&text);
        if f.get("redis_mode") == Some(&"sentinel") {
            let master = f.get("master0").ok_or("a Sentinel that monitors nothing")?;
            let field = |k: &str| {
                master.split(',').find_map(|kv| kv.strip_prefix(&format!("{k}="))).unwrap_or_default().to_owned()
            };
            return Ok(RedisState::Sentinel { primary: field("address"), status: field("status") });
        }
        let role = f.get("role").ok_or("INFO has no role")?.to_string();
        let offset = f.get("master_repl_offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        let primary = (role == "slave")
            .then(|| format!("{}:{}", f.get("master_host").unwrap_or(&"?"), f.get("master_port").unwrap_or(&"?")));
        Ok(RedisState::Server { role, offset, link_up: f.get("master_link_status") == Some(&"up"), primary })
    }

    fn ready(&self, s: &RedisState) -> bool {
        match s {
            RedisState::Server { role, link_up, .. } => role == "master" || *link_up,
            RedisState::Sentinel { status, .. } => status == "ok",
        }
    }

    fn describe(&self, s: &RedisState) -> String {
        match s {
            RedisState::Server { role, primary: None, .. } => role.clone(),
            RedisState::Server { primary: Some(p), link_up, .. } => {
                format!("replica of {p} (link {})", if *link_up { "up" } else { "down" })
            }
            RedisState::Sentinel { primary, status } => format!("sentinel: primary {primary} ({status})"),
        }
    }

    fn elects_leaders(&self) -> bool {
        true
    }

    /// A primary leads; of two (one cut off), the one further along in replication.
    fn leader_epoch(&self, s: &RedisState) -> Option<u64> {
        match s {
            RedisState::Server { role, offset, .. } if role == "master" => Some(*offset),
            _ => None,
        }
    }

    /// One primary; every replica follows the same primary with its link up; every Sentinel
    /// names that primary as `ok`.
    fn converged(&self, states: &[(&str, &RedisState)]) -> Result<(), String> {
        let primaries: Vec<&str> = states
            .iter()
            .filter(|(_, s)| matches!(s, RedisState::Server { role, .. } if role == "master"))
            .map(|(n, _)| *n)
            .collect();
        if primaries.len() != 1 {
            return Err(format!("{} primaries: {}", primaries.len(), primaries.join(", ")));
        }
        let mut followed = None;
        for (name, s) in states {
            let (p, ok) = match s {
                RedisState::Server { primary: Some(p), link_up, .. } => (p, *link_up),
                RedisState::Sentinel { primary, status } => (primary, status == "ok"),
                RedisState::Server { .. } => continue,
            };
            if !ok {
                return Err(format!("{name}: {}", self.describe(s)));
            }
            match followed {
                None => followed = Some(p),
                Some(q) if q != p => return Err(format!("{name} follows {p}, others {q}")),
                _ => {}
            }
        }
        Ok(())
    }

    /// Measured with Debian 12's libfaketime 0.9.10 and redis-server 7.0.15: under the
    /// preloaded library the server (and Sentinel) exit at start, printing "libfaketime:
    /// Unexpected recursive calls to clock_gettime() without proper initialization" (Redis's
    /// jemalloc reads the clock while libfaketime initialises).
    fn clock_control(&self) -> ClockControl {
        ClockControl::Unsupported(
            "Debian's libfaketime 0.9.10 cannot run redis-server: its jemalloc reads the clock while \
             libfaketime initialises, and the server exits"
                .into(),
        )
    }

    fn set_op(&self, e: &HistoryEntry) -> Option<SetOp> {
        match e.op.as_str() {
            "add" | "add_wait" => Some(SetOp::Add(element(&e.workload, e.id))),
            "read" => Some(SetOp::Read(e.result.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str, id: u64) -> Operation {
        Operation { workload: "w".into(), op: name.into(), user: 0, id, arg: 0 }
    }

    #[test]
    fn adds_and_reads_become_resp_commands_and_replies_read_back() {
        let add = Redis.request(&op("add_wait", 7));
        assert_eq!(add.resp, [vec!["SADD", SET_KEY, "w:7"], vec!["WAIT", "1", "200"]]);
        assert_eq!(
            Redis.reply(&op("add", 1), 500, "READONLY You can't write against a read only replica."),
            HttpReply::Elsewhere(None)
        );
        assert!(matches!(Redis.reply(&op("add_wait", 1), 200, "[1,0]"), HttpReply::Done(OpOutcome::Info(_))));
        assert!(matches!(Redis.reply(&op("add_wait", 1), 200, "[1,2]"), HttpReply::Done(OpOutcome::Ok(_))));
        let read = op("read", 3);
        assert_eq!(
            Redis.reply(&read, 200, r#"[["slave","10.0.0.1",7000,"connected",5],["w:1"]]"#),
            HttpReply::Elsewhere(None)
        );
        let HttpReply::Done(OpOutcome::Ok(members)) = Redis.reply(&read, 200, r#"[["master",5,[]],["w:2","w:1"]]"#)
        else {
            panic!("a primary's read is done")
        };
        assert_eq!(members, "w:1,w:2");
    }

    #[test]
    fn info_of_servers_and_sentinels_parses() {
        let primary =
            Redis.parse_state(r#""role:master\r\nconnected_slaves:2\r\nmaster_repl_offset:420\r\n""#).unwrap();
        assert_eq!(Redis.leader_epoch(&primary), Some(420));
        let replica = Redis
            .parse_state(r#""role:slave\r\nmaster_host:10.0.0.1\r\nmaster_port:7000\r\nmaster_link_status:up\r\nmaster_repl_offset:400\r\n""#)
            .unwrap();
        assert_eq!(Redis.describe(&replica), "replica of 10.0.0.1:7000 (link up)");
        let sentinel = Redis
            .parse_state(r#""redis_mode:sentinel\r\nmaster0:name=gauntlet,status=ok,address=10.0.0.1:7000,slaves=2,sentinels=3\r\n""#)
            .unwrap();
        assert_eq!(sentinel, RedisState::Sentinel { primary: "10.0.0.1:7000".into(), status: "ok".into() });
        assert!(Redis.converged(&[("r0", &primary), ("r1", &replica), ("s0", &sentinel)]).is_ok());
        let two = Redis.converged(&[("r0", &primary), ("r1", &primary)]).unwrap_err();
        assert!(two.contains("2 primaries"), "{two}");
    }
}
