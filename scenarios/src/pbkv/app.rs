//! pb-kv as a Gauntlet [`Application`] and [`HttpApplication`]: roles `primary` (one) and
//! `backup`; operations `get` and `put` over [`KEYS`] keys and [`VALUES`] values, sent to the
//! primary over HTTP — on simulated streams under simulation, by the real backends' HTTP client
//! for real; observed through each replica's `GET /status`.

use super::bugs::{Bugs, NAMES};
use super::http::call_once;
use super::node::{self, NodeConfig, Status};
use crate::bug_options::names as bug_names;
use gauntlet::lincheck::{HistoryOp, KvInput, KvOp, Reply};
use gauntlet::sim::{NodeContext, OpPhase};
use gauntlet::workload::HistoryEntry;
use gauntlet::{
    Application, HttpApplication, HttpCall, HttpReply, Launch, NodeRef, NodeSetup, OpOutcome, Operation, Placed,
    Placement,
};
use std::future::Future;
use std::time::Duration;

/// Keys the workload uses.
pub const KEYS: u64 = 3;
/// Values a put picks from (many, so a lost write is rarely hidden by an equal later one).
pub const VALUES: u64 = 100;
/// The port replicas serve HTTP on under simulation.
pub const PORT: u16 = 8080;
/// How long a client waits for an operation's answer.
pub const OP_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long the observer waits for a status.
pub const STATUS_TIMEOUT: Duration = Duration::from_millis(300);

/// The pb-kv application.
#[derive(Debug, Clone, Default)]
pub struct PbKv;

/// A client: it needs nothing but the streams of the node it runs on.
#[derive(Debug, Clone, Copy)]
pub struct PbClient;

/// The key and value an operation's argument stands for.
pub fn key_value(arg: u64) -> (String, String) {
    (format!("k{}", arg % KEYS), ((arg >> 8) % VALUES).to_string())
}

/// The primary among `nodes` (the first with role `primary`).
fn primary(nodes: &[NodeRef]) -> Option<&NodeRef> {
    nodes.iter().find(|n| n.role == "primary")
}

impl Application for PbKv {
    type State = Status;
    type Client = PbClient;

