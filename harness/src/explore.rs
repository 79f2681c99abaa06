//! Guided exploration: instead of seed after seed, choose the next run from what earlier runs
//! reached, as a coverage-guided fuzzer chooses its next input.
//!
//! Each run is scored by its *features* ([`features`]): the sometimes-assertions that held
//! (bucketed by how often, so "twice" is new after "once"), coarse counts of what happened
//! (crashes, drops, failed and indeterminate operations, buggify sites fired), and the fault
//! interleaving (consecutive fault kinds). A run that shows a feature no earlier run showed
//! joins the *corpus*. The next run is then either a fresh seed of the plan (so exploration
//! never does worse than a sweep by much) or a corpus entry with its chaos mutated: a fault
//! group copied near itself, moved, stretched, dropped or aimed elsewhere (another node, or
//! [`@leader`](crate::plan::LEADER) for applications that elect leaders), or the same faults
//! with another simulation seed. Entries holding rare features are picked more often.
//!
//! Every run is still a plan plus seeds: a mutated run's plan is the original with an explicit
//! schedule, so a failure found this way replays with `gauntlet run` like any other. The
//! explorer is deterministic for a given [`ExploreOptions::seed`]: candidates are made in
//! batches of [`BATCH`] from the corpus as it stands, run in parallel, and folded back in
//! candidate order, whatever the number of jobs.
#![allow(
    clippy::disallowed_methods,
    reason = "exploration runs worker threads outside any simulation (each run makes its own world)"
)]

use crate::plan::{Plan, LEADER};
use crate::registry::{PlanRunner, RunOptions, RunPlanError};
use crate::shrink::{aimed_at_leader, explicit, fault_groups, flatten};
use crate::verdict::{RunOutcome, Verdict};
use gauntlet_sim::{Fault, ScheduledFault, Seeds};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Candidates made from one state of the corpus, run together.
pub const BATCH: usize = 4;

/// How to explore.
#[derive(Debug, Clone, Copy)]
pub struct ExploreOptions {
    /// Runs to spend.
    pub budget: usize,
    /// The explorer's own seed: its fresh seeds and mutations come from it.
    pub seed: u64,
    /// Parallel runs (results do not depend on it).
    pub jobs: usize,
    /// Stop at the first failing run.
    pub first: bool,
}

impl Default for ExploreOptions {
    fn default() -> Self {
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        ExploreOptions { budget: 200, seed: 0, jobs, first: true }
    }
}

/// One run the explorer kept: it reached something no earlier run had.
#[derive(Debug, Clone)]
pub struct CorpusEntry {
    /// Its plan (the original, or the original with a mutated explicit schedule).
    pub plan: Plan,
    /// Its seeds.
    pub seeds: Seeds,
    /// Its features.
    pub features: BTreeSet<String>,
    /// The features it was first to show.
    pub new: Vec<String>,
    /// The interesting moments of its run: when each of its sometimes-assertions first held.
    pub moments: Vec<Duration>,
    /// How it was made.
    pub how: String,
    /// Which run it was (1-based).
    pub run: usize,
}

/// A failing run exploration found.
#[derive(Debug, Clone)]
pub struct Found {
    /// Which run it was (1-based): the runs exploration needed.
    pub run: usize,
    /// Its plan: run it with its seeds to replay the failure.
    pub plan: Plan,
    /// How it was made ("fresh seed", or the mutations applied to a corpus entry).
    pub how: String,
    /// The run.
    pub outcome: RunOutcome,
}

/// What exploration did.
#[derive(Debug, Clone)]
pub struct Exploration {
    /// The plan's name.
    pub plan: String,
    /// Runs made.
    pub runs: usize,
    /// Candidates the application refused (say, a fault on a node it does not have); not runs.
    pub refused: usize,
    /// Runs that could not complete: run number, seeds, why.
    pub broken: Vec<(usize, Seeds, String)>,
    /// Failing runs, in run order (one, if [`ExploreOptions::first`]).
    pub failures: Vec<Found>,
    /// The corpus: each run that reached something new.
    pub corpus: Vec<CorpusEntry>,
    /// Every feature seen, with the number of runs that showed it.
    pub features: BTreeMap<String, usize>,
}

impl Exploration {
    /// A few lines for a terminal.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}: explored {} runs ({} candidates refused), corpus {}, {} features\n",
            self.plan,
            self.runs,
            self.refused,
            self.corpus.len(),
            self.features.len()
        );
        match self.failures.first() {
            Some(f) => s.push_str(&format!("first failure at run {} ({}): {}\n", f.run, f.how, f.outcome.verdict)),
            None => s.push_str("no failure\n"),
        }
        s
    }
}

