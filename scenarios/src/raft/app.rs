//! raft-kv as a Gauntlet [`Application`]: role `replica`, operations `get`, `put` and `cas`
//! over three keys and five values (small domains make conflicts likely), observed through
//! each replica's status, judged by linearizability, one leader per term and convergence.

use super::bugs::{Bugs, NAMES};
use super::core::{ClientCommand, ClientResult, Role, Status};
use super::driver::{self, RaftConfig, Wire};
use crate::bug_options::names as bug_names;
use gauntlet::expect::Status as Judgement;
use gauntlet::expect::{Check, Expectation, ExpectationRegistry, Params};
use gauntlet::sim::{NodeContext, NodeId, Transport};
use gauntlet::{
    Application, FailureClass, HttpApplication, HttpCall, HttpReply, Launch, NodeRef, NodeSetup, OpOutcome, Operation,
    Placed, Placement,
};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

/// Keys the workload uses.
pub const KEYS: u64 = 3;
/// Values a write picks from.
pub const VALUES: u64 = 5;
/// How long a client waits for one attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

/// The raft-kv application.
#[derive(Debug, Clone, Default)]
pub struct RaftKv;

/// A client: a transport plus the leader it last heard of.
#[derive(Clone)]
pub struct RaftClient {
    transport: Transport,
    leader: Rc<Cell<Option<u32>>>,
}

/// The command an operation stands for: its key and values come from its argument, so the
/// history can be rebuilt from `(op, arg)` alone.
pub fn command_for(op: &str, arg: u64) -> ClientCommand {
    let key = format!("k{}", arg % KEYS);
    let value = |shift: u32| ((arg >> shift) % VALUES).to_string();
    match op {
        "get" => ClientCommand::Get { key },
        "cas" => ClientCommand::Cas { key, expected: Some(value(16)), new: value(32) },
        _ => ClientCommand::Put { key, value: value(8) },
    }
}

/// The argument [`command_for`] turns into `op` with these fields (see
/// [`Application::script_arg`]); `random` picks the replica a client without a known leader
/// tries first (bits 40 and up), as a workload's draw does.
pub fn script_arg(op: &str, fields: &BTreeMap<String, String>, random: u64) -> Result<u64, String> {
    let allowed: &[&str] = match op {
        "get" => &["key"],
        "put" => &["key", "value"],
        "cas" => &["key", "expected", "new"],
        other => return Err(format!("unknown operation {other:?}")),
    };
    if let Some(k) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown field {k:?}; {op} takes {}", allowed.join(", ")));
    }
    let number = |name: &str, limit: u64, what: &str| -> Result<u64, String> {
        let Some(text) = fields.get(name) else { return Err(format!("{op} needs {name}")) };
        let n = text.trim_start_matches('k').parse::<u64>().ok().filter(|n| *n < limit);
        n.ok_or_else(|| format!("{name} = {text:?}: raft-kv's {what} are {} to {}", 0, limit - 1))
    };
    let key = number("key", KEYS, "keys (k0, k1, ...)")?;
    let pick = random >> 40;
    let high = match op {
        "get" => pick << 40,
        // (high >> 8) % VALUES is the value and high >> 40 the pick.
        "put" => {
            let value = number("value", VALUES, "values")?;
            ((pick << 32) + (value + VALUES - (pick << 32) % VALUES) % VALUES) << 8
        }
        _ => number("expected", VALUES, "values")? << 16 | number("new", VALUES, "values")? << 32,
    };
    // The key is the argument modulo KEYS: the low byte (free of values) makes it so.
    Ok(high + (key + KEYS - high % KEYS) % KEYS)
}

fn bugs(options: &toml::Table) -> Bugs {
    Bugs::parse(bug_names(options)).unwrap_or_default()
}

impl Application for RaftKv {
    type State = Status;
    type Client = RaftClient;

    fn name(&self) -> &str {
        "raft-kv"
    }

