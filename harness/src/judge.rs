//! The [`Judge`]: checks a run's expectations against each new cluster view, in whichever
//! backend produced the view — simulated or real. Safety fails at once; once the cooldown
//! begins, the run passes as soon as every liveness expectation holds in one check (and the
//! end-of-run checks agree), or, when the cooldown ends with one still pending, fails with
//! the first end-of-run check that is violated (a broken history outranks a slow recovery)
//! or else the first liveness expectation that did not hold in time.

use crate::app::Application;
use crate::expect::{Check, ClusterView, Expectation, ExpectationRegistry, OpCounts, Phase, Status};
use crate::plan::Plan;
use crate::verdict::{Failure, FailureClass, Finding, FindingKind, Verdict};
use crate::workload::OpLog;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// A run's expectations, the phase and what has settled.
pub struct Judge<A: Application> {
    expectations: Vec<(String, Box<dyn Expectation<A>>)>,
    has_liveness: bool,
    settled: BTreeMap<String, Duration>,
    phase: Phase,
    ops_at_cooldown: OpCounts,
    /// The end of the cooldown: a liveness expectation still pending then fails.
    end: Duration,
    cooldown: Duration,
    findings: Vec<Finding>,
}

impl<A: Application> Judge<A> {
    /// Builds `plan`'s expectations for `app` (an unknown name or bad parameter is an error;
    /// a validated [`Scenario`](crate::Scenario) has none).
    pub fn new(app: &A, plan: &Plan) -> Result<Self, String> {
        let registry = ExpectationRegistry::for_app(app);
        let mut expectations = Vec::new();
        for e in &plan.expect {
            match registry.build(&e.name, &e.params, plan) {
                Some(Ok(x)) => expectations.push((e.name.clone(), x)),
                Some(Err(why)) => return Err(format!("expectation {}: {why:?}", e.name)),
                None => return Err(format!("unknown expectation {:?}", e.name)),
            }
        }
        let has_liveness = expectations.iter().any(|(_, e)| e.class() == FailureClass::Liveness);
        Ok(Judge {
            expectations,
            has_liveness,
            settled: BTreeMap::new(),
            phase: Phase::Active,
            ops_at_cooldown: OpCounts::default(),
            end: plan.run.duration + plan.run.cooldown,
            cooldown: plan.run.cooldown,
            findings: Vec::new(),
        })
    }

    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Faults stopped at `now`, with `ops` done so far.
    pub fn enter_cooldown(&mut self, now: Duration, ops: OpCounts) {
        debug_assert_eq!(self.phase, Phase::Active, "the cooldown begins once");
        self.phase = Phase::Cooldown { since: now };
        self.ops_at_cooldown = ops;
    }

    /// Faults stopped at `now` (a script returned), with `ops` done so far; the cooldown ends at
    /// `end` rather than at the plan's active phase plus its cooldown.
    pub fn enter_cooldown_until(&mut self, now: Duration, ops: OpCounts, end: Duration) {
        self.enter_cooldown(now, ops);
        self.end = end;
    }

    /// What the expectations reported beyond their verdicts (evidence, undecided checks).
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// When each expectation first held in the cooldown.
    pub fn settled(&self) -> &BTreeMap<String, Duration> {
        &self.settled
    }

    /// Judges one view taken at `now`: `Some` once the run is decided. `log` holds the history
    /// the end-of-run checks read, `facts` the ground truth nodes recorded.
    pub fn judge(
        &mut self,
        app: &A,
        now: Duration,
        view: &ClusterView<A::State>,
        ops: OpCounts,
        log: &Mutex<OpLog>,
        facts: &[gauntlet_sim::Fact],
    ) -> Option<Verdict> {
        let fail = |class, source: &str, message: String| {
            Some(Verdict::Fail(Failure { class, source: source.to_owned(), at: now, message }))
        };
        let (phase, ops_at_cooldown) = (self.phase, self.ops_at_cooldown);
        let cx = Check { app, now, phase, view, ops, ops_at_cooldown, history: &[], facts };
        // The first liveness expectation not holding in this very check, with its reason.
        let mut waiting: Option<(String, String)> = None;
        for (name, e) in self.expectations.iter_mut() {
            match e.check(&cx) {
                Status::Violated(why) => {
                    keep_evidence(&mut self.findings, name, e);
                    return fail(e.class(), name, why);
                }
                Status::Holds => {
                    if matches!(phase, Phase::Cooldown { .. }) {
                        self.settled.entry(name.clone()).or_insert(now);
                    }
                }
                Status::Pending(why) => {
                    if e.class() == FailureClass::Liveness && waiting.is_none() {
                        waiting = Some((name.clone(), why));
                    }
                }
            }
        }
        let Phase::Cooldown { since } = phase else { return None };
        match waiting {
            // Every liveness expectation holds in the same check (the cluster recovered), or
            // there is only safety to check and the whole recovery was watched.
            None if self.has_liveness || now >= self.end => {
                let log = log.lock().expect("op log");
                let cx = Check { history: &log.history, ..cx };
                Some(self.end_checks(&cx).unwrap_or(Verdict::Pass))
            }
            Some((name, why)) if now >= self.end => {
                // The end-of-run checks still run: a history that breaks safety says more
                // than a cluster that did not recover in time, and it is what a shrunk
                // (shorter) run must still show.
                let log = log.lock().expect("op log");
                let cx = Check { history: &log.history, ..cx };
                self.end_checks(&cx).or_else(|| {
                    let msg =
                        format!("did not hold within the {:?} cooldown that began at {since:?}: {why}", self.cooldown);
                    fail(FailureClass::Liveness, &name, msg)
                })
            }
            _ => None,
        }
    }
}

impl<A: Application> Judge<A> {
    /// The end-of-run checks over the whole history: the first violated, as a failure dated
    /// at its evidence ([`Expectation::evidence_at`]) when that is earlier; undecided ones
    /// become findings.
    fn end_checks(&mut self, cx: &Check<'_, A>) -> Option<Verdict> {
        for (name, e) in self.expectations.iter_mut() {
            match e.at_end(cx) {
                Status::Violated(why) => {
                    keep_evidence(&mut self.findings, name, e);
                    let at = e.evidence_at().map_or(cx.now, |t| t.min(cx.now));
                    let (class, source, message) = (e.class(), name.clone(), why);
                    return Some(Verdict::Fail(Failure { class, source, at, message }));
                }
                Status::Pending(why) => {
                    self.findings.push(Finding { expectation: name.clone(), kind: FindingKind::Undecided, text: why });
                }
                Status::Holds => {}
            }
        }
        None
    }
}

/// Keeps `e`'s evidence for its failure, if it has more than its verdict message says.
fn keep_evidence<A: Application>(findings: &mut Vec<Finding>, name: &str, e: &mut Box<dyn Expectation<A>>) {
    if let Some(text) = e.evidence() {
        findings.push(Finding { expectation: name.to_owned(), kind: FindingKind::Evidence, text });
    }
}
