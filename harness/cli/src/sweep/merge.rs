//! `gauntlet merge`: the shards of one sweep (their `--results` directories) combined into
//! the summary the unsharded sweep would have printed, and optionally into a run store of
//! the run service. Shards of different plans, ranges, bugs, shard counts or builds are
//! refused, and so are a missing shard, a shard given twice and an incomplete shard (each
//! named).

use super::shard::{SeedLine, ShardDir, PLAN};
use super::Summary;
use crate::{EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use gauntlet::sweep::ProbeSummary;
use gauntlet::Plan;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What `gauntlet merge` was asked.
#[derive(Debug)]
pub struct Merge {
    /// The shards' results directories.
    pub dirs: Vec<PathBuf>,
    /// Write every seed's line, in seed order, to this file (JSON lines).
    pub lines: Option<PathBuf>,
    /// Record the merged sweep as a finished run in this run store (`sqlite` or a URL).
    pub store: Option<String>,
    /// The run service's data directory (for `sqlite`, and where bundles are copied).
    pub data: PathBuf,
    /// Print JSON.
    pub json: bool,
}

/// A sweep put back together from its shards.
#[derive(Debug)]
pub struct Merged {
    /// The plan (as its shards ran it).
    pub plan: Plan,
    /// The whole range as given.
    pub seeds: String,
    /// How many shards.
    pub shards: u64,
    /// The build that ran them.
    pub build: String,
    /// Every seed's line, in seed order.
    pub lines: Vec<SeedLine>,
    /// The probe tally over the shards' tallies.
    pub probes: BTreeMap<String, ProbeSummary>,
}

/// Combines two tallies of the same assertions over disjoint seeds.
pub fn add_tally(into: &mut BTreeMap<String, ProbeSummary>, from: &BTreeMap<String, ProbeSummary>) {
    for (name, p) in from {
        match into.get_mut(name) {
            None => {
                into.insert(name.clone(), p.clone());
            }
            Some(q) => {
                q.seeds_ran += p.seeds_ran;
                q.seeds_held += p.seeds_held;
                q.hits = q.hits.saturating_add(p.hits);
                q.evaluated = q.evaluated.saturating_add(p.evaluated);
                q.first_seed = match (q.first_seed, p.first_seed) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
    }
}

/// Reads and checks the shards in `dirs` and combines them.
pub fn merge(dirs: &[PathBuf]) -> Result<Merged, String> {
    let Some(first_dir) = dirs.first() else { return Err("give the shards' results directories".into()) };
    let shards: Vec<ShardDir> = dirs.iter().map(|d| ShardDir::read(d)).collect::<Result<_, _>>()?;
    let first = &shards[0].manifest;
    let mut seen: BTreeMap<u64, &Path> = BTreeMap::new();
    for s in &shards {
        first.same_sweep(&s.manifest).map_err(|e| format!("{} and {}: {e}", first_dir.display(), s.dir.display()))?;
        if let Some(other) = seen.insert(s.manifest.shard.index, &s.dir) {
            return Err(format!(
                "shard {} is given twice: {} and {}",
                s.manifest.shard,
                other.display(),
                s.dir.display()
            ));
        }
        let missing = s.missing();
        if !missing.is_empty() {
            return Err(format!(
                "{} (shard {}) is incomplete: {} of its {} seeds have no result (first {}); run the shard again with \
                 the same --results to finish it",
                s.dir.display(),
                s.manifest.shard,
                missing.len(),
                s.manifest.seeds_total,
                missing[0]
            ));
        }
    }
    let absent: Vec<String> = (0..first.shard.count).filter(|i| !seen.contains_key(i)).map(|i| i.to_string()).collect();
    if !absent.is_empty() {
        return Err(format!(
            "shards {} of {} are missing (given: {})",
            absent.join(", "),
            first.shard.count,
            seen.keys().map(u64::to_string).collect::<Vec<_>>().join(", ")
        ));
    }
    let plan_path = first_dir.join(PLAN);
    let toml = std::fs::read_to_string(&plan_path).map_err(|e| format!("{}: {e}", plan_path.display()))?;
    let plan = Plan::from_toml(&toml).map_err(|e| format!("{}: {e}", plan_path.display()))?;
    if super::plan_sha256(&plan) != first.plan_sha256 {
        return Err(format!("{}: the plan does not match its manifest's hash (edited?)", plan_path.display()));
    }
    let mut lines = Vec::new();
    let mut probes = BTreeMap::new();
    for s in &shards {
        add_tally(&mut probes, &s.manifest.probes);
        // A bundle's path is kept as written when absolute, else made to name the shard's file.
        lines.extend(s.lines.iter().cloned().map(|mut l| {
            l.bundle =
                l.bundle.map(|b| if Path::new(&b).is_absolute() { b } else { s.dir.join(b).display().to_string() });
            l
        }));
    }
    lines.sort_by_key(|l| l.seed);
    Ok(Merged {
        plan,
        seeds: first.seeds.clone(),
        shards: first.shard.count,
        build: first.build.clone(),
        lines,
        probes,
    })
}

/// `gauntlet merge`: exit 0 when every seed passed, 1 when any failed, 2 when the shards
/// cannot be merged.
pub fn run(m: Merge) -> i32 {
    let merged = match merge(&m.dirs) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("gauntlet: merge: {e}");
            return EXIT_USAGE;
        }
    };
    if let Some(path) = &m.lines {
        let mut text = String::new();
        for l in &merged.lines {
            text.push_str(&serde_json::to_string(l).unwrap_or_default());
            text.push('\n');
        }
        if let Err(e) = gauntlet::files::write_atomically(path, text.as_bytes()) {
            eprintln!("gauntlet: merge: --lines {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    let mut stored = None;
    if let Some(spec) = &m.store {
        match record(&merged, spec, &m.data) {
            Ok(id) => stored = Some(id),
            Err(e) => {
                eprintln!("gauntlet: merge: {e}");
                return EXIT_USAGE;
            }
        }
    }
    let summary = Summary { plan: &merged.plan, lines: &merged.lines, probes: &merged.probes, corpus: None };
    if m.json {
        let mut v = summary.json();
        v["seeds"] = serde_json::json!(merged.seeds);
        v["shards"] = serde_json::json!(merged.shards);
        v["build"] = serde_json::json!(merged.build);
        v["run_id"] = serde_json::json!(stored);
        println!("{v}");
    } else {
        println!(
            "{}: {} runs in {} shards, {} passed, {} failed (seeds {}, build {})",
            merged.plan.name,
            merged.lines.len(),
            merged.shards,
            summary.passed(),
            merged.lines.len() - summary.passed(),
            merged.seeds,
            merged.build
        );
        summary.print_failures_and_probes();
        if let Some(id) = &stored {
            println!("recorded as run {id} in the run store");
        }
    }
    if merged.lines.iter().all(SeedLine::passed) {
        EXIT_PASS
    } else {
        EXIT_FAIL
    }
}

/// Records `merged` in the run store `spec` as one finished run (the id a submission of the
/// same plan, seeds, bugs and build would get; recording it again changes nothing), its
/// failing bundles copied under `<data>/bundles/<id>/`. Returns the run's id.
#[cfg(feature = "serve")]
fn record(merged: &Merged, spec: &str, data: &Path) -> Result<String, String> {
    use gauntlet_serve::store::{NewRun, RunState, SeedRecord};
    std::fs::create_dir_all(data).map_err(|e| format!("--data {}: {e}", data.display()))?;
    let store = gauntlet_serve::store::open(Some(spec), data).map_err(|e| e.to_string())?;
    let toml = merged.plan.to_toml();
    let bugs = gauntlet::bundle::bugs_of(&merged.plan);
    let id = gauntlet_serve::api::run_id(&toml, &merged.seeds, &bugs, "sim", &merged.build);
    let now = now_ms();
    let run = NewRun {
        id: id.clone(),
        plan_name: merged.plan.name.clone(),
        app: merged.plan.app.name.clone(),
        plan_toml: toml,
        seeds_spec: merged.seeds.clone(),
        seeds_total: merged.lines.len() as u64,
        bugs,
        backend: "sim".into(),
        build: merged.build.clone(),
        jobs: merged.shards.min(u32::MAX as u64) as u32,
        time_limit_ms: 0,
        parent: None,
        created_ms: now,
        origin: Some(serde_json::json!({"merged_shards": merged.shards})),
    };
    if !store.insert_run(&run).map_err(|e| e.to_string())? {
        let existing = store.run(&id).map_err(|e| e.to_string())?;
        if existing.is_some_and(|r| r.state.is_terminal()) {
            return Ok(id); // merged before: the store has it
        }
    }
    // `false` when an interrupted merge left the run running: it goes on from its recorded seeds.
    store
        .transition(&id, RunState::Running, None, "started", serde_json::json!({"merged_shards": merged.shards}), now)
        .map_err(|e| e.to_string())?;
    let bundles = data.join("bundles").join(&id);
    for l in &merged.lines {
        let bundle = match &l.bundle {
            Some(b) => {
                std::fs::create_dir_all(&bundles).map_err(|e| format!("{}: {e}", bundles.display()))?;
                let from = PathBuf::from(b);
                let to = bundles.join(from.file_name().unwrap_or_default());
                std::fs::copy(&from, &to).map_err(|e| format!("copying {}: {e}", from.display()))?;
                Some(to.display().to_string())
            }
            None => None,
        };
        let record = SeedRecord {
            seed: l.seed,
            passed: l.passed(),
            class: l.class.clone(),
            source: l.source.clone(),
            message: l.message.clone(),
            bundle,
            replay: None,
            trace_hash: l.trace_hash.clone(),
            comparison: None,
            wall_ms: l.wall_ms,
        };
        store.record_seed(&id, &record).map_err(|e| e.to_string())?;
    }
    let failed = merged.lines.iter().filter(|l| !l.passed()).count();
    let state = if failed == 0 { RunState::Passed } else { RunState::Failed };
    let data = serde_json::json!({"state": state.as_str(), "failed": failed, "merged_shards": merged.shards});
    store.transition(&id, state, None, "finished", data, now_ms()).map_err(|e| e.to_string())?;
    Ok(id)
}

#[cfg(feature = "serve")]
#[allow(clippy::disallowed_methods, reason = "a stored run's times are wall-clock times")]
fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `gauntlet merge --store` without the `serve` feature (the run store is the service's).
#[cfg(not(feature = "serve"))]
fn record(_merged: &Merged, _spec: &str, _data: &Path) -> Result<String, String> {
    Err(crate::features::needs("merge --store", "serve"))
}
