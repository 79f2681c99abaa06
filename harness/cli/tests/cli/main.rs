//! The `gauntlet` binary as a user runs it: seeds, replay, JSON, exit codes.
#![allow(clippy::disallowed_types, reason = "this test runs the CLI binary")]

use std::process::{Command, Output};

fn gauntlet(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    cmd.args(args).env_remove("SIM_SEED").env_remove("CHAOS_SEED").env_remove("SIM_CHECK_DETERMINISM");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the gauntlet binary runs")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn a_bad_sim_seed_is_a_usage_error_naming_the_variable_and_value() {
    let out = gauntlet(&["demo"], &[("SIM_SEED", "abc")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(r#"SIM_SEED="abc" is not a seed"#), "{err}");
    let out = gauntlet(&["demo", "--seed", "12x"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(r#"--seed="12x" is not a seed"#));
}

#[test]
fn the_same_seed_replays_to_the_same_trace_hash_in_any_notation() {
    let a = json(&gauntlet(&["demo", "--seed", "42", "--json"], &[]));
    let b = json(&gauntlet(&["demo", "--json"], &[("SIM_SEED", "0x2a")]));
    assert_eq!(a["trace_hash"], b["trace_hash"]);
    assert_eq!(a["events"], b["events"]);
    assert_eq!((a["seed"].as_u64(), a["verdict"].as_str()), (Some(42), Some("pass")));
    assert_eq!(a["sim_time_ms"], 15_000);
    for key in
        ["scenario", "seed", "chaos_seed", "verdict", "failures", "trace_hash", "events", "sim_time_ms", "wall_ms"]
    {
        assert!(a.get(key).is_some(), "missing {key} in {a}");
    }
    let c = json(&gauntlet(&["demo", "--seed", "43", "--json"], &[]));
    assert_ne!(a["trace_hash"], c["trace_hash"]);
}

#[test]
fn chaos_seed_changes_the_faults_and_is_reported() {
    let a = json(&gauntlet(&["demo", "--seed", "42", "--json"], &[]));
    let b = json(&gauntlet(&["demo", "--seed", "42", "--json"], &[("CHAOS_SEED", "7")]));
    assert_eq!(b["chaos_seed"], 7);
    assert_ne!(a["trace_hash"], b["trace_hash"], "a different fault schedule is a different run");
}

#[test]
fn the_seed_is_printed_before_the_run_and_a_drawn_seed_replays() {
    let out = gauntlet(&["demo"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or_default();
    let seed = first.strip_prefix("gauntlet: demo with SIM_SEED=").unwrap_or_else(|| panic!("seed first: {err}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verdict    PASS"), "{text}");
    let hash = text.lines().find_map(|l| l.strip_prefix("trace hash ")).expect("hash printed").to_owned();
    let again = json(&gauntlet(&["demo", "--json", "--seed", seed], &[]));
    assert_eq!(again["trace_hash"], hash.as_str());
}

fn plan_path(rel: &str) -> String {
    format!("{}/../../scenarios/plans/{rel}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_accepts_the_shipped_plans_and_lists_problems_in_bad_ones() {
    let good = ["gossip-smoke.toml", "gossip-swarm.toml", "gossip-load-progression.toml"].map(plan_path);
    let args: Vec<&str> = std::iter::once("check").chain(good.iter().map(String::as_str)).collect();
    let out = gauntlet(&args, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    let bad = plan_path("malformed/restart-min-over-max.toml");
    let out = gauntlet(&["check", &bad], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("chaos.restart: min_delay 20s > max_delay 10s"), "{stdout}");
    let out = gauntlet(&["check", "/nonexistent/plan.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("/nonexistent/plan.toml"));
}

#[test]
fn run_reports_the_verdict_and_replays_by_seed() {
    let plan = plan_path("gossip-smoke.toml");
    let a = gauntlet(&["run", &plan, "--seed", "5", "--json"], &[]);
    assert_eq!(a.status.code(), Some(0), "{}", String::from_utf8_lossy(&a.stderr));
    let (a, b) = (json(&a), json(&gauntlet(&["run", &plan, "--json"], &[("SIM_SEED", "5")])));
    assert_eq!(a["trace_hash"], b["trace_hash"]);
    assert_eq!((a["verdict"].as_str(), a["plan"].as_str()), (Some("pass"), Some("gossip-smoke")));
    assert!(a["ops"]["bumps"]["ok"].as_u64().unwrap() > 100, "{a}");
    assert!(String::from_utf8_lossy(&gauntlet(&["run", &plan, "--seed", "5"], &[]).stderr)
        .starts_with("gauntlet: gossip-smoke with SIM_SEED=5"));
}

#[test]
fn a_liveness_failure_exits_4_with_a_replay_line() {
    let dir = std::env::temp_dir().join(format!("gauntlet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("deaf.toml");
    std::fs::write(
        &file,
        r#"
name = "deaf"
[app]
name = "gossip"
options = { planted_bugs = ["deaf_after_restart"], bump_until = "9s" }
[topology.nodes]
gossip = 3
[run]
duration = "10s"
cooldown = "5s"
[[chaos.schedule]]
at = "2s"
fault = { kind = "restart", node = "gossip-1" }
[[expect]]
name = "converge"
"#,
    )
    .unwrap();
    let out = gauntlet(&["run", file.to_str().unwrap(), "--seed", "3", "--json"], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["class"], "liveness");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("replay: SIM_SEED=3 cargo run --release -p gauntlet-cli -- run"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
