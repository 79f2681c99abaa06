//! Shrinking a failing run to a small reproducer: [`shrink`] for a [`Scenario`], and
//! [`shrink_plan`] for any [`PlanRunner`] (what `gauntlet shrink` uses).
//!
//! The failing run's concrete fault schedule becomes an explicit schedule (every generated
//! kind switched off). Every trial is a whole deterministic run with the failing run's seeds,
//! kept only if it fails the same way (same failure class and source). In order:
//!
//! 1. **end early**: the run ends just after the failure's evidence (the failure's time; for an
//!    end-of-run history check, the last counterexample operation's return, see
//!    [`Expectation::evidence_at`](crate::Expectation::evidence_at)), the cooldown shrinks to
//!    its minimum, and a bisection finds a shorter end still; a short run whose tail (the wait
//!    for the next check) is still more than half its evidence time observes more often;
//! 2. **fewer faults**: delta debugging (ddmin) over fault *groups* — a fault and the one that
//!    undoes it (partition and heal, crash and restart, pause and resume) go together;
//! 3. **fewer nodes**, where the application accepts a smaller topology (the highest-numbered
//!    node of a role goes; faults lose their references to it);
//! 4. **a smaller workload**: fewer users, a lower rate, a later start (operations before the
//!    failure's window dropped), and the application's own smaller options
//!    ([`Application::smaller_options`](crate::Application::smaller_options), e.g. fewer keys);
//! 5. **shorter, merged faults**: each undo moves earlier, and two partitions of the same
//!    groups with a gap become one;
//! 6. end early again, as the evidence may now come sooner, and round the times for a reader.
//!
//! Removing a fault does not reshuffle the rest of the run: every message draws from its own
//! link's stream whatever happens to it, workload arrivals and choices are separate streams,
//! and node programs have their own streams, so ddmin converges instead of chasing a
//! different run at every step. When the explicit schedule alone does not reproduce the
//! failure, the error says what the run did instead.

use crate::plan::{ChaosPlan, Plan};
use crate::registry::{PlanRunner, RunOptions, RunPlanError};
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

/// How hard to try, and what may shrink.
#[derive(Debug, Clone, Copy)]
pub struct ShrinkOptions {
    /// Give up after this many trial runs (the best found so far is kept).
    pub max_runs: usize,
    /// Shrink the workloads (users, rate, start, the application's smaller options).
    pub workload: bool,
    /// Shrink the topology (fewer nodes per role).
    pub topology: bool,
}

impl Default for ShrinkOptions {
    fn default() -> Self {
        ShrinkOptions { max_runs: 2_000, workload: true, topology: true }
    }
}

/// A figure before and after shrinking.
pub type BeforeAfter<T> = (T, T);

/// What the shrink did.
#[derive(Debug)]
pub struct Shrunk {
    /// The minimal plan, named `<plan>-shrunk`, with an explicit schedule and no `run.seed`.
    pub plan: Plan,
    /// The seeds that replay it (the failing run's).
    pub seeds: Seeds,
    /// Faults before and after ([`fault_units`]): a fault and its undo (a partition and its
    /// heal) count as one, and so does a power loss (crashes at one instant).
    pub faults: BeforeAfter<usize>,
    /// Schedule entries before and after (every heal, restart and resume counted).
    pub entries: BeforeAfter<usize>,
    /// Client operations invoked, before and after.
    pub ops: BeforeAfter<u64>,
    /// Nodes, before and after.
    pub nodes: BeforeAfter<usize>,
    /// The active phase (`run.duration`), before and after.
    pub duration: BeforeAfter<Duration>,
    /// Simulated time the run took, before and after.
    pub sim_time: BeforeAfter<Duration>,
    /// When the shrunk run's failure happened (its evidence's last event).
    pub evidence_at: Duration,
    /// Trial runs used.
    pub runs: usize,
    /// Wall-clock time the shrink took.
    pub wall: Duration,
    /// The shrunk plan's run, with every trace event kept (for its bundle and report).
    pub outcome: RunOutcome,
}

