//! Expectations: named checks with parameters, judged against the observation runtime's view
//! of the cluster and the workloads' operation counts.
//!
//! A **safety** expectation must hold at every check; its first violation fails the run at
//! once (fail fast). A **liveness** expectation must come to hold during the cooldown, after
//! faults stop and the network heals; if the cooldown ends first, the run fails with class
//! liveness. Built-ins: `converge`, `ready`, `progress` and `linearizable` (the client
//! history against a `register` or `kv` model, see [`crate::lincheck::expectation`]); apps
//! register their own with
//! [`Application::expectations`](crate::Application::expectations).

use crate::app::Application;
use crate::plan::{KeyProblems, Plan};
use crate::verdict::FailureClass;
use std::collections::BTreeMap;
use std::time::Duration;

/// What the observer knows of one member node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView<S> {
    /// The node's role.
    pub role: String,
    /// Its last successfully read state.
    pub state: Option<S>,
    /// When that state was read (time since the run started).
    pub observed_at: Option<Duration>,
    /// The last read's error, if it failed.
    pub error: Option<String>,
}

/// The observer's snapshot: every current member by name.
pub type ClusterView<S> = BTreeMap<String, NodeView<S>>;

/// Operation counts of all workloads together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpCounts {
    /// Operations invoked.
    pub invoked: u64,
    /// Completed and took effect.
    pub ok: u64,
    /// Completed and did not take effect.
    pub fail: u64,
    /// Indeterminate.
    pub info: u64,
    /// Arrivals dropped because too many operations were in flight.
    pub shed: u64,
}

/// The run's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Workloads and faults.
    Active,
    /// Faults stopped at `since`; liveness expectations must come to hold.
    Cooldown {
        /// When the cooldown began.
        since: Duration,
    },
}

/// Everything an expectation may look at in one check.
pub struct Check<'a, A: Application> {
    /// The application (for `converged`, `ready`).
    pub app: &'a A,
    /// Time since the run started.
    pub now: Duration,
    /// The phase.
    pub phase: Phase,
    /// The latest cluster view.
    pub view: &'a ClusterView<A::State>,
    /// Operation counts so far.
    pub ops: OpCounts,
    /// Operation counts when the cooldown began (zero during the active phase).
    pub ops_at_cooldown: OpCounts,
    /// The whole operation history — filled only for [`Expectation::at_end`], empty otherwise.
    pub history: &'a [crate::workload::HistoryEntry],
    /// Ground truth the nodes recorded so far with
    /// [`NodeContext::fact`](gauntlet_sim::NodeContext::fact), in true-time order (simulation
    /// only: empty in real runs).
    pub facts: &'a [gauntlet_sim::Fact],
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// It holds now.
    Holds,
    /// Not yet (liveness), with the reason.
    Pending(String),
    /// It is broken, with the evidence.
    Violated(String),
}

