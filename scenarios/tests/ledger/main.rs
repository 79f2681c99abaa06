//! The ledger under its scenario catalogue: with no bug, every plan passes every seed of the
//! sweep; each planted bug is found within 500 seeds by the expectation meant to catch it, and
//! the failing seed replays to the same verdict and trace hash.
#![cfg(madsim)]

use gauntlet::sim::Seeds;
use gauntlet::testing::TestRun;
use gauntlet::{Deployer, Plan, RunOutcome, Scenario, SimDeployer, Verdict};
use gauntlet_scenarios::ledger::Ledger;
use gauntlet_scenarios::plans;

fn plan(name: &str) -> Plan {
    plans::ledger().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no plan {name}")).1
}

fn run(plan: &Plan, seed: u64) -> RunOutcome {
    let scenario = Scenario::new(Ledger, plan.clone()).unwrap();
    SimDeployer::default().run(&scenario, Seeds::new(seed)).unwrap()
}

/// Seeds per plan in the no-bug sweep: 2, or `GAUNTLET_LEDGER_SWEEP_SEEDS`.
fn sweep_seeds() -> u64 {
    std::env::var("GAUNTLET_LEDGER_SWEEP_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2)
}

/// The sweep's seeds, or only `SIM_SEED` when it is set (how a failure replays).
fn sweep_range() -> Vec<u64> {
    match gauntlet::sim::seed::seed_from_env(gauntlet::sim::seed::SIM_SEED_ENV) {
        Ok(Some(s)) => vec![s],
        Ok(None) => (0..sweep_seeds()).collect(),
        Err(e) => panic!("{e}"),
    }
}

/// Runs the no-bug sweep of one catalogue plan; a failure reports its replay line and bundle.
fn sweep(name: &str, test: &str) {
    let plan = plan(name);
    let mut failures = Vec::new();
    for seed in sweep_range() {
        let outcome = run(&plan, seed);
        if !outcome.verdict.passed() {
            let t = TestRun::new("gauntlet-scenarios", "ledger", test);
            failures.push(t.failure_report(&Scenario::new(Ledger, plan.clone()).unwrap(), &outcome));
        }
        let ok: u64 = outcome.ops.values().map(|c| c.ok).sum();
        assert!(ok > 50, "{name} seed {seed} did work: {:?}", outcome.ops);
        // Members at the end only: a node that left (churn) stopped finalizing when it left
        // (ledger-topology-churn seed 59 of 200: a joiner left at 9.2 s with 19 blocks).
        let left: Vec<&str> = outcome.membership_changes.iter().filter_map(|c| c.left()).collect();
        let finals: Vec<u64> = (outcome.final_states.iter())
            .filter(|(node, _)| !left.contains(&node.as_str()))
            .filter_map(|(_, s)| final_height(s))
            .collect();
        assert!(finals.iter().all(|&h| h >= 20), "{name} seed {seed} finalized blocks everywhere: {finals:?}");
    }
    assert!(failures.is_empty(), "{} failing runs:\n{}", failures.len(), failures.join("\n"));
}

/// The final height in a node's described state ("... final N ...").
fn final_height(described: &str) -> Option<u64> {
    let mut words = described.split_whitespace();
    words.by_ref().find(|w| *w == "final")?;
    words.next()?.parse().ok()
}

macro_rules! catalogue {
    ($($test:ident => $plan:literal,)*) => {
        $(
            /// With no bug planted, this catalogue plan passes every seed of the sweep
            /// (`GAUNTLET_LEDGER_SWEEP_SEEDS=200 cargo test --release -p gauntlet-scenarios --test scenarios ledger::`
            /// for the full one).
            #[test]
            fn $test() {
                sweep($plan, stringify!($test));
            }
        )*

        #[test]
        fn every_catalogue_plan_has_a_sweep_test() {
            let tested = [$($plan),*];
            let shipped: Vec<String> = plans::ledger().into_iter().map(|(n, _)| n).collect();
            assert_eq!(shipped, tested, "one sweep test per ledger plan file, in file order");
        }
    };
}

catalogue! {
    aggressive_chaos => "ledger-aggressive-chaos",
    api_dos => "ledger-api-dos",
    block_timing => "ledger-block-timing",
    byzantine_flood => "ledger-byzantine-flood",
    clock_skew => "ledger-clock-skew",
    gossip_latency => "ledger-gossip-latency",
    invalid_fuzzing => "ledger-invalid-fuzzing",
    load_progression => "ledger-load-progression",
    mempool_divergence => "ledger-mempool-divergence",
    mempool_pressure => "ledger-mempool-pressure",
    partition_recovery => "ledger-partition-recovery",
    sustained_load => "ledger-sustained-load",
    topology_churn => "ledger-topology-churn",
    tx_propagation => "ledger-tx-propagation",
    wallet_balances => "ledger-wallet-balances",
}

/// Runs `plan` with `bug` planted over seeds 0..500 until a run fails; asserts the failure came
/// from `expectation`, then that the seed replays to the same verdict and trace hash.
#[track_caller]
fn hunt(plan: Plan, bug: &str, expectation: &str) -> u64 {
    let mut plan = plan;
    plan.add_bugs(&[bug.to_owned()]);
    for seed in 0..500 {
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
    panic!("{bug}: no failure in 500 seeds");
}

#[test]
fn double_spend_on_fork_is_found_by_included_once() {
    hunt(plan("ledger-partition-recovery"), "double-spend-on-fork", "included_once");
}

#[test]
fn mempool_drop_on_restart_is_found_by_included_once() {
    hunt(plan("ledger-aggressive-chaos"), "mempool-drop-on-restart", "included_once");
}

#[test]
fn fee_overflow_is_found_by_supply_conserved() {
    hunt(plan("ledger-invalid-fuzzing"), "fee-overflow", "supply_conserved");
}

#[test]
fn timestamp_trust_is_found_by_block_timing() {
    hunt(plan("ledger-clock-skew"), "timestamp-trust", "block_timing");
}

#[test]
fn gossip_no_limit_is_found_by_mempool_bounded() {
    hunt(plan("ledger-byzantine-flood"), "gossip-no-limit", "mempool_bounded");
}

/// The same seed gives the same run, event for event (the runner compares two runs).
#[test]
fn a_ledger_run_is_deterministic() {
    let scenario = Scenario::new(Ledger, plan("ledger-partition-recovery")).unwrap();
    let outcome = SimDeployer::default().check_determinism(true).run(&scenario, Seeds::new(7)).unwrap();
    assert!(outcome.verdict.passed(), "{}", outcome.verdict);
}

/// A plan's bad ledger options are listed, each with its key, and never run.
#[test]
fn bad_options_are_named() {
    let mut p = plan("ledger-load-progression");
    p.app.options.insert("slot".into(), "soon".into());
    p.app.options.insert("bugs".into(), toml::Value::Array(vec!["no-such-bug".into()]));
    p.app.options.insert("colour".into(), "red".into());
    let err = Scenario::new(Ledger, p).err().expect("rejected").to_string();
    for needle in ["slot", "\"soon\"", "no-such-bug", "double-spend-on-fork", "colour", "unknown option"] {
        assert!(err.contains(needle), "{needle:?} in:\n{err}");
    }
}
