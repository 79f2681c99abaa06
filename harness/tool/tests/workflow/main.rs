//! The day-to-day workflow through the `gauntlet` binary: run → bundle → replay → diff; sweep
//! with a planted bug → shrink → replay the shrunk bundle; the JSON each command prints; and
//! clear errors for bad bundles, bad seeds and bad ranges.
#![cfg(madsim)]
#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "this test runs the CLI binary and waits for it in wall time"
)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn gauntlet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(args)
        .env_remove("SIM_SEED")
        .env_remove("CHAOS_SEED")
        .env_remove("SIM_CHECK_DETERMINISM")
        .output()
        .expect("the gauntlet binary runs")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn plan(name: &str) -> String {
    format!("{}/../../scenarios/plans/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gauntlet-workflow-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn run_twice_same_hash_replay_exits_0_and_diff_names_the_first_divergent_event() {
    let dir = tempdir("run");
    let kv = plan("kv-partition.toml");
    let a = json(&gauntlet(&["run", &kv, "--seed", "42", "--json", "--out", s(&dir)]));
    let b = json(&gauntlet(&["run", &kv, "--seed", "42", "--json", "--no-bundle"]));
    assert_eq!(a["trace_hash"], b["trace_hash"], "same seed, same run");
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
    ] {
        assert!(!a[key].is_null() || key == "bundle", "missing {key}: {a}");
    }
    assert_eq!(
        (a["scenario"].as_str(), a["seed"].as_u64(), a["verdict"].as_str()),
        (Some("kv-partition"), Some(42), Some("pass"))
    );
    let bundle42 = a["bundle"].as_str().expect("a bundle path").to_owned();
    assert!(Path::new(&bundle42).exists());

    let replay = gauntlet(&["replay", &bundle42, "--json"]);
    assert_eq!(replay.status.code(), Some(0), "{}", String::from_utf8_lossy(&replay.stderr));
    let r = json(&replay);
    assert_eq!((r["same_trace"].as_bool(), r["same_verdict"].as_bool()), (Some(true), Some(true)));
    assert_eq!(r["trace_hash"], a["trace_hash"]);
    // A window of the trace around a simulated time.
    let w = json(&gauntlet(&["replay", &bundle42, "--at", "5s", "--window", "2", "--json"]));
    assert_eq!(w["window"].as_array().map(Vec::len), Some(5), "{w}");

    let c = json(&gauntlet(&["run", &kv, "--seed", "43", "--json", "--out", s(&dir)]));
    let bundle43 = c["bundle"].as_str().unwrap().to_owned();
    let diff = gauntlet(&["diff", &bundle42, &bundle43]);
    assert_eq!(diff.status.code(), Some(1), "different seeds differ");
    let text = String::from_utf8_lossy(&diff.stdout);
    assert!(text.contains("first divergent event: #"), "{text}");
    assert!(text.contains("-seeds       sim 42 chaos 42") && text.contains("+seeds       sim 43 chaos 43"), "{text}");
    let same = gauntlet(&["diff", &bundle42, &bundle42]);
    assert_eq!(same.status.code(), Some(0));
    let d = json(&gauntlet(&["diff", &bundle42, &bundle43, "--json"]));
    assert!(d["first_divergent_event"]["index"].is_u64(), "{d}");
}

