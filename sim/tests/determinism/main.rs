//! Same seed, same run: trace hashes over many seeds, and the determinism checker itself.

#![cfg(madsim)]

use crate::common;

use common::*;
use gauntlet_sim::{Fault, LinkConfig, NodeSpec, RunError, World};
use std::sync::atomic::{AtomicU64, Ordering};

/// A small cluster under loss, duplication, reordering, a partition, a crash and a restart.
fn busy_world(seed: u64) -> World {
    let log = log();
    let link = LinkConfig::default().loss(0.01).duplicate(0.01).reorder(0.05, ms(20));
    let mut b = World::builder().seed(seed).default_link(link);
    for name in ["a", "b", "c", "d"] {
        b = b.node(NodeSpec::new(name), pinger(ms(20), None, log.clone()));
    }
    b.build().unwrap()
}

async fn chaos(sim: gauntlet_sim::Sim) {
    sim.sleep(ms(300)).await;
    sim.apply(&Fault::Partition { groups: vec![vec!["a".into(), "b".into()]] }).unwrap();
    sim.sleep(ms(300)).await;
    sim.apply(&Fault::Crash { node: "c".into() }).unwrap();
    sim.apply(&Fault::Heal).unwrap();
    sim.sleep(ms(200)).await;
    sim.apply(&Fault::Restart { node: "c".into() }).unwrap();
    sim.sleep(ms(200)).await;
}

#[test]
fn the_same_seed_gives_the_same_trace_hash_over_100_seeds() {
    let mut hashes = std::collections::BTreeSet::new();
    for seed in 0..100 {
        let first = busy_world(seed).run(chaos).unwrap();
        let second = busy_world(seed).run(chaos).unwrap();
        assert_eq!(first.trace_hash(), second.trace_hash(), "seed {seed} diverged");
        assert_eq!(first.trace.len(), second.trace.len());
        assert!(first.trace.len() > 300, "the run did something: {} events", first.trace.len());
        hashes.insert(first.trace_hash());
    }
    assert_eq!(hashes.len(), 100, "different seeds give different hashes");
}

#[test]
fn the_builtin_check_passes_a_deterministic_run() {
    let world = World::builder()
        .seed(5)
        .check_determinism(true)
        .node(NodeSpec::new("a"), pinger(ms(10), None, log()))
        .node(NodeSpec::new("b"), pinger(ms(10), None, log()))
        .build()
        .unwrap();
    let report = world.run(chaos_free).unwrap();
    assert!(report.trace.len() > 100);
}

async fn chaos_free(sim: gauntlet_sim::Sim) {
    sim.sleep(ms(500)).await;
}

/// State that survives between runs in one process is the classic leak; the checker must
/// catch it and say where the runs part.
#[test]
fn the_check_reports_the_first_divergent_event_of_a_leaky_run() {
    static LEAK: AtomicU64 = AtomicU64::new(0);
    let world = World::builder()
        .seed(5)
        .check_determinism(true)
        .node(NodeSpec::new("leaky"), |ctx| async move {
            gauntlet_sim::time::sleep(ms(100)).await;
            ctx.annotate(format!("run number {}", LEAK.fetch_add(1, Ordering::SeqCst)));
        })
        .build()
        .unwrap();
    let err = world.run(chaos_free).unwrap_err();
    let RunError::Nondeterministic { divergence, .. } = &err else { panic!("expected nondeterminism, got {err}") };
    assert_eq!(divergence.index, 1, "event 0 is the node start, event 1 the annotation");
    let text = err.to_string();
    assert!(text.contains("diverge at event #1"), "{text}");
    assert!(text.contains("note run number 0") && text.contains("note run number 1"), "{text}");
}

#[test]
fn chaos_seed_changes_only_the_chaos_stream() {
    use rand::Rng;
    let draw = |seeds: gauntlet_sim::Seeds| {
        World::builder()
            .seeds(seeds)
            .node(NodeSpec::new("a"), pinger(ms(10), None, log()))
            .node(NodeSpec::new("b"), pinger(ms(10), None, log()))
            .default_link(LinkConfig::default().loss(0.1))
            .build()
            .unwrap()
            .run(|sim| async move {
                let x: u64 = sim.with_chaos_rng(|r| r.random());
                sim.sleep(ms(300)).await;
                x
            })
            .unwrap()
    };
    let base = draw(gauntlet_sim::Seeds { sim: 1, chaos: 1 });
    let other = draw(gauntlet_sim::Seeds { sim: 1, chaos: 2 });
    assert_ne!(base.output, other.output, "the chaos stream follows CHAOS_SEED");
    assert_eq!(base.trace_hash(), other.trace_hash(), "the network and nodes do not");
}
