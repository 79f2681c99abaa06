//! A system Gauntlet does not ship, as a new user gets it: `gauntlet init` writes a crate
//! outside this workspace (a path dependency on this checkout), which builds with no manual
//! flags, passes its own `cargo test`, and whose own command line sweeps, shrinks, replays
//! and reports its planted bug, and refuses an unknown application by name.
//!
//! The crate builds in the workspace's own target directory (cargo releases its lock before
//! it runs tests), so the dependencies it shares with the workspace, compiled with the same
//! features and profile, are not compiled again: a new crate pays for Gauntlet's own crates
//! and for what its features change, as a user's second crate would.
#![allow(clippy::disallowed_types, clippy::disallowed_methods, reason = "this test runs cargo and the CLI")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// Runs `program args` in `dir` with a clean environment for a nested cargo.
fn run_in(dir: &Path, program: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    // The outer build's flags would override the new crate's own .cargo/config.toml.
    for var in
        ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "RUSTDOCFLAGS", "CARGO_ENCODED_RUSTDOCFLAGS", "SIM_SEED", "CHAOS_SEED"]
    {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_TARGET_DIR", target_dir());
    cmd.output().unwrap_or_else(|e| panic!("{program} {args:?} runs: {e}"))
}

/// The target directory this test was built in ([`gauntlet::testing::target_dir`]), absolute:
/// the nested cargo runs in the new crate's directory.
fn target_dir() -> PathBuf {
    let dir = gauntlet::testing::target_dir();
    if dir.is_absolute() {
        dir
    } else {
        root().join(dir)
    }
}

fn text(out: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(out)))
}

