//! Shrinking a failing run to a smaller reproducer: [`shrink`] for a [`Scenario`], and
//! [`shrink_plan`] for any [`PlanRunner`] (what `gauntlet shrink` uses).
//!
//! The failing run's concrete fault schedule becomes an explicit schedule (every generated
//! kind switched off), then:
//!
//! 1. delta debugging (ddmin) removes faults while the run still fails the same way (same
//!    failure class and source);
//! 2. each fault that undoes another (restart after crash, resume after pause, heal after a
//!    cut) is moved earlier, shortening the fault, and each remaining fault is moved later;
//! 3. the run (and so the workload) is shortened.
//!
//! Every trial is a full deterministic run with the failing run's seeds. When the explicit
//! schedule alone does not reproduce the failure the error says what the run did instead.

use crate::plan::{ChaosPlan, Plan};
use crate::registry::{PlanRunner, RunPlanError};
use crate::verdict::{FailureClass, RunOutcome, Verdict};
use gauntlet_sim::{Fault, FaultSchedule, ScheduledFault, Seeds};
use std::time::Duration;

/// The failure a shrunk run must keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Its class.
    pub class: FailureClass,
    /// Its source (the expectation, workload or node).
    pub source: String,
}

/// The failing run to shrink: its seeds, verdict and concrete fault schedule (from a
/// [`RunOutcome`] or a [`Bundle`](crate::Bundle)).
#[derive(Debug, Clone, Copy)]
pub struct Failing<'a> {
    /// The seeds it ran with.
    pub seeds: Seeds,
    /// Its verdict.
    pub verdict: &'a Verdict,
    /// The faults as they happened.
    pub schedule: &'a FaultSchedule,
}

impl<'a> From<&'a RunOutcome> for Failing<'a> {
    fn from(o: &'a RunOutcome) -> Self {
        Failing { seeds: o.seeds, verdict: &o.verdict, schedule: &o.schedule }
    }
}

impl<'a> From<&'a crate::Bundle> for Failing<'a> {
    fn from(b: &'a crate::Bundle) -> Self {
        Failing { seeds: b.meta.seeds, verdict: &b.verdict, schedule: &b.schedule }
    }
}

impl Target {
    /// The failure of `verdict`, if it is one.
    pub fn of(verdict: &Verdict) -> Option<Target> {
        match verdict {
            Verdict::Fail(f) => Some(Target { class: f.class, source: f.source.clone() }),
            Verdict::Pass => None,
        }
    }

    fn matches(&self, verdict: &Verdict) -> bool {
        matches!(verdict, Verdict::Fail(f) if f.class == self.class && f.source == self.source)
    }
}

/// Why a run could not be shrunk.
#[derive(Debug, thiserror::Error)]
pub enum ShrinkError {
    /// The run passed.
    #[error("the run passed; there is no failure to shrink")]
    Passed,
    /// The plan uses a feature shrinking does not handle yet.
    #[error("{0}")]
    Unsupported(String),
    /// The plan with its recorded faults as an explicit schedule could not run at all.
    #[error("the recorded schedule ({faults} faults) as an explicit schedule cannot run: {source}")]
    Broken {
        /// Faults in the recorded schedule.
        faults: usize,
        /// Why it could not run (an unknown application, an invalid plan, a crash).
        source: RunPlanError,
    },
    /// The explicit schedule ran but did not fail the same way.
    #[error(
        "the recorded schedule ({faults} faults) as an explicit schedule does not reproduce the failure \
         ({class} in {source_name}); that run ended: {became}"
    )]
    NotReproduced {
        /// Faults in the recorded schedule.
        faults: usize,
        /// The failure's class.
        class: FailureClass,
        /// The failure's source.
        source_name: String,
        /// The verdict of the explicit-schedule run.
        became: String,
    },
    /// The shrunk plan's final run (the one kept, with its events) broke.
    #[error("the shrunk run broke: {0}")]
    Final(RunPlanError),
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct ShrinkOptions {
    /// Give up after this many trial runs (the best found so far is kept).
    pub max_runs: usize,
}

impl Default for ShrinkOptions {
    fn default() -> Self {
        ShrinkOptions { max_runs: 2_000 }
    }
}

