//! `gauntlet sweep`: many seeds of one plan on all cores. Each seed runs in its own process
//! (`gauntlet sweep-one`), so a panic, an abort or a hang (the per-seed time limit) in one
//! seed is reported for that seed and cannot hide or kill the others.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "a sweep measures wall time, runs worker threads and one process per seed, outside any simulation"
)]

use crate::apps::Apps;
use crate::plan_cmd::{bundle_path, load_plan, replay_line, run_json};
use crate::{EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use gauntlet::bundle::Bundle;
use gauntlet::registry::RunOptions;
use gauntlet::sweep::{add_probes, ProbeSummary, SweepReport};
use gauntlet::{Plan, Verdict};
use gauntlet_sim::seed::parse_seed;
use gauntlet_sim::Seeds;
use gauntlet_sim::{ProbeHits, ProbeKind, Probes};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// What `gauntlet sweep` was asked.
#[derive(Debug)]
pub struct Sweep {
    /// The plan file.
    pub plan: PathBuf,
    /// `A..B` or `S+N`.
    pub seeds: String,
    /// Parallel runs.
    pub jobs: Option<usize>,
    /// Planted bugs to switch on.
    pub bugs: Vec<String>,
    /// Per-seed wall-clock limit.
    pub timeout: Duration,
    /// Bundles of failing seeds go here.
    pub out: PathBuf,
    /// The failing-seed corpus directory, if failing seeds are recorded.
    pub corpus: Option<PathBuf>,
    /// Stop at the first failure.
    pub first: bool,
    /// JSON summary instead of a progress bar.
    pub json: bool,
}

/// Parses `A..B` (B excluded) or `S+N`; A and S may be any seed notation.
pub fn parse_range(text: &str) -> Result<Vec<u64>, String> {
    let bad = |why: &str| format!("--seeds {text:?}: {why}; expected A..B (e.g. 0..500) or S+N (e.g. e946b57+100)");
    let (start, end) = if let Some((a, b)) = text.split_once("..") {
        let a = parse_seed("--seeds", a).map_err(|e| bad(&e.to_string()))?;
        let b = parse_seed("--seeds", b).map_err(|e| bad(&e.to_string()))?;
        (a, b)
    } else if let Some((s, n)) = text.rsplit_once('+') {
        let s = parse_seed("--seeds", s).map_err(|e| bad(&e.to_string()))?;
        let n: u64 = n.trim().parse().map_err(|_| bad("the count is not a number"))?;
        (s, s.checked_add(n).ok_or_else(|| bad("the range overflows"))?)
    } else {
        return Err(bad("no range"));
    };
    if end <= start {
        return Err(bad("the range is empty"));
    }
    if end - start > 10_000_000 {
        return Err(bad("more than 10,000,000 seeds"));
    }
    Ok((start..end).collect())
}

/// This executable (seeds run in processes of it), or `None` after saying why not.
pub(crate) fn own_exe() -> Option<std::path::PathBuf> {
    std::env::current_exe().map_err(|e| eprintln!("gauntlet: cannot find my own executable to run seeds in: {e}")).ok()
}

/// One seed's result, as the parent saw it.
#[derive(Debug, Clone)]
struct SeedResult {
    seed: u64,
    passed: bool,
    /// `safety`, `liveness`, `crash`, or `timeout` / `abort` when the process itself failed.
    class: Option<String>,
    source: Option<String>,
    message: Option<String>,
    bundle: Option<String>,
    /// The run's sometimes-assertions (none when the process itself failed).
    probes: Option<Probes>,
}

fn run_child(exe: &Path, s: &Sweep, seed: u64) -> SeedResult {
    let mut cmd = Command::new(exe);
    cmd.arg("sweep-one").arg(&s.plan).arg("--seed").arg(seed.to_string()).arg("--out").arg(&s.out);
    for b in &s.bugs {
        cmd.arg("--bug").arg(b);
    }
    cmd.env_remove("SIM_SEED").env_remove("CHAOS_SEED").env("RUST_BACKTRACE", "0");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let failed = |class: &str, message: String| SeedResult {
        seed,
        passed: false,
        class: Some(class.to_owned()),
        source: Some("process".to_owned()),
        message: Some(message),
        bundle: None,
        probes: None,
    };
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed("abort", format!("cannot start {}: {e}", exe.display())),
    };
    // Drain both pipes in their own threads so a chatty child can never block on a full pipe.
    let mut out_pipe = child.stdout.take().expect("piped");
    let mut err_pipe = child.stderr.take().expect("piped");
    let (status, stdout, stderr) = std::thread::scope(|scope| {
        let o = scope.spawn(move || {
            let mut v = Vec::new();
            let _ = out_pipe.read_to_end(&mut v);
            v
        });
        let e = scope.spawn(move || {
            let mut v = Vec::new();
            let _ = err_pipe.read_to_end(&mut v);
            v
        });
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() > s.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(_) => break None,
            }
        };
        (status, o.join().unwrap_or_default(), e.join().unwrap_or_default())
    });
    let Some(status) = status else {
        return failed("timeout", format!("no verdict within {:?} (killed)", s.timeout));
    };
    let line = String::from_utf8_lossy(&stdout);
    match serde_json::from_str::<serde_json::Value>(line.trim()) {
        Ok(v) => SeedResult {
            seed,
            passed: v["verdict"] == "pass",
            class: v["class"].as_str().map(str::to_owned),
            source: v["source"].as_str().map(str::to_owned),
            message: v["failures"][0].as_str().map(str::to_owned),
            bundle: v["bundle"].as_str().map(str::to_owned),
            probes: probes_from_json(&v["probes"]),
        },
        Err(_) => {
            let tail: String = String::from_utf8_lossy(&stderr).lines().rev().take(3).collect::<Vec<_>>().join(" | ");
            failed("abort", format!("the run process ended with {status} and no verdict: {tail}"))
        }
    }
}