#[test]
fn a_new_crate_tests_its_own_system_from_cargo_test_and_its_own_command_line() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let parent = std::env::temp_dir().join(format!("gauntlet-your-system-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&parent);
    std::fs::create_dir_all(&parent).expect("scratch directory");
    let dir = parent.join("acme-store");

    // 1. Scaffold (the default dependency is this very checkout).
    let out = Command::new(env!("CARGO_BIN_EXE_gauntlet")).arg("init").arg(&dir).output().expect("init runs");
    assert!(out.status.success(), "{}", text(&out));
    for f in
        ["Cargo.toml", ".cargo/config.toml", "src/lib.rs", "src/bin/gauntlet.rs", "plans/tally.toml", "tests/tally.rs"]
    {
        assert!(dir.join(f).exists(), "init wrote {f}");
    }
    let again = Command::new(env!("CARGO_BIN_EXE_gauntlet")).arg("init").arg(&dir).output().expect("init runs");
    assert_eq!(again.status.code(), Some(2), "init refuses a non-empty directory: {}", text(&again));
    assert!(text(&again).contains("not empty"), "{}", text(&again));

    // 2. Its own tests pass at once: a sweep, and the planted bug found and shrunk.
    let out = run_in(&dir, &cargo, &["test"]);
    assert!(out.status.success(), "cargo test in the new crate:\n{}", text(&out));
    let t = text(&out);
    assert!(t.contains("test tally_keeps_every_acknowledged_add ... ok"), "{t}");
    assert!(t.contains("test the_planted_bug_is_found_and_shrunk ... ok"), "{t}");
    assert!(t.contains("test the_plan_reaches_the_paths_that_matter ... ok"), "{t}");

    // 3. Its own command line: check, sweep (finds the bug), shrink, replay, report.
    let cli = |args: &[&str]| {
        let mut all = vec!["run", "-q", "--bin", "acme-store-gauntlet", "--"];
        all.extend_from_slice(args);
        run_in(&dir, &cargo, &all)
    };
    // The command line reuses the test build: nothing but the crate itself compiles again.
    let out = run_in(&dir, &cargo, &["run", "--bin", "acme-store-gauntlet", "--", "check", "plans/tally.toml"]);
    assert!(out.status.success(), "{}", text(&out));
    let compiled: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.trim_start().starts_with("Compiling ") && !l.contains("acme-store"))
        .map(str::to_owned)
        .collect();
    assert!(compiled.is_empty(), "the CLI after `cargo test` compiled again: {compiled:?}");
    let out = cli(&["sweep", "plans/tally.toml", "--seeds", "0..40", "--bug", "ack-before-sync", "--first", "--json"]);
    assert_eq!(out.status.code(), Some(1), "the sweep finds the planted bug: {}", text(&out));
    let sweep = json(&out);
    let failing = &sweep["failures"][0];
    assert_eq!(failing["source"], "no_lost_adds", "{sweep}");
    let bundle = failing["bundle"].as_str().expect("a failing seed's bundle").to_owned();

    let out = cli(&["shrink", &bundle, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let shrunk = json(&out);
    let (before, after) = (shrunk["faults_before"].as_u64().unwrap(), shrunk["faults_after"].as_u64().unwrap());
    assert!(after < before && after >= 1, "shrunk {before} -> {after} faults: {shrunk}");
    assert!(shrunk["verdict"].as_str().unwrap().contains("no_lost_adds"), "{shrunk}");
    assert!(shrunk["replay"].as_str().unwrap().contains("cargo run --bin acme-store-gauntlet -- run"), "{shrunk}");

    let out = cli(&["replay", shrunk["bundle_out"].as_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let replay = json(&out);
    assert_eq!(replay["same_trace"], true, "{replay}");
    assert_eq!(replay["same_verdict"], true, "{replay}");

    let report = dir.join("report.html");
    let out = cli(&["report", &bundle, "-o", report.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let html = std::fs::read_to_string(&report).expect("the report is written");
    assert!(html.contains("no_lost_adds") && html.contains("<svg"), "the report shows the failure");

    // The sweep lists the crate's own sometimes-assertions, and only those.
    let out = cli(&["sweep", "plans/tally.toml", "--seeds", "0..4", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let sweep = json(&out);
    let probes = sweep["probes"].as_array().expect("a probes array");
    let names: Vec<&str> = probes.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["tally: a node caught up on 10 adds at once", "tally: a restarted node read its count back from disk"],
        "{sweep}"
    );
    assert!(probes.iter().all(|p| p["seeds_held"].as_u64() >= Some(1) && p["never_held"] == false), "{sweep}");

    // Exploration finds the bug and hands back a plan that fails when run.
    let out =
        cli(&["explore", "plans/tally.toml", "--bug", "ack-before-sync", "--budget", "100", "--seed", "1", "--json"]);
    assert_eq!(out.status.code(), Some(1), "explore finds the planted bug: {}", text(&out));
    let found = json(&out)["first_failure"].clone();
    assert_eq!(found["source"], "no_lost_adds", "{found}");
    let seed = found["seed"].as_u64().expect("a seed").to_string();
    let out = cli(&["run", found["plan_out"].as_str().unwrap(), "--seed", &seed, "--json", "--no-bundle"]);
    assert_eq!((out.status.code(), json(&out)["source"].as_str()), (Some(1), Some("no_lost_adds")), "{}", text(&out));

    let out = cli(&["run", "plans/tally.toml", "--seed", "5", "--json", "--no-bundle"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["verdict"], "pass");

    // 4. An unknown application is named, with the ones registered.
    let plan = std::fs::read_to_string(dir.join("plans/tally.toml"))
        .unwrap()
        .replace("name = \"tally\"\n\n[topology", "name = \"tallyho\"\n\n[topology");
    std::fs::write(dir.join("plans/unknown.toml"), plan).unwrap();
    for cmd in [&["run", "plans/unknown.toml"][..], &["sweep", "plans/unknown.toml", "--seeds", "0..2"]] {
        let out = cli(cmd);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {}", text(&out));
        assert!(text(&out).contains("unknown application \"tallyho\"; registered: tally"), "{cmd:?}: {}", text(&out));
    }
    // A bundle of an application this command line does not have (the shipped gossip):
    // replay and shrink name the real cause, not "does not reproduce".
    let foreign = parent.join("foreign");
    let gossip = root().join("scenarios/plans/gossip-smoke.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(["run", gossip.to_str().unwrap(), "--seed", "1", "--bug", "deaf_after_restart", "--out"])
        .arg(&foreign)
        .output()
        .expect("the shipped gauntlet runs");
    assert_ne!(out.status.code(), Some(0), "the planted gossip bug fails: {}", text(&out));
    let bundle = foreign.join("gossip-smoke-1.gbundle");
    for cmd in ["replay", "shrink"] {
        let out = cli(&[cmd, bundle.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", text(&out));
        assert!(text(&out).contains("unknown application \"gossip\"; registered: tally"), "{cmd}: {}", text(&out));
    }
    // 5. The crate's command line is the simulation build: what needs the real backends, the
    // run service or the Lua VM stays in --help and names the feature that brings it.
    let out = cli(&["--help"]);
    assert!(out.status.success(), "{}", text(&out));
    for (cmd, feature) in [("promote", "real"), ("serve", "serve"), ("script", "script")] {
        let line = text(&out).lines().find(|l| l.trim_start().starts_with(cmd)).map(str::to_owned);
        assert!(
            line.as_deref().is_some_and(|l| l.contains(&format!("needs gauntlet-cli's `{feature}` feature"))),
            "--help lists {cmd} and its feature: {line:?}"
        );
    }
    for (args, feature) in [
        (&["promote", "plans/tally.toml"][..], "real"),
        (&["submit", "plans/tally.toml", "--seeds", "0..2"], "serve"),
        (&["script", "x.lua", "--plan", "plans/tally.toml"], "script"),
    ] {
        let out = cli(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(&format!("gauntlet-cli's `{feature}` feature")), "{args:?}: {}", text(&out));
        assert!(text(&out).contains(&format!("features = [\"{feature}\"]")), "{args:?}: {}", text(&out));
    }
    let _ = std::fs::remove_dir_all(&parent);
}