/// A check run against the cluster during and after a run.
pub trait Expectation<A: Application> {
    /// Safety or liveness.
    fn class(&self) -> FailureClass;
    /// Checks the current state, at every observation.
    fn check(&mut self, cx: &Check<'_, A>) -> Status;
    /// Checks once when the run is over, with the whole history (linearizability and other
    /// checks of the complete record). Default: holds.
    fn at_end(&mut self, _cx: &Check<'_, A>) -> Status {
        Status::Holds
    }
    /// The whole evidence behind this expectation's last [`Status::Violated`], when its
    /// message was capped (it goes into the bundle and the report, not the verdict line).
    /// Default: none. An [`Expectation::at_end`] that answers [`Status::Pending`] says the
    /// check could not decide; the run passes, and the reason is kept as a finding.
    fn evidence(&mut self) -> Option<String> {
        None
    }
    /// When the evidence behind this expectation's last [`Status::Violated`] from
    /// [`Expectation::at_end`] ended (its latest event, since the run started), if the
    /// expectation knows: the built-in `linearizable` answers the last counterexample
    /// operation's return. The failure is dated there rather than at the end of the run, which
    /// is where shrinking ends a reproducer. Default: none (dated when it was found).
    fn evidence_at(&self) -> Option<std::time::Duration> {
        None
    }
}

/// An expectation built from its parameters, or the problems with them.
pub type Built<A> = Result<Box<dyn Expectation<A>>, KeyProblems>;

/// Builds an expectation from its plan parameters.
pub type Factory<A> = Box<dyn Fn(&toml::Table, &Plan) -> Built<A>>;

/// Expectations by name: the harness's built-ins plus the application's.
pub struct ExpectationRegistry<A: Application> {
    entries: BTreeMap<String, Factory<A>>,
}

impl<A: Application> ExpectationRegistry<A> {
    /// The built-ins, then whatever `app` registers.
    pub fn for_app(app: &A) -> Self {
        let mut r = ExpectationRegistry { entries: BTreeMap::new() };
        r.register("converge", |p, _| {
            no_params("converge", p)?;
            Ok(Box::new(Converge) as Box<dyn Expectation<A>>)
        });
        r.register("ready", |p, _| {
            no_params("ready", p)?;
            Ok(Box::new(Ready) as Box<dyn Expectation<A>>)
        });
        r.register("progress", |p, plan| {
            let min_ops = Params::new("progress", p, &["min_ops"]).u64("min_ops", 1)?;
            if !plan.run.workloads_in_cooldown {
                return Err(vec![(
                    String::new(),
                    "progress needs operations during the cooldown: set run.workloads_in_cooldown = true".into(),
                )]);
            }
            if plan.workloads.is_empty() {
                return Err(vec![(String::new(), "progress needs at least one workload".into())]);
            }
            Ok(Box::new(Progress { min_ops }) as Box<dyn Expectation<A>>)
        });
        crate::lincheck::expectation::register_builtin(&mut r);
        crate::lost_writes::register_builtin(&mut r);
        crate::mutex::register_builtin(&mut r);
        app.expectations(&mut r);
        r
    }

    /// Registers (or replaces) an expectation.
    pub fn register(&mut self, name: &str, factory: impl Fn(&toml::Table, &Plan) -> Built<A> + 'static) {
        self.entries.insert(name.to_owned(), Box::new(factory));
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    /// Builds the expectation `name` from `params`.
    pub fn build(&self, name: &str, params: &toml::Table, plan: &Plan) -> Option<Built<A>> {
        self.entries.get(name).map(|f| f(params, plan))
    }
}

/// Typed access to an expectation's parameters, rejecting unknown ones.
pub struct Params<'a> {
    table: &'a toml::Table,
    problems: KeyProblems,
}

impl<'a> Params<'a> {
    /// Checks that `table` has only `allowed` keys.
    pub fn new(expectation: &str, table: &'a toml::Table, allowed: &[&str]) -> Self {
        let problems = table
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .map(|k| {
                let takes = if allowed.is_empty() { "no parameters".to_owned() } else { allowed.join(", ") };
                (k.clone(), format!("unknown parameter; {expectation} takes: {takes}"))
            })
            .collect();
        Params { table, problems }
    }

    /// A non-negative integer parameter.
    pub fn u64(mut self, key: &str, default: u64) -> Result<u64, KeyProblems> {
        let v = match self.table.get(key) {
            None => default,
            Some(toml::Value::Integer(i)) if *i >= 0 => *i as u64,
            Some(other) => {
                self.problems.push((key.to_owned(), format!("{other} is not a non-negative integer")));
                default
            }
        };
        self.done().map(|_| v)
    }

    /// A duration parameter written like `"5s"`.
    pub fn duration(mut self, key: &str, default: Duration) -> Result<Duration, KeyProblems> {
        let v = match self.table.get(key) {
            None => default,
            Some(toml::Value::String(s)) => match humantime_serde::re::humantime::parse_duration(s) {
                Ok(d) => d,
                Err(e) => {
                    self.problems.push((key.to_owned(), format!("{s:?} is not a duration: {e}")));
                    default
                }
            },
            Some(other) => {
                self.problems.push((key.to_owned(), format!("{other} is not a duration such as \"5s\"")));
                default
            }
        };
        self.done().map(|_| v)
    }