    fn bugs(&self) -> Vec<String> {
        crate::raft::bugs::NAMES.iter().map(|b| (*b).to_owned()).collect()
    }
    /// Only this system's sometimes-assertions: the crate links gossip, raft-kv and the ledger.
    fn probe_scope(&self) -> Vec<String> {
        vec![module_path!().trim_end_matches("::app").to_owned()]
    }
    fn roles(&self) -> Vec<String> {
        vec!["replica".into()]
    }
    fn operations(&self) -> Vec<String> {
        vec!["get".into(), "put".into(), "cas".into()]
    }
    fn versions(&self) -> Vec<String> {
        driver::Format::NAMES.iter().map(|v| (*v).to_owned()).collect()
    }
    /// `get {key}`, `put {key, value}`, `cas {key, expected, new}`: keys `k0`..`k2` (or 0..2),
    /// values 0..4, packed into the argument as [`command_for`] unpacks it.
    fn script_arg(&self, op: &str, fields: &BTreeMap<String, String>, random: u64) -> Result<u64, String> {
        script_arg(op, fields, random)
    }
    fn check_options(&self, options: &toml::Table) -> Vec<(String, String)> {
        crate::bug_options::check("raft-kv", &NAMES, options, |b| Bugs::parse([b]).map(|_| ()))
    }
    fn node(&self, ctx: NodeContext, setup: NodeSetup) -> impl Future<Output = ()> + 'static + use<> {
        // The version was checked against `versions` by the script engine.
        let format = driver::Format::of(setup.version.as_deref()).unwrap_or_default();
        driver::run(ctx, RaftConfig { bugs: bugs(&setup.options), format, ..RaftConfig::default() })
    }
    fn client(&self, ctx: &NodeContext) -> RaftClient {
        RaftClient { transport: ctx.transport(), leader: Rc::new(Cell::new(None)) }
    }
    async fn execute(&self, c: &RaftClient, op: &Operation, nodes: &[NodeRef]) -> OpOutcome {
        if nodes.is_empty() {
            return OpOutcome::fail("no replicas");
        }
        let command = command_for(&op.op, op.arg);
        let mut target = c.leader.get().unwrap_or(nodes[(op.arg >> 40) as usize % nodes.len()].id.0);
        for _ in 0..3 {
            let request = Wire::Request(command.clone()).encode();
            let answer = match c.transport.request(NodeId(target), request, ATTEMPT_TIMEOUT).await {
                Ok(bytes) => Wire::decode(&bytes),
                // No answer: the request may or may not have taken effect. Forget the leader: it
                // may be down, and the next operation should look elsewhere.
                Err(e) => {
                    c.leader.set(None);
                    return OpOutcome::info(e.to_string());
                }
            };
            match answer {
                Some(Wire::Response(ClientResult::Value(v))) => {
                    c.leader.set(Some(target));
                    return OpOutcome::ok(v.unwrap_or_else(|| "nil".into()));
                }
                // A cas answers whether its compare matched: both are results the history checks.
                Some(Wire::Response(ClientResult::Done)) => {
                    c.leader.set(Some(target));
                    return OpOutcome::ok(if op.op == "cas" { "true" } else { "" });
                }
                Some(Wire::Response(ClientResult::CasFailed { .. })) => return OpOutcome::ok("false"),
                Some(Wire::Response(ClientResult::NotLeader { hint })) => {
                    let next = hint.filter(|&h| h != target).unwrap_or_else(|| {
                        let i = nodes.iter().position(|n| n.id.0 == target).map_or(0, |i| i + 1);
                        nodes[i % nodes.len()].id.0
                    });
                    c.leader.set(hint);
                    target = next;
                }
                _ => return OpOutcome::info("garbled answer"),
            }
        }
        OpOutcome::fail("no leader found")
    }
    async fn read_state(&self, c: &RaftClient, node: &NodeRef) -> Result<Status, String> {
        let bytes = c
            .transport
            .request(node.id, Wire::StatusRequest.encode(), Duration::from_millis(200))
            .await
            .map_err(|e| e.to_string())?;
        match Wire::decode(&bytes) {
            Some(Wire::Status(s)) => Ok(s),
            _ => Err("garbled status".into()),
        }
    }
    fn ready(&self, s: &Status) -> bool {
        s.leader.is_some()
    }
    fn elects_leaders(&self) -> bool {
        true
    }
    fn describe(&self, s: &Status) -> String {
        let leader = s.leader.map_or_else(|| "none".to_owned(), |l| l.to_string());
        format!(
            "term {} {:?} (leader {leader}) commit {} applied {} digest {:016x}",
            s.term, s.role, s.commit, s.applied, s.digest
        )
    }
    fn leader_epoch(&self, s: &Status) -> Option<u64> {
        (s.role == Role::Leader).then_some(s.term)
    }
    fn converged(&self, states: &[(&str, &Status)]) -> Result<(), String> {
        let Some(((first, s0), rest)) = states.split_first() else { return Ok(()) };
        for (name, s) in rest {
            if (s.applied, s.digest) != (s0.applied, s0.digest) {
                return Err(format!(
                    "{first} applied {} (digest {:x}), {name} applied {} (digest {:x})",
                    s0.applied, s0.digest, s.applied, s.digest
                ));
            }
        }
        if s0.applied == 0 {
            return Err("nothing applied yet".into());
        }
        Ok(())
    }
    fn expectations(&self, r: &mut ExpectationRegistry<Self>) {
        r.register("one_leader_per_term", |p, _| {
            Params::new("one_leader_per_term", p, &[]).done()?;
            Ok(Box::new(OneLeaderPerTerm::default()) as Box<dyn Expectation<RaftKv>>)
        });
        r.register("linearizable", |p, _| {
            Params::new("linearizable", p, &[]).done()?;
            Ok(Box::new(Linearizable::default()) as Box<dyn Expectation<RaftKv>>)
        });
    }
    /// `raft-kv-node`, configured through its environment: raft on the placement's first
    /// port, HTTP on the next, peers by the names or addresses the backend placed them at, its
    /// log format the build's (`v1`, `v2`).
    fn launch(&self, setup: &NodeSetup, placement: &Placement) -> Launch {
        let port = |p: &Placed| p.port_base;
        let peers: Vec<String> =
            placement.nodes.iter().map(|p| format!("{}={}:{}", p.node.id.0, p.host, port(p))).collect();
        let me = placement.get(&setup.node.name);
        let (bind, base, data) =
            me.map_or(("127.0.0.1", 7000, "./data"), |p| (p.bind.as_str(), p.port_base, p.data_dir.as_str()));
        Launch::binary("raft-kv-node")
            .port(base)
            .http(base + 1)
            .env("RAFT_KV_ID", setup.node.id.0.to_string())
            .env("RAFT_KV_LISTEN", format!("{bind}:{base}"))
            .env("RAFT_KV_HTTP", format!("{bind}:{}", base + 1))
            .env("RAFT_KV_DATA", data)
            .env("RAFT_KV_PEERS", peers.join(","))
            .env("RAFT_KV_BUGS", bug_names(&setup.options).join(","))
            .env("RAFT_KV_FORMAT", setup.version.as_deref().unwrap_or(driver::Format::NAMES[0]))
    }
}

