//! Scripted runs (`[script]`, `docs/SCRIPTING.md`) on the shipped scripts and on broken ones:
//! verdicts, replay by seed, and the error each kind of mistake gives.

use gauntlet::plan::ScriptPlan;
use gauntlet::sim::Seeds;
use gauntlet::{FailureClass, Plan, RunOutcome, Verdict};
use gauntlet_scenarios::registry;
use std::path::Path;

fn scripts() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts"))
}

/// The base plan `plan` with the script `file` (from `scenarios/scripts`) or `source`.
fn scripted(plan: &str, name: &str, source: &str, bugs: &[&str]) -> Plan {
    let mut p = Plan::load(scripts().join(plan)).unwrap();
    p.add_bugs(&bugs.iter().map(|b| (*b).to_owned()).collect::<Vec<_>>());
    p.script = Some(ScriptPlan::new(name, source));
    p
}

fn shipped(plan: &str, file: &str, bugs: &[&str]) -> Plan {
    scripted(plan, file, &std::fs::read_to_string(scripts().join(file)).unwrap(), bugs)
}

fn run(plan: &Plan, seed: u64) -> RunOutcome {
    registry::check(plan).unwrap();
    registry::run(plan, Seeds::new(seed), false).unwrap()
}

fn failure(o: &RunOutcome) -> &gauntlet::Failure {
    match &o.verdict {
        Verdict::Fail(f) => f,
        Verdict::Pass => panic!("expected a failure, the run passed"),
    }
}

#[test]
fn the_rolling_upgrade_passes_with_compatible_versions_and_every_node_ends_on_v2() {
    for seed in [1, 2] {
        let o = run(&shipped("raft-kv.toml", "raft-rolling-upgrade.lua", &[]), seed);
        assert!(o.verdict.passed(), "seed {seed}: {}", o.verdict);
        let upgrades = o.schedule.entries.iter().filter(|e| e.fault.to_string().starts_with("restart")).count();
        assert_eq!(upgrades, 3, "one restart per upgraded replica: {:?}", o.schedule.entries);
        assert!(o.ops["script"].ok >= 12, "3 seeding writes and 4 rounds of 3 reads: {:?}", o.ops);
    }
}

#[test]
fn the_planted_upgrade_bug_fails_linearizability_at_the_scripts_line_and_replays() {
    let plan = shipped("raft-kv.toml", "raft-rolling-upgrade.lua", &["upgrade-field-order"]);
    let a = run(&plan, 1);
    let f = failure(&a);
    assert_eq!((f.class, f.source.as_str()), (FailureClass::Safety, "linearizable"), "{f}");
    assert!(f.message.starts_with("raft-rolling-upgrade.lua:35: not linearizable"), "{}", f.message);
    let b = run(&plan, 1);
    assert_eq!(a.trace_hash, b.trace_hash, "the failing seed replays");
    assert_eq!(a.verdict, b.verdict);
    // The script is the reproducer: shrinking its faults away is refused, saying so.
    let refused = gauntlet::shrink::shrink_plan(&registry::registry(), &plan, (&a).into(), Default::default());
    assert!(
        matches!(&refused, Err(gauntlet::shrink::ShrinkError::Unsupported(why)) if why.contains("script")),
        "{:?}",
        refused.map(|s| s.seeds)
    );
}

#[test]
fn the_ledger_partition_check_and_the_leader_kill_loop_pass() {
    let o = run(&shipped("ledger.toml", "ledger-partition-check.lua", &[]), 1);
    assert!(o.verdict.passed(), "{}", o.verdict);
    assert!(o.schedule.entries.iter().any(|e| e.fault.to_string().starts_with("partition")), "{:?}", o.schedule);
    let o = run(&shipped("raft-kv.toml", "raft-leader-kill.lua", &[]), 1);
    assert!(o.verdict.passed(), "{}", o.verdict);
    let kills = o.schedule.entries.iter().filter(|e| e.fault.to_string().starts_with("crash")).count();
    assert_eq!(kills, 5, "{:?}", o.schedule.entries);
    let printed = o.observations.iter().filter(|x| x.node == "script").count();
    assert_eq!(printed, 5, "a line per round: {:?}", o.observations);
}

#[test]
fn a_malformed_script_is_a_plan_problem_naming_its_line() {
    let plan = scripted("raft-kv.toml", "bad.lua", "sut.wait_ready('all')\nlocal x = = 1\n", &[]);
    let e = registry::check(&plan).unwrap_err().to_string();
    assert!(e.contains("script.source: the script does not compile: bad.lua:2:"), "{e}");
}

