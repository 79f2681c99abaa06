//! The built-in `linearizable` expectation: the run's client history, checked at the end of
//! the run against a sequential model — `register` or `kv` through
//! [`Application::history_op`](crate::Application::history_op), or an application's own
//! [`Model`] registered with [`ExpectationRegistry::linearizable_with`].
//!
//! ```toml
//! [[expect]]
//! name = "linearizable"
//! model = "kv"            # or "register"
//! max_steps = 10_000_000  # the search budget per partition (default); spent: "undecided"
//! ```
//!
//! A failed operation (`fail`) did not happen and is left out; an operation whose outcome is
//! unknown (`info`, or still in flight at the end) may have happened at any instant after its
//! call. When the search budget runs out the check is **undecided**: the run passes, and the
//! bundle's findings (and the report) say which partition was not decided. The budget is in
//! search steps, never in wall time, so a verdict is a function of the seed. A failure's
//! verdict message is capped at [`MAX_MESSAGE`] bytes; the whole counterexample is kept as the
//! run's evidence (bundle, report).

use super::{
    check_with, CheckOptions, CheckResult, KvInput, KvModel, Model, Operation, RegisterModel, RegisterOp, Reply,
};
use crate::app::Application;
use crate::expect::{Check, Expectation, ExpectationRegistry, Status};
use crate::plan::KeyProblems;
use crate::verdict::FailureClass;
use crate::workload::HistoryEntry;
use gauntlet_sim::trace::OpPhase;

/// The longest failure message in a verdict, in bytes; the rest is in the evidence.
pub const MAX_MESSAGE: usize = 2_000;
/// The default search budget per partition.
pub const DEFAULT_MAX_STEPS: u64 = 10_000_000;
/// Steps counterexample shrinking may spend in all.
const SHRINK_STEPS: u64 = 5_000_000;

/// An operation of one of the built-in models, as [`Application::history_op`] maps a client
/// history entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryOp {
    /// An operation on a single register (model `register`).
    Register(RegisterOp, Option<Reply>),
    /// An operation on a key of a key-value map (model `kv`).
    Kv(KvInput, Option<Reply>),
}

impl HistoryOp {
    /// A register operation with its reply (`None`: not known).
    pub fn register(op: RegisterOp, reply: Option<Reply>) -> Self {
        HistoryOp::Register(op, reply)
    }
    /// A key-value operation with its reply (`None`: not known).
    pub fn kv(input: KvInput, reply: Option<Reply>) -> Self {
        HistoryOp::Kv(input, reply)
    }
}

/// The model a plan names for the built-in expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Register,
    Kv,
}

/// Parses the built-in's parameters: `model` (required) and `max_steps`.
fn params(table: &toml::Table) -> Result<(Builtin, u64), KeyProblems> {
    let mut problems = KeyProblems::new();
    for k in table.keys().filter(|k| !["model", "max_steps"].contains(&k.as_str())) {
        problems.push((k.clone(), "unknown parameter; linearizable takes: model, max_steps".into()));
    }
    let model = match table.get("model").map(|v| v.as_str()) {
        Some(Some("register")) => Some(Builtin::Register),
        Some(Some("kv")) => Some(Builtin::Kv),
        Some(_) => {
            problems.push(("model".into(), format!("{} is not a model: register or kv", table["model"])));
            None
        }
        None => {
            problems.push((
                "model".into(),
                "missing: say which model the history is checked against (register or kv)".into(),
            ));
            None
        }
    };
    let max_steps = match table.get("max_steps") {
        None => DEFAULT_MAX_STEPS,
        Some(toml::Value::Integer(n)) if *n > 0 => *n as u64,
        Some(other) => {
            problems.push(("max_steps".into(), format!("{other} is not a positive integer")));
            DEFAULT_MAX_STEPS
        }
    };
    match model {
        Some(m) if problems.is_empty() => Ok((m, max_steps)),
        _ => Err(problems),
    }
}

/// Registers the built-in `linearizable` (models `register` and `kv`, through
/// [`Application::history_op`]).
pub(crate) fn register_builtin<A: Application>(r: &mut ExpectationRegistry<A>) {
    r.register("linearizable", |p, _| {
        let (model, max_steps) = params(p)?;
        Ok(match model {
            Builtin::Register => Box::new(Linearizable::new(
                RegisterModel,
                max_steps,
                |app: &A, e: &HistoryEntry| -> Mapped<RegisterModel> {
                    match app.history_op(e)? {
                        HistoryOp::Register(op, reply) => Some(Ok((op, reply))),
                        HistoryOp::Kv(..) => Some(Err("a kv operation, but the plan checks model register")),
                    }
                },
            )) as Box<dyn Expectation<A>>,
            Builtin::Kv => {
                Box::new(Linearizable::new(KvModel, max_steps, |app: &A, e: &HistoryEntry| -> Mapped<KvModel> {
                    match app.history_op(e)? {
                        HistoryOp::Kv(input, reply) => Some(Ok((input, reply))),
                        HistoryOp::Register(..) => Some(Err("a register operation, but the plan checks model kv")),
                    }
                }))
            }
        })
    });
}