#[test]
fn a_planted_bug_is_found_by_a_sweep_shrunk_and_the_shrunk_bundle_fails_the_same_way() {
    let dir = tempdir("bug");
    let corpus = dir.join("corpus");
    let plan_file = plan("kv-leader-partition.toml");
    let out = gauntlet(&[
        "sweep",
        &plan_file,
        "--seeds",
        "0..500",
        "--jobs",
        "2",
        "--bug",
        "commit-old-term",
        "--first",
        "--json",
        "--out",
        s(&dir),
        "--corpus",
        s(&corpus),
    ]);
    assert_eq!(out.status.code(), Some(1), "a failure found: {}", String::from_utf8_lossy(&out.stdout));
    let sweep = json(&out);
    let failure = &sweep["failures"][0];
    assert_eq!(
        (failure["class"].as_str(), failure["source"].as_str()),
        (Some("safety"), Some("linearizable")),
        "{sweep}"
    );
    let seed = failure["seed"].as_u64().unwrap();
    assert!(seed < 500);
    let corpus_text = std::fs::read_to_string(corpus.join("kv-leader-partition.seeds")).unwrap();
    assert!(corpus_text.contains(&format!("{seed} fail:safety:linearizable bugs=commit-old-term")), "{corpus_text}");

    let bundle = failure["bundle"].as_str().expect("the failing seed's bundle").to_owned();
    let shrunk_plan = dir.join("shrunk.toml");
    let out = gauntlet(&["shrink", &bundle, "-o", s(&shrunk_plan), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let shrink = json(&out);
    let (before, after) = (shrink["faults_before"].as_u64().unwrap(), shrink["faults_after"].as_u64().unwrap());
    assert!(after < before, "the schedule shrank: {before} -> {after}");
    assert!(after > 0, "a fault-free run would not fail");

    let shrunk_bundle = shrink["bundle_out"].as_str().unwrap().to_owned();
    let replay = gauntlet(&["replay", &shrunk_bundle, "--json"]);
    assert_eq!(replay.status.code(), Some(0), "the shrunk bundle replays exactly");
    let verdict = json(&replay)["verdict"].as_str().unwrap().to_owned();
    assert!(verdict.starts_with("FAIL: safety failure") && verdict.contains("in linearizable"), "{verdict}");
    // The shrunk plan is a plain plan file that runs to the same failure.
    let again = gauntlet(&["run", s(&shrunk_plan), "--seed", &seed.to_string(), "--json", "--no-bundle"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(json(&again)["source"], "linearizable");
}

/// Runs `plan` with `bug` at `seed` (a failing seed), shrinks the bundle, and checks the
/// reproducer: at most `max_faults` fault groups, a run no longer than 1.5× its failure time (plus the
/// two observations the cooldown keeps), and `gauntlet run` of the shrunk plan failing with
/// the same class and expectation.
fn shrinks_to_a_small_reproducer(plan_name: &str, bug: &str, seed: u64, max_faults: u64) {
    let dir = tempdir(&format!("shrink-{plan_name}"));
    let seed_text = seed.to_string();
    let first = gauntlet(&["run", &plan(plan_name), "--bug", bug, "--seed", &seed_text, "--json", "--out", s(&dir)]);
    let run = json(&first);
    let (class, source) = (run["class"].clone(), run["source"].clone());
    assert!(class.is_string() && source.is_string(), "{plan_name} {bug} seed {seed} fails: {run}");
    let bundle = run["bundle"].as_str().expect("a bundle").to_owned();
    let shrunk_plan = dir.join("shrunk.toml");
    let out = gauntlet(&["shrink", &bundle, "-o", s(&shrunk_plan), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let shrink = json(&out);
    let faults = shrink["faults_after"].as_u64().unwrap();
    assert!(faults <= max_faults, "{bug}: at most {max_faults} fault groups: {shrink}");
    let (sim, at) = (shrink["sim_time_ms_after"].as_u64().unwrap(), shrink["failure_at_ms"].as_u64().unwrap());
    assert!(sim <= at * 3 / 2 + 200, "{bug}: the run ends soon after its evidence: {sim} ms for a failure at {at} ms");
    let again = gauntlet(&["run", s(&shrunk_plan), "--seed", &seed_text, "--json", "--no-bundle"]);
    let again = json(&again);
    assert_eq!((&again["class"], &again["source"]), (&class, &source), "the shrunk plan fails the same way: {again}");
}

#[test]
fn a_ledger_bug_shrinks_to_a_small_reproducer_that_fails_the_same_way() {
    shrinks_to_a_small_reproducer("ledger-aggressive-chaos.toml", "mempool-drop-on-restart", 0, 3);
}

#[test]
fn a_gossip_bug_shrinks_to_a_small_reproducer_that_fails_the_same_way() {
    shrinks_to_a_small_reproducer("gossip-smoke.toml", "deaf_after_restart", 0, 3);
}

#[test]
fn a_raft_bug_shrinks_to_a_small_reproducer_that_fails_the_same_way() {
    // Seed 103 of kv-leader-partition: 11 leader cuts, 2 of which reproduce.
    shrinks_to_a_small_reproducer("kv-leader-partition.toml", "commit-old-term", 103, 3);
}

#[test]
fn a_forgotten_vote_shrinks_to_four_faults() {
    // Seed 1303 of kv-vote-restart: 36 faults, of which 4 give two leaders in one term (the
    // smallest reproducer of the 12 first failing seeds in 0..1747; docs/WORKFLOW.md).
    shrinks_to_a_small_reproducer("kv-vote-restart.toml", "split-vote", 1303, 4);
}

#[test]
fn explore_finds_commit_old_term_deterministically_and_its_plan_replays() {
    let dir = tempdir("explore");
    let args = [
        "explore",
        &plan("kv-leader-partition.toml"),
        "--bug",
        "commit-old-term",
        "--budget",
        "300",
        "--seed",
        "1",
        "--json",
        "--out",
        s(&dir),
    ];
    let out = gauntlet(&args);
    assert_eq!(out.status.code(), Some(1), "a failure found: {}", String::from_utf8_lossy(&out.stdout));
    let v = json(&out);
    let found = &v["first_failure"];
    assert_eq!((found["class"].as_str(), found["source"].as_str()), (Some("safety"), Some("linearizable")), "{v}");
    assert!(v["corpus"].as_u64().unwrap() > 0 && v["features"].as_u64().unwrap() > 0, "{v}");
    // The same explorer seed makes the same runs, whatever the number of jobs.
    let mut one_job = args.to_vec();
    one_job.extend(["--jobs", "1"]);
    let again = json(&gauntlet(&one_job));
    assert_eq!((&again["runs"], &again["first_failure"]["seed"]), (&v["runs"], &found["seed"]), "{again}");
    // The found run is a plain plan file plus a seed.
    let plan_out = found["plan_out"].as_str().unwrap();
    let seed = found["seed"].as_u64().unwrap().to_string();
    let run = json(&gauntlet(&["run", plan_out, "--seed", &seed, "--json", "--no-bundle"]));
    assert_eq!(run["source"], "linearizable", "{run}");
}

#[test]
fn a_sweep_reports_seeds_per_second_and_isolates_each_seed() {
    let dir = tempdir("sweep");
    let out = gauntlet(&[
        "sweep",
        &plan("gossip-smoke.toml"),
        "--seeds",
        "0..12",
        "--jobs",
        "2",
        "--json",
        "--out",
        s(&dir),
        "--no-corpus",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!(
        (v["runs"].as_u64(), v["passed"].as_u64(), v["failed"].as_u64(), v["jobs"].as_u64()),
        (Some(12), Some(12), Some(0), Some(2))
    );
    assert!(v["seeds_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(v["failed_seeds"], serde_json::json!([]));
    // A hang is cut off by the per-seed limit and reported for that seed only.
    let out = gauntlet(&[
        "sweep",
        &plan("kv-partition.toml"),
        "--seeds",
        "0..2",
        "--timeout",
        "1ms",
        "--json",
        "--no-corpus",
        "--out",
        s(&dir),
    ]);
    let v = json(&out);
    assert_eq!(v["failed"].as_u64(), Some(2), "{v}");
    assert_eq!(v["failures"][0]["class"], "timeout");
}

/// `gauntlet sweep --json` lists every sometimes-assertion of the plan's application with its
/// tally, gathered from the per-seed processes; kv-leader-partition only cuts the leader off,
/// so the probe that needs a restart is reported as never held, and the other applications
/// linked into the binary (gossip, the ledger) are not listed.
#[test]
fn a_sweep_lists_every_probe_of_the_application_and_reports_the_never_held() {
    let dir = tempdir("sweep-probes");
    let args = ["sweep", &plan("kv-leader-partition.toml"), "--seeds", "0..3", "--jobs", "2", "--no-corpus", "--out"];
    let out = gauntlet(&[&args[..], &[s(&dir), "--json"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    let probes = v["probes"].as_array().expect("a probes array");
    let names: Vec<&str> = probes.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.len() >= 6 && names.iter().all(|n| n.starts_with("raft: ")), "only raft-kv's: {names:?}");
    let probe = |name: &str| probes.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name} in {v}"));
    let truncated = probe("raft: a follower's conflicting log suffix truncated by a new leader");
    assert_eq!((truncated["kind"].as_str(), truncated["seeds_ran"].as_u64()), (Some("reachable"), Some(3)));
    assert!(truncated["seeds_held"].as_u64().unwrap() >= 1 && truncated["hits"].as_u64().unwrap() >= 1, "{truncated}");
    assert_eq!(truncated["never_held"], false);
    let restart = probe("raft: a restarted replica recovered its log from disk");
    assert_eq!((restart["seeds_held"].as_u64(), restart["hits"].as_u64()), (Some(0), Some(0)), "{restart}");
    assert_eq!((restart["never_held"].as_bool(), restart["seeds_ran"].as_u64()), (Some(true), Some(3)));
    assert!(v["probes_never_held"].as_array().unwrap().contains(&restart["name"]), "{v}");
    let findings: Vec<&str> = v["findings"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert!(
        findings.iter().any(|f| f.contains("recovered its log") && f.contains("never held in 3 seeds")),
        "{findings:?}"
    );

    // Without --json: the same tally as a table, the never-held one marked.
    let text = gauntlet(&[&args[..], &[s(&dir)]].concat());
    let text = String::from_utf8_lossy(&text.stdout);
    let line = text.lines().find(|l| l.contains("recovered its log from disk")).unwrap_or_else(|| panic!("{text}"));
    assert!(line.trim_start().starts_with("0/3") && line.ends_with("NEVER HELD"), "{line}");
}

#[test]
fn seeds_may_be_commit_ids_and_ranges_are_checked() {
    let kv = plan("gossip-smoke.toml");
    let a = json(&gauntlet(&["run", &kv, "--seed", "e946b57", "--json", "--no-bundle"]));
    let b = json(&gauntlet(&["run", &kv, "--seed", "E946B57", "--json", "--no-bundle"]));
    assert_eq!(a["seed"], b["seed"], "a commit id hashes to one seed, whatever its case");
    assert_eq!(a["trace_hash"], b["trace_hash"]);
    let bad = gauntlet(&["sweep", &kv, "--seeds", "9..3"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("the range is empty"));
    let bad = gauntlet(&["run", &kv, "--seed", "twelve"]);
    assert_eq!(bad.status.code(), Some(2));
    let bad = gauntlet(&["run", &kv, "--bug", "no-such-bug", "--no-bundle"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no-such-bug"), "{}", String::from_utf8_lossy(&bad.stderr));
}

#[test]
fn unreadable_bundles_are_usage_errors_that_say_what_is_wrong() {
    let dir = tempdir("bad");
    let junk = dir.join("junk.gbundle");
    std::fs::write(&junk, b"definitely not a bundle").unwrap();
    for cmd in ["replay", "shrink", "report"] {
        let out = gauntlet(&[cmd, s(&junk)]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("junk.gbundle") && err.contains("not a gauntlet bundle"), "{cmd}: {err}");
    }
    let out = gauntlet(&["diff", s(&junk), s(&dir.join("missing.gbundle"))]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_determinism_and_list() {
    let out = gauntlet(&["check-determinism", &plan("kv-failover.toml"), "--seed", "3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(json(&out)["deterministic"], true);
    let list = json(&gauntlet(&["list", "--plans", &plan(""), "--json"]));
    let plans: Vec<&str> = list["plans"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(plans.contains(&"kv-leader-partition") && plans.contains(&"gossip-smoke"), "{plans:?}");
    let raft = list["apps"].as_array().unwrap().iter().find(|a| a["name"] == "raft-kv").expect("raft-kv listed");
    assert!(raft["bugs"].as_array().unwrap().iter().any(|b| b == "commit-old-term"));
    assert!(raft["expectations"].as_array().unwrap().iter().any(|e| e == "linearizable"));
}

/// Each seed's line in a merged results file: what must match between sweeps (not wall time).
fn seed_results(path: &Path) -> Vec<(u64, String, Value, Value, Value)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (text.lines())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["seed"].as_u64().unwrap(),
                v["verdict"].as_str().unwrap().to_owned(),
                v["class"].clone(),
                v["source"].clone(),
                v["trace_hash"].clone(),
            )
        })
        .collect()
}

/// A sweep cut into 4 shards (run one after the other here; on a cluster engine in the
/// promotion tests) merges to the unsharded sweep's summary, trace hash for trace hash, with
/// the failing seed's bundle; shards of another sweep, a missing shard and a shard given twice
/// are refused by name; merged into a run store it is one finished run with every seed.
#[test]
fn four_shards_merge_to_the_unsharded_sweep_and_other_sweeps_shards_are_refused() {
    let dir = tempdir("shards");
    let sweep = |extra: &[&str]| {
        let base = [
            "sweep",
            &plan("kv-leader-partition.toml"),
            "--seeds",
            "40..60",
            "--bug",
            "commit-old-term",
            "--no-corpus",
            "--json",
            "--jobs",
            "2",
        ];
        gauntlet(&[&base[..], extra].concat())
    };
    let whole = dir.join("whole");
    let out = sweep(&["--results", s(&whole)]);
    assert_eq!(out.status.code(), Some(1), "seed 47 fails: {}", String::from_utf8_lossy(&out.stderr));
    let unsharded = json(&out);
    let shard_dirs: Vec<PathBuf> = (0..4).map(|i| dir.join(format!("shard-{i}"))).collect();
    for i in 0..4 {
        let results = dir.join("shard-{shard}");
        let out = sweep(&["--shard", &format!("{i}/4"), "--results", s(&results)]);
        assert!(matches!(out.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(json(&out)["runs"].as_u64(), Some(5), "a quarter of 20 seeds");
    }
    let merge = |dirs: &[&PathBuf], extra: &[&str]| {
        let mut args = vec!["merge"];
        args.extend(dirs.iter().map(|d| s(d)));
        args.extend(extra);
        gauntlet(&args)
    };
    let (whole_lines, shard_lines) = (dir.join("whole.jsonl"), dir.join("shards.jsonl"));
    let a = merge(&[&whole], &["--json", "--lines", s(&whole_lines)]);
    let all: Vec<&PathBuf> = shard_dirs.iter().collect();
    let b = merge(&all, &["--json", "--lines", s(&shard_lines)]);
    assert_eq!(b.status.code(), Some(1), "{}", String::from_utf8_lossy(&b.stderr));
    let (a, b) = (json(&a), json(&b));
    for key in
        ["runs", "passed", "failed", "failed_seeds", "probes", "probes_never_held", "findings", "plan", "bugs", "build"]
    {
        assert_eq!(a[key], b[key], "{key}");
    }
    assert_eq!((b["failed_seeds"].clone(), b["shards"].as_u64()), (serde_json::json!([47]), Some(4)));
    assert_eq!(a["failed_seeds"], unsharded["failed_seeds"], "merging one directory gives the sweep's own summary");
    let (x, y) = (seed_results(&whole_lines), seed_results(&shard_lines));
    assert_eq!(x.len(), 20);
    assert!(x.iter().all(|r| r.4.is_string()), "every seed has a trace hash");
    assert_eq!(x, y, "seed for seed, trace hash for trace hash");
    let bundle = b["failures"][0]["bundle"].as_str().unwrap();
    assert!(Path::new(bundle).is_file() && bundle.contains("shard-1"), "the failing seed's bundle: {bundle}");

    // Refusals, each naming the problem.
    let other = dir.join("other");
    let out = gauntlet(&[
        "sweep",
        &plan("kv-leader-partition.toml"),
        "--seeds",
        "40..64",
        "--bug",
        "commit-old-term",
        "--shard",
        "3/4",
        "--results",
        s(&other),
        "--no-corpus",
        "--json",
    ]);
    assert!(matches!(out.status.code(), Some(0 | 1)));
    let refused = |dirs: &[&PathBuf], says: &str| {
        let out = merge(dirs, &[]);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{says:?} in {err}");
    };
    refused(&[&shard_dirs[0], &shard_dirs[1], &shard_dirs[2], &other], "seed range");
    refused(&[&shard_dirs[0], &shard_dirs[1], &shard_dirs[2]], "shards 3 of 4 are missing");
    refused(&[&shard_dirs[0], &shard_dirs[1], &shard_dirs[1], &shard_dirs[3]], "shard 1/4 is given twice");
    refused(&[&dir], "not a sweep's results directory");

    // Into the run service's store: one finished run with every seed and the failing bundle.
    let data = dir.join("data");
    let out = merge(&all, &["--json", "--store", "sqlite", "--data", s(&data)]);
    let v = json(&out);
    let id = v["run_id"].as_str().expect("a run id").to_owned();
    use gauntlet_serve::store::Store;
    let store = gauntlet_serve::SqliteStore::open(&data.join("runs.sqlite")).unwrap();
    let run = store.run(&id).unwrap().expect("the merged run");
    assert_eq!((run.seeds_total, run.seeds_done, run.failed, run.state.as_str()), (20, 20, 1, "failed"));
    let failed = store.seeds(&id, true, 0, 10).unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].bundle.as_deref().is_some_and(|b| Path::new(b).starts_with(&data)), "{:?}", failed[0].bundle);
    let again = json(&merge(&all, &["--json", "--store", "sqlite", "--data", s(&data)]));
    assert_eq!(again["run_id"].as_str(), Some(id.as_str()), "merging again records nothing new");
}

/// A worker SIGKILLed in the middle of a batch: the sweep still reports every seed of the
/// range exactly once (the killed one as a crash of its process, the others passed), and no
/// worker is left.
#[test]
fn a_worker_killed_mid_batch_costs_one_seed_and_leaves_no_process() {
    let dir = tempdir("killed-worker");
    let results = dir.join("results");
    let child = Command::new(env!("CARGO_BIN_EXE_gauntlet"))
        .args(["sweep", &plan("kv-partition.toml"), "--seeds", "0..40", "--jobs", "2", "--no-corpus", "--json"])
        .args(["--results", s(&results)])
        .env_remove("SIM_SEED")
        .env_remove("CHAOS_SEED")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let sweep_pid = child.id();
    // This sweep's workers: by parent while it runs, and by the bundle directory they were
    // given (under `results`) once it has ended and any orphan would have a new parent.
    let needle = s(&results).to_owned();
    let workers = || -> Vec<i32> {
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            let ppid =
                stat.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|p| p.parse::<u32>().ok());
            let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains("sweep-worker") && (ppid == Some(sweep_pid) || cmd.contains(&needle)) {
                pids.push(pid);
            }
        }
        pids
    };
    // Once a few seeds are recorded, kill one worker while it runs its next seed.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let lines = || std::fs::read_to_string(results.join("seeds.jsonl")).map_or(0, |t| t.lines().count());
    while lines() < 6 {
        assert!(std::time::Instant::now() < deadline, "the sweep records seeds");
        std::thread::sleep(std::time::Duration::from_millis(5)); // polling the file, not waiting for it
    }
    let victim = *workers().first().expect("a worker runs");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(victim), nix::sys::signal::Signal::SIGKILL).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "one seed failed: {}", String::from_utf8_lossy(&out.stderr));
    let v = json(&out);
    assert_eq!((v["runs"].as_u64(), v["failed"].as_u64()), (Some(40), Some(1)), "{v}");
    let failure = &v["failures"][0];
    assert_eq!((failure["class"].as_str(), failure["source"].as_str()), (Some("crash"), Some("process")), "{failure}");
    assert!(failure["message"].as_str().unwrap().contains("signal: 9"), "{failure}");
    let text = std::fs::read_to_string(results.join("seeds.jsonl")).unwrap();
    let mut seeds: Vec<u64> =
        text.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["seed"].as_u64().unwrap()).collect();
    seeds.sort_unstable();
    assert_eq!(seeds, (0..40).collect::<Vec<_>>(), "every seed exactly once");
    assert!(workers().is_empty(), "no worker left");
    assert!(!Path::new(&format!("/proc/{victim}")).exists(), "the killed worker was reaped");
}