#[test]
fn a_runtime_error_is_a_script_failure_with_its_line_and_traceback() {
    let plan = scripted("raft-kv.toml", "oops.lua", "sleep(1)\nlocal t = nil\nprint(t.x)\n", &[]);
    let o = run(&plan, 3);
    let f = failure(&o);
    assert_eq!(f.class, FailureClass::Script);
    assert!(f.message.starts_with("oops.lua:3: attempt to index a nil value"), "{}", f.message);
    assert!(f.message.contains("stack traceback"), "{}", f.message);
    assert!(f.at >= std::time::Duration::from_secs(1), "it failed after the sleep: {:?}", f.at);
}

#[test]
fn an_endless_loop_stops_at_the_instruction_limit() {
    let mut plan = scripted("raft-kv.toml", "spin.lua", "local n = 0\nwhile true do\n  n = n + 1\nend\n", &[]);
    plan.script.as_mut().unwrap().max_instructions = 200_000;
    let f = failure(&run(&plan, 1)).clone();
    assert_eq!(f.class, FailureClass::Script);
    assert!(
        f.message.contains("spin.lua:3: the script ran more than its limit of 200000 instructions"),
        "{}",
        f.message
    );
}

#[test]
fn an_endless_wait_stops_at_the_time_limit_and_memory_is_bounded() {
    let mut plan = scripted("raft-kv.toml", "wait.lua", "while true do sleep(1) end", &[]);
    plan.script.as_mut().unwrap().time_limit = std::time::Duration::from_secs(20);
    let f = failure(&run(&plan, 1)).clone();
    assert_eq!(f.class, FailureClass::Script);
    assert!(f.message.contains("time limit of 20s"), "{}", f.message);
    let mut plan =
        scripted("raft-kv.toml", "hog.lua", "local t = {}\nfor i = 1, 1e8 do t[i] = ('x'):rep(64) .. i end", &[]);
    plan.script.as_mut().unwrap().max_memory = 4 << 20;
    let f = failure(&run(&plan, 1)).clone();
    assert_eq!(f.class, FailureClass::Script);
    assert!(f.message.contains("more memory than its limit"), "{}", f.message);
}

#[test]
fn an_unknown_node_version_or_operation_names_what_exists() {
    for (source, want) in [
        (
            "sut.kill('replica-9')",
            "x.lua:1: sut.kill: unknown node \"replica-9\"; nodes: replica-0, replica-1, replica-2",
        ),
        ("sut.upgrade('replica-0', 'v7')", "x.lua:1: sut.upgrade: unknown version \"v7\"; versions: v1, v2"),
        (
            "client.op('delete', {key = 'k1'})",
            "x.lua:1: client.op: unknown operation \"delete\"; operations: get, put, cas",
        ),
        ("client.op('put', {key = 'k9', value = 1})", "x.lua:1: client.op(\"put\"): key = \"k9\": raft-kv's keys"),
        ("net.partition({{'replica-0'}, {'nobody'}})", "x.lua:1: net.partition: unknown node \"nobody\""),
        ("check.expect('no-such-check')", "x.lua:1: check.expect: unknown expectation \"no-such-check\""),
    ] {
        let o = run(&scripted("raft-kv.toml", "x.lua", source, &[]), 1);
        let f = failure(&o);
        assert_eq!(f.class, FailureClass::Script, "{source}: {f}");
        assert!(f.message.starts_with(want), "{source}: {}", f.message);
    }
}

#[test]
fn a_caught_expectation_failure_still_fails_the_run_and_randomness_follows_the_seed() {
    // pcall cannot hide a broken check.
    let source = "local ok = pcall(check.assert, false, 'hidden')\nprint(ok)";
    let f = failure(&run(&scripted("raft-kv.toml", "p.lua", source, &[]), 1)).clone();
    assert_eq!((f.class, f.message.as_str()), (FailureClass::Safety, "p.lua:1: hidden"));
    // rand and pairs are the same for the same seed, and rand differs between seeds.
    let source = "local t = {zeta = 1, alpha = 2, [3] = 3, mid = 4}\nlocal keys = {}\nfor k in pairs(t) do keys[#keys + 1] = tostring(k) end\nprint(table.concat(keys, ','), rand(1, 1000000))";
    let plan = scripted("raft-kv.toml", "r.lua", source, &[]);
    let line = |seed| run(&plan, seed).observations.iter().find(|o| o.node == "script").unwrap().state.clone();
    assert_eq!(line(5), line(5));
    assert!(line(5).starts_with("3,alpha,mid,zeta\t"), "{}", line(5));
    assert_ne!(line(5), line(6));
}
