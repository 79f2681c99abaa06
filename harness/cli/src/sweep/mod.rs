//! `gauntlet sweep`: many seeds of one plan on all cores, isolated in processes of this
//! executable so a panic, an abort or a hang (the per-seed time limit) in one seed is reported
//! for that seed and cannot hide or kill the others: batched workers by default, one process
//! per seed on request ([`worker`]). `--shard I/N` runs one part of the range and `--results
//! DIR` keeps the results for `gauntlet merge` ([`shard`], [`merge`]).
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "a sweep measures wall time, runs worker threads and processes, outside any simulation"
)]

pub mod merge;
pub mod shard;
pub mod worker;

use crate::apps::Apps;
use crate::plan_cmd::load_plan;
use crate::{EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use gauntlet::files::write_atomically;
use gauntlet::sweep::{add_probes, ProbeSummary, SweepReport};
use gauntlet::Plan;
use gauntlet_sim::seed::parse_seed;
use shard::{Manifest, ResultsWriter, SeedLine, Shard};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use worker::{Job, Mode, SeedResult};

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
    /// Bundles of failing seeds go here (unless `results` is given: then `<results>/bundles`).
    pub out: PathBuf,
    /// The failing-seed corpus directory, if failing seeds are recorded.
    pub corpus: Option<PathBuf>,
    /// Stop at the first failure.
    pub first: bool,
    /// JSON summary instead of a progress bar.
    pub json: bool,
    /// How seeds are isolated.
    pub mode: Mode,
    /// Which part of the range to run.
    pub shard: Shard,
    /// Where to keep the results for `gauntlet merge`.
    pub results: Option<PathBuf>,
    /// Exit 0 once every seed's result is recorded, failing or not.
    pub exit_zero: bool,
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
    write_atomically(&path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// SHA-256 of a plan as it runs (its TOML, planted bugs included), hex.
pub fn plan_sha256(plan: &Plan) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(plan.to_toml().as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
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
    let all = match parse_range(&s.seeds) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    let Some(exe) = crate::sweep::own_exe() else { return EXIT_USAGE };
    let part = s.shard.part(&all);
    let mut writer = None;
    let mut out = s.out.clone();
    if let Some(dir) = &s.results {
        let dir = &PathBuf::from(dir.to_string_lossy().replace("{shard}", &s.shard.index.to_string()));
        let manifest = Manifest {
            format: shard::FORMAT,
            plan: plan.name.clone(),
            plan_sha256: plan_sha256(&plan),
            bugs: gauntlet::bundle::bugs_of(&plan),
            seeds: s.seeds.clone(),
            range: (all[0], all[all.len() - 1] + 1),
            shard: s.shard,
            build: crate::build_id::build_id(),
            seeds_total: part.len() as u64,
            complete: false,
            probes: BTreeMap::new(),
            probe_seeds: 0,
        };
        match ResultsWriter::open(dir, manifest, &plan.to_toml()) {
            Ok(w) => {
                out = w.bundles();
                writer = Some(w);
            }
            Err(e) => {
                eprintln!("gauntlet: {e}");
                return EXIT_USAGE;
            }
        }
    }
    // Seeds an interrupted attempt at this shard recorded are kept, not run again.
    let earlier: BTreeMap<u64, SeedLine> = writer.as_mut().map(|w| std::mem::take(&mut w.done)).unwrap_or_default();
    let todo: Vec<u64> = part.iter().copied().filter(|s| !earlier.contains_key(s)).collect();
    let jobs = s.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())).max(1);
    let bar = if s.json { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(part.len() as u64) };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} seeds  {per_sec}  {msg}  eta {eta}")
            .expect("a valid template"),
    );
    bar.set_position(earlier.len() as u64);
    bar.set_message("0 failed");
    let job = Job { exe, plan: s.plan.clone(), bugs: s.bugs.clone(), out, timeout: s.timeout };
    let (next, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
    let failed_so_far = AtomicUsize::new(earlier.values().filter(|l| !l.passed()).count());
    // Results as they come, and the results file written as they come (under one lock).
    let sink: Mutex<(Vec<SeedResult>, Option<ResultsWriter>, Option<String>)> = Mutex::new((Vec::new(), writer, None));
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(todo.len()) {
            scope.spawn(|| {
                let next_seed = || {
                    if stop.load(Ordering::SeqCst) {
                        return None;
                    }
                    todo.get(next.fetch_add(1, Ordering::SeqCst)).copied()
                };
                worker::run_job(&job, s.mode, next_seed, |r| {
                    if !r.line.passed() {
                        let n = failed_so_far.fetch_add(1, Ordering::SeqCst) + 1;
                        bar.set_message(format!("{n} failed"));
                        bar.println(format!(
                            "seed {}: {} ({})",
                            r.line.seed,
                            r.line.message.as_deref().unwrap_or("failed"),
                            r.line.bundle.as_deref().unwrap_or("no bundle")
                        ));
                        if s.first {
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                    bar.inc(1);
                    let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
                    let (results, writer, error) = &mut *sink;
                    if let Some(w) = writer.as_mut() {
                        if let Err(e) = w.record(&r.line) {
                            error.get_or_insert(e);
                            stop.store(true, Ordering::SeqCst);
                        }
                    }
                    results.push(r);
                });
            });
        }
    });
    bar.finish_and_clear();
    let wall = started.elapsed();
    let (new, writer, write_error) = sink.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Some(e) = write_error {
        eprintln!("gauntlet: cannot record a seed's result, the sweep stopped: {e}");
        return EXIT_USAGE;
    }
    let ran_now = new.len();
    // The probe tally (and its findings) as the in-process sweep keeps them, over the seeds
    // this execution ran (a resumed shard's earlier seeds kept their lines, not their probes:
    // the manifest says how many seeds the tally covers).
    let mut tally =
        SweepReport { plan: plan.name.clone(), runs: Vec::new(), failures: Vec::new(), probes: BTreeMap::new() };
    let mut new = new;
    new.sort_by_key(|r| r.line.seed);
    for r in &new {
        if let Some(p) = &r.probes {
            add_probes(&mut tally.probes, r.line.seed, p);
        }
    }
    let mut lines: Vec<SeedLine> = earlier.into_values().chain(new.into_iter().map(|r| r.line)).collect();
    lines.sort_by_key(|l| l.seed);
    if let Some(mut w) = writer {
        let complete = lines.len() == part.len();
        if let Err(e) = w.finish(complete, tally.probes.clone(), ran_now as u64) {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    }
    let corpus = record_failures(&s, &plan, &lines);
    let summary = Summary { plan: &plan, lines: &lines, probes: &tally.probes, corpus: corpus.as_deref() };
    if s.json {
        let mut v = summary.json();
        let seeds_per_sec = ran_now as f64 / wall.as_secs_f64().max(1e-9);
        v["seeds_per_sec"] = serde_json::json!((seeds_per_sec * 100.0).round() / 100.0);
        v["jobs"] = serde_json::json!(jobs);
        v["mode"] = serde_json::json!(match s.mode {
            Mode::Batch => "batch",
            Mode::Process => "process",
        });
        v["wall_ms"] = serde_json::json!(wall.as_millis() as u64);
        v["shard"] = serde_json::json!(s.shard.to_string());
        v["results"] = serde_json::json!(s
            .results
            .as_ref()
            .map(|p| p.to_string_lossy().replace("{shard}", &s.shard.index.to_string())));
        println!("{v}");
    } else {
        let shard = if s.shard == Shard::WHOLE { String::new() } else { format!(" (shard {})", s.shard) };
        println!(
            "{}{shard}: {} runs, {} passed, {} failed in {:.1}s ({:.1} seeds/s, {jobs} jobs)",
            plan.name,
            lines.len(),
            summary.passed(),
            lines.len() - summary.passed(),
            wall.as_secs_f64(),
            ran_now as f64 / wall.as_secs_f64().max(1e-9),
        );
        summary.print_failures_and_probes();
        if let Some(dir) = &s.results {
            let dir = dir.to_string_lossy().replace("{shard}", &s.shard.index.to_string());
            println!("results: {dir} (gauntlet merge combines shards)");
        }
    }
    if lines.iter().all(SeedLine::passed) || s.exit_zero {
        EXIT_PASS
    } else {
        EXIT_FAIL
    }
}

/// Adds the failing seeds whose runs failed (not those whose process did) to the corpus.
fn record_failures(s: &Sweep, plan: &Plan, lines: &[SeedLine]) -> Option<PathBuf> {
    let dir = s.corpus.as_ref()?;
    let bugs = !gauntlet::bundle::bugs_of(plan).is_empty();
    let entries: Vec<(u64, String)> = (lines.iter())
        .filter(|l| !l.passed() && l.source.as_deref() != Some("process"))
        .filter(|l| matches!(l.class.as_deref(), Some("safety" | "liveness" | "crash" | "script")))
        .map(|l| {
            let expect = if bugs {
                format!("fail:{}:{}", l.class.as_deref().unwrap_or(""), l.source.as_deref().unwrap_or(""))
            } else {
                "pass".to_owned()
            };
            (l.seed, expect)
        })
        .collect();
    if entries.is_empty() {
        return None;
    }
    match record_corpus(dir, plan, &entries) {
        Ok(p) => Some(p),
        Err(e) => {
            eprintln!("gauntlet: cannot record the corpus: {e}");
            None
        }
    }
}

/// A sweep's results, however they were run: what `sweep` and `merge` print.
pub struct Summary<'a> {
    /// The plan.
    pub plan: &'a Plan,
    /// Every seed's line, in seed order.
    pub lines: &'a [SeedLine],
    /// The probe tally.
    pub probes: &'a BTreeMap<String, ProbeSummary>,
    /// The corpus file failing seeds were added to.
    pub corpus: Option<&'a Path>,
}

