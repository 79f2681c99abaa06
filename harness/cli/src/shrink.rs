//! `gauntlet shrink`: the command-line face of [`gauntlet::shrink`] — reads a failing bundle,
//! shrinks its run, writes the minimal plan (TOML with an explicit schedule) and its bundle.

use crate::apps::Apps;
use crate::plan_cmd::bundle_path;
use crate::{EXIT_CRASH, EXIT_PASS, EXIT_USAGE};
use gauntlet::bundle::Bundle;
use gauntlet::registry::RunPlanError;
use gauntlet::shrink::{shrink_plan, ShrinkError, ShrinkOptions};
use gauntlet::Verdict;
use std::path::{Path, PathBuf};

fn default_out(input: &Path) -> PathBuf {
    let stem = input.file_stem().map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
    input.with_file_name(format!("{stem}-shrunk.toml"))
}

/// `gauntlet shrink BUNDLE`.
pub fn run(apps: &Apps, path: &Path, out: Option<PathBuf>, max_runs: usize, json: bool) -> i32 {
    let (bundle, plan) = match crate::bundle_cmd::load_with_plan(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    if bundle.meta.backend != "sim" {
        eprintln!(
            "gauntlet: {} records a real run (backend {}); shrink its simulated baseline instead",
            path.display(),
            bundle.meta.backend
        );
        return EXIT_USAGE;
    }
    let Verdict::Fail(f) = &bundle.verdict else {
        eprintln!("gauntlet: {}: the run passed; there is no failure to shrink", path.display());
        return EXIT_USAGE;
    };
    eprintln!(
        "gauntlet: shrinking {} ({} faults), keeping: {} failure in {}",
        plan.name,
        bundle.schedule.len(),
        f.class,
        f.source
    );
    let shrunk = match shrink_plan(
        &apps.registry,
        &plan,
        (&bundle).into(),
        ShrinkOptions { max_runs, ..ShrinkOptions::default() },
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gauntlet: {}: {e}", path.display());
            return match e {
                ShrinkError::Passed
                | ShrinkError::Unsupported(_)
                | ShrinkError::Broken { source: RunPlanError::Plan(_), .. } => EXIT_USAGE,
                _ => EXIT_CRASH,
            };
        }
    };
    let seeds = shrunk.seeds;
    let toml_path = out.unwrap_or_else(|| default_out(path));
    let bundle_out = bundle_path(toml_path.parent().unwrap_or(Path::new(".")), &shrunk.plan, seeds);
    let tmp = toml_path.with_extension("toml.tmp");
    if let Err(e) = std::fs::write(&tmp, shrunk.plan.to_toml()).and_then(|()| std::fs::rename(&tmp, &toml_path)) {
        eprintln!("gauntlet: {}: {e}", toml_path.display());
        return EXIT_USAGE;
    }
    if let Err(e) = Bundle::of(&shrunk.plan, &shrunk.outcome).write(&bundle_out) {
        eprintln!("gauntlet: {e}");
        return EXIT_CRASH;
    }
    let replay = format!("{} {} run {}", seeds.env_prefix(), crate::apps::self_command(), toml_path.display());
    if json {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        let v = serde_json::json!({
            "bundle": path.display().to_string(),
            "faults_before": shrunk.faults.0, "faults_after": shrunk.faults.1,
            "entries_before": shrunk.entries.0, "entries_after": shrunk.entries.1,
            "ops_before": shrunk.ops.0, "ops_after": shrunk.ops.1,
            "nodes_before": shrunk.nodes.0, "nodes_after": shrunk.nodes.1,
            "duration_ms_before": ms(shrunk.duration.0),
            "duration_ms_after": ms(shrunk.duration.1),
            "sim_time_ms_before": ms(shrunk.sim_time.0),
            "sim_time_ms_after": ms(shrunk.sim_time.1),
            "failure_at_ms": ms(shrunk.evidence_at),
            "runs": shrunk.runs,
            "wall_ms": ms(shrunk.wall),
            "verdict": shrunk.outcome.verdict.to_string(),
            "plan_out": toml_path.display().to_string(),
            "bundle_out": bundle_out.display().to_string(),
            "replay": replay,
        });
        println!("{v}");
    } else {
        print!("{}", shrunk.describe());
        println!("verdict     {}", shrunk.outcome.verdict);
        println!("plan        {}", toml_path.display());
        println!("bundle      {}", bundle_out.display());
        println!("replay      {replay}");
    }
    EXIT_PASS
}