/// A run's probes for the `sweep-one` line: `[{name, kind, evaluated, held, first_held_ms}]`.
fn probes_json(probes: &Probes) -> serde_json::Value {
    (probes.iter())
        .map(|(name, p)| {
            serde_json::json!({
                "name": name, "kind": p.kind.as_str(), "evaluated": p.evaluated, "held": p.held,
                "first_held_ms": p.first_held.map(|t| t.as_secs_f64() * 1e3),
            })
        })
        .collect()
}

/// Reads [`probes_json`] back (`None` if the line has none: a child from another build).
fn probes_from_json(v: &serde_json::Value) -> Option<Probes> {
    let mut probes = Probes::new();
    for p in v.as_array()? {
        let kind = match p["kind"].as_str()? {
            "reachable" => ProbeKind::Reachable,
            _ => ProbeKind::Sometimes,
        };
        let (evaluated, held) = (p["evaluated"].as_u64()?, p["held"].as_u64()?);
        let first_held = p["first_held_ms"].as_f64().map(|ms| Duration::from_secs_f64(ms / 1e3));
        probes.insert(p["name"].as_str()?.to_owned(), ProbeHits { kind, evaluated, held, first_held });
    }
    Some(probes)
}

/// The sweep's `probes` array: every assertion the runs listed, with its tally, the ones that
/// never held marked.
fn probes_summary_json(tally: &BTreeMap<String, ProbeSummary>) -> serde_json::Value {
    (tally.iter())
        .map(|(name, p)| {
            serde_json::json!({
                "name": name, "kind": p.kind.as_str(), "seeds_held": p.seeds_held, "seeds_ran": p.seeds_ran,
                "hits": p.hits, "evaluated": p.evaluated, "first_seed": p.first_seed, "never_held": p.never_held(),
            })
        })
        .collect()
}

