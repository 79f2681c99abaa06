//! Sweeping seeds in this process: [`sweep`] for a [`Scenario`], [`sweep_plan`] for any
//! [`PlanRunner`]. Runs are spread over worker threads (each run is itself a fresh world on
//! its own thread, so parallel runs share nothing). Passing runs keep a line each; failing
//! runs keep their whole outcome, ready for [`crate::shrink`].
//!
//! `gauntlet sweep` runs each seed in its own process instead (so a hang or an abort cannot
//! take the sweep down); this is the in-process form for tests and programs.
#![allow(
    clippy::disallowed_methods,
    reason = "a sweep runs worker threads outside any simulation (each run makes its own world)"
)]

use crate::plan::Plan;
use crate::registry::{PlanRunner, RunOptions, RunPlanError};
use crate::verdict::{RunOutcome, Verdict};
use gauntlet_sim::Seeds;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How to sweep.
#[derive(Debug, Clone, Copy)]
pub struct SweepOptions {
    /// Parallel runs. Default: the number of cores.
    pub jobs: usize,
    /// Stop at the first failing seed (seeds already started still finish; the report keeps
    /// every seed that ran).
    pub first: bool,
}

impl Default for SweepOptions {
    fn default() -> Self {
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        SweepOptions { jobs, first: false }
    }
}

/// One seed's run, as a sweep keeps it.
#[derive(Debug, Clone)]
pub struct SeedRun {
    /// The seeds.
    pub seeds: Seeds,
    /// The verdict, or why the run could not complete.
    pub result: Result<SeedVerdict, String>,
}

/// A completed run's figures.
#[derive(Debug, Clone)]
pub struct SeedVerdict {
    /// The verdict.
    pub verdict: Verdict,
    /// The trace hash.
    pub trace_hash: u64,
    /// Simulated time.
    pub sim_time: Duration,
}

impl SeedRun {
    /// Whether the run completed and passed.
    pub fn passed(&self) -> bool {
        matches!(&self.result, Ok(v) if v.verdict.passed())
    }
}

/// What a sweep found.
#[derive(Debug, Clone)]
pub struct SweepReport {
    /// The plan's name.
    pub plan: String,
    /// Every seed that ran, in seed order.
    pub runs: Vec<SeedRun>,
    /// The outcomes of the failing runs (verdict not pass), in seed order.
    pub failures: Vec<RunOutcome>,
}

impl SweepReport {
    /// Seeds that ran.
    pub fn ran(&self) -> usize {
        self.runs.len()
    }

    /// Seeds that passed.
    pub fn passed(&self) -> usize {
        self.runs.iter().filter(|r| r.passed()).count()
    }

    /// The first failing run by seed order (an expectation failed), if any.
    pub fn first_failure(&self) -> Option<&RunOutcome> {
        self.failures.first()
    }

    /// Runs that could not complete (a panic, a limit, nondeterminism), with why.
    pub fn broken(&self) -> Vec<(Seeds, &str)> {
        self.runs.iter().filter_map(|r| r.result.as_ref().err().map(|e| (r.seeds, e.as_str()))).collect()
    }

    /// One line: `plan: P/N passed; failing seeds: …`.
    pub fn describe(&self) -> String {
        let failing: Vec<String> = self.runs.iter().filter(|r| !r.passed()).map(|r| r.seeds.sim.to_string()).collect();
        let tail = if failing.is_empty() { String::new() } else { format!("; failing seeds: {}", failing.join(", ")) };
        format!("{}: {}/{} seeds passed{tail}", self.plan, self.passed(), self.ran())
    }
}

/// Runs `scenario` once per seed of `seeds` (each as `Seeds::new(seed)`), on all cores.
///
/// ```no_run
/// # fn demo<A: gauntlet::Application + Send + Sync>(scenario: gauntlet::Scenario<A>) {
/// let report = gauntlet::sweep(&scenario, 0..200);
/// assert!(report.failures.is_empty(), "{}", report.describe());
/// # }
/// ```
pub fn sweep<A: crate::Application + Send + Sync>(
    scenario: &crate::Scenario<A>,
    seeds: impl IntoIterator<Item = u64>,
) -> SweepReport {
    let seeds: Vec<u64> = seeds.into_iter().collect();
    sweep_plan(scenario, scenario.plan(), &seeds, SweepOptions::default())
        .unwrap_or_else(|e| unreachable!("a scenario's own plan is valid: {e}"))
}

/// Runs `plan` through `runner` once per seed; an invalid plan (or an unknown application) is
/// an error before any seed runs.
pub fn sweep_plan(
    runner: &dyn PlanRunner,
    plan: &Plan,
    seeds: &[u64],
    options: SweepOptions,
) -> Result<SweepReport, RunPlanError> {
    runner.check(plan)?;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let results: Mutex<Vec<(SeedRun, Option<RunOutcome>)>> = Mutex::new(Vec::with_capacity(seeds.len()));
    let jobs = options.jobs.clamp(1, seeds.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&seed) = seeds.get(i) else { break };
                let seeds = Seeds::new(seed);
                let run = one(runner, plan, seeds);
                if run.1.is_some() && options.first {
                    stop.store(true, Ordering::SeqCst);
                }
                results.lock().unwrap_or_else(|p| p.into_inner()).push(run);
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|(r, _)| r.seeds.sim);
    let mut report = SweepReport { plan: plan.name.clone(), runs: Vec::new(), failures: Vec::new() };
    for (run, failure) in results {
        report.runs.push(run);
        report.failures.extend(failure);
    }
    Ok(report)
}

fn one(runner: &dyn PlanRunner, plan: &Plan, seeds: Seeds) -> (SeedRun, Option<RunOutcome>) {
    match runner.run_plan(plan, seeds, RunOptions::default()) {
        Ok(outcome) => {
            let verdict = SeedVerdict {
                verdict: outcome.verdict.clone(),
                trace_hash: outcome.trace_hash,
                sim_time: outcome.sim_time,
            };
            let failed = !outcome.verdict.passed();
            (SeedRun { seeds, result: Ok(verdict) }, failed.then_some(outcome))
        }
        Err(e) => (SeedRun { seeds, result: Err(e.to_string()) }, None),
    }
}
