//! `gauntlet shrink`: minimise a failing run. The bundle's concrete fault schedule becomes an
//! explicit schedule (every generated kind switched off), then:
//!
//! 1. delta debugging (ddmin) removes faults while the run still fails the same way (same
//!    failure class and source);
//! 2. each fault that undoes another (restart after crash, resume after pause, heal after a
//!    cut) is moved earlier, shortening the fault, and each remaining fault is moved later;
//! 3. the run (and so the workload) is shortened.
//!
//! Every trial is a full deterministic run with the bundle's seeds.

use crate::plan_cmd::bundle_path;
use crate::{EXIT_CRASH, EXIT_PASS, EXIT_USAGE};
use gauntlet::bundle::Bundle;
use gauntlet::plan::ChaosPlan;
use gauntlet::sim::{Fault, FaultSchedule, ScheduledFault, Seeds};
use gauntlet::{FailureClass, Plan, Verdict};
use gauntlet_scenarios::registry::{self, RunOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The failure a shrunk run must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its class.
    pub class: FailureClass,
    /// Its source (the expectation, workload or node).
    pub source: String,
}

/// `plan` with its generated chaos replaced by `faults` as an explicit schedule (churn kept).
pub fn explicit(plan: &Plan, faults: &[ScheduledFault]) -> Plan {
    let mut p = plan.clone();
    p.chaos = ChaosPlan { churn: plan.chaos.churn.clone(), ..ChaosPlan::default() };
    p.chaos.schedule = FaultSchedule { entries: faults.to_vec() };
    p.run.seed = None;
    p
}

/// Runs trials of one plan shape, counting them against a budget.
pub struct Trials {
    seeds: Seeds,
    target: Target,
    /// Trial runs so far.
    pub runs: usize,
    max_runs: usize,
}

impl Trials {
    /// Whether `plan` still fails as the target does (false once the budget is spent, or when
    /// the plan is not valid, say a fault after the run's end).
    pub fn fails(&mut self, plan: &Plan) -> bool {
        if self.runs >= self.max_runs || registry::check(plan).is_err() {
            return false;
        }
        self.runs += 1;
        match registry::run_with(plan, self.seeds, RunOptions::default()) {
            Ok(o) => {
                matches!(&o.verdict, Verdict::Fail(f) if f.class == self.target.class && f.source == self.target.source)
            }
            Err(_) => false,
        }
    }
}

