//! What a user's workloads and chaos can ask for: closed-loop users (at most one operation in
//! flight each), clients put on a side of a partition, and clock skew limited to roles.
#![cfg(madsim)]

use gauntlet::chaos;
use gauntlet::plan::ClientSide;
use gauntlet::sim::{Fault, NodeContext, Seeds, Transport};
use gauntlet::workload::{Admission, Admit, HistoryEntry};
use gauntlet::{Application, NodeRef, NodeSetup, OpOutcome, Operation, Plan, Scenario};
use std::time::Duration;

/// A service that takes 40 ms per request, so that arrivals at 100/s overlap.
struct Slow;

impl Application for Slow {
    type State = u8;
    type Client = Transport;
    fn name(&self) -> &str {
        "slow"
    }
    fn roles(&self) -> Vec<String> {
        vec!["front".into(), "back".into()]
    }
    fn operations(&self) -> Vec<String> {
        vec!["op".into()]
    }
    fn node(&self, ctx: NodeContext, _: NodeSetup) -> impl std::future::Future<Output = ()> + 'static + use<> {
        async move {
            let t = ctx.transport();
            loop {
                let m = t.recv().await;
                let t = t.clone();
                gauntlet::sim::time::spawn(async move {
                    gauntlet::sim::time::sleep(Duration::from_millis(40)).await;
                    if let Some(r) = m.reply_to {
                        t.reply(r, vec![1]);
                    }
                });
            }
        }
    }
    fn client(&self, ctx: &NodeContext) -> Transport {
        ctx.transport()
    }
    async fn execute(&self, t: &Transport, op: &Operation, nodes: &[NodeRef]) -> OpOutcome {
        match t.request(nodes[op.user as usize % nodes.len()].id, vec![0], Duration::from_millis(500)).await {
            Ok(_) => OpOutcome::ok(""),
            Err(e) => OpOutcome::info(e.to_string()),
        }
    }
    async fn read_state(&self, _: &Transport, _: &NodeRef) -> Result<u8, String> {
        Ok(0)
    }
}

fn plan(extra: &str) -> Plan {
    Plan::from_toml(&format!(
        "name = \"slow\"\n[app]\nname = \"slow\"\n[topology.nodes]\nfront = 2\nback = 2\n\
         [run]\nduration = \"3s\"\ncooldown = \"1s\"\n{extra}"
    ))
    .expect("the plan parses")
}

fn history(plan: Plan) -> Vec<HistoryEntry> {
    let scenario = Scenario::new(Slow, plan).expect("the plan fits");
    let outcome =
        gauntlet::registry::PlanRunner::run_plan(&scenario, scenario.plan(), Seeds::new(3), Default::default())
            .expect("the run runs");
    assert!(outcome.verdict.passed(), "{}", outcome.verdict);
    outcome.history
}

/// Whether some user had two operations in flight at once.
fn overlaps(h: &[HistoryEntry]) -> usize {
    let mut n = 0;
    for (i, a) in h.iter().enumerate() {
        let end = a.complete.unwrap_or(Duration::MAX);
        n += h[i + 1..].iter().filter(|b| b.user == a.user && b.invoke < end).count();
    }
    n
}

#[test]
fn closed_loop_users_never_overlap_and_open_loop_ones_do() {
    let open = history(plan("[[workloads]]\nname = \"w\"\nrate = 100.0\nusers = 2\n"));
    let closed = history(plan("[[workloads]]\nname = \"w\"\nrate = 100.0\nusers = 2\nclosed_loop = true\n"));
    assert!(overlaps(&open) > 10, "open loop: arrivals follow the rate ({} overlaps)", overlaps(&open));
    assert_eq!(overlaps(&closed), 0, "closed loop: one operation per user at a time");
    // A user's waiting operations start as soon as its previous one ends: the users stay busy.
    assert!(closed.len() > 100, "closed loop still issued {} operations", closed.len());
    let ids: Vec<u64> = closed.iter().filter(|e| e.user == 0).map(|e| e.id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "a user's operations start in arrival order");
}

#[test]
fn a_think_time_spaces_each_users_operations_and_is_refused_in_open_loop() {
    let think = "[[workloads]]\nname = \"w\"\nrate = 100.0\nusers = 2\nclosed_loop = true\nthink = \"100ms\"\n";
    let h = history(plan(think));
    for user in [0, 1] {
        let mine: Vec<&HistoryEntry> = h.iter().filter(|e| e.user == user).collect();
        assert!(mine.len() > 10, "user {user} issued {} operations", mine.len());
        for w in mine.windows(2) {
            let gap = w[1].invoke - w[0].complete.expect("completed");
            assert!(gap >= Duration::from_millis(100), "user {user} started its next operation {gap:?} after its last");
        }
    }
    // Busy users' arrivals wait, so about one operation per 140 ms per user, not 50 per second.
    assert!(h.len() < 2 * 4000 / 140 + 4, "{} operations", h.len());
    let open = plan("[[workloads]]\nname = \"w\"\nrate = 10.0\nthink = \"1s\"\n");
    let err = Scenario::new(Slow, open).err().expect("open loop has no think time");
    assert!(err.to_string().contains("workloads[0].think: a think time needs closed_loop = true"), "{err}");
}

