//! The demo scenario: five gossip-max nodes under loss, a random partition, a crash with
//! restart and clock skew, then a quiet period in which they must converge.

use super::{node, Board, GossipConfig};
use gauntlet_sim::{Fault, FaultSchedule, LinkConfig, NodeSpec, RunError, Seeds, World};
use rand::seq::SliceRandom;
use rand::Rng;
use std::collections::BTreeMap;
use std::time::Duration;

/// Node names of the demo cluster.
pub const NODES: [&str; 5] = ["g0", "g1", "g2", "g3", "g4"];

/// How a demo run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every node holds the same value after the quiet period.
    Pass,
    /// Nodes still disagree when the run ends (a liveness failure).
    Diverged {
        /// Each node's final value.
        values: BTreeMap<String, u64>,
    },
}

/// The result of one demo run.
#[derive(Debug, Clone)]
pub struct DemoOutcome {
    /// The seeds that replay it.
    pub seeds: Seeds,
    /// Pass or fail.
    pub verdict: Verdict,
    /// Stable trace hash.
    pub trace_hash: u64,
    /// Events recorded.
    pub events: u64,
    /// Simulated duration.
    pub sim_time: Duration,
    /// Counts of events by kind.
    pub counts: BTreeMap<&'static str, u64>,
    /// The fault schedule that was applied.
    pub schedule: FaultSchedule,
    /// Final values.
    pub values: BTreeMap<String, u64>,
}

/// Simulated time with faults and bumping.
pub const ACTIVE: Duration = Duration::from_secs(10);
/// Quiet period after the faults in which the nodes must converge.
pub const COOLDOWN: Duration = Duration::from_secs(5);

/// Draws the demo's fault schedule from the chaos stream.
pub fn schedule(rng: &mut impl Rng) -> FaultSchedule {
    let mut names: Vec<String> = NODES.iter().map(|s| s.to_string()).collect();
    names.shuffle(rng);
    let (minority, majority) = names.split_at(2);
    let part_at = Duration::from_millis(rng.random_range(1000..3000));
    let heal_at = part_at + Duration::from_millis(rng.random_range(1000..3000));
    let victim = NODES[rng.random_range(0..NODES.len())].to_string();
    let crash_at = heal_at + Duration::from_millis(rng.random_range(200..1000));
    let restart_at = crash_at + Duration::from_millis(rng.random_range(200..2000));
    let skewed = NODES[rng.random_range(0..NODES.len())].to_string();
    FaultSchedule::new()
        .at(
            Duration::from_millis(500),
            Fault::ClockSkew {
                node: skewed,
                offset_ms: rng.random_range(-1000..1000),
                drift_ppm: rng.random_range(-500..500),
            },
        )
        .at(part_at, Fault::Partition { groups: vec![minority.to_vec(), majority.to_vec()] })
        .at(heal_at, Fault::Heal)
        .at(crash_at, Fault::Crash { node: victim.clone() })
        .at(restart_at, Fault::Restart { node: victim })
}

/// Runs the demo with `seeds`.
pub fn run(seeds: Seeds) -> Result<DemoOutcome, RunError> {
    let board: Board = Board::default();
    let cfg = GossipConfig { bump_until: ACTIVE - Duration::from_secs(1), ..GossipConfig::default() };
    let mut builder = World::builder().seeds(seeds).default_link(LinkConfig::default().loss(0.01));
    for name in NODES {
        let board = board.clone();
        builder = builder.node(NodeSpec::new(name).role("gossip"), move |ctx| node(ctx, cfg, board.clone()));
    }
    let report = builder.build()?.run(|sim| async move {
        let schedule = sim.with_chaos_rng(schedule);
        sim.spawn_schedule(schedule.clone()).expect("the demo schedule names demo nodes");
        sim.sleep(ACTIVE + COOLDOWN).await;
        schedule
    })?;
    let values = board.lock().expect("board lock").clone();
    let distinct: std::collections::BTreeSet<u64> = values.values().copied().collect();
    let verdict = if distinct.len() == 1 { Verdict::Pass } else { Verdict::Diverged { values: values.clone() } };
    Ok(DemoOutcome {
        seeds,
        verdict,
        trace_hash: report.trace_hash(),
        events: report.trace.len(),
        sim_time: report.sim_elapsed,
        counts: report.trace.counts_by_kind(),
        schedule: report.output,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_converges_and_replays_over_many_seeds() {
        for seed in 0..30 {
            let a = run(Seeds::new(seed)).unwrap();
            assert_eq!(a.verdict, Verdict::Pass, "seed {seed}: {:?}", a.values);
            assert!(a.counts["drop"] > 0 && a.counts["node_crash"] == 1, "faults happened: {:?}", a.counts);
            assert!(a.values.values().all(|&v| v > 10), "the values grew: {:?}", a.values);
            let b = run(Seeds::new(seed)).unwrap();
            assert_eq!((a.trace_hash, a.events), (b.trace_hash, b.events), "seed {seed} replays");
        }
    }

    #[test]
    fn without_a_quiet_period_the_verdict_can_fail() {
        // A permanent partition must be reported as divergence, not as a pass.
        let board: Board = Board::default();
        let cfg = GossipConfig::default();
        let mut b = World::builder().seed(1);
        for name in NODES {
            let board = board.clone();
            b = b.node(NodeSpec::new(name), move |ctx| node(ctx, cfg, board.clone()));
        }
        b.build()
            .unwrap()
            .run(|sim| async move {
                sim.apply(&Fault::Partition { groups: vec![vec!["g0".into()]] }).unwrap();
                sim.sleep(Duration::from_secs(5)).await;
            })
            .unwrap();
        let values = board.lock().unwrap().clone();
        let distinct: std::collections::BTreeSet<u64> = values.values().copied().collect();
        assert!(distinct.len() > 1, "an isolated node cannot agree: {values:?}");
    }
}
