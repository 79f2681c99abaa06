//! Sweeping seeds in this process: [`sweep`] for a [`Scenario`], [`sweep_plan`] for any
//! [`PlanRunner`]. Runs are spread over worker threads (each run is itself a fresh world on
//! its own thread, so parallel runs share nothing). Passing runs keep a line each; failing
//! runs keep their whole outcome, ready for [`crate::shrink`]. Every completed run adds its
//! sometimes-assertions ([`crate::sometimes!`]) to [`SweepReport::probes`]: per assertion, in
//! how many seeds it held; one that never held is a [`SweepFinding`] (the plan does not
//! exercise that path).
//!
//! `gauntlet sweep` runs seeds in worker processes instead (so a hang or an abort cannot take
//! the sweep down); this is the in-process form for tests and programs.
#![allow(
    clippy::disallowed_methods,
    reason = "a sweep runs worker threads outside any simulation (each run makes its own world)"
)]

use crate::plan::Plan;
use crate::registry::{PlanRunner, RunOptions, RunPlanError};
use crate::verdict::{RunOutcome, Verdict};
use gauntlet_sim::{ProbeKind, Probes, Seeds};
use std::collections::BTreeMap;
use std::fmt;
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
    /// Every sometimes-assertion the runs listed (the application's scope, reached or not,
    /// and any other that ran), by name, over the seeds that completed.
    pub probes: BTreeMap<String, ProbeSummary>,
}

/// One sometimes-assertion over a sweep.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProbeSummary {
    /// `sometimes` or `reachable`.
    pub kind: ProbeKind,
    /// Completed runs that listed it (every completed run lists its application's scope).
    pub seeds_ran: usize,
    /// Runs in which it held at least once.
    pub seeds_held: usize,
    /// Times it held, over all runs.
    pub hits: u64,
    /// Times it was evaluated, over all runs.
    pub evaluated: u64,
    /// The first seed, in seed order, in which it held.
    pub first_seed: Option<u64>,
}

impl ProbeSummary {
    /// Whether it held in no seed.
    pub fn never_held(&self) -> bool {
        self.seeds_held == 0
    }
}

/// What a sweep found beyond its verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SweepFinding {
    /// A sometimes-assertion held in none of the seeds: the plan does not exercise its path.
    NeverHeld {
        /// The assertion.
        name: String,
        /// Its kind.
        kind: ProbeKind,
        /// Over how many completed seeds.
        seeds: usize,
        /// Whether it was evaluated at all (a `sometimes!` whose condition never held) or
        /// never even reached.
        evaluated: bool,
    },
}

impl fmt::Display for SweepFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SweepFinding::NeverHeld { name, kind, seeds, evaluated } => {
                let how = if *evaluated { "evaluated but never held" } else { "never reached" };
                write!(f, "{kind} assertion {name:?} {how} in {seeds} seeds: the plan does not exercise that path")
            }
        }
    }
}

/// Adds the probes of one completed run (seed `seed`) to a sweep's tally: how
/// [`SweepReport::probes`] is built, and what `gauntlet sweep` does with its children's.
pub fn add_probes(into: &mut BTreeMap<String, ProbeSummary>, seed: u64, run: &Probes) {
    for (name, hits) in run {
        let p = into.entry(name.clone()).or_insert(ProbeSummary {
            kind: hits.kind,
            seeds_ran: 0,
            seeds_held: 0,
            hits: 0,
            evaluated: 0,
            first_seed: None,
        });
        p.seeds_ran += 1;
        p.hits = p.hits.saturating_add(hits.held);
        p.evaluated = p.evaluated.saturating_add(hits.evaluated);
        if hits.hit() {
            p.seeds_held += 1;
            p.first_seed = Some(p.first_seed.map_or(seed, |s| s.min(seed)));
        }
    }
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

    /// The sometimes-assertions that held in no seed, as findings, by name.
    pub fn findings(&self) -> Vec<SweepFinding> {
        (self.probes.iter().filter(|(_, p)| p.never_held()))
            .map(|(name, p)| SweepFinding::NeverHeld {
                name: name.clone(),
                kind: p.kind,
                seeds: p.seeds_ran,
                evaluated: p.evaluated > 0,
            })
            .collect()
    }

    /// The names of the sometimes-assertions that held in no seed.
    pub fn never_held(&self) -> Vec<&str> {
        self.probes.iter().filter(|(_, p)| p.never_held()).map(|(n, _)| n.as_str()).collect()
    }

    /// The probes as a short table, one assertion per line: seeds held of seeds ran, hits,
    /// kind and name, the never-held ones marked.
    pub fn describe_probes(&self) -> String {
        let mut out = String::new();
        for (name, p) in &self.probes {
            let mark = if p.never_held() { "  NEVER HELD" } else { "" };
            out.push_str(&format!(
                "{:>6}/{:<6} {:>9} hits  {:<9}  {name}{mark}\n",
                p.seeds_held,
                p.seeds_ran,
                p.hits,
                p.kind.as_str()
            ));
        }
        out
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
    let results: Mutex<Vec<(SeedRun, Option<RunOutcome>, Probes)>> = Mutex::new(Vec::with_capacity(seeds.len()));
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
    results.sort_by_key(|(r, _, _)| r.seeds.sim);
    let mut report =
        SweepReport { plan: plan.name.clone(), runs: Vec::new(), failures: Vec::new(), probes: BTreeMap::new() };
    for (run, failure, probes) in results {
        if run.result.is_ok() {
            add_probes(&mut report.probes, run.seeds.sim, &probes);
        }
        report.runs.push(run);
        report.failures.extend(failure);
    }
    Ok(report)
}

fn one(runner: &dyn PlanRunner, plan: &Plan, seeds: Seeds) -> (SeedRun, Option<RunOutcome>, Probes) {
    match runner.run_plan(plan, seeds, RunOptions::default()) {
        Ok(outcome) => {
            let verdict = SeedVerdict {
                verdict: outcome.verdict.clone(),
                trace_hash: outcome.trace_hash,
                sim_time: outcome.sim_time,
            };
            let failed = !outcome.verdict.passed();
            let probes = outcome.probes.clone();
            (SeedRun { seeds, result: Ok(verdict) }, failed.then_some(outcome), probes)
        }
        Err(e) => (SeedRun { seeds, result: Err(e.to_string()) }, None, Probes::new()),
    }
}