#[test]
fn admission_queues_a_busy_users_arrivals_in_order_within_the_bound() {
    let mut w = gauntlet::plan::WorkloadPlan::new("w");
    w.closed_loop = true;
    w.max_in_flight = 3;
    let mut a = Admission::of(&w);
    let op = |id, user| Operation { workload: "w".into(), op: "op".into(), user, id, arg: 0 };
    assert_eq!(a.arrive(op(0, 7)), Admit::Start(op(0, 7)));
    assert_eq!(a.arrive(op(1, 7)), Admit::Wait);
    assert_eq!(a.arrive(op(2, 8)), Admit::Start(op(2, 8)));
    assert_eq!(a.arrive(op(3, 7)), Admit::Shed, "two in flight and one waiting fill the bound of 3");
    assert_eq!(a.finished(7), Some(op(1, 7)), "the waiting operation starts when its user is free");
    assert_eq!(a.finished(7), None);
    assert_eq!(a.finished(8), None);
    assert!(a.idle());
}

#[test]
fn partitions_can_put_each_client_on_a_side() {
    let extra = "[[workloads]]\nname = \"w\"\nrate = 10.0\n[[workloads]]\nname = \"v\"\nrate = 10.0\n\
                 [chaos.partition]\nkinds = [\"random_halves\"]\nmin_delay = \"200ms\"\nmax_delay = \"400ms\"\n\
                 min_duration = \"100ms\"\nmax_duration = \"200ms\"\n";
    let connected = plan(extra);
    let mut sided = connected.clone();
    sided.chaos.partition.as_mut().unwrap().clients = ClientSide::Random;
    let groups = |p: &Plan| -> Vec<Vec<Vec<String>>> {
        chaos::compile(p, 11)
            .faults
            .entries
            .iter()
            .filter_map(|e| match &e.fault {
                Fault::Partition { groups } => Some(groups.clone()),
                _ => None,
            })
            .collect()
    };
    let (a, b) = (groups(&connected), groups(&sided));
    assert!(a.len() >= 5, "partitions happen");
    assert_eq!(a.len(), b.len(), "the same partitions, clients aside");
    for (plain, with) in a.iter().zip(&b) {
        let members = |g: &[Vec<String>]| -> Vec<Vec<String>> {
            g.iter().map(|s| s.iter().filter(|n| !n.starts_with("client-")).cloned().collect()).collect()
        };
        assert_eq!(&members(with), plain, "the members' sides do not change");
        for client in ["client-w", "client-v"] {
            assert_eq!(with.iter().filter(|s| s.iter().any(|n| n == client)).count(), 1, "{client} on one side");
        }
        assert!(plain.iter().flatten().all(|n| !n.starts_with("client-")), "by default clients stay connected");
    }
    // And the run itself goes through (clients cut off see timeouts, not a harness error).
    let scenario = Scenario::new(Slow, sided).expect("fits");
    let o = gauntlet::registry::PlanRunner::run_plan(&scenario, scenario.plan(), Seeds::new(11), Default::default())
        .expect("runs");
    assert!(o.verdict.passed(), "{}", o.verdict);
}

#[test]
fn clock_skew_can_be_limited_to_roles() {
    let skew = "[chaos.clock_skew]\nmax_offset = \"2s\"\nmin_delay = \"100ms\"\nmax_delay = \"200ms\"\n";
    let all = plan(skew);
    let backs = plan(&format!("{skew}roles = [\"back\"]\n"));
    let skewed = |p: &Plan| -> Vec<String> {
        chaos::compile(p, 5)
            .faults
            .entries
            .iter()
            .filter_map(|e| match &e.fault {
                Fault::ClockSkew { node, .. } => Some(node.clone()),
                _ => None,
            })
            .collect()
    };
    assert!(skewed(&all).iter().any(|n| n.starts_with("front")), "without roles every member may be skewed");
    let b = skewed(&backs);
    assert!(b.len() > 10 && b.iter().all(|n| n.starts_with("back-")), "{b:?}");
    let err = Scenario::new(Slow, plan(&format!("{skew}roles = [\"middle\"]\n"))).err().expect("refused");
    assert!(err.to_string().contains("chaos.clock_skew.roles"), "{err}");
}