    fn name(&self) -> &str {
        "pb-kv"
    }
    fn roles(&self) -> Vec<String> {
        vec!["primary".into(), "backup".into()]
    }
    fn operations(&self) -> Vec<String> {
        vec!["get".into(), "put".into()]
    }
    fn bugs(&self) -> Vec<String> {
        NAMES.iter().map(|b| (*b).to_owned()).collect()
    }
    fn probe_scope(&self) -> Vec<String> {
        vec![module_path!().trim_end_matches("::app").to_owned()]
    }
    fn check_options(&self, options: &toml::Table) -> Vec<(String, String)> {
        crate::bug_options::check("pb-kv", &NAMES, options, |b| Bugs::parse([b]).map(|_| ()))
    }
    fn node(&self, ctx: NodeContext, setup: NodeSetup) -> impl Future<Output = ()> + 'static + use<> {
        let members = ctx.members();
        let primary_id = members.iter().find(|(_, s)| s.role == "primary").map_or(0, |(id, _)| id.0);
        let backups =
            members.iter().filter(|(_, s)| s.role == "backup").map(|(_, s)| format!("{}:{PORT}", s.name)).collect();
        let config = NodeConfig {
            id: ctx.id().0,
            primary: ctx.role() == "primary",
            primary_id,
            listen: format!("0.0.0.0:{PORT}"),
            backups,
            bugs: Bugs::parse(bug_names(&setup.options)).unwrap_or_default(),
        };
        let disk = ctx.disk();
        async move {
            if let Err(e) = node::run(config, disk).await {
                ctx.annotate(format!("pb-kv replica stopped: {e}"));
            }
        }
    }
    fn client(&self, _ctx: &NodeContext) -> PbClient {
        PbClient
    }
    /// The operation's [`HttpApplication::request`], sent to the primary over a simulated
    /// stream with hyper, its answer read by [`HttpApplication::reply`]: the requests and
    /// answers a real run exchanges.
    async fn execute(&self, _c: &PbClient, op: &Operation, nodes: &[NodeRef]) -> OpOutcome {
        let Some(p) = primary(nodes) else { return OpOutcome::fail("no primary among the members") };
        let call = self.request(op);
        let addr = format!("{}:{PORT}", p.name);
        match call_once(&addr, &call.method, &call.path, &call.headers, call.body, OP_TIMEOUT).await {
            Ok((status, body)) => match self.reply(op, status, &body) {
                HttpReply::Done(outcome) => outcome,
                HttpReply::Elsewhere(_) | HttpReply::Then(_) => OpOutcome::info(format!("HTTP {status}: {body}")),
            },
            // Refused: nobody listens, so the write certainly did not happen.
            Err(e) if e.contains("refused") => OpOutcome::fail(e),
            Err(e) => OpOutcome::info(e),
        }
    }
    async fn read_state(&self, _c: &PbClient, node: &NodeRef) -> Result<Status, String> {
        let call = self.status_call();
        let addr = format!("{}:{PORT}", node.name);
        let (status, body) = call_once(&addr, &call.method, &call.path, &[], Vec::new(), STATUS_TIMEOUT).await?;
        if status != 200 {
            return Err(format!("status answered HTTP {status}: {body}"));
        }
        self.parse_state(&body)
    }
    fn describe(&self, s: &Status) -> String {
        format!("{} len {} synced {} digest {:016x}", s.role, s.len, s.synced, s.digest)
    }
    /// Every replica's log is the primary's: same length, same digest.
    fn converged(&self, states: &[(&str, &Status)]) -> Result<(), String> {
        let Some(((first, s0), rest)) = states.split_first() else { return Ok(()) };
        for (name, s) in rest {
            if (s.len, s.digest) != (s0.len, s0.digest) {
                return Err(format!(
                    "{first} holds {} entries (digest {:x}), {name} holds {} (digest {:x})",
                    s0.len, s0.digest, s.len, s.digest
                ));
            }
        }
        Ok(())
    }
    fn history_op(&self, e: &HistoryEntry) -> Option<HistoryOp> {
        let (key, value) = key_value(e.arg);
        let done = e.outcome == OpPhase::Ok;
        let (op, reply) = match e.op.as_str() {
            "put" => (KvOp::Put(value.into()), done.then_some(Reply::Ack)),
            "get" => (
                KvOp::Get,
                done.then(|| Reply::Value(if e.result == "nil" { None } else { Some(e.result.as_str().into()) })),
            ),
            _ => return None,
        };
        Some(HistoryOp::kv(KvInput { key, op }, reply))
    }
    /// `pb-kv-node`, configured through its environment: HTTP on the placement's first port,
    /// the backups by the names or addresses the backend placed them at.
    fn launch(&self, setup: &NodeSetup, placement: &Placement) -> Launch {
        let addr = |p: &Placed| format!("{}:{}", p.host, p.port_base);
        let backups: Vec<String> = placement.nodes.iter().filter(|p| p.node.role == "backup").map(addr).collect();
        let primary_id = placement.nodes.iter().find(|p| p.node.role == "primary").map_or(0, |p| p.node.id.0);
        let me = placement.get(&setup.node.name);
        let (bind, base, data) =
            me.map_or(("127.0.0.1", 7000, "./data"), |p| (p.bind.as_str(), p.port_base, p.data_dir.as_str()));
        Launch::binary("pb-kv-node")
            .http(base)
            .env("PB_KV_ID", setup.node.id.0.to_string())
            .env("PB_KV_ROLE", setup.node.role.clone())
            .env("PB_KV_PRIMARY", primary_id.to_string())
            .env("PB_KV_LISTEN", format!("{bind}:{base}"))
            .env("PB_KV_DATA", data)
            .env("PB_KV_BACKUPS", backups.join(","))
            .env("PB_KV_BUGS", bug_names(&setup.options).join(","))
    }
}

impl HttpApplication for PbKv {
    fn request(&self, op: &Operation) -> HttpCall {
        let (key, value) = key_value(op.arg);
        match op.op.as_str() {
            "get" => HttpCall::new("GET", format!("/kv/{key}")),
            _ => HttpCall::new("PUT", format!("/kv/{key}")).body(value),
        }
    }
    fn reply(&self, op: &Operation, status: u16, body: &str) -> HttpReply {
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        match status {
            200 if op.op == "get" => HttpReply::Done(OpOutcome::ok(json["value"].as_str().unwrap_or("nil"))),
            200 => HttpReply::Done(OpOutcome::ok("")),
            421 => HttpReply::Elsewhere(json["leader"].as_u64().map(|l| l as u32)),
            // Refused before anything was written.
            400 | 404 => HttpReply::Done(OpOutcome::fail(format!("HTTP {status}: {body}"))),
            _ => HttpReply::Done(OpOutcome::info(format!("HTTP {status}: {body}"))),
        }
    }
    fn parse_state(&self, body: &str) -> Result<Status, String> {
        serde_json::from_str(body).map_err(|e| format!("garbled status: {e}"))
    }
    fn serves(&self, role: &str) -> bool {
        role == "primary"
    }
    fn clock_control(&self) -> gauntlet::ClockControl {
        gauntlet::ClockControl::Unsupported("pb-kv reads no clock: its replicas have nothing to skew".into())
    }
}