/// A run's features: what guidance rewards. Sorted and deterministic.
pub fn features(o: &RunOutcome) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, hits) in &o.probes {
        if hits.hit() {
            out.insert(format!("probe {name} ×{}", bucket(hits.held)));
        }
    }
    for (kind, n) in &o.counts {
        if matches!(*kind, "node_crash" | "drop" | "buggify" | "storage_loss" | "node_pause") {
            out.insert(format!("events {kind} ×{}", bucket(*n)));
        }
    }
    let (mut fail, mut info) = (0, 0);
    for c in o.ops.values() {
        fail += c.fail;
        info += c.info;
    }
    out.insert(format!("ops fail ×{}", bucket(fail)));
    out.insert(format!("ops info ×{}", bucket(info)));
    let kinds: Vec<&str> = o.schedule.entries.iter().map(|e| kind_of(&e.fault)).collect();
    for w in kinds.windows(2) {
        out.insert(format!("faults {} then {}", w[0], w[1]));
    }
    out
}

/// AFL's hit-count buckets: 1, 2, 3, 4-7, 8-15, ... as their lower bound.
fn bucket(n: u64) -> u64 {
    match n {
        0..=3 => n,
        _ => 1 << (63 - n.leading_zeros()),
    }
}

fn kind_of(f: &Fault) -> &'static str {
    match f {
        Fault::Partition { .. } => "partition",
        Fault::CutOneWay { .. } => "cut",
        Fault::Heal => "heal",
        Fault::SetLink { .. } => "link",
        Fault::ResetLinks => "reset-links",
        Fault::Crash { .. } => "crash",
        Fault::Restart { .. } => "restart",
        Fault::Pause { .. } => "pause",
        Fault::Resume { .. } => "resume",
        Fault::ClockSkew { .. } => "skew",
    }
}

/// A candidate: a plan, its seeds, and how it was made.
struct Candidate {
    plan: Plan,
    seeds: Seeds,
    how: String,
}

/// Explores `plan` through `runner`; an invalid plan is an error before any run.
///
/// ```no_run
/// # fn demo(runner: &dyn gauntlet::registry::PlanRunner, plan: &gauntlet::Plan) {
/// use gauntlet::explore::{explore, ExploreOptions};
/// let found = explore(runner, plan, ExploreOptions { budget: 300, ..Default::default() }).expect("valid plan");
/// match found.failures.first() {
///     Some(f) => println!("failed at run {}: SIM_SEED={} {}", f.run, f.outcome.seeds.sim, f.outcome.verdict),
///     None => println!("{}", found.describe()),
/// }
/// # }
/// ```
pub fn explore(runner: &dyn PlanRunner, plan: &Plan, options: ExploreOptions) -> Result<Exploration, RunPlanError> {
    runner.check(plan)?;
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x6578_706c_6f72_6521);
    let mut ex = Exploration {
        plan: plan.name.clone(),
        runs: 0,
        refused: 0,
        broken: Vec::new(),
        failures: Vec::new(),
        corpus: Vec::new(),
        features: BTreeMap::new(),
    };
    let names = node_names(plan);
    let warmup = options.budget.min(8);
    // Bounds the attempts, in case nearly every mutation is refused.
    let mut attempts = 0;
    while ex.runs < options.budget && attempts < options.budget * 10 {
        let room = (options.budget - ex.runs).min(BATCH);
        let batch: Vec<Candidate> = (0..room)
            .map(|_| {
                attempts += 1;
                if ex.runs < warmup || ex.corpus.is_empty() || rng.random_bool(0.2) {
                    fresh(plan, &mut rng)
                } else {
                    let entry = pick(&ex, &mut rng);
                    mutate(entry, &names, &mut rng)
                }
            })
            .collect();
        let results = run_batch(runner, &batch, options.jobs);
        for (c, result) in batch.into_iter().zip(results) {
            let outcome = match result {
                Ok(o) => o,
                Err(RunPlanError::Plan(_)) => {
                    ex.refused += 1;
                    continue;
                }
                Err(e) => {
                    // The run could not complete (a panic in node code, a limit): counted,
                    // and kept with its reason.
                    ex.runs += 1;
                    ex.broken.push((ex.runs, c.seeds, e.to_string()));
                    continue;
                }
            };
            ex.runs += 1;
            let feats = features(&outcome);
            let new: Vec<String> = feats.iter().filter(|f| !ex.features.contains_key(*f)).cloned().collect();
            for f in &feats {
                *ex.features.entry(f.clone()).or_insert(0) += 1;
            }
            if matches!(outcome.verdict, Verdict::Fail(_)) {
                ex.failures.push(Found {
                    run: ex.runs,
                    plan: c.plan.clone(),
                    how: c.how.clone(),
                    outcome: outcome.clone(),
                });
                if options.first {
                    return Ok(ex);
                }
            }
            if !new.is_empty() {
                // The entry's plan is explicit: mutations start from the faults that happened.
                let faults = outcome.schedule.entries.clone();
                let base = if c.plan.chaos.schedule.entries.is_empty() && !faults.is_empty() {
                    aimed_at_leader(&c.plan, &faults)
                        .map_or_else(|| explicit(&c.plan, &faults), |f| explicit(&c.plan, &f))
                } else {
                    c.plan
                };
                let mut moments: Vec<Duration> = outcome.probes.values().filter_map(|h| h.first_held).collect();
                moments.sort();
                moments.dedup();
                ex.corpus.push(CorpusEntry {
                    plan: base,
                    seeds: c.seeds,
                    features: feats,
                    new,
                    moments,
                    how: c.how,
                    run: ex.runs,
                });
            }
        }
    }
    Ok(ex)
}