impl Summary<'_> {
    /// Seeds that passed.
    pub fn passed(&self) -> usize {
        self.lines.iter().filter(|l| l.passed()).count()
    }

    fn report(&self) -> SweepReport {
        SweepReport {
            plan: self.plan.name.clone(),
            runs: Vec::new(),
            failures: Vec::new(),
            probes: self.probes.clone(),
        }
    }

    /// The JSON summary (without the figures of one execution: wall time, jobs).
    pub fn json(&self) -> serde_json::Value {
        let failed: Vec<&SeedLine> = self.lines.iter().filter(|l| !l.passed()).collect();
        let tally = self.report();
        serde_json::json!({
            "plan": self.plan.name,
            "bugs": gauntlet::bundle::bugs_of(self.plan),
            "runs": self.lines.len(),
            "passed": self.passed(),
            "failed": failed.len(),
            "failed_seeds": failed.iter().map(|l| l.seed).collect::<Vec<_>>(),
            "failures": failed.iter().map(|l| serde_json::json!({
                "seed": l.seed, "class": l.class, "source": l.source, "message": l.message, "bundle": l.bundle,
            })).collect::<Vec<_>>(),
            "corpus": self.corpus.map(|p| p.display().to_string()),
            "probes": probes_summary_json(self.probes),
            "probes_never_held": tally.never_held(),
            "findings": tally.findings().iter().map(|f| f.to_string()).collect::<Vec<_>>(),
        })
    }

    /// The failing seeds, the corpus and the probe table, as text.
    pub fn print_failures_and_probes(&self) {
        for l in self.lines.iter().filter(|l| !l.passed()) {
            println!(
                "  seed {:<8} {:<9} {}  {}",
                l.seed,
                l.class.as_deref().unwrap_or("?"),
                l.source.as_deref().unwrap_or(""),
                l.bundle.as_deref().unwrap_or("")
            );
        }
        if let Some(p) = self.corpus {
            println!("corpus: {}", p.display());
        }
        if !self.probes.is_empty() {
            let tally = self.report();
            println!("sometimes-assertions (seeds held/ran, hits, kind, name):");
            print!("{}", tally.describe_probes());
            for f in tally.findings() {
                println!("finding: {f}");
            }
        }
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
    let (line, code) = worker::run_seed(apps, &plan, file, seed, bugs, out);
    println!("{line}");
    code
}