impl Shrunk {
    /// A few lines for a person: before → after, and the remaining faults.
    pub fn describe(&self) -> String {
        let mut s = format!("shrunk in {} trial runs ({:.1} s)\n", self.runs, self.wall.as_secs_f64());
        s.push_str(&format!(
            "  faults      {} -> {}   (a fault and its undo count as one, a power loss as one; {} -> {} schedule entries)\n",
            self.faults.0, self.faults.1, self.entries.0, self.entries.1
        ));
        s.push_str(&format!("  operations  {} -> {}\n", self.ops.0, self.ops.1));
        s.push_str(&format!("  nodes       {} -> {}\n", self.nodes.0, self.nodes.1));
        s.push_str(&format!(
            "  sim time    {:.3}s -> {:.3}s   (failure at {:.3}s)\n",
            self.sim_time.0.as_secs_f64(),
            self.sim_time.1.as_secs_f64(),
            self.evidence_at.as_secs_f64()
        ));
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

/// `faults` (a run's recorded schedule) with the faults `plan` aimed at the leader written
/// against [`LEADER`](crate::plan::LEADER) again, where that is unambiguous: partitions when
/// every generated partition cuts the leader off, crashes and restarts when only leader-aimed
/// restarts crash nodes, pauses when pauses are aimed at the leader. `None` when nothing is
/// aimed. Shrinking keeps the aim so that removing one fault does not turn a later cut of
/// the leader into a cut of some follower.
pub fn aimed_at_leader(plan: &Plan, faults: &[ScheduledFault]) -> Option<Vec<ScheduledFault>> {
    use crate::plan::{Aim, PartitionKind, LEADER};
    let ch = &plan.chaos;
    if !ch.schedule.entries.is_empty() {
        return None;
    }
    let partitions = ch.partition.as_ref().is_some_and(|p| p.kinds == [PartitionKind::Leader]);
    let restarts = ch.restart.as_ref().is_some_and(|r| r.aim == Aim::Leader) && ch.power_loss.is_none();
    let pauses = ch.pause.as_ref().is_some_and(|p| p.aim == Aim::Leader);
    let leader = || LEADER.to_owned();
    let mut changed = false;
    let out = faults
        .iter()
        .map(|e| {
            let fault = match &e.fault {
                Fault::Partition { groups } if partitions && groups.len() == 2 && groups[0].len() == 1 => {
                    Fault::Partition { groups: vec![vec![leader()]] }
                }
                Fault::Crash { .. } if restarts => Fault::Crash { node: leader() },
                Fault::Restart { .. } if restarts => Fault::Restart { node: leader() },
                Fault::Pause { .. } if pauses => Fault::Pause { node: leader() },
                Fault::Resume { .. } if pauses => Fault::Resume { node: leader() },
                other => other.clone(),
            };
            changed |= fault != e.fault;
            ScheduledFault { at: e.at, fault }
        })
        .collect();
    changed.then_some(out)
}

/// The number of fault groups a reproducer should not exceed: shrinking tries harder above it.
pub const FEW_FAULTS: usize = 3;

/// Every `k`-subset of `0..n`, in lexicographic order.
fn combinations(n: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut pick: Vec<usize> = (0..k).collect();
    if k > n {
        return out;
    }
    loop {
        out.push(pick.clone());
        // The rightmost index that can still move right.
        let Some(i) = (0..k).rev().find(|&i| pick[i] < n - k + i) else { return out };
        pick[i] += 1;
        for j in i + 1..k {
            pick[j] = pick[j - 1] + 1;
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

/// The schedule as *faults*, the unit reproducers are counted in: its [groups](fault_groups),
/// with the crashes that start at one instant (a power loss: every node down at once) and
/// their restarts as one fault, and the one-way cuts made at one instant (a one-way
/// partition: a node that can no longer send to the others) with their heal as one fault.
pub fn fault_units(faults: &[ScheduledFault]) -> Vec<Vec<ScheduledFault>> {
    let mut units: Vec<Vec<ScheduledFault>> = Vec::new();
    for g in fault_groups(faults) {
        let crash_at = |u: &[ScheduledFault]| match u[0].fault {
            Fault::Crash { .. } => Some((0, u[0].at)),
            Fault::CutOneWay { .. } => Some((1, u[0].at)),
            _ => None,
        };
        match units.iter_mut().find(|u| crash_at(u).is_some() && crash_at(u) == crash_at(&g)) {
            Some(u) => u.extend(g),
            None => units.push(g),
        }
    }
    units
}

/// Whether `b` undoes `a` (restart after crash, resume after pause, heal after a cut).
fn undoes(a: &Fault, b: &Fault) -> bool {
    match (a, b) {
        (Fault::Crash { node: x }, Fault::Restart { node: y })
        | (Fault::Pause { node: x }, Fault::Resume { node: y }) => x == y,
        (Fault::Partition { .. } | Fault::CutOneWay { .. }, Fault::Heal)
        | (Fault::SetLink { .. }, Fault::ResetLinks) => true,
        _ => false,
    }
}

/// The schedule as groups in time order: each fault with the later ones that undo it (a heal
/// ends every cut before it that no earlier heal ended).
pub fn fault_groups(faults: &[ScheduledFault]) -> Vec<Vec<ScheduledFault>> {
    let mut groups: Vec<Vec<ScheduledFault>> = Vec::new();
    // For each group, whether it is still open (its opener not undone yet).
    let mut open: Vec<bool> = Vec::new();
    for f in faults {
        let openers: Vec<usize> =
            (0..groups.len()).filter(|&g| open[g] && undoes(&groups[g][0].fault, &f.fault)).collect();
        match openers.last() {
            Some(&last) => {
                // A heal or a link reset ends all cuts or overrides before it; it joins the
                // latest, and closes the others.
                groups[last].push(f.clone());
                for g in openers {
                    open[g] = false;
                }
            }
            None => {
                let opens = matches!(
                    f.fault,
                    Fault::Crash { .. }
                        | Fault::Pause { .. }
                        | Fault::Partition { .. }
                        | Fault::CutOneWay { .. }
                        | Fault::SetLink { .. }
                );
                groups.push(vec![f.clone()]);
                open.push(opens);
            }
        }
    }
    groups
}

/// The faults of `groups`, in time order.
pub(crate) fn flatten(groups: &[Vec<ScheduledFault>]) -> Vec<ScheduledFault> {
    let mut all: Vec<ScheduledFault> = groups.iter().flatten().cloned().collect();
    all.sort_by_key(|f| f.at);
    all
}

/// Runs trials, counting them against a budget.
struct Trials<'a> {
    runner: &'a dyn PlanRunner,
    seeds: Seeds,
    target: Target,
    runs: usize,
    max_runs: usize,
}

impl Trials<'_> {
    /// `plan`'s outcome if it still fails as the target does (`None` once the budget is spent,
    /// or when the plan is not valid, say a node the application does not accept).
    fn fails(&mut self, plan: &Plan) -> Option<RunOutcome> {
        if self.runs >= self.max_runs {
            return None;
        }
        // `run_plan` validates first: an invalid plan is refused before it runs, and is no trial.
        match self.runner.run_plan(plan, self.seeds, RunOptions::default()) {
            Err(RunPlanError::Plan(_)) => None,
            Ok(o) => {
                self.runs += 1;
                self.target.matches(&o.verdict).then_some(o)
            }
            Err(_) => {
                self.runs += 1;
                None
            }
        }
    }
}

/// The shrinker's state: the best plan so far and its failing run.
struct Best<'a> {
    trials: Trials<'a>,
    plan: Plan,
    outcome: RunOutcome,
}

fn failure_at(o: &RunOutcome) -> Duration {
    match &o.verdict {
        Verdict::Fail(f) => f.at,
        Verdict::Pass => o.sim_time,
    }
}

fn ops_invoked(o: &RunOutcome) -> u64 {
    o.ops.values().map(|c| c.invoked).sum()
}

fn node_count(plan: &Plan) -> usize {
    plan.topology.nodes.values().map(|&n| n as usize).sum()
}

/// `plan` ending its active phase at `d`: faults and bursts from `d` on are dropped.
fn ending_at(plan: &Plan, d: Duration) -> Plan {
    let mut p = plan.clone();
    p.run.duration = d;
    p.chaos.schedule.entries.retain(|f| f.at < d);
    for w in &mut p.workloads {
        w.bursts.retain(|b| b.at + b.over <= d);
    }
    p
}

/// `plan` without the node `name` (faults forget it; a fault left with nothing to act on goes).
fn without_node(plan: &Plan, role: &str, name: &str) -> Plan {
    let mut p = plan.clone();
    if let Some(n) = p.topology.nodes.get_mut(role) {
        *n -= 1;
    }
    p.chaos.schedule.entries.retain_mut(|e| match &mut e.fault {
        Fault::Partition { groups } => {
            for g in groups.iter_mut() {
                g.retain(|n| n != name);
            }
            groups.retain(|g| !g.is_empty());
            !groups.is_empty()
        }
        other => !other.nodes().contains(&name),
    });
    p
}

impl Best<'_> {
    /// Tries `candidate`; keeps it if it still fails the same way.
    fn try_plan(&mut self, candidate: Plan) -> bool {
        if candidate == self.plan {
            return false;
        }
        match self.trials.fails(&candidate) {
            Some(o) => {
                self.plan = candidate;
                self.outcome = o;
                true
            }
            None => false,
        }
    }

    /// Ends the run as early as it still fails: just after the evidence, the shortest
    /// cooldown, then bisection. A run that still lasts well past its evidence (a short one,
    /// whose tail is the observation period: a check sees the evidence at the next tick)
    /// then tries observing every 50, 20 or 10 ms, and ends early again.
    fn end_early(&mut self) {
        self.trim_end();
        for every in [50, 20, 10].map(Duration::from_millis) {
            let at = failure_at(&self.outcome);
            if self.outcome.sim_time.as_secs_f64() <= at.as_secs_f64() * 1.5 {
                break;
            }
            if every >= self.plan.run.observe_every {
                continue;
            }
            let mut p = self.plan.clone();
            p.run.observe_every = every;
            p.run.cooldown = p.run.cooldown.min(every * 2);
            if !self.try_plan(p) {
                break;
            }
            self.trim_end();
        }
    }

    /// [`Self::end_early`] at the plan's observation period.
    fn trim_end(&mut self) {
        let observe = self.plan.run.observe_every;
        let min_cooldown = if self.plan.expect.is_empty() { Duration::ZERO } else { observe * 2 };
        if self.plan.run.cooldown > min_cooldown {
            let mut p = self.plan.clone();
            p.run.cooldown = min_cooldown;
            self.try_plan(p);
        }
        let at = failure_at(&self.outcome);
        let step = observe.max(Duration::from_millis(1));
        // The active phase ends a little after the evidence (the check that sees it, or the
        // last operation's return), if that is before its end now.
        let hint = (at + step).min(self.plan.run.duration);
        if hint < self.plan.run.duration {
            self.try_plan(ending_at(&self.plan, hint));
        }
        // Bisect between nothing and the shortest failing end so far.
        let mut lo = Duration::ZERO;
        for _ in 0..8 {
            let hi = self.plan.run.duration;
            if hi.saturating_sub(lo) <= step * 2 {
                break;
            }
            let mid = lo + (hi - lo) / 2;
            let mid = Duration::from_millis(mid.as_millis() as u64);
            if !self.try_plan(ending_at(&self.plan, mid)) {
                lo = mid;
            }
        }
    }

    /// ddmin over the schedule's fault groups.
    fn fewer_faults(&mut self) {
        let groups = fault_groups(&self.plan.chaos.schedule.entries);
        if groups.is_empty() {
            return;
        }
        let base = self.plan.clone();
        let mut found: Option<(Plan, RunOutcome)> = None;
        let trials = &mut self.trials;
        let kept = ddmin(groups, &mut |subset| {
            let mut p = base.clone();
            p.chaos.schedule.entries = flatten(subset);
            match trials.fails(&p) {
                Some(o) => {
                    found = Some((p, o));
                    true
                }
                None => false,
            }
        });
        let mut p = base;
        p.chaos.schedule.entries = flatten(&kept);
        // ddmin's last accepted trial is the kept subset.
        if let Some((fp, o)) = found {
            if fp == p {
                self.plan = fp;
                self.outcome = o;
            }
        }
    }

    /// When ddmin stops above [`FEW_FAULTS`] faults (1-minimal: no single group can go), tries
    /// every subset of at most that many [faults](fault_units), smallest first: another handful of the same
    /// faults often reproduces where removing one at a time could not, because each removal
    /// changes what the faults after it meet. At most `SUBSET_TRIALS` trials.
    fn few_faults(&mut self) {
        const SUBSET_TRIALS: usize = 400;
        let groups = fault_units(&self.plan.chaos.schedule.entries);
        if groups.len() <= FEW_FAULTS {
            return;
        }
        let mut tried = 0;
        for k in 1..=FEW_FAULTS {
            for subset in combinations(groups.len(), k) {
                if tried >= SUBSET_TRIALS {
                    return;
                }
                tried += 1;
                let kept: Vec<Vec<ScheduledFault>> = subset.iter().map(|&g| groups[g].clone()).collect();
                let mut p = self.plan.clone();
                p.chaos.schedule.entries = flatten(&kept);
                if self.try_plan(p) {
                    return;
                }
            }
        }
    }

    /// Rounds every fault time (and the run's end) to 100 ms, else 10 ms, else 1 ms, if the
    /// run still fails: a reader's plan says `at = "5s 200ms"`, not `"5s 239ms 192us 442ns"`.
    fn round_times(&mut self) {
        for step in [100u64, 10, 1] {
            let round = |d: Duration| {
                let ms = d.as_millis() as u64;
                Duration::from_millis((ms + step / 2) / step * step)
            };
            let mut p = self.plan.clone();
            for e in &mut p.chaos.schedule.entries {
                e.at = round(e.at);
            }
            p.chaos.schedule.entries.sort_by_key(|e| e.at);
            // The run's end keeps a tenth of its length at most: 62 ms does not become 100.
            if p.run.duration >= Duration::from_millis(step * 10) {
                p.run.duration = round(p.run.duration);
            }
            if self.try_plan(p) {
                return;
            }
        }
    }

    /// Removes nodes, highest-numbered first in each role, while the failure stays.
    fn fewer_nodes(&mut self) {
        let roles: Vec<String> = self.plan.topology.nodes.keys().cloned().collect();
        for role in roles {
            loop {
                let n = self.plan.topology.nodes.get(&role).copied().unwrap_or(0);
                if n <= 1 {
                    break;
                }
                let name = format!("{role}-{}", n - 1);
                if !self.try_plan(without_node(&self.plan, &role, &name)) {
                    break;
                }
            }
        }
    }

    /// Fewer users, a lower rate, a later start, then the application's smaller options.
    fn smaller_workload(&mut self, smaller_options: &dyn Fn(&Plan) -> Vec<toml::Table>) {
        for i in 0..self.plan.workloads.len() {
            while self.plan.workloads[i].users > 1 {
                let mut p = self.plan.clone();
                p.workloads[i].users = (p.workloads[i].users / 2).max(1);
                if !self.try_plan(p) {
                    break;
                }
            }
            for _ in 0..4 {
                let w = &self.plan.workloads[i];
                if w.rate.is_none_or(|r| r < 1.0) && w.steps.iter().all(|s| s.rate < 1.0) {
                    break;
                }
                let mut p = self.plan.clone();
                let w = &mut p.workloads[i];
                w.rate = w.rate.map(|r| r / 2.0);
                for s in &mut w.steps {
                    s.rate /= 2.0;
                }
                if !self.try_plan(p) {
                    break;
                }
            }
            // A later start drops the operations before the failure's window.
            let at = failure_at(&self.outcome);
            for frac in [3u32, 2, 1] {
                let start = at * frac / 4;
                if start <= self.plan.workloads[i].start {
                    continue;
                }
                let mut p = self.plan.clone();
                p.workloads[i].start = Duration::from_millis(start.as_millis() as u64);
                if self.try_plan(p) {
                    break;
                }
            }
        }
        // Workloads the failure does not need.
        let mut i = 0;
        while self.plan.workloads.len() > 1 && i < self.plan.workloads.len() {
            let mut p = self.plan.clone();
            p.workloads.remove(i);
            if !self.try_plan(p) {
                i += 1;
            }
        }
        // The application's smaller options, in its order of preference, repeatedly.
        for _ in 0..8 {
            let candidates = smaller_options(&self.plan);
            let mut shrunk = false;
            for options in candidates {
                let mut p = self.plan.clone();
                p.app.options = options;
                if self.try_plan(p) {
                    shrunk = true;
                    break;
                }
            }
            if !shrunk {
                break;
            }
        }
    }

    /// Moves each undo earlier (a shorter fault), merges same-group partitions, and moves
    /// each fault group later.
    fn shorter_faults(&mut self) {
        // Merge: two partitions of the same groups become one spanning both.
        let mut g = 0;
        loop {
            let groups = fault_groups(&self.plan.chaos.schedule.entries);
            if g + 1 >= groups.len() {
                break;
            }
            let (a, b) = (&groups[g], &groups[g + 1]);
            let same = matches!((&a[0].fault, &b[0].fault),
                (Fault::Partition { groups: x }, Fault::Partition { groups: y }) if x == y);
            if same && a.len() == 2 && b.len() == 2 {
                let mut merged = groups.clone();
                merged[g] = vec![a[0].clone(), b[1].clone()];
                merged.remove(g + 1);
                let mut p = self.plan.clone();
                p.chaos.schedule.entries = flatten(&merged);
                if self.try_plan(p) {
                    continue;
                }
            }
            g += 1;
        }
        // Shorten: each undo halfway earlier, up to six times.
        let count = fault_groups(&self.plan.chaos.schedule.entries).len();
        for g in 0..count {
            for _ in 0..6 {
                let mut groups = fault_groups(&self.plan.chaos.schedule.entries);
                let Some(group) = groups.get_mut(g) else { break };
                if group.len() < 2 {
                    break;
                }
                let (lo, hi) = (group[0].at, group[1].at);
                if hi - lo < Duration::from_millis(2) {
                    break;
                }
                group[1].at = Duration::from_millis((lo + (hi - lo) / 2).as_millis() as u64).max(lo);
                let mut p = self.plan.clone();
                p.chaos.schedule.entries = flatten(&groups);
                if !self.try_plan(p) {
                    break;
                }
            }
        }
    }
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
#[expect(clippy::disallowed_methods, reason = "the wall time of a shrink is measured outside any simulation")]
pub fn shrink_plan(
    runner: &dyn PlanRunner,
    plan: &Plan,
    failing: Failing<'_>,
    options: ShrinkOptions,
) -> Result<Shrunk, ShrinkError> {
    let started = std::time::Instant::now();
    let target = Target::of(failing.verdict).ok_or(ShrinkError::Passed)?;
    if plan.script.is_some() {
        return Err(ShrinkError::Unsupported(
            "a scripted run is not shrunk: its faults and operations come from its script, which is the \
             reproducer (cut the script down by hand; the replay line runs it again)"
                .into(),
        ));
    }
    if plan.chaos.kill.is_some() {
        return Err(ShrinkError::Unsupported(
            "plans with `chaos.kill` are not shrunk yet: a kill also changes the membership".into(),
        ));
    }
    let seeds = failing.seeds;
    let faults = failing.schedule.entries.clone();
    // Faults the plan aimed at the leader keep their aim, if that reproduces the run.
    let aimed_plan = aimed_at_leader(plan, &faults).map(|f| explicit(plan, &f));
    let aimed_runs = usize::from(aimed_plan.is_some());
    let aimed = aimed_plan.and_then(|p| {
        let o = runner.run_plan(&p, seeds, RunOptions::default()).ok()?;
        target.matches(&o.verdict).then_some((p, o))
    });
    // The starting point must reproduce; if it does not, say what it did instead.
    let (start, first) = match aimed {
        Some(found) => found,
        None => {
            let start = explicit(plan, &faults);
            let first = runner
                .run_plan(&start, seeds, RunOptions::default())
                .map_err(|source| ShrinkError::Broken { faults: faults.len(), source })?;
            (start, first)
        }
    };
    if !target.matches(&first.verdict) {
        return Err(ShrinkError::NotReproduced {
            faults: faults.len(),
            class: target.class,
            source_name: target.source,
            became: first.verdict.to_string(),
        });
    }
    let before = (fault_units(&faults).len(), faults.len(), ops_invoked(&first), node_count(plan), first.sim_time);
    let trials = Trials { runner, seeds, target, runs: 1 + aimed_runs, max_runs: options.max_runs };
    let mut best = Best { trials, plan: start, outcome: first };
    best.end_early();
    best.fewer_faults();
    if options.topology {
        best.fewer_nodes();
    }
    if options.workload {
        best.smaller_workload(&|p: &Plan| runner.smaller_options(p));
    }
    best.few_faults();
    best.shorter_faults();
    best.fewer_faults();
    best.end_early();
    best.round_times();
    let mut shrunk = best.plan;
    shrunk.name = format!("{}-shrunk", plan.name);
    let runs = best.trials.runs + 1;
    let keep = RunOptions { keep_events: true, ..Default::default() };
    let outcome = runner.run_plan(&shrunk, seeds, keep).map_err(ShrinkError::Final)?;
    let entries = &shrunk.chaos.schedule.entries;
    Ok(Shrunk {
        faults: (before.0, fault_units(entries).len()),
        entries: (before.1, entries.len()),
        ops: (before.2, ops_invoked(&outcome)),
        nodes: (before.3, node_count(&shrunk)),
        duration: (plan.run.duration, shrunk.run.duration),
        sim_time: (before.4, outcome.sim_time),
        evidence_at: failure_at(&outcome),
        plan: shrunk,
        seeds,
        runs,
        wall: started.elapsed(),
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, fault: Fault) -> ScheduledFault {
        ScheduledFault { at: Duration::from_millis(ms), fault }
    }

    fn cut(n: &str) -> Fault {
        Fault::Partition { groups: vec![vec![n.to_owned()], vec!["b".into(), "c".into()]] }
    }

    #[test]
    fn a_power_loss_is_one_fault() {
        let faults = vec![
            at(1, Fault::Crash { node: "a".into() }),
            at(1, Fault::Crash { node: "b".into() }),
            at(2, Fault::Crash { node: "c".into() }),
            at(3, Fault::Restart { node: "a".into() }),
            at(3, Fault::Restart { node: "b".into() }),
            at(4, Fault::Restart { node: "c".into() }),
        ];
        assert_eq!(fault_groups(&faults).len(), 3, "each crash with its restart");
        let units = fault_units(&faults);
        assert_eq!(units.len(), 2, "the two crashes at 1 ms are one fault: {units:?}");
        assert_eq!(flatten(&units), faults);
    }

    #[test]
    fn a_one_way_partition_is_one_fault() {
        let one_way = |to: &str| Fault::CutOneWay { from: "a".into(), to: to.into() };
        let faults = vec![at(1, one_way("b")), at(1, one_way("c")), at(2, one_way("b")), at(3, Fault::Heal)];
        let units = fault_units(&faults);
        assert_eq!(units.len(), 2, "the cuts made at 1 ms are one partition: {units:?}");
        assert_eq!(units[0].len(), 2, "{units:?}");
        assert_eq!(flatten(&units).len(), faults.len());
    }

    #[test]
    fn combinations_are_every_subset_once() {
        assert_eq!(combinations(4, 2), vec![vec![0, 1], vec![0, 2], vec![0, 3], vec![1, 2], vec![1, 3], vec![2, 3]]);
        assert_eq!(combinations(5, 3).len(), 10);
        assert_eq!(combinations(3, 3), vec![vec![0, 1, 2]]);
        assert!(combinations(2, 3).is_empty());
    }

    #[test]
    fn a_fault_and_its_undo_are_one_group() {
        let faults = vec![
            at(1, cut("a")),
            at(2, Fault::Crash { node: "b".into() }),
            at(3, Fault::Heal),
            at(4, Fault::Restart { node: "b".into() }),
            at(5, Fault::ClockSkew { node: "c".into(), offset_ms: 5, drift_ppm: 0 }),
            at(6, Fault::Heal),
        ];
        let groups = fault_groups(&faults);
        let times: Vec<Vec<u64>> = groups.iter().map(|g| g.iter().map(|f| f.at.as_millis() as u64).collect()).collect();
        // The second heal undoes nothing still open: a group of its own.
        assert_eq!(times, vec![vec![1, 3], vec![2, 4], vec![5], vec![6]]);
        assert_eq!(flatten(&groups), faults, "flattening restores the schedule");
    }

    #[test]
    fn leader_aimed_partitions_are_written_against_the_leader() {
        let base = "name = \"p\"\n[app]\nname = \"x\"\n[topology]\nnodes = { r = 3 }\n";
        let plan = Plan::from_toml(base).expect("plan");
        let faults = vec![at(1, cut("a")), at(2, Fault::Heal)];
        assert!(aimed_at_leader(&plan, &faults).is_none(), "nothing aimed");
        let plan = Plan::from_toml(&format!("{base}[chaos.partition]\nkinds = [\"leader\"]\nmin_delay = \"1s\"\nmax_delay = \"2s\"\nmin_duration = \"1s\"\nmax_duration = \"2s\"\n")).expect("plan");
        let aimed = aimed_at_leader(&plan, &faults).expect("aimed");
        assert_eq!(aimed[0].fault, Fault::Partition { groups: vec![vec![crate::plan::LEADER.to_owned()]] });
        assert_eq!(aimed[1].fault, Fault::Heal);
        let resolved = aimed[0].fault.renamed(crate::plan::LEADER, "a");
        assert_eq!(resolved, Fault::Partition { groups: vec![vec!["a".into()]] });
    }
}