fn run_batch(runner: &dyn PlanRunner, batch: &[Candidate], jobs: usize) -> Vec<Result<RunOutcome, RunPlanError>> {
    let jobs = jobs.clamp(1, batch.len().max(1));
    if jobs == 1 {
        return batch.iter().map(|c| runner.run_plan(&c.plan, c.seeds, RunOptions::default())).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<Result<RunOutcome, RunPlanError>>>> =
        batch.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(c) = batch.get(i) else { break };
                let r = runner.run_plan(&c.plan, c.seeds, RunOptions::default());
                *slots[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|s| {
            s.into_inner().unwrap_or_else(|p| p.into_inner()).expect("every candidate of a batch is run by some worker")
        })
        .collect()
}

/// The plan's node names, role by role (`role-0`, `role-1`, ...).
fn node_names(plan: &Plan) -> Vec<String> {
    plan.topology.nodes.iter().flat_map(|(role, &n)| (0..n).map(move |i| format!("{role}-{i}"))).collect()
}

fn fresh(plan: &Plan, rng: &mut ChaCha8Rng) -> Candidate {
    let seed = rng.random::<u64>() >> 1;
    Candidate { plan: plan.clone(), seeds: Seeds::new(seed), how: "fresh seed".into() }
}

/// A corpus entry: half the time the one holding the rarest feature (ties: the latest), else
/// any, uniformly.
fn pick<'a>(ex: &'a Exploration, rng: &mut ChaCha8Rng) -> &'a CorpusEntry {
    if rng.random_bool(0.5) {
        let rarity = |e: &CorpusEntry| e.features.iter().map(|f| ex.features.get(f).copied().unwrap_or(1)).min();
        if let Some(e) = ex.corpus.iter().rev().min_by_key(|e| rarity(e)) {
            return e;
        }
    }
    &ex.corpus[rng.random_range(0..ex.corpus.len())]
}

