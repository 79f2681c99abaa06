//! The `gauntlet` binary as a user runs it: seeds, replay, JSON, exit codes.
#![allow(clippy::disallowed_types, reason = "this test runs the CLI binary")]

use std::process::{Command, Output};

fn gauntlet(args: &[&str], env: &[(&str, &str)]) -> Output {
    // Bundles and reports (default `./gauntlet-out`) land in a scratch directory, not the tree.
    let scratch = std::env::temp_dir().join(format!("gauntlet-cli-tests-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch directory");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    cmd.current_dir(&scratch)
        .args(args)
        .env_remove("SIM_SEED")
        .env_remove("CHAOS_SEED")
        .env_remove("SIM_CHECK_DETERMINISM");
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
    assert!(a["sim_time_ms"].as_u64().unwrap() >= 20_000, "the active phase, then the cooldown: {a}");
    for key in [
        "scenario",
        "seed",
        "chaos_seed",
        "verdict",
        "failures",
        "trace_hash",
        "events",
        "sim_time_ms",
        "wall_ms",
        "bundle",
        "report",
    ] {
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
    let a = gauntlet(&["run", &plan, "--seed", "5", "--json", "--no-bundle"], &[]);
    assert_eq!(a.status.code(), Some(0), "{}", String::from_utf8_lossy(&a.stderr));
    let (a, b) = (json(&a), json(&gauntlet(&["run", &plan, "--json", "--no-bundle"], &[("SIM_SEED", "5")])));
    assert_eq!(a["trace_hash"], b["trace_hash"]);
    assert_eq!((a["verdict"].as_str(), a["plan"].as_str()), (Some("pass"), Some("gossip-smoke")));
    assert!(a["ops"]["bumps"]["ok"].as_u64().unwrap() > 100, "{a}");
    assert!(String::from_utf8_lossy(&gauntlet(&["run", &plan, "--seed", "5", "--no-bundle"], &[]).stderr)
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
options = { bugs = ["deaf_after_restart"], bump_until = "9s" }
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
    let out = gauntlet(&["run", file.to_str().unwrap(), "--seed", "3", "--json", "--out", dir.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["class"], "liveness");
    let err = String::from_utf8_lossy(&out.stderr);
    // The replay line runs this very binary again, in the profile it was built with.
    let profile = if cfg!(debug_assertions) { "" } else { "--release " };
    assert!(err.contains(&format!("replay: SIM_SEED=3 cargo run {profile}--bin gauntlet -- run")), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

fn history_path(name: &str) -> String {
    format!("{}/tests/histories/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_history_accepts_linearizable_histories_with_unknown_and_failed_operations() {
    let out = gauntlet(&["check-history", &history_path("register-ok.jsonl"), "--model", "register"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verdict    LINEARIZABLE"), "{text}");
    assert!(text.contains("5 operations: 1 with unknown outcome; 1 failed and left out"), "{text}");
    let v = json(&gauntlet(&["check-history", &history_path("kv-ok.jsonl"), "--model", "kv", "--json"], &[]));
    assert_eq!(
        (v["verdict"].as_str(), v["operations"].as_u64(), v["partitions"].as_u64()),
        (Some("linearizable"), Some(9), Some(3))
    );
    assert_eq!(v["counterexample"], serde_json::Value::Null);
}

#[test]
fn check_history_prints_a_minimal_counterexample_with_line_numbers_and_exits_1() {
    let out = gauntlet(&["check-history", &history_path("register-stale-read.jsonl"), "--model", "register"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("verdict    NOT LINEARIZABLE in the register"), "{text}");
    assert!(text.contains("counterexample (minimal): these 2 operations cannot be linearized"), "{text}");
    let lines: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("line ")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("line 2 ") && lines[0].contains(r#"write("2")"#), "{text}");
    assert!(lines[1].contains("line 4 ") && lines[1].contains(r#"read() -> "1""#), "{text}");

    let out = gauntlet(&["check-history", &history_path("kv-lost-append.jsonl"), "--model", "kv", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["verdict"], "not_linearizable");
    assert_eq!(v["failing_partitions"], serde_json::json!(["x", "zz"]));
    let cx = &v["counterexample"];
    // Both keys fail; the counterexample comes from the smaller one.
    assert_eq!((cx["partition"].as_str(), cx["minimal"].as_bool()), (Some("zz"), Some(true)));
    let ops: Vec<(u64, &str)> = cx["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["line"].as_u64().unwrap(), o["description"].as_str().unwrap()))
        .collect();
    assert_eq!(ops, [(7, r#"put("zz", "1")"#), (8, r#"get("zz") -> null"#)]);
    assert!(v["check_us"].is_u64(), "the check time in microseconds: {v}");

    // Porcupine's c50-bad: all 10 keys fail; the counterexample is minimal and comes from the
    // smallest key; --first-failure stops there.
    let c50 = history_path("porcupine-c50-bad.jsonl");
    let all = json(&gauntlet(&["check-history", &c50, "--model", "kv", "--json"], &[]));
    assert_eq!(all["failing_partitions"].as_array().map(Vec::len), Some(10), "{all}");
    let first = json(&gauntlet(&["check-history", &c50, "--model", "kv", "--json", "--first-failure"], &[]));
    assert_eq!(first["verdict"], "not_linearizable");
    assert_eq!(first["failing_partitions"].as_array().map(Vec::len), Some(1), "{first}");
    assert_eq!(first["counterexample"], all["counterexample"], "the same minimal counterexample");
    let cx = &first["counterexample"];
    assert_eq!(cx["minimal"], true);
    assert!(cx["operations"].as_array().unwrap().len() <= 3, "{cx}");
    let sizes = cx["partition_operations"].as_u64().unwrap();
    assert!(sizes < 200, "the smallest key (194 operations), not the first in key order: {cx}");
}

#[test]
fn check_history_names_every_malformed_line_and_exits_2() {
    let file = history_path("malformed.jsonl");
    let out = gauntlet(&["check-history", &file, "--model", "register"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        format!(r#"{file}:2: field "invoke": expected a non-negative integer (ns), found "soon""#),
        format!(r#"{file}:4: op "get" is not an operation of the register model (expected read, write or cas)"#),
        format!("{file}:5: complete 50 is before invoke 60"),
        format!("{file}:6: not valid JSON"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(!err.contains(":1:") && !err.contains(":3:"), "{err}");
    let v = json(&gauntlet(&["check-history", &file, "--model", "register", "--json"], &[]));
    assert_eq!(v["verdict"], "malformed");
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(4));
    assert_eq!(v["errors"][0]["line"], 2);
    // A kv history read as a register: the operations are not the model's.
    let out = gauntlet(&["check-history", &history_path("kv-ok.jsonl"), "--model", "register"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains(r#"kv-ok.jsonl:1: op "put" is not an operation of the register model"#));
}

#[test]
fn check_history_on_a_missing_file_or_bad_usage_exits_2() {
    let out = gauntlet(&["check-history", "/nonexistent/history.jsonl", "--model", "kv"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read /nonexistent/history.jsonl"));
    let out = gauntlet(&["check-history", &history_path("kv-ok.jsonl"), "--model", "queue"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = gauntlet(&["check-history", &history_path("kv-ok.jsonl")], &[]);
    assert_eq!(out.status.code(), Some(2), "--model is required");
}

#[test]
fn check_history_gives_up_within_max_steps_and_exits_3() {
    let out =
        gauntlet(&["check-history", &history_path("kv-ok.jsonl"), "--model", "kv", "--max-steps", "1", "--json"], &[]);
    assert_eq!(out.status.code(), Some(3));
    let v = json(&out);
    assert_eq!(v["verdict"], "undecided");
    assert!(v["steps"].as_u64().is_some_and(|s| s >= 1), "{v}");
}

#[test]
fn a_plan_of_an_unknown_application_is_named_with_the_registered_ones() {
    let dir = std::env::temp_dir().join(format!("gauntlet-cli-unknown-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("nope.toml");
    std::fs::write(&file, "name = \"nope\"\n[app]\nname = \"raft-kvv\"\n[topology.nodes]\nreplica = 3\n").unwrap();
    for cmd in ["run", "check", "sweep"] {
        let out = gauntlet(&[cmd, file.to_str().unwrap()], &[]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            text.contains(r#"unknown application "raft-kvv"; registered: etcd, gossip, ledger, pb-kv, raft-kv"#),
            "{cmd}: {text}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn gauntlet_script_exit_codes_follow_the_verdict_and_name_the_line() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scenarios/scripts");
    let upgrade = format!("{dir}/raft-rolling-upgrade.lua");
    let out = gauntlet(&["script", &upgrade, "--seed", "1", "--no-bundle"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let out = gauntlet(&["script", &upgrade, "--seed", "1", "--bug", "upgrade-field-order", "--json"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["source"], "linearizable");
    assert!(v["failures"][0].as_str().unwrap().contains("raft-rolling-upgrade.lua:35:"), "{v}");
    let replay = v["replay"].as_str().unwrap();
    assert!(
        replay.contains("SIM_SEED=1") && replay.contains("script") && replay.contains("--bug upgrade-field-order"),
        "{replay}"
    );

    let scratch = std::env::temp_dir().join(format!("gauntlet-cli-scripts-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let plan = format!("{dir}/raft-kv.toml");
    for (name, source, code, want) in [
        ("malformed.lua", "sut.kill('replica-0'\n", 2, "malformed.lua:2:"),
        ("runtime.lua", "local t\nt.x = 1\n", 5, "runtime.lua:2: attempt to index a nil value"),
        ("spin.lua", "while true do end\n", 5, "instructions (script.max_instructions)"),
        (
            "unknown.lua",
            "sleep(1)\nsut.restart('replica-7')\n",
            5,
            "unknown.lua:2: sut.restart: unknown node \"replica-7\"",
        ),
    ] {
        let file = scratch.join(name);
        std::fs::write(&file, source).unwrap();
        let out = gauntlet(
            &[
                "script",
                file.to_str().unwrap(),
                "--plan",
                &plan,
                "--seed",
                "1",
                "--no-bundle",
                "--max-instructions",
                "100000",
            ],
            &[],
        );
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(code), "{name}: {text}");
        assert!(text.contains(want), "{name}: {text}");
    }
    let out = gauntlet(&["script", scratch.join("runtime.lua").to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("give --plan BASE.toml"));
}