/// What a mapping from history entries gives: the model input and output, `Err` with why it
/// cannot be checked, or `None` when the entry constrains nothing.
type Mapped<M> = Option<Result<(<M as Model>::Input, Option<<M as Model>::Output>), &'static str>>;

/// Safety, at the end of the run: the client history is linearizable for `M`.
pub struct Linearizable<M: Model, F> {
    model: M,
    max_steps: u64,
    map: F,
    evidence: Option<String>,
    /// The last counterexample operation's return, once one is found.
    evidence_at: Option<std::time::Duration>,
}

impl<M: Model, F> Linearizable<M, F> {
    /// Checks against `model` within `max_steps` per partition, reading each entry with `map`.
    pub fn new(model: M, max_steps: u64, map: F) -> Self {
        Linearizable { model, max_steps, map, evidence: None, evidence_at: None }
    }
}

/// The checker's operation for `entry`, whose model input and reply are `mapped`.
fn operation<I, O>(e: &HistoryEntry, input: I, reply: Option<O>) -> Option<Operation<I, O>> {
    let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    match e.outcome {
        // It certainly did not happen: it constrains nothing.
        OpPhase::Fail => None,
        OpPhase::Ok => Some(Operation::new(u64::from(e.user), input, reply, nanos(e.invoke), e.complete.map(nanos))),
        OpPhase::Info | OpPhase::Invoke => Some(Operation::new(u64::from(e.user), input, None, nanos(e.invoke), None)),
    }
}

impl<A, M, F> Expectation<A> for Linearizable<M, F>
where
    A: Application,
    M: Model,
    F: Fn(&A, &HistoryEntry) -> Mapped<M>,
{
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }

    fn check(&mut self, _: &Check<'_, A>) -> Status {
        Status::Holds
    }

    fn at_end(&mut self, cx: &Check<'_, A>) -> Status {
        let mut ops = Vec::new();
        let mut completed = 0usize;
        for e in cx.history {
            completed += usize::from(e.outcome == OpPhase::Ok);
            match (self.map)(cx.app, e) {
                None => {}
                Some(Err(why)) => {
                    return Status::Violated(format!("operation {} ({} by user {}): {why}", e.id, e.op, e.user))
                }
                Some(Ok((input, reply))) => ops.extend(operation(e, input, reply)),
            }
        }
        if ops.is_empty() && completed > 0 {
            return Status::Violated(format!(
                "none of the {completed} completed operations maps to a model operation: the application must \
                 implement Application::history_op for the built-in linearizable"
            ));
        }
        let options =
            CheckOptions { max_steps: Some(self.max_steps), shrink_steps: SHRINK_STEPS, ..CheckOptions::default() };
        match check_with(&self.model, &ops, &options) {
            Ok(CheckResult::Linearizable) => Status::Holds,
            Ok(undecided @ CheckResult::GaveUp { .. }) => Status::Pending(format!(
                "{undecided} of {} operations (raise max_steps, or check fewer operations per key)",
                ops.len()
            )),
            Ok(failed @ CheckResult::NotLinearizable(_)) => {
                if let CheckResult::NotLinearizable(cx) = &failed {
                    self.evidence_at = cx.last_return();
                }
                let full = failed.to_string();
                let message = cap(&full, MAX_MESSAGE);
                if message.len() < full.len() {
                    self.evidence = Some(full);
                }
                Status::Violated(message)
            }
            Err(e) => Status::Violated(format!("the history cannot be checked: {e}")),
        }
    }

    fn evidence(&mut self) -> Option<String> {
        self.evidence.take()
    }

    fn evidence_at(&self) -> Option<std::time::Duration> {
        self.evidence_at
    }
}

/// `text` cut to at most `max` bytes at a line boundary, saying how much was left out.
pub fn cap(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut lines = text.lines();
    for line in lines.by_ref() {
        if out.len() + line.len() + 1 > max.saturating_sub(120) {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    let left = lines.count() + 1;
    out.push_str(&format!("… {left} more lines: the whole counterexample is in the run's evidence (bundle, report)"));
    out
}

impl<A: Application> ExpectationRegistry<A> {
    /// Registers `name` as a linearizability check of the client history against the
    /// application's own `model`: `map` reads each history entry as the model's input and
    /// output (`None`: the entry constrains nothing; `Err`: it cannot be checked, a failure).
    /// Failed entries are left out and unknown outcomes handled by the harness, as for the
    /// built-in models. Parameters: `max_steps`.
    pub fn linearizable_with<M, F>(&mut self, name: &str, model: M, map: F)
    where
        M: Model + Clone + 'static,
        F: Fn(&A, &HistoryEntry) -> Mapped<M> + Clone + 'static,
    {
        let expectation = name.to_owned();
        self.register(name, move |p, _| {
            let steps =
                crate::expect::Params::new(&expectation, p, &["max_steps"]).u64("max_steps", DEFAULT_MAX_STEPS)?;
            Ok(Box::new(Linearizable::new(model.clone(), steps, map.clone())) as Box<dyn Expectation<A>>)
        });
    }
}
