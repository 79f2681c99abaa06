//! raft-kv under the plans: no bug → every seed passes; each planted bug → found within 500
//! seeds by the expectation meant to catch it, and the failing seed replays exactly.
#![cfg(madsim)]

use gauntlet::sim::Seeds;
use gauntlet::testing::TestRun;
use gauntlet::{Deployer, Plan, RunOutcome, Scenario, SimDeployer, Verdict};
use gauntlet_scenarios::plans;
use gauntlet_scenarios::raft::RaftKv;

fn run(plan: &Plan, seed: u64) -> RunOutcome {
    let scenario = Scenario::new(RaftKv, plan.clone()).unwrap();
    SimDeployer::default().run(&scenario, Seeds::new(seed)).unwrap()
}

/// Seeds per plan in the no-bug sweep: 20, or `GAUNTLET_KV_SWEEP_SEEDS`.
fn sweep_seeds() -> u64 {
    std::env::var("GAUNTLET_KV_SWEEP_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20)
}

/// The sweep's seeds from `first`, or only `SIM_SEED` when it is set (how a failure replays).
fn sweep_range(first: u64) -> Vec<u64> {
    match gauntlet::sim::seed::seed_from_env(gauntlet::sim::seed::SIM_SEED_ENV) {
        Ok(Some(s)) => vec![s],
        Ok(None) => (first..first + sweep_seeds()).collect(),
        Err(e) => panic!("{e}"),
    }
}

/// With no bug planted, every raft-kv plan passes on every seed of the sweep. `cargo test`
/// runs 20 seeds per plan; the full 1,000 is
/// `GAUNTLET_KV_SWEEP_SEEDS=1000 cargo test --release -p gauntlet-scenarios --test scenarios raft::sweep`.
#[test]
fn without_bugs_every_kv_plan_passes_the_sweep() {
    let mut failures = Vec::new();
    for (name, plan) in plans::kv() {
        for seed in sweep_range(0) {
            let outcome = run(&plan, seed);
            if !outcome.verdict.passed() {
                // Each failure starts with its replay line and the path of its bundle.
                let t = TestRun::new("gauntlet-scenarios", "raft", "without_bugs_every_kv_plan_passes_the_sweep");
                failures.push(format!(
                    "{name}: {}",
                    t.failure_report(&Scenario::new(RaftKv, plan.clone()).unwrap(), &outcome)
                ));
            }
            // Chaos may fail many requests, but a quarter of them and at least 50 succeed.
            let ok = outcome.ops.values().map(|c| c.ok).sum::<u64>();
            let invoked = outcome.ops.values().map(|c| c.invoked).sum::<u64>();
            assert!(ok > 50 && ok * 4 >= invoked, "{name} seed {seed} did work: {:?}", outcome.ops);
        }
    }
    assert!(failures.is_empty(), "{} failing runs:\n{}", failures.len(), failures.join("\n"));
}

/// Runs `plan` with `bug` planted over seeds 0..500 until a run fails; asserts the failure came
/// from `expectation`, then that the seed replays to the same verdict and trace hash.
#[track_caller]
fn hunt(plan: Plan, bug: &str, expectation: &str) -> u64 {
    hunt_in(plan, bug, expectation, 500)
}

/// [`hunt`] over the first `limit` seeds.
fn hunt_in(plan: Plan, bug: &str, expectation: &str, limit: u64) -> u64 {
    let mut plan = plan;
    plan.app.options.insert("bugs".into(), toml::Value::Array(vec![bug.into()]));
    for seed in 0..limit {
        let outcome = run(&plan, seed);
        if let Verdict::Fail(f) = &outcome.verdict {
            assert_eq!(f.source, expectation, "{bug} seed {seed} failed elsewhere: {f}");
            let again = run(&plan, seed);
            assert_eq!(
                (&again.verdict, again.trace_hash),
                (&outcome.verdict, outcome.trace_hash),
                "{bug} seed {seed} replays"
            );
            return seed;
        }
    }
    panic!("{bug}: no failure in {limit} seeds");
}

#[test]
fn stale_read_is_found_by_linearizability() {
    hunt(plans::kv_partition(), "stale-read", "linearizable");
}

#[test]
fn skewed_lease_is_found_by_linearizability() {
    hunt(plans::kv_skew(), "skewed-lease", "linearizable");
}

#[test]
fn lost_ack_write_is_found_by_linearizability() {
    hunt(plans::kv_failover(), "lost-ack-write", "linearizable");
}

#[test]
fn split_vote_is_found_by_one_leader_per_term() {
    // A vote forgotten by a restart matters only when the restart falls inside one election:
    // about 4 seeds in 1000 of kv-vote-restart (first at seed 11), 4 in 1000 of kv-failover
    // (first at seed 620).
    hunt(plans::kv_vote_restart(), "split-vote", "one_leader_per_term");
}

#[test]
fn commit_old_term_is_found_by_linearizability() {
    hunt(plans::kv_leader_partition(), "commit-old-term", "linearizable");
}
