//! `gauntlet report`: a run's bundle becomes one self-contained HTML page.
#![allow(clippy::disallowed_types, reason = "this test runs the CLI binary")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The largest report accepted: the page samples big runs to stay well under this.
const MAX_REPORT_BYTES: usize = 2_500_000;

fn gauntlet(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
    cmd.args(args).env_remove("SIM_SEED").env_remove("CHAOS_SEED").env_remove("SIM_CHECK_DETERMINISM");
    cmd.output().expect("the gauntlet binary runs")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn plan_path(rel: &str) -> String {
    format!("{}/../../scenarios/plans/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gauntlet-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The one bundle `gauntlet run --out dir` wrote.
fn bundle_in(dir: &Path) -> PathBuf {
    let bundles: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "gbundle"))
        .collect();
    assert_eq!(bundles.len(), 1, "one bundle in {}: {bundles:?}", dir.display());
    bundles.into_iter().next().unwrap()
}

/// Runs `plan` with `extra` arguments into a fresh directory, reports on the bundle, and
/// returns the run's JSON line and the page.
fn run_and_report(name: &str, plan: &str, extra: &[&str], exit: i32) -> (serde_json::Value, String) {
    let dir = temp_dir(name);
    let plan = plan_path(plan);
    let mut args = vec!["run", plan.as_str(), "--out", dir.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let run = gauntlet(&args);
    assert_eq!(run.status.code(), Some(exit), "{}", String::from_utf8_lossy(&run.stderr));
    let run = json(&run);
    let bundle = bundle_in(&dir);
    let page = dir.join("report.html");
    let out = gauntlet(&["report", bundle.to_str().unwrap(), "-o", page.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(json(&out)["bytes"].as_u64(), Some(html.len() as u64));
    std::fs::remove_dir_all(dir).unwrap();
    (run, html)
}

/// The checks every report must pass: one page, nothing fetched, the facts of the run present.
fn assert_self_contained_report(run: &serde_json::Value, html: &str) {
    assert!(html.starts_with("<!doctype html>"), "{}", &html[..html.len().min(200)]);
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.len() < MAX_REPORT_BYTES, "the report is {} bytes", html.len());
    for external in ["http://", "https://", "<script src", "<link", "@import", "url("] {
        assert!(!html.contains(external), "the report refers outside itself: {external:?}");
    }
    assert!(html.matches("<svg").count() >= 3, "a diagram, a latency chart and a throughput chart");
    assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
    let plan = run["plan"].as_str().unwrap();
    assert!(html.contains(&format!("<title>gauntlet report: {plan} (")), "the plan names the page");
    let hash = run["trace_hash"].as_str().unwrap();
    assert_eq!(hash.len(), 16, "{run}");
    assert!(html.contains(&format!("<code>{hash}</code>")), "the trace hash {hash} is on the page");
    let seed = run["seed"].as_u64().unwrap();
    assert!(html.contains(&format!("SIM_SEED={seed} CHAOS_SEED=")), "the replay line");
    assert!(html.contains("gauntlet replay"), "the replay line");
}

#[test]
fn a_passing_run_reports_as_one_self_contained_page() {
    let (run, html) = run_and_report("pass", "kv-partition.toml", &["--seed", "42"], 0);
    assert_eq!(run["verdict"], "pass");
    assert_self_contained_report(&run, &html);
    assert!(html.contains(r#"<span class="badge pass">PASS</span>"#));
    assert!(!html.contains("badge fail"));
    for lane in ["replica-0", "replica-4", ">clients<"] {
        assert!(html.contains(lane), "lane {lane}");
    }
    assert!(html.contains("<h2>Fault schedule</h2>") && html.contains("<table class=\"sched\">"));
}

#[test]
fn a_failing_run_reports_the_failure() {
    let (run, html) =
        run_and_report("fail", "kv-leader-partition.toml", &["--seed", "89", "--bug", "commit-old-term"], 1);
    assert_ne!(run["verdict"], "pass");
    assert_self_contained_report(&run, &html);
    assert!(html.contains(r#"<span class="badge fail">FAIL</span> safety failure at "#), "the verdict in the header");
    assert!(html.contains("commit-old-term") || html.contains("commit_old_term"), "the bug is named");
    assert!(html.contains(r#"<line class="failure""#), "the failure is marked on the charts");
    assert!(!html.contains("badge pass"));
}
