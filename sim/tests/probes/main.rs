//! Sometimes-assertions in a world: node code and the supervisor record into the run's
//! report, each run starts from nothing, and recording changes no trace.

#![cfg(madsim)]

use gauntlet_sim::time::{sleep, timeout};
use gauntlet_sim::{Fault, NodeContext, NodeId, NodeSpec, ProbeKind, World};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

type Program = Pin<Box<dyn Future<Output = ()>>>;

/// Two nodes ping each other every 10 ms; with `probes`, each receipt and each silence of
/// 50 ms (the partition) is a probe. Otherwise the programs are identical.
fn pinger(probes: bool) -> impl Fn(NodeContext) -> Program + Send + Sync + 'static {
    move |ctx: NodeContext| {
        Box::pin(async move {
            let t = ctx.transport();
            let peer = NodeId(1 - ctx.id().0);
            let sender = t.clone();
            gauntlet_sim::time::spawn(async move {
                loop {
                    sender.send(peer, &b"ping"[..]);
                    sleep(ms(10)).await;
                }
            });
            loop {
                let got = timeout(ms(50), t.recv()).await;
                if probes {
                    gauntlet_sim::sometimes!(got.is_err(), "probe world test: a node heard nothing for 50 ms");
                    gauntlet_sim::reachable!("probe world test: a node's loop ran");
                }
            }
        })
    }
}

fn world(seed: u64, probes: bool) -> World {
    World::builder()
        .seed(seed)
        .node(NodeSpec::new("a"), pinger(probes))
        .node(NodeSpec::new("b"), pinger(probes))
        .build()
        .unwrap()
}

async fn partition_at_one_second(sim: gauntlet_sim::Sim) {
    sim.sleep(ms(1000)).await;
    sim.apply(&Fault::Partition { groups: vec![vec!["a".into()], vec!["b".into()]] }).unwrap();
    sim.sleep(ms(500)).await;
    sim.apply(&Fault::Heal).unwrap();
    gauntlet_sim::reachable!("probe world test: the supervisor healed");
    sim.sleep(ms(500)).await;
}

#[test]
fn a_run_reports_what_its_nodes_and_supervisor_hit_with_the_first_time_held() {
    let report = world(7, true).run(partition_at_one_second).unwrap();
    let silence = report.probes["probe world test: a node heard nothing for 50 ms"];
    assert_eq!(silence.kind, ProbeKind::Sometimes);
    assert!(silence.evaluated > silence.held && silence.held > 0, "{silence:?}");
    let first = silence.first_held.expect("held in simulated time");
    assert!(first >= ms(1000) && first < ms(1100), "first silence inside the partition, at {first:?}");
    let healed = report.probes["probe world test: the supervisor healed"];
    assert_eq!((healed.kind, healed.held), (ProbeKind::Reachable, 1));
    assert!(healed.first_held.is_some_and(|t| t >= ms(1500)), "{healed:?}");
}

#[test]
fn each_run_starts_from_nothing() {
    let w = world(7, true);
    let (first, second) = (w.run(partition_at_one_second).unwrap(), w.run(partition_at_one_second).unwrap());
    assert_eq!(first.probes, second.probes, "the same seed records the same probes, not twice as many");
    let quiet = world(7, false).run(partition_at_one_second).unwrap();
    let names: Vec<&String> = quiet.probes.keys().collect();
    assert_eq!(names, ["probe world test: the supervisor healed"], "only what this run evaluated");
}

#[test]
fn probes_change_no_trace_over_20_seeds() {
    for seed in 0..20 {
        let with = world(seed, true).run(partition_at_one_second).unwrap();
        let without = world(seed, false).run(partition_at_one_second).unwrap();
        assert!(with.probes["probe world test: a node's loop ran"].held > 10, "seed {seed}: probes ran");
        assert_eq!(with.trace_hash(), without.trace_hash(), "seed {seed}: probes changed the trace");
        assert_eq!(with.trace.len(), without.trace.len());
    }
}