/// What `gauntlet sweep --render-k8s` was asked.
#[derive(Debug)]
#[cfg_attr(not(feature = "real"), allow(dead_code, reason = "rendering needs the `real` feature"))]
pub struct RenderK8s {
    /// Where to write.
    pub dir: PathBuf,
    /// Shards.
    pub shards: u64,
    /// Shards at once.
    pub parallelism: u64,
    /// The image's name.
    pub image: String,
}

/// `gauntlet sweep --render-k8s DIR`: writes `sweep-job.yaml` (the Indexed Job and what it
/// needs, [`gauntlet_backends::sweep_job::k8s_manifests`]) and `image/` (a `FROM scratch`
/// build context with this executable, and the libraries it links if it is not static).
/// Built with the `real` feature; without it, it names the feature.
#[cfg(feature = "real")]
pub fn render_k8s(
    apps: &Apps,
    file: &Path,
    seeds: &str,
    bugs: &[String],
    jobs: Option<usize>,
    timeout: Duration,
    r: &RenderK8s,
) -> i32 {
    use gauntlet_backends::sweep_job::{k8s_manifests, SweepJob};
    let plan = match load_plan(apps, file, bugs) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    if let Err(e) = parse_range(seeds) {
        eprintln!("gauntlet: {e}");
        return EXIT_USAGE;
    }
    if r.shards == 0 || r.parallelism == 0 {
        eprintln!("gauntlet: --shards and --parallelism must be at least 1");
        return EXIT_USAGE;
    }
    let Some(exe) = own_exe() else { return EXIT_USAGE };
    let plan_file = file.file_name().map_or("plan.toml".to_owned(), |n| n.to_string_lossy().into_owned());
    let name: String = format!("gauntlet-sweep-{}", plan.name)
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(52)
        .collect();
    let job = SweepJob {
        name: name.trim_end_matches('-').to_owned(),
        plan_file,
        // The plan file as written: the Job's pods load it exactly as this command did.
        plan_toml: std::fs::read_to_string(file).unwrap_or_else(|_| plan.to_toml()),
        seeds: seeds.to_owned(),
        shards: r.shards,
        parallelism: r.parallelism,
        bugs: bugs.to_vec(),
        timeout: humantime::format_duration(timeout).to_string(),
        jobs: jobs.unwrap_or(2).max(1) as u64,
        image: r.image.clone(),
        pull_policy: if r.image.contains('/') && r.image.split('/').next().is_some_and(|h| h.contains('.')) {
            "IfNotPresent".into()
        } else {
            "Never".into()
        },
        namespace: "gauntlet-sweeps".into(),
        backoff_limit_per_index: 2,
    };
    let yaml = gauntlet_backends::k8s::to_yaml(&k8s_manifests(&job));
    let out = r.dir.join("sweep-job.yaml");
    let written = std::fs::create_dir_all(&r.dir).and_then(|()| write_atomically(&out, yaml.as_bytes()));
    if let Err(e) = written {
        eprintln!("gauntlet: --render-k8s {}: {e}", r.dir.display());
        return EXIT_USAGE;
    }
    let context = r.dir.join("image");
    if let Err(e) = gauntlet_backends::compose::image_context(&exe, &context, "gauntlet") {
        eprintln!("gauntlet: --render-k8s: the image's build context: {e}");
        return EXIT_USAGE;
    }
    println!("wrote {} ({} shards of {seeds}, {} at once)", out.display(), r.shards, r.parallelism);
    println!("wrote {} (docker build -t {} {})", context.display(), r.image, context.display());
    println!("then: kubectl apply -f {}; docs/KUBERNETES.md says how to collect and merge the results", out.display());
    EXIT_PASS
}

/// `gauntlet sweep --render-k8s` without the `real` feature (the manifests are the backends').
#[cfg(not(feature = "real"))]
pub fn render_k8s(
    _apps: &Apps,
    _file: &Path,
    _seeds: &str,
    _bugs: &[String],
    _jobs: Option<usize>,
    _timeout: Duration,
    _r: &RenderK8s,
) -> i32 {
    crate::features::missing("sweep --render-k8s", "real")
}
