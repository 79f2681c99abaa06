//! pb-kv, the reference system on streams, under its plan: it really runs on streams (no
//! message of the transport, every exchange a TCP segment), no bug → every seed of the sweep
//! passes, `ack-before-sync` → found within 500 seeds by linearizability, and the failing seed
//! replays exactly.
#![cfg(madsim)]

use gauntlet::sim::{EventKind, Seeds};
use gauntlet::testing::TestRun;
use gauntlet::{Deployer, Plan, RunOutcome, Scenario, SimDeployer, Verdict};
use gauntlet_scenarios::pbkv::PbKv;
use gauntlet_scenarios::plans;

fn run(plan: &Plan, seed: u64) -> RunOutcome {
    let scenario = Scenario::new(PbKv, plan.clone()).unwrap();
    SimDeployer::default().run(&scenario, Seeds::new(seed)).unwrap()
}

fn with_bug(bug: &str) -> Plan {
    let mut plan = plans::pb_kv_crash();
    plan.app.options.insert("bugs".into(), toml::Value::Array(vec![bug.into()]));
    plan
}

/// Seeds in the no-bug sweep: 20, or `GAUNTLET_PBKV_SWEEP_SEEDS`; only `SIM_SEED` when set.
fn sweep_range() -> Vec<u64> {
    let n = std::env::var("GAUNTLET_PBKV_SWEEP_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    match gauntlet::sim::seed::seed_from_env(gauntlet::sim::seed::SIM_SEED_ENV) {
        Ok(Some(s)) => vec![s],
        Ok(None) => (0..n).collect(),
        Err(e) => panic!("{e}"),
    }
}

/// Every exchange of a pb-kv run — clients' operations, the observer's status reads, the
/// primary's log shipments — is TCP over the world's streams: the trace has stream events and
/// not one message of the transport, and nothing stopped a replica's program.
#[test]
fn pb_kv_runs_on_streams_only() {
    let scenario = Scenario::new(PbKv, plans::pb_kv_crash()).unwrap();
    let outcome = SimDeployer::default().keep_events(true).run(&scenario, Seeds::new(1)).unwrap();
    assert!(outcome.counts.get("tcp").copied().unwrap_or(0) > 1000, "stream events: {:?}", outcome.counts);
    for kind in ["send", "deliver", "drop"] {
        assert_eq!(outcome.counts.get(kind).copied().unwrap_or(0), 0, "{kind} events: {:?}", outcome.counts);
    }
    let trace = outcome.trace.as_ref().expect("events kept");
    let stopped: Vec<_> = trace
        .events()
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Annotation { text } if text.contains("replica stopped") => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert!(stopped.is_empty(), "a replica's program stopped: {stopped:?}");
}

/// With no bug, every seed of the sweep passes, and the clients got real work done. `cargo
/// test` runs 20 seeds; 1,000 is
/// `GAUNTLET_PBKV_SWEEP_SEEDS=1000 cargo test --release -p gauntlet-scenarios --test scenarios pbkv::sweep`.
#[test]
fn without_the_bug_every_seed_of_the_sweep_passes() {
    let plan = plans::pb_kv_crash();
    let mut failures = Vec::new();
    for seed in sweep_range() {
        let outcome = run(&plan, seed);
        if !outcome.verdict.passed() {
            let t = TestRun::new("gauntlet-scenarios", "pbkv", "without_the_bug_every_seed_of_the_sweep_passes");
            failures.push(t.failure_report(&Scenario::new(PbKv, plan.clone()).unwrap(), &outcome));
        }
        let ok = outcome.ops.values().map(|c| c.ok).sum::<u64>();
        let invoked = outcome.ops.values().map(|c| c.invoked).sum::<u64>();
        assert!(ok > 100 && ok * 2 >= invoked, "seed {seed} did work: {:?}", outcome.ops);
    }
    assert!(failures.is_empty(), "{} failing runs:\n{}", failures.len(), failures.join("\n"));
}

/// `ack-before-sync` (the primary acknowledges writes its group commit has not synced yet) is
/// found by linearizability within 500 seeds, and the failing seed replays to the same verdict
/// and trace hash.
#[test]
fn ack_before_sync_is_found_within_500_seeds_and_replays() {
    let plan = with_bug("ack-before-sync");
    for seed in 0..500 {
        let outcome = run(&plan, seed);
        if let Verdict::Fail(f) = &outcome.verdict {
            assert_eq!(f.source, "linearizable", "seed {seed} failed elsewhere: {f}");
            let again = run(&plan, seed);
            assert_eq!(
                (&again.verdict, again.trace_hash),
                (&outcome.verdict, outcome.trace_hash),
                "seed {seed} replays"
            );
            return;
        }
    }
    panic!("ack-before-sync: no failure in 500 seeds");
}