/// What the shrink did.
#[derive(Debug)]
pub struct Shrunk {
    /// The minimal plan, named `<plan>-shrunk`, with an explicit schedule and no `run.seed`.
    pub plan: Plan,
    /// The seeds that replay it (the failing run's).
    pub seeds: Seeds,
    /// Faults before and after.
    pub faults: (usize, usize),
    /// Run duration before and after.
    pub duration: (Duration, Duration),
    /// Trial runs used.
    pub runs: usize,
    /// The shrunk plan's run, with every trace event kept (for its bundle and report).
    pub outcome: RunOutcome,
}

impl Shrunk {
    /// A few lines for a person: before → after, and the remaining faults.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "shrunk in {} trial runs: faults {} -> {}, duration {:?} -> {:?}\n",
            self.runs, self.faults.0, self.faults.1, self.duration.0, self.duration.1
        );
        for e in &self.plan.chaos.schedule.entries {
            s.push_str(&format!("  {:>8.3}s  {}\n", e.at.as_secs_f64(), e.fault));
        }
        s
    }
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
struct Trials<'a> {
    runner: &'a dyn PlanRunner,
    seeds: Seeds,
    target: Target,
    runs: usize,
    max_runs: usize,
}

impl Trials<'_> {
    /// Whether `plan` still fails as the target does (false once the budget is spent, or when
    /// the plan is not valid, say a fault after the run's end).
    fn fails(&mut self, plan: &Plan) -> bool {
        if self.runs >= self.max_runs {
            return false;
        }
        // `run_plan` validates first: an invalid plan is refused before it runs, and is no trial.
        match self.runner.run_plan(plan, self.seeds, Default::default()) {
            Err(RunPlanError::Plan(_)) => false,
            result => {
                self.runs += 1;
                matches!(result, Ok(o) if self.target.matches(&o.verdict))
            }
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

/// Shrinks the failing run `failing` of `scenario` (same application, same seeds).
///
/// ```no_run
/// # fn demo<A: gauntlet::Application + Send + Sync>(scenario: gauntlet::Scenario<A>) {
/// let failing = gauntlet::sweep(&scenario, 0..100).first_failure().cloned().expect("a failing seed");
/// let shrunk = gauntlet::shrink(&scenario, &failing).expect("shrinks");
/// println!("{}", shrunk.describe());
/// # }
/// ```
pub fn shrink<A: crate::Application + Send + Sync>(
    scenario: &crate::Scenario<A>,
    failing: &RunOutcome,
) -> Result<Shrunk, ShrinkError> {
    shrink_plan(scenario, scenario.plan(), failing.into(), ShrinkOptions::default())
}

/// Shrinks `failing` (a run of `plan` through `runner`), keeping its failure.
pub fn shrink_plan(
    runner: &dyn PlanRunner,
    plan: &Plan,
    failing: Failing<'_>,
    options: ShrinkOptions,
) -> Result<Shrunk, ShrinkError> {
    let target = Target::of(failing.verdict).ok_or(ShrinkError::Passed)?;
    if plan.chaos.kill.is_some() {
        return Err(ShrinkError::Unsupported(
            "plans with `chaos.kill` are not shrunk yet: a kill also changes the membership".into(),
        ));
    }
    let seeds = failing.seeds;
    let schedule = failing.schedule;
    let faults = schedule.entries.clone();
    // The starting point must reproduce; if it does not, say what it did instead.
    let start = explicit(plan, &faults);
    let first = runner
        .run_plan(&start, seeds, Default::default())
        .map_err(|source| ShrinkError::Broken { faults: faults.len(), source })?;
    if !target.matches(&first.verdict) {
        return Err(ShrinkError::NotReproduced {
            faults: faults.len(),
            class: target.class,
            source_name: target.source,
            became: first.verdict.to_string(),
        });
    }
    let mut t = Trials { runner, seeds, target, runs: 1, max_runs: options.max_runs };
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
    shrunk.name = format!("{}-shrunk", plan.name);
    let options = crate::registry::RunOptions { keep_events: true, ..Default::default() };
    let outcome = runner.run_plan(&shrunk, seeds, options).map_err(ShrinkError::Final)?;
    Ok(Shrunk {
        faults: (schedule.len(), faults.len()),
        duration: (before, shrunk.run.duration),
        plan: shrunk,
        seeds,
        runs: t.runs + 1,
        outcome,
    })
}
