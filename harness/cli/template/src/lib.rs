//! Tally: a replicated counter, the example system of a crate made by `gauntlet init`.
//! Replace it with your own; keep the shape.
//!
//! Every node counts the adds it acknowledged in its own entry, persists that entry (fsync)
//! before it answers, and gossips every entry to its peers every 50 ms; a node merges what it
//! hears by taking the larger count per entry (a grow-only counter). A read answers the sum.
//!
//! Planted bug `ack-before-sync`: a node answers an add before its count is on disk (it syncs
//! every 200 ms instead). A crash in between loses an acknowledged add; Gauntlet's restarts
//! find it, and the expectation `no_lost_adds` names it.

use gauntlet::expect::{Check, Expectation, ExpectationRegistry, Params, Status};
use gauntlet::sim::trace::OpPhase;
use gauntlet::sim::{NodeContext, NodeId, Transport};
use gauntlet::{Application, FailureClass, NodeRef, NodeSetup, OpOutcome, Operation};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// Each node's count, by node name: a node's observable state.
pub type Counts = BTreeMap<String, u64>;

/// The tally application.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally;

/// The bugs Tally can plant (`app.options.bugs`, or `--bug` on the command line).
pub const BUGS: [&str; 1] = ["ack-before-sync"];

const ADD: u8 = 1;
const READ: u8 = 2;
const STATUS: u8 = 3;
const GOSSIP: u8 = 4;

fn encode(tag: u8, counts: &Counts) -> Vec<u8> {
    let mut out = vec![tag];
    for (name, n) in counts {
        out.extend_from_slice(format!("{name}={n}\n").as_bytes());
    }
    out
}

fn decode(body: &[u8]) -> Result<Counts, String> {
    let text = std::str::from_utf8(body.get(1..).unwrap_or_default()).map_err(|e| e.to_string())?;
    text.lines()
        .map(|l| {
            let (name, n) = l.split_once('=').ok_or_else(|| format!("bad entry {l:?}"))?;
            Ok((name.to_owned(), n.parse::<u64>().map_err(|e| format!("bad count in {l:?}: {e}"))?))
        })
        .collect()
}

fn buggy(options: &toml::Table) -> bool {
    options.get("bugs").and_then(|b| b.as_array()).is_some_and(|a| a.iter().any(|b| b.as_str() == Some(BUGS[0])))
}

/// The node program: run at first boot and after every restart.
async fn node(ctx: NodeContext, ack_before_sync: bool) {
    let (t, disk, clock) = (ctx.transport(), ctx.disk(), ctx.clock());
    let me = ctx.name().to_owned();
    let mine = disk.read("count").ok().and_then(|b| Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?)));
    // Sometimes-assertions: paths a good plan drives the system down at least once. A sweep
    // counts in how many seeds each held, and reports one that never did (`gauntlet sweep`).
    gauntlet::sometimes!(mine.is_some_and(|n| n > 0), "tally: a restarted node read its count back from disk");
    let mut counts = Counts::from([(me.clone(), mine.unwrap_or(0))]);
    let mut next_gossip = clock.monotonic();
    let mut next_sync = clock.monotonic();
    loop {
        let now = clock.monotonic();
        if now >= next_gossip {
            let peers: Vec<NodeId> =
                ctx.members().into_iter().map(|(id, _)| id).filter(|&id| id != ctx.id()).collect();
            for p in peers {
                t.send(p, encode(GOSSIP, &counts));
            }
            next_gossip = now + Duration::from_millis(50);
        }
        if ack_before_sync && now >= next_sync {
            let _ = disk.sync("count").await;
            next_sync = now + Duration::from_millis(200);
        }
        let wait = next_gossip.saturating_sub(clock.monotonic()).max(Duration::from_millis(1));
        let Ok(msg) = gauntlet::sim::time::timeout(wait, t.recv()).await else { continue };
        match (msg.body.first().copied(), msg.reply_to) {
            (Some(ADD), Some(reply)) => {
                let n = counts.entry(me.clone()).or_default();
                *n += 1;
                if disk.write("count", 0, &n.to_le_bytes()).is_err() {
                    continue; // no answer: the client sees an unknown outcome
                }
                if !ack_before_sync && disk.sync("count").await.is_err() {
                    continue;
                }
                t.reply(reply, counts.values().sum::<u64>().to_le_bytes().to_vec());
            }
            (Some(READ), Some(reply)) => t.reply(reply, counts.values().sum::<u64>().to_le_bytes().to_vec()),
            (Some(STATUS), Some(reply)) => t.reply(reply, encode(STATUS, &counts)),
            (Some(GOSSIP), None) => {
                if let Ok(theirs) = decode(&msg.body) {
                    for (name, n) in theirs {
                        let e = counts.entry(name).or_default();
                        // Gossip every 50 ms keeps peers a few adds apart; only a partition
                        // that healed leaves one this far behind.
                        gauntlet::sometimes!(n >= *e + 10, "tally: a node caught up on 10 adds at once");
                        *e = (*e).max(n);
                    }
                }
            }
            _ => {} // malformed: ignored
        }
    }
}

