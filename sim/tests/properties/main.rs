//! Properties over random fault schedules, checked against the trace: no delivery to a down or
//! paused node, none across an active cut, latency within bounds, and determinism.

#![cfg(madsim)]

use crate::common;

use common::*;
use gauntlet_sim::{EventKind, Fault, FaultSchedule, Latency, LinkConfig, NodeId, NodeSpec, Trace, World};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const NAMES: [&str; 4] = ["a", "b", "c", "d"];

fn node_name() -> impl Strategy<Value = String> {
    prop::sample::select(NAMES.to_vec()).prop_map(str::to_owned)
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        // Each node in group 0, 1, or none (the implicit rest group).
        prop::collection::vec(0usize..3, NAMES.len()).prop_map(|assign| {
            let groups: Vec<Vec<String>> = (0..2)
                .map(|g| {
                    NAMES.iter().zip(&assign).filter(|(_, a)| **a == g).map(|(n, _)| n.to_string()).collect::<Vec<_>>()
                })
                .filter(|g| !g.is_empty())
                .collect();
            Fault::Partition { groups }
        }),
        (node_name(), node_name()).prop_map(|(from, to)| Fault::CutOneWay { from, to }),
        Just(Fault::Heal),
        node_name().prop_map(|node| Fault::Crash { node }),
        node_name().prop_map(|node| Fault::Restart { node }),
        node_name().prop_map(|node| Fault::Pause { node }),
        node_name().prop_map(|node| Fault::Resume { node }),
    ]
}

fn schedule() -> impl Strategy<Value = FaultSchedule> {
    prop::collection::vec((0u64..3000, fault()), 0..12).prop_map(|v| {
        let mut s = FaultSchedule::new();
        for (at, f) in v {
            s.push(ms(at), f);
        }
        s
    })
}

fn link() -> impl Strategy<Value = LinkConfig> {
    (1u64..20, 0u64..30, 0.0..0.2f64, 0.0..0.2f64, 0.0..0.3f64).prop_map(|(lo, extra, loss, dup, reorder)| {
        LinkConfig::default()
            .latency(Latency::uniform(ms(lo), ms(lo + extra)))
            .loss(loss)
            .duplicate(dup)
            .reorder(reorder, ms(15))
    })
}

fn run(seed: u64, link: LinkConfig, schedule: FaultSchedule) -> Trace {
    let mut b = World::builder().seed(seed).default_link(link);
    for name in NAMES {
        b = b.node(NodeSpec::new(name), pinger(ms(25), None, log()));
    }
    b.build()
        .unwrap()
        .run(move |sim| {
            let s = schedule.clone();
            async move {
                sim.spawn_schedule(s).unwrap();
                sim.sleep(ms(3500)).await;
            }
        })
        .unwrap()
        .trace
}

/// Replays the trace, tracking node status and cuts, and checks every delivery.
fn check_deliveries(trace: &Trace, link: &LinkConfig) -> Result<(), TestCaseError> {
    let slack = Duration::from_micros(100);
    let (min, max) = (link.latency.bounds().0, link.max_delay());
    let mut up: BTreeMap<NodeId, bool> = BTreeMap::new(); // true = running
    let mut paused: BTreeSet<NodeId> = BTreeSet::new();
    let mut resumed_at: BTreeMap<NodeId, Duration> = BTreeMap::new();
    let mut cuts: BTreeSet<(NodeId, NodeId)> = BTreeSet::new();
    let mut sent: BTreeMap<u64, Duration> = BTreeMap::new();
    let id = |n: &str| NodeId(NAMES.iter().position(|x| *x == n).unwrap() as u32);
    for e in trace.events() {
        let node = e.node;
        match &e.kind {
            EventKind::NodeStart { .. } => {
                up.insert(node.unwrap(), true);
            }
            EventKind::NodeCrash | EventKind::NodeExit => {
                up.insert(node.unwrap(), false);
                paused.remove(&node.unwrap());
            }
            EventKind::NodePause => {
                paused.insert(node.unwrap());
            }
            EventKind::NodeResume => {
                paused.remove(&node.unwrap());
                resumed_at.insert(node.unwrap(), e.at);
            }
            EventKind::Fault { fault } => match fault {
                Fault::Partition { groups } => {
                    cuts.clear();
                    let group_of = |n: usize| {
                        groups.iter().position(|g| g.iter().any(|x| id(x).0 as usize == n)).unwrap_or(groups.len())
                    };
                    for a in 0..NAMES.len() {
                        for b in 0..NAMES.len() {
                            if group_of(a) != group_of(b) {
                                cuts.insert((NodeId(a as u32), NodeId(b as u32)));
                            }
                        }
                    }
                }
                Fault::CutOneWay { from, to } => {
                    cuts.insert((id(from), id(to)));
                }
                Fault::Heal => cuts.clear(),
                _ => {}
            },
            EventKind::Send { msg, .. } => {
                sent.insert(*msg, e.at);
            }
            EventKind::Deliver { msg, from, .. } => {
                let to = node.unwrap();
                prop_assert!(up.get(&to) == Some(&true), "delivery of #{msg} to down node {to} at {:?}", e.at);
                prop_assert!(!paused.contains(&to), "delivery of #{msg} to paused node {to} at {:?}", e.at);
                prop_assert!(
                    !cuts.contains(&(*from, to)),
                    "delivery of #{msg} across a cut {from}->{to} at {:?}",
                    e.at
                );
                let latency = e.at - sent[msg];
                prop_assert!(latency >= min, "#{msg} arrived early: {latency:?} < {min:?}");
                let held = resumed_at.get(&to).is_some_and(|r| *r == e.at);
                prop_assert!(held || latency <= max + slack, "#{msg} arrived late: {latency:?} > {max:?}");
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn deliveries_respect_faults_and_latency_bounds(seed in any::<u64>(), link in link(), schedule in schedule()) {
        let trace = run(seed, link.clone(), schedule);
        prop_assert!(!trace.is_empty());
        check_deliveries(&trace, &link)?;
    }

    #[test]
    fn random_schedules_are_deterministic(seed in any::<u64>(), link in link(), schedule in schedule()) {
        let a = run(seed, link.clone(), schedule.clone());
        let b = run(seed, link, schedule);
        prop_assert_eq!(a.hash(), b.hash());
        prop_assert_eq!(a.len(), b.len());
    }
}
