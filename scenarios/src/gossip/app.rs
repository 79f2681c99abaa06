//! Gossip-max as a Gauntlet [`Application`]: role `gossip`, operations `bump` and `read`,
//! state = the node's value, converged when every live node holds the same value. An
//! operation's result reads `node=value`; expectation `bumps_raise` checks the bumps.

use super::bumps::{result_text, BumpsRaise};
use super::{bump, node, read_value, Board, GossipConfig};
use gauntlet::builder::TopologyBuilder;
use gauntlet::expect::{Expectation, ExpectationRegistry, Params};
use gauntlet::sim::{NodeContext, Transport};
use gauntlet::{Application, Launch, NodeRef, NodeSetup, OpOutcome, Operation, ScenarioBuilder};
use std::future::Future;
use std::time::Duration;

/// The gossip-max application.
#[derive(Debug, Clone, Default)]
pub struct GossipApp;

const OPTIONS: [&str; 5] = ["fanout", "round", "bump_every", "bump_until", "bugs"];
/// The planted bugs gossip knows (`app.options.bugs`).
pub const BUGS: [&str; 2] = ["deaf_after_restart", "ignore_client_bumps"];

fn config(options: &toml::Table) -> GossipConfig {
    let mut cfg = GossipConfig::default();
    let dur = |k: &str| options.get(k).and_then(|v| v.as_str()).and_then(|s| humantime_parse(s).ok());
    if let Some(n) = options.get("fanout").and_then(|v| v.as_integer()) {
        cfg.fanout = n.max(0) as usize;
    }
    cfg.round = dur("round").unwrap_or(cfg.round);
    cfg.bump_every = dur("bump_every").unwrap_or(cfg.bump_every);
    cfg.bump_until = dur("bump_until").unwrap_or(cfg.bump_until);
    let bugs: Vec<&str> = options
        .get("bugs")
        .and_then(|v| v.as_array())
        .map_or(Vec::new(), |a| a.iter().filter_map(|b| b.as_str()).collect());
    cfg.deaf_after_restart = bugs.contains(&"deaf_after_restart");
    cfg.ignore_client_bumps = bugs.contains(&"ignore_client_bumps");
    cfg
}

fn humantime_parse(s: &str) -> Result<Duration, String> {
    humantime_serde::re::humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration such as \"50ms\": {e}"))
}

impl Application for GossipApp {
    type State = u64;
    type Client = Transport;

    fn name(&self) -> &str {
        "gossip"
    }

    fn bugs(&self) -> Vec<String> {
        BUGS.iter().map(|b| (*b).to_owned()).collect()
    }
    /// Only this system's sometimes-assertions: the crate links gossip, raft-kv and the ledger.
    fn probe_scope(&self) -> Vec<String> {
        vec![module_path!().trim_end_matches("::app").to_owned()]
    }
    fn roles(&self) -> Vec<String> {
        vec!["gossip".into()]
    }
    fn operations(&self) -> Vec<String> {
        vec!["bump".into(), "read".into()]
    }
    fn check_options(&self, options: &toml::Table) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        for (k, v) in options {
            match k.as_str() {
                "fanout" => {
                    if v.as_integer().is_none_or(|n| n < 1) {
                        problems.push((k.clone(), format!("{v} is not a positive integer")));
                    }
                }
                "round" | "bump_every" | "bump_until" => match v.as_str().map(humantime_parse) {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => problems.push((k.clone(), e)),
                    None => problems.push((k.clone(), format!("{v} is not a duration string"))),
                },
                "bugs" => match v.as_array() {
                    Some(list) => {
                        for b in list {
                            if !b.as_str().is_some_and(|b| BUGS.contains(&b)) {
                                problems
                                    .push((k.clone(), format!("unknown bug {b}; gossip plants: {}", BUGS.join(", "))));
                            }
                        }
                    }
                    None => problems.push((k.clone(), format!("{v} is not a list of bug names"))),
                },
                _ => problems.push((k.clone(), format!("unknown option; gossip knows: {}", OPTIONS.join(", ")))),
            }
        }
        problems
    }
    fn node(&self, ctx: NodeContext, setup: NodeSetup) -> impl Future<Output = ()> + 'static + use<> {
        node(ctx, config(&setup.options), Board::default())
    }
    fn client(&self, ctx: &NodeContext) -> Transport {
        ctx.transport()
    }
    async fn execute(&self, t: &Transport, op: &Operation, nodes: &[NodeRef]) -> OpOutcome {
        let Some(target) = nodes.get(op.arg as usize % nodes.len().max(1)) else {
            return OpOutcome::fail("no members");
        };
        let result = match op.op.as_str() {
            "bump" => bump(t, target.id, Duration::from_millis(500)).await,
            _ => read_value(t, target.id, Duration::from_millis(500)).await,
        };
        match result {
            Ok(v) => OpOutcome::ok(result_text(&target.name, v)),
            Err(e) => OpOutcome::info(e),
        }
    }
    fn expectations(&self, r: &mut ExpectationRegistry<Self>) {
        r.register("bumps_raise", |p, _| {
            Params::new("bumps_raise", p, &[]).done()?;
            Ok(Box::new(BumpsRaise::default()) as Box<dyn Expectation<GossipApp>>)
        });
    }
    async fn read_state(&self, t: &Transport, node: &NodeRef) -> Result<u64, String> {
        read_value(t, node.id, Duration::from_millis(200)).await
    }
    fn launch(&self, setup: &NodeSetup, _placement: &gauntlet::Placement) -> Launch {
        Launch::binary("gossip-node").arg(&setup.node.name).port(7000)
    }
}

/// Gossip's verbs on the generic builders.
pub trait GossipBuilderExt {
    /// Uses the gossip application.
    fn gossip(self) -> Self;
    /// Sets the gossip fanout.
    fn fanout(self, n: i64) -> Self;
    /// Plants a bug by name (`deaf_after_restart`, `ignore_client_bumps`).
    fn planted_bug(self, bug: &str) -> Self;
}

impl GossipBuilderExt for ScenarioBuilder {
    fn gossip(self) -> Self {
        self.app("gossip")
    }
    fn fanout(self, n: i64) -> Self {
        self.app_option("fanout", n)
    }
    fn planted_bug(self, bug: &str) -> Self {
        let plan = self.clone().plan();
        let mut bugs: Vec<toml::Value> =
            plan.app.options.get("bugs").and_then(|v| v.as_array()).cloned().unwrap_or_default();
        bugs.push(bug.into());
        self.app_option("bugs", bugs)
    }
}

/// Gossip's topology verb.
pub trait GossipTopologyExt {
    /// `n` gossip nodes.
    fn gossipers(self, n: u32) -> Self;
}

impl GossipTopologyExt for TopologyBuilder {
    fn gossipers(self, n: u32) -> Self {
        self.nodes("gossip", n)
    }
}