    /// A string parameter that must be one of `choices` (the first is the default).
    pub fn choice(mut self, key: &str, choices: &[&'static str]) -> Result<&'static str, KeyProblems> {
        assert!(!choices.is_empty(), "a choice needs at least one option");
        let v = match self.table.get(key) {
            None => choices[0],
            Some(toml::Value::String(s)) => match choices.iter().find(|c| **c == s.as_str()) {
                Some(c) => c,
                None => {
                    self.problems.push((key.to_owned(), format!("{s:?} is not one of: {}", choices.join(", "))));
                    choices[0]
                }
            },
            Some(other) => {
                self.problems.push((key.to_owned(), format!("{other} is not one of: {}", choices.join(", "))));
                choices[0]
            }
        };
        self.done().map(|_| v)
    }

    /// Ok when no problem was found.
    pub fn done(self) -> Result<(), KeyProblems> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(self.problems)
        }
    }
}

/// A history check's guard: completed operations of which none maps to what the check reads
/// (`mapped`) mean the application has not implemented `hook`, said as a violation.
pub(crate) fn unmapped_history(
    history: &[crate::workload::HistoryEntry],
    mapped: impl Fn(&crate::workload::HistoryEntry) -> bool,
    what: &str,
    hook: &str,
    check: &str,
) -> Option<Status> {
    let completed = history.iter().filter(|e| e.outcome == gauntlet_sim::OpPhase::Ok).count();
    (completed > 0 && !history.iter().any(mapped)).then(|| {
        Status::Violated(format!(
            "none of the {completed} completed operations maps to {what}: the application must implement {hook} for \
             {check}"
        ))
    })
}

/// A time since the run started, in seconds with milliseconds (`12.345s`).
pub(crate) fn secs(d: Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

fn no_params(name: &str, p: &toml::Table) -> Result<(), KeyProblems> {
    Params::new(name, p, &[]).done()
}

/// Liveness: every member was read after the cooldown began, and the app says their states
/// have converged.
struct Converge;

impl<A: Application> Expectation<A> for Converge {
    fn class(&self) -> FailureClass {
        FailureClass::Liveness
    }
    fn check(&mut self, cx: &Check<'_, A>) -> Status {
        let Phase::Cooldown { since } = cx.phase else { return Status::Pending("faults still active".into()) };
        if cx.view.is_empty() {
            return Status::Pending("no member is observed".into());
        }
        let mut states = Vec::new();
        for (name, v) in cx.view {
            match (&v.state, v.observed_at) {
                (Some(s), Some(at)) if at >= since => states.push((name.as_str(), s)),
                _ => {
                    let why = v.error.clone().unwrap_or_else(|| "not read since the cooldown began".into());
                    return Status::Pending(format!("{name}: {why}"));
                }
            }
        }
        match cx.app.converged(&states) {
            Ok(()) => Status::Holds,
            Err(e) => Status::Pending(format!("not converged: {e}")),
        }
    }
}

/// Liveness: every member is ready.
struct Ready;

impl<A: Application> Expectation<A> for Ready {
    fn class(&self) -> FailureClass {
        FailureClass::Liveness
    }
    fn check(&mut self, cx: &Check<'_, A>) -> Status {
        let Phase::Cooldown { since } = cx.phase else { return Status::Pending("faults still active".into()) };
        for (name, v) in cx.view {
            match (&v.state, v.observed_at) {
                (Some(s), Some(at)) if at >= since && cx.app.ready(s) => {}
                _ => return Status::Pending(format!("{name} is not ready")),
            }
        }
        Status::Holds
    }
}

/// Liveness: at least `min_ops` operations succeed during the cooldown.
struct Progress {
    min_ops: u64,
}

impl<A: Application> Expectation<A> for Progress {
    fn class(&self) -> FailureClass {
        FailureClass::Liveness
    }
    fn check(&mut self, cx: &Check<'_, A>) -> Status {
        let Phase::Cooldown { .. } = cx.phase else { return Status::Pending("faults still active".into()) };
        let done = cx.ops.ok - cx.ops_at_cooldown.ok;
        if done >= self.min_ops {
            Status::Holds
        } else {
            Status::Pending(format!("{done} of {} operations succeeded since the faults stopped", self.min_ops))
        }
    }
}
