//! `gauntlet explore PLAN --budget N`: the command-line face of [`gauntlet::explore`] — guided
//! exploration; a failure it finds is written as a plan (TOML, explicit schedule) and a bundle,
//! with the line that replays it.

use crate::apps::Apps;
use crate::plan_cmd::{bundle_path, load_plan};
use crate::{EXIT_CRASH, EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use gauntlet::bundle::Bundle;
use gauntlet::explore::{explore, ExploreOptions};
use gauntlet::registry::{PlanRunner, RunOptions};
use gauntlet::Verdict;
use std::path::{Path, PathBuf};

/// What `gauntlet explore` was asked.
pub struct Explore {
    /// The plan file.
    pub plan: PathBuf,
    /// Runs to spend.
    pub budget: usize,
    /// The explorer's seed.
    pub seed: u64,
    /// Parallel runs.
    pub jobs: Option<usize>,
    /// Planted bugs to switch on.
    pub bugs: Vec<String>,
    /// Where a failure's plan and bundle go.
    pub out: PathBuf,
    /// Keep going after the first failure.
    pub all: bool,
    /// Print JSON.
    pub json: bool,
}

/// `gauntlet explore`.
pub fn run(apps: &Apps, e: Explore) -> i32 {
    let plan = match load_plan(apps, &e.plan, &e.bugs) {
        Ok(p) => p,
        Err(err) => {
            eprintln!("gauntlet: {}: {err}", e.plan.display());
            return EXIT_USAGE;
        }
    };
    if e.budget == 0 {
        eprintln!("gauntlet: --budget must be at least 1");
        return EXIT_USAGE;
    }
    let defaults = ExploreOptions::default();
    let options =
        ExploreOptions { budget: e.budget, seed: e.seed, jobs: e.jobs.unwrap_or(defaults.jobs), first: !e.all };
    let started = std::time::Instant::now();
    let ex = match explore(&apps.registry, &plan, options) {
        Ok(ex) => ex,
        Err(err) => {
            eprintln!("gauntlet: {}: {err}", e.plan.display());
            return EXIT_USAGE;
        }
    };
    let wall = started.elapsed();
    let mut found = None;
    if let Some(f) = ex.failures.first() {
        match write_failure(&apps.registry, &e.out, f) {
            Ok(paths) => found = Some(paths),
            Err(err) => {
                eprintln!("gauntlet: {err}");
                return EXIT_CRASH;
            }
        }
    }
    if e.json {
        let failure = ex.failures.first().zip(found.as_ref()).map(|(f, (toml, bundle, replay))| {
            let (class, source) = match &f.outcome.verdict {
                Verdict::Fail(x) => (Some(x.class.to_string()), Some(x.source.clone())),
                Verdict::Pass => (None, None),
            };
            serde_json::json!({
                "run": f.run, "how": f.how, "seed": f.outcome.seeds.sim, "class": class, "source": source,
                "verdict": f.outcome.verdict.to_string(),
                "plan_out": toml.display().to_string(), "bundle_out": bundle.display().to_string(),
                "replay": replay,
            })
        });
        let v = serde_json::json!({
            "plan": ex.plan, "budget": e.budget, "seed": e.seed, "runs": ex.runs, "refused": ex.refused,
            "broken": ex.broken.len(), "failures": ex.failures.len(), "corpus": ex.corpus.len(),
            "features": ex.features.len(), "first_failure": failure, "wall_ms": wall.as_millis() as u64,
        });
        println!("{v}");
    } else {
        print!("{}", ex.describe());
        if let Some((toml, bundle, replay)) = &found {
            println!("plan        {}", toml.display());
            println!("bundle      {}", bundle.display());
            println!("replay      {replay}");
        }
    }
    if ex.failures.is_empty() {
        EXIT_PASS
    } else {
        EXIT_FAIL
    }
}

/// Writes the found run's plan and its bundle (re-run keeping its events) under `out`.
fn write_failure(
    runner: &dyn PlanRunner,
    out: &Path,
    f: &gauntlet::explore::Found,
) -> Result<(PathBuf, PathBuf, String), String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut plan = f.plan.clone();
    plan.name = format!("{}-explored", plan.name);
    let seeds = f.outcome.seeds;
    let toml = out.join(format!("{}-{}.toml", plan.name, seeds.sim));
    let tmp = toml.with_extension("toml.tmp");
    std::fs::write(&tmp, plan.to_toml())
        .and_then(|()| std::fs::rename(&tmp, &toml))
        .map_err(|e| format!("{}: {e}", toml.display()))?;
    let keep = RunOptions { keep_events: true, ..Default::default() };
    let outcome = runner.run_plan(&plan, seeds, keep).map_err(|e| format!("re-running the found plan: {e}"))?;
    let bundle = bundle_path(out, &plan, seeds);
    Bundle::of(&plan, &outcome).write(&bundle).map_err(|e| e.to_string())?;
    let replay = format!("{} {} run {}", seeds.env_prefix(), crate::apps::self_command(), toml.display());
    Ok((toml, bundle, replay))
}