/// `entry` with one to three mutations of its chaos (or its seed).
fn mutate(entry: &CorpusEntry, names: &[String], rng: &mut ChaCha8Rng) -> Candidate {
    let mut p = entry.plan.clone();
    let mut seeds = entry.seeds;
    let end = p.run.duration;
    let mut hows = Vec::new();
    for _ in 0..rng.random_range(1..=3) {
        let mut groups = fault_groups(&p.chaos.schedule.entries);
        let how = if groups.is_empty() || rng.random_bool(0.15) {
            seeds = Seeds { sim: rng.random::<u64>() >> 1, chaos: seeds.chaos };
            "another seed".to_owned()
        } else {
            let g = rng.random_range(0..groups.len());
            match rng.random_range(0..6) {
                5 if !entry.moments.is_empty() => {
                    // A copy of the group near an interesting moment of the entry's run.
                    let moment = entry.moments[rng.random_range(0..entry.moments.len())];
                    let at = moment + ms(rng.random_range(0..1_000));
                    let first = groups[g][0].at;
                    let copy: Vec<ScheduledFault> = groups[g]
                        .iter()
                        .map(|f| ScheduledFault { at: at + (f.at - first), fault: f.fault.clone() })
                        .collect();
                    groups.push(copy);
                    format!("copy group {g} to {at:?}")
                }
                0 => {
                    // A copy of the group, shortly after it.
                    let shift = ms(rng.random_range(200..2_000));
                    let copy: Vec<ScheduledFault> =
                        groups[g].iter().map(|f| ScheduledFault { at: f.at + shift, fault: f.fault.clone() }).collect();
                    groups.push(copy);
                    format!("copy group {g} +{shift:?}")
                }
                1 => {
                    let d = ms(rng.random_range(50..800));
                    let later = rng.random_bool(0.5);
                    for f in &mut groups[g] {
                        f.at = if later { f.at + d } else { f.at.saturating_sub(d) };
                    }
                    format!("move group {g} {}{d:?}", if later { "+" } else { "-" })
                }
                2 if groups.len() > 1 => {
                    groups.remove(g);
                    format!("drop group {g}")
                }
                3 if groups[g].len() >= 2 => {
                    let (lo, hi) = (groups[g][0].at, groups[g][1].at);
                    let factor = [0.5, 0.75, 1.5, 2.0][rng.random_range(0..4)];
                    groups[g][1].at = lo + (hi - lo).mul_f64(factor);
                    format!("stretch group {g} ×{factor}")
                }
                _ => {
                    let target = if rng.random_bool(0.5) || names.is_empty() {
                        LEADER.to_owned()
                    } else {
                        names[rng.random_range(0..names.len())].clone()
                    };
                    retarget(&mut groups[g], &target, names);
                    format!("aim group {g} at {target}")
                }
            }
        };
        groups.iter_mut().flatten().for_each(|f| f.at = f.at.min(end.saturating_sub(ms(1))));
        p.chaos.schedule.entries = flatten(&groups);
        hows.push(how);
    }
    Candidate { plan: p, seeds, how: format!("run {}: {}", entry.run, hows.join(", ")) }
}

/// The group's faults aimed at `target`: a partition cutting off one node cuts off `target`
/// instead; a crash, restart, pause, resume or skew hits `target`.
fn retarget(group: &mut [ScheduledFault], target: &str, names: &[String]) {
    for f in group {
        f.fault = match &f.fault {
            Fault::Partition { groups } if groups.len() <= 2 && groups.first().is_some_and(|g| g.len() == 1) => {
                if target == LEADER {
                    Fault::Partition { groups: vec![vec![LEADER.to_owned()]] }
                } else {
                    let rest: Vec<String> = names.iter().filter(|n| *n != target).cloned().collect();
                    Fault::Partition { groups: vec![vec![target.to_owned()], rest] }
                }
            }
            Fault::Crash { .. } => Fault::Crash { node: target.to_owned() },
            Fault::Restart { .. } => Fault::Restart { node: target.to_owned() },
            Fault::Pause { .. } => Fault::Pause { node: target.to_owned() },
            Fault::Resume { .. } => Fault::Resume { node: target.to_owned() },
            Fault::ClockSkew { offset_ms, drift_ppm, .. } if target != LEADER => {
                Fault::ClockSkew { node: target.to_owned(), offset_ms: *offset_ms, drift_ppm: *drift_ppm }
            }
            other => other.clone(),
        };
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_counts_fall_in_power_of_two_buckets() {
        let b: Vec<u64> = [0, 1, 2, 3, 4, 7, 8, 15, 16, 1000].iter().map(|&n| bucket(n)).collect();
        assert_eq!(b, vec![0, 1, 2, 3, 4, 4, 8, 8, 16, 512]);
    }

    #[test]
    fn retargeting_a_cut_names_the_new_node_and_keeps_the_rest_together() {
        let names: Vec<String> = ["r-0", "r-1", "r-2"].iter().map(|s| (*s).to_owned()).collect();
        let cut = Fault::Partition { groups: vec![vec!["r-0".into()], vec!["r-1".into(), "r-2".into()]] };
        let mut g = vec![ScheduledFault { at: ms(5), fault: cut }, ScheduledFault { at: ms(9), fault: Fault::Heal }];
        retarget(&mut g, "r-2", &names);
        assert_eq!(g[0].fault, Fault::Partition { groups: vec![vec!["r-2".into()], vec!["r-0".into(), "r-1".into()]] });
        assert_eq!(g[1].fault, Fault::Heal, "the heal stays");
        retarget(&mut g, LEADER, &names);
        assert_eq!(g[0].fault, Fault::Partition { groups: vec![vec![LEADER.into()]] });
    }
}