impl Application for Tally {
    type State = Counts;
    type Client = Transport;

    fn name(&self) -> &str {
        "tally"
    }

    fn roles(&self) -> Vec<String> {
        vec!["tally".into()]
    }

    fn operations(&self) -> Vec<String> {
        vec!["add".into(), "read".into()]
    }

    fn bugs(&self) -> Vec<String> {
        BUGS.iter().map(|b| (*b).to_owned()).collect()
    }

    fn check_options(&self, options: &toml::Table) -> Vec<(String, String)> {
        options
            .iter()
            .filter(|(k, v)| {
                k.as_str() != "bugs"
                    || !v.as_array().is_some_and(|a| a.iter().all(|b| b.as_str().is_some_and(|b| BUGS.contains(&b))))
            })
            .map(|(k, _)| (k.clone(), format!("tally takes only `bugs` (one of: {})", BUGS.join(", "))))
            .collect()
    }

    fn node(&self, ctx: NodeContext, setup: NodeSetup) -> impl Future<Output = ()> + 'static + use<> {
        node(ctx, buggy(&setup.options))
    }

    fn client(&self, ctx: &NodeContext) -> Transport {
        ctx.transport()
    }

    async fn execute(&self, t: &Transport, op: &Operation, nodes: &[NodeRef]) -> OpOutcome {
        let Some(node) = nodes.get(op.user as usize % nodes.len().max(1)) else {
            return OpOutcome::fail("no members");
        };
        let tag = if op.op == "add" { ADD } else { READ };
        match t.request(node.id, vec![tag], Duration::from_millis(500)).await {
            Ok(b) if b.len() == 8 => OpOutcome::ok(u64::from_le_bytes(b[..8].try_into().expect("8 bytes")).to_string()),
            Ok(b) => OpOutcome::info(format!("a reply of {} bytes", b.len())),
            Err(e) => OpOutcome::info(e.to_string()),
        }
    }

    async fn read_state(&self, t: &Transport, node: &NodeRef) -> Result<Counts, String> {
        let body = t.request(node.id, vec![STATUS], Duration::from_millis(200)).await.map_err(|e| e.to_string())?;
        decode(&body)
    }

    fn expectations(&self, registry: &mut ExpectationRegistry<Self>) {
        registry.register("no_lost_adds", |params, _plan| {
            Params::new("no_lost_adds", params, &[]).done()?;
            Ok(Box::new(NoLostAdds) as Box<dyn Expectation<Tally>>)
        });
    }
}

/// At the end of the run, every node's total counts every acknowledged add and no add that
/// was never sent: `ok adds <= total <= ok + unknown adds`.
struct NoLostAdds;

impl Expectation<Tally> for NoLostAdds {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }

    fn check(&mut self, _: &Check<'_, Tally>) -> Status {
        Status::Holds
    }

    fn at_end(&mut self, cx: &Check<'_, Tally>) -> Status {
        let adds = cx.history.iter().filter(|h| h.op == "add");
        let ok = adds.clone().filter(|h| h.outcome == OpPhase::Ok).count() as u64;
        let maybe = adds.filter(|h| matches!(h.outcome, OpPhase::Info | OpPhase::Invoke)).count() as u64;
        for (name, view) in cx.view {
            let Some(counts) = &view.state else { continue };
            let total: u64 = counts.values().sum();
            if total < ok {
                return Status::Violated(format!("{name} counts {total} adds but {ok} were acknowledged: {counts:?}"));
            }
            if total > ok + maybe {
                return Status::Violated(format!("{name} counts {total} adds but only {} were sent", ok + maybe));
            }
        }
        Status::Holds
    }
}