/// ddmin: a 1-minimal subset of `items` for which `fails` holds (assuming it holds for all).
pub fn ddmin<T: Clone>(items: Vec<T>, fails: &mut dyn FnMut(&[T]) -> bool) -> Vec<T> {
    let mut current = items;
    let mut n = 2usize;
    while current.len() >= 2 {
        let chunk = current.len().div_ceil(n);
        let mut reduced = false;
        // Try each complement (remove one chunk).
        for start in (0..current.len()).step_by(chunk) {
            let end = (start + chunk).min(current.len());
            let complement: Vec<T> = current[..start].iter().chain(&current[end..]).cloned().collect();
            if fails(&complement) {
                current = complement;
                n = (n - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if n >= current.len() {
                break;
            }
            n = (n * 2).min(current.len());
        }
    }
    if current.len() == 1 && fails(&[]) {
        current.clear();
    }
    current
}

/// The index of the fault `faults[i]` undoes, if it undoes one (the nearest earlier opener).
fn opener(faults: &[ScheduledFault], i: usize) -> Option<usize> {
    let undoes = |a: &Fault, b: &Fault| match (a, b) {
        (Fault::Crash { node: x }, Fault::Restart { node: y })
        | (Fault::Pause { node: x }, Fault::Resume { node: y }) => x == y,
        (Fault::Partition { .. } | Fault::CutOneWay { .. }, Fault::Heal) => true,
        _ => false,
    };
    (0..i).rev().find(|&j| undoes(&faults[j].fault, &faults[i].fault))
}

/// What the shrink did.
#[derive(Debug)]
pub struct Shrunk {
    /// The minimal plan.
    pub plan: Plan,
    /// Faults before and after.
    pub faults: (usize, usize),
    /// Run duration before and after.
    pub duration: (Duration, Duration),
    /// Trial runs used.
    pub runs: usize,
}

/// Shrinks `plan` (a failing run with `seeds` and `schedule`) keeping `target`.
pub fn shrink(
    plan: &Plan,
    seeds: Seeds,
    schedule: &FaultSchedule,
    target: Target,
    max_runs: usize,
) -> Result<Shrunk, String> {
    if plan.chaos.kill.is_some() {
        return Err("plans with `chaos.kill` are not shrunk yet: a kill also changes the membership".into());
    }
    let mut t = Trials { seeds, target, runs: 0, max_runs };
    let faults = schedule.entries.clone();
    if !t.fails(&explicit(plan, &faults)) {
        return Err(format!(
            "the recorded schedule ({} faults) as an explicit schedule does not reproduce the failure; nothing to shrink from",
            faults.len()
        ));
    }
    // 1. Remove faults.
    let mut faults = ddmin(faults, &mut |subset| t.fails(&explicit(plan, subset)));
    // 2. Shorten each undone fault (move its undo earlier), then move each fault later.
    for i in 0..faults.len() {
        let Some(j) = opener(&faults, i) else { continue };
        for _ in 0..6 {
            let (lo, hi) = (faults[j].at, faults[i].at);
            let mid = lo + (hi - lo) / 2;
            if hi - lo < Duration::from_millis(2) {
                break;
            }
            let mut trial = faults.clone();
            trial[i].at = mid;
            trial.sort_by_key(|f| f.at);
            if t.fails(&explicit(plan, &trial)) {
                faults = trial;
            } else {
                break;
            }
        }
    }
    for i in 0..faults.len() {
        let limit = faults.get(i + 1).map_or(plan.run.duration, |n| n.at);
        let at = faults[i].at;
        if limit <= at + Duration::from_millis(2) {
            continue;
        }
        let mut trial = faults.clone();
        trial[i].at = at + (limit - at) / 2;
        if t.fails(&explicit(plan, &trial)) {
            faults = trial;
        }
    }
    // 3. Shorten the run (and with it the workload): the shortest of 1/8 .. 7/8 that fails.
    let mut shrunk = explicit(plan, &faults);
    let before = plan.run.duration;
    let last = faults.last().map_or(Duration::ZERO, |f| f.at);
    for k in 1..8u32 {
        let d = before * k / 8;
        if d <= last {
            continue;
        }
        let mut trial = shrunk.clone();
        trial.run.duration = d;
        if t.fails(&trial) {
            shrunk = trial;
            break;
        }
    }
    Ok(Shrunk {
        faults: (schedule.len(), faults.len()),
        duration: (before, shrunk.run.duration),
        plan: shrunk,
        runs: t.runs,
    })
}

fn default_out(input: &Path) -> PathBuf {
    let stem = input.file_stem().map_or_else(|| "run".into(), |s| s.to_string_lossy().into_owned());
    input.with_file_name(format!("{stem}-shrunk.toml"))
}

/// `gauntlet shrink BUNDLE`.
pub fn run(path: &Path, out: Option<PathBuf>, max_runs: usize, json: bool) -> i32 {
    let (bundle, plan) = match crate::bundle_cmd::load_with_plan(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let Verdict::Fail(f) = &bundle.verdict else {
        eprintln!("gauntlet: {}: the run passed; there is no failure to shrink", path.display());
        return EXIT_USAGE;
    };
    let target = Target { class: f.class, source: f.source.clone() };
    eprintln!(
        "gauntlet: shrinking {} ({} faults), keeping: {} failure in {}",
        plan.name,
        bundle.schedule.len(),
        f.class,
        f.source
    );
    let seeds = bundle.meta.seeds;
    let shrunk = match shrink(&plan, seeds, &bundle.schedule, target, max_runs) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_CRASH;
        }
    };
    let toml_path = out.unwrap_or_else(|| default_out(path));
    let mut named = shrunk.plan.clone();
    named.name = format!("{}-shrunk", plan.name);
    let bundle_out = bundle_path(toml_path.parent().unwrap_or(Path::new(".")), &named, seeds);
    let tmp = toml_path.with_extension("toml.tmp");
    if let Err(e) = std::fs::write(&tmp, named.to_toml()).and_then(|()| std::fs::rename(&tmp, &toml_path)) {
        eprintln!("gauntlet: {}: {e}", toml_path.display());
        return EXIT_USAGE;
    }
    let full = match registry::run_with(&named, seeds, RunOptions { keep_events: true, ..RunOptions::default() }) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gauntlet: the shrunk run broke: {e}");
            return EXIT_CRASH;
        }
    };
    if let Err(e) = Bundle::of(&named, &full).write(&bundle_out) {
        eprintln!("gauntlet: {e}");
        return EXIT_CRASH;
    }
    if json {
        let v = serde_json::json!({
            "bundle": path.display().to_string(),
            "faults_before": shrunk.faults.0, "faults_after": shrunk.faults.1,
            "duration_ms_before": shrunk.duration.0.as_millis() as u64,
            "duration_ms_after": shrunk.duration.1.as_millis() as u64,
            "runs": shrunk.runs,
            "verdict": full.verdict.to_string(),
            "plan_out": toml_path.display().to_string(),
            "bundle_out": bundle_out.display().to_string(),
        });
        println!("{v}");
    } else {
        println!("faults      {} -> {}", shrunk.faults.0, shrunk.faults.1);
        for e in &shrunk.plan.chaos.schedule.entries {
            println!("  {:>8.3}s  {}", e.at.as_secs_f64(), e.fault);
        }
        println!("duration    {:?} -> {:?}", shrunk.duration.0, shrunk.duration.1);
        println!("trial runs  {}", shrunk.runs);
        println!("verdict     {}", full.verdict);
        println!("plan        {}", toml_path.display());
        println!("bundle      {}", bundle_out.display());
    }
    EXIT_PASS
}