impl HttpApplication for RaftKv {
    fn request(&self, op: &Operation) -> HttpCall {
        match command_for(&op.op, op.arg) {
            ClientCommand::Get { key } => HttpCall::new("GET", format!("/kv/{key}")),
            ClientCommand::Put { key, value } => HttpCall::new("PUT", format!("/kv/{key}")).body(value),
            ClientCommand::Cas { key, expected, new } => {
                HttpCall::new("PUT", format!("/kv/{key}")).header("If-Match", expected.unwrap_or_default()).body(new)
            }
        }
    }
    fn reply(&self, op: &Operation, status: u16, body: &str) -> HttpReply {
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        match status {
            200 if op.op == "get" => HttpReply::Done(OpOutcome::ok(json["value"].as_str().unwrap_or("nil"))),
            200 if op.op == "cas" => {
                HttpReply::Done(OpOutcome::ok(if json["ok"].as_bool() == Some(true) { "true" } else { "false" }))
            }
            200 => HttpReply::Done(OpOutcome::ok("")),
            421 => HttpReply::Elsewhere(json["leader"].as_u64().map(|l| l as u32)),
            // The node took the request but heard nothing back in time: it may still commit.
            504 => HttpReply::Done(OpOutcome::info("no answer from raft")),
            _ => HttpReply::Done(OpOutcome::info(format!("HTTP {status}: {body}"))),
        }
    }
    fn parse_state(&self, body: &str) -> Result<Status, String> {
        serde_json::from_str(body).map_err(|e| format!("garbled status: {e}"))
    }
}

/// Safety: no two replicas ever lead the same term. Read from the replicas' `leader` facts
/// under simulation (ground truth, stamped with true time, kept across restarts) and from each
/// replica's record of the terms it led at every observation (the only source for real runs),
/// so even a leadership that ends before anyone observes it is seen.
#[derive(Default)]
struct OneLeaderPerTerm {
    leaders: BTreeMap<u64, String>,
    /// How many facts earlier checks have read.
    facts_read: usize,
}

impl OneLeaderPerTerm {
    fn claim(&mut self, term: u64, name: &str, how: impl FnOnce() -> String) -> Result<(), String> {
        match self.leaders.get(&term) {
            Some(other) if other != name => Err(format!("{other} and {name} both led term {term} ({})", how())),
            Some(_) => Ok(()),
            None => {
                self.leaders.insert(term, name.to_owned());
                Ok(())
            }
        }
    }

    fn judge(&mut self, cx: &Check<'_, RaftKv>) -> Result<(), String> {
        let new = cx.facts.get(self.facts_read..).unwrap_or_default();
        self.facts_read = cx.facts.len();
        for f in new.iter().filter(|f| f.key == "leader") {
            if let Some(term) = f.value.strip_prefix("term=").and_then(|t| t.parse().ok()) {
                self.claim(term, &f.node, || format!("{} became leader at {:?}", f.node, f.at))?;
            }
        }
        for (name, v) in cx.view {
            let Some(s) = &v.state else { continue };
            let current = (s.role == Role::Leader).then_some(s.term);
            for term in s.terms_led.iter().copied().chain(current) {
                self.claim(term, name, || format!("observed in {name}'s status"))?;
            }
        }
        Ok(())
    }
}

impl Expectation<RaftKv> for OneLeaderPerTerm {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, cx: &Check<'_, RaftKv>) -> Judgement {
        match self.judge(cx) {
            Ok(()) => Judgement::Holds,
            Err(e) => Judgement::Violated(e),
        }
    }
}

/// Safety: the client history is linearizable for a key-value store. Keeps when the
/// counterexample's last operation returned.
#[derive(Default)]
struct Linearizable {
    evidence_at: Option<std::time::Duration>,
}

impl Expectation<RaftKv> for Linearizable {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, _: &Check<'_, RaftKv>) -> Judgement {
        Judgement::Holds
    }
    fn at_end(&mut self, cx: &Check<'_, RaftKv>) -> Judgement {
        let (status, at) = super::history::check_history(cx.history);
        self.evidence_at = at;
        status
    }
    fn evidence_at(&self) -> Option<std::time::Duration> {
        self.evidence_at
    }
}
