//! Tally under simulation: a sweep of seeds passes; with the planted bug switched on, a sweep
//! finds it and shrinking hands back a smaller reproducer.

use __CRATE_IDENT__::Tally;
use gauntlet::{Plan, Scenario, Verdict};

fn plan() -> Plan {
    Plan::load(concat!(env!("CARGO_MANIFEST_DIR"), "/plans/tally.toml")).expect("the plan parses")
}

/// Every seed passes. A failing seed prints the line that replays it, its bundle, and a
/// shrunk reproducer (a plan with an explicit fault schedule, and its bundle).
#[test]
fn tally_keeps_every_acknowledged_add() {
    let scenario = Scenario::new(Tally, plan()).expect("the plan fits the application");
    gauntlet::test_run!().sweep_passes(&scenario, 0..8);
}

/// The planted bug is found within a few seeds, by the expectation that should find it, and
/// shrinks to fewer faults.
#[test]
fn the_planted_bug_is_found_and_shrunk() {
    let mut plan = plan();
    plan.add_bugs(&["ack-before-sync".to_owned()]);
    let scenario = Scenario::new(Tally, plan).expect("the plan fits the application");
    let report = gauntlet::sweep(&scenario, 0..20);
    let failing = report.first_failure().expect("ack-before-sync is found within 20 seeds");
    let Verdict::Fail(f) = &failing.verdict else { unreachable!("a failure") };
    assert_eq!(f.source, "no_lost_adds", "{}", failing.verdict);
    let shrunk = gauntlet::shrink(&scenario, failing).expect("the failure shrinks");
    assert!(shrunk.faults.1 < shrunk.faults.0, "{}", shrunk.describe());
    assert!(!shrunk.outcome.verdict.passed(), "the shrunk plan still fails");
}

/// The sometimes-assertions of `src/lib.rs` hold in some seeds of the plan; without restarts
/// the plan never drives a node to read its count back, and the sweep reports that.
#[test]
fn the_plan_reaches_the_paths_that_matter() {
    let restored = "tally: a restarted node read its count back from disk";
    let caught_up = "tally: a node caught up on 10 adds at once";
    let scenario = Scenario::new(Tally, plan()).expect("the plan fits the application");
    let report = gauntlet::sweep(&scenario, 0..4);
    for name in [restored, caught_up] {
        assert!(report.probes[name].seeds_held >= 1, "{}", report.describe_probes());
    }
    let mut calm = plan();
    calm.chaos.restart = None;
    let scenario = Scenario::new(Tally, calm).expect("the plan fits the application");
    let report = gauntlet::sweep(&scenario, 0..4);
    assert_eq!(report.probes[restored].seeds_held, 0, "{}", report.describe_probes());
    assert!(report.never_held().contains(&restored), "{:?}", report.findings());
}