/// Appends failing seeds to `<corpus>/<plan>.seeds` (once each). Without planted bugs a seed
/// is recorded as `pass` (it must pass once the bug is fixed); with bugs, as the failure it
/// gave (the bug must stay found).
pub fn record_corpus(dir: &Path, plan: &Plan, failures: &[(u64, String)]) -> Result<PathBuf, String> {
    let path = dir.join(format!("{}.seeds", plan.name));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let existing = std::fs::read_to_string(&path).unwrap_or_default();
    let bugs = gauntlet::bundle::bugs_of(plan);
    let mut text = existing.clone();
    if text.is_empty() {
        text.push_str(&format!(
            "# Regression seeds of plan {} (found by `gauntlet sweep`); `cargo test` re-runs each.\n\
             # seed  expect (pass | fail:<class>:<source>)  [bugs=a,b]\n",
            plan.name
        ));
    }
    for (seed, expect) in failures {
        let bug_field = if bugs.is_empty() { String::new() } else { format!(" bugs={}", bugs.join(",")) };
        let line = format!("{seed} {expect}{bug_field}");
        if !existing.lines().any(|l| l.split('#').next().unwrap_or("").trim() == line) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    let tmp = path.with_extension("seeds.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Runs the sweep; exit 0 when every seed passed, 1 when any failed, 2 on bad usage.
pub fn run(apps: &Apps, s: Sweep) -> i32 {
    let plan = match load_plan(apps, &s.plan, &s.bugs) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    let seeds = match parse_range(&s.seeds) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    let Some(exe) = crate::sweep::own_exe() else { return EXIT_USAGE };
    let jobs = s.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let bar = if s.json { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(seeds.len() as u64) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {per_sec}  {msg}  eta {eta}")
            .expect("a valid template"),
    );
    bar.set_message("0 failed");
    let (next, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
    let results: Mutex<Vec<SeedResult>> = Mutex::new(Vec::new());
    let failed_so_far = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(seeds.len()) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= seeds.len() || stop.load(Ordering::SeqCst) {
                    break;
                }
                let r = run_child(&exe, &s, seeds[i]);
                if !r.passed {
                    let n = failed_so_far.fetch_add(1, Ordering::SeqCst) + 1;
                    bar.set_message(format!("{n} failed"));
                    bar.println(format!(
                        "seed {}: {} ({})",
                        r.seed,
                        r.message.as_deref().unwrap_or("failed"),
                        r.bundle.as_deref().unwrap_or("no bundle")
                    ));
                    if s.first {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                bar.inc(1);
                results.lock().expect("results").push(r);
            });
        }
    });
    bar.finish_and_clear();
    let wall = started.elapsed();
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|r| r.seed);
    let failed: Vec<&SeedResult> = results.iter().filter(|r| !r.passed).collect();
    let seeds_per_sec = results.len() as f64 / wall.as_secs_f64().max(1e-9);
    // The tally (and its findings) as the in-process sweep keeps them.
    let mut tally =
        SweepReport { plan: plan.name.clone(), runs: Vec::new(), failures: Vec::new(), probes: BTreeMap::new() };
    for r in &results {
        if let Some(p) = &r.probes {
            add_probes(&mut tally.probes, r.seed, p);
        }
    }
    let corpus = match (&s.corpus, failed.is_empty()) {
        (Some(dir), false) => {
            let bugs = !gauntlet::bundle::bugs_of(&plan).is_empty();
            let entries: Vec<(u64, String)> = failed
                .iter()
                .filter(|r| matches!(r.class.as_deref(), Some("safety" | "liveness" | "crash")))
                .map(|r| {
                    let expect = if bugs {
                        format!("fail:{}:{}", r.class.as_deref().unwrap_or(""), r.source.as_deref().unwrap_or(""))
                    } else {
                        "pass".to_owned()
                    };
                    (r.seed, expect)
                })
                .collect();
            match record_corpus(dir, &plan, &entries) {
                Ok(p) => Some(p),
                Err(e) => {
                    eprintln!("gauntlet: cannot record the corpus: {e}");
                    None
                }
            }
        }
        _ => None,
    };
    if s.json {
        let v = serde_json::json!({
            "plan": plan.name,
            "bugs": gauntlet::bundle::bugs_of(&plan),
            "runs": results.len(),
            "passed": results.len() - failed.len(),
            "failed": failed.len(),
            "failed_seeds": failed.iter().map(|r| r.seed).collect::<Vec<_>>(),
            "failures": failed.iter().map(|r| serde_json::json!({
                "seed": r.seed, "class": r.class, "source": r.source, "message": r.message, "bundle": r.bundle,
            })).collect::<Vec<_>>(),
            "seeds_per_sec": (seeds_per_sec * 100.0).round() / 100.0,
            "jobs": jobs,
            "wall_ms": wall.as_millis() as u64,
            "corpus": corpus.as_ref().map(|p| p.display().to_string()),
            "probes": probes_summary_json(&tally.probes),
            "probes_never_held": tally.never_held(),
            "findings": tally.findings().iter().map(|f| f.to_string()).collect::<Vec<_>>(),
        });
        println!("{v}");
    } else {
        println!(
            "{}: {} runs, {} passed, {} failed in {:.1}s ({seeds_per_sec:.1} seeds/s, {jobs} jobs)",
            plan.name,
            results.len(),
            results.len() - failed.len(),
            failed.len(),
            wall.as_secs_f64()
        );
        for r in &failed {
            println!(
                "  seed {:<8} {:<9} {}  {}",
                r.seed,
                r.class.as_deref().unwrap_or("?"),
                r.source.as_deref().unwrap_or(""),
                r.bundle.as_deref().unwrap_or("")
            );
        }
        if let Some(p) = &corpus {
            println!("corpus: {}", p.display());
        }
        if !tally.probes.is_empty() {
            println!("sometimes-assertions (seeds held/ran, hits, kind, name):");
            print!("{}", tally.describe_probes());
            for f in tally.findings() {
                println!("finding: {f}");
            }
        }
    }
    if failed.is_empty() {
        EXIT_PASS
    } else {
        EXIT_FAIL
    }
}

/// `gauntlet sweep-one`: runs one seed (without keeping events); a failing seed is run again
/// keeping them, for its bundle. Prints the `run` JSON object.
pub fn one(apps: &Apps, file: &Path, seed: u64, bugs: &[String], out: &Path) -> i32 {
    let plan = match load_plan(apps, file, bugs) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    let seeds = Seeds::new(seed);
    let replay = replay_line(file, bugs, seeds);
    let started = Instant::now();
    let outcome = match apps.registry.run_plan(&plan, seeds, RunOptions::default()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gauntlet: seed {seed}: the run broke: {e}");
            return crate::EXIT_CRASH;
        }
    };
    let wall_ms = started.elapsed().as_millis() as u64;
    let mut bundle = None;
    if let Verdict::Fail(_) = &outcome.verdict {
        let kept = apps.registry.run_plan(&plan, seeds, RunOptions { keep_events: true, ..RunOptions::default() });
        if let Ok(full) = kept {
            let path = bundle_path(out, &plan, seeds);
            match Bundle::of(&plan, &full).write(&path) {
                Ok(()) => bundle = Some(path),
                Err(e) => eprintln!("gauntlet: {e}"),
            }
        }
    }
    let mut line = run_json(&plan, &outcome, wall_ms, bundle.as_deref(), &replay);
    line["probes"] = probes_json(&outcome.probes);
    println!("{line}");
    match &outcome.verdict {
        Verdict::Pass => EXIT_PASS,
        Verdict::Fail(f) => f.class.exit_code(),
    }
}
