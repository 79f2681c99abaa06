//! Linearizability checking: is there a total order of a concurrent history's operations,
//! consistent with their real-time order, in which a sequential [`Model`] explains every result?
//!
//! ```
//! use gauntlet::lincheck::{check, CheckResult, Operation, RegisterModel, RegisterOp, Reply};
//!
//! // Client 1 writes "1" during [0, 10] ns; client 2 reads during [5, 25], concurrently, and
//! // sees nothing yet: linearizable (the read takes effect first).
//! let history = vec![
//!     Operation::new(1, RegisterOp::Write("1".into()), Some(Reply::Ack), 0, Some(10)),
//!     Operation::new(2, RegisterOp::Read, Some(Reply::value(None)), 5, Some(25)),
//! ];
//! assert_eq!(check(&RegisterModel, &history).unwrap(), CheckResult::Linearizable);
//!
//! // A read that starts after the write returned must see it: a stale read.
//! let mut stale = history.clone();
//! stale.push(Operation::new(3, RegisterOp::Read, Some(Reply::value(None)), 40, Some(50)));
//! let CheckResult::NotLinearizable(cx) = check(&RegisterModel, &stale).unwrap() else { panic!() };
//! // The minimal counterexample: the write and the stale read.
//! assert_eq!(cx.operations.iter().map(|o| o.index).collect::<Vec<_>>(), [0, 2]);
//! println!("{cx}");
//! ```
//!
//! # The checker
//!
//! [`check`] runs the search Porcupine uses — Wing & Gong's, with Lowe's just-in-time
//! linearization and memoisation of visited (linearized set, model state) configurations — on
//! each partition of the history separately (P-compositionality: a [`Model`] may split a
//! history by key with [`Model::partition_key`] when operations on different keys are
//! independent, as in a key-value store). Results are deterministic.
//!
//! An [`Operation`] has a call time and, if it completed, a return time; it took effect at
//! one instant in between. An operation whose outcome is unknown (a timeout: `ret: None`)
//! may have taken effect at any instant after its call, or never, and its output is ignored.
//! Operations that certainly failed must be left out of the history.
//!
//! When a partition is not linearizable, the result carries a [`Counterexample`]: a minimal
//! set of its completed operations that cannot be linearized whatever the partition's other
//! operations did (each of those is allowed to take effect within its interval, with any
//! result, or not at all). It is 1-minimal: making any one of its operations just as free
//! makes the partition linearizable ([`check_weakened`] checks exactly that).
//!
//! Two models are built in: [`RegisterModel`] and [`KvModel`]. Histories in the JSON-lines
//! format of `docs/LINEARIZABILITY.md` are read by [`history::read_history`]; `gauntlet
//! check-history FILE --model register|kv` is the command-line front end. [`synth`] makes
//! linearizable histories of any size for tests and benchmarks.

pub mod expectation;
pub mod history;
mod models;
mod search;
mod shrink;
pub mod synth;

pub use expectation::HistoryOp;
pub use models::{KvInput, KvModel, KvOp, RegisterModel, RegisterOp, Reply, Value};

use search::{search, Found, Interner};
use shrink::{shrink, Partition};
use std::fmt::{self, Debug};
use std::hash::Hash;

/// A sequential specification: states, and which outputs an input may produce in each.
pub trait Model {
    /// A state of the specification (for a partitioned model, the state of one partition).
    type State: Clone + Eq + Hash;
    /// An operation's input (what was asked).
    type Input: Clone + Debug;
    /// An operation's output (what was answered).
    type Output: Clone + Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Applies `input` to `state`: the new state if `output` is a possible result, `None` if
    /// it is not. `output: None` means the result is unknown and any result is fine; the step
    /// should then succeed in every state.
    fn step(&self, state: &Self::State, input: &Self::Input, output: Option<&Self::Output>) -> Option<Self::State>;

    /// Operations with the same key are checked together, each key on its own from
    /// [`Model::init`]; operations with different keys must be independent. `None` (the
    /// default) is one more key.
    fn partition_key(&self, _input: &Self::Input) -> Option<String> {
        None
    }

    /// Whether `input` never changes the state (a read). An unknown-outcome read constrains
    /// nothing and is dropped before the search. Default `false`, which is always correct.
    fn is_read_only(&self, _input: &Self::Input) -> bool {
        false
    }

    /// Pruning (optional): an operation that completed with `output` does not fit `state` now;
    /// could it still fit after some of `pending` (the operations that may yet be linearized
    /// before it returns) were applied, in any order and any number? `false` lets the search
    /// abandon `state` at once. It must be `true` whenever that is possible; the default, `true`,
    /// is always correct. Models whose values move in known directions gain the most: an
    /// append-only value can only grow, so a read that is not an extension of the current value
    /// (or of a value some pending write sets) can never fit.
    fn may_fit_later(
        &self,
        _state: &Self::State,
        _input: &Self::Input,
        _output: &Self::Output,
        _pending: &mut dyn Iterator<Item = &Self::Input>,
    ) -> bool {
        true
    }

    /// One line for a counterexample, e.g. `write("1")` or `read() -> "1"`.
    fn describe(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        match output {
            Some(o) => format!("{input:?} -> {o:?}"),
            None => format!("{input:?} -> ?"),
        }
    }
}

/// One operation of a concurrent history. Times are nanoseconds on one clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// Who issued it (shown in counterexamples; the checker does not need it).
    pub client: u64,
    /// What was asked.
    pub input: I,
    /// What was answered; `None` if not recorded (any output is accepted). Ignored when the
    /// outcome is unknown.
    pub output: Option<O>,
    /// When it was invoked.
    pub call: u64,
    /// When it completed; `None` if the outcome is unknown (it may take effect at any later
    /// instant, or never).
    pub ret: Option<u64>,
}

impl<I, O> Operation<I, O> {
    /// An operation; `ret: None` for an unknown outcome.
    pub fn new(client: u64, input: I, output: Option<O>, call: u64, ret: Option<u64>) -> Self {
        Operation { client, input, output, call, ret }
    }
}

/// A history the checker cannot take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidHistory {
    /// An operation returned before it was called.
    #[error("operation {index} returns at {ret} ns, before its call at {call} ns")]
    ReturnBeforeCall {
        /// Its position in the history.
        index: usize,
        /// Its call time.
        call: u64,
        /// Its return time.
        ret: u64,
    },
    /// [`check_weakened`] was given a position outside the history.
    #[error("no operation {index}: the history has {len}")]
    NoSuchOperation {
        /// The bad position.
        index: usize,
        /// The history's length.
        len: usize,
    },
    /// A partition holds more operations than the search can index.
    #[error("partition {partition:?} has {len} operations; at most 2^30 are supported")]
    TooLarge {
        /// The partition's key.
        partition: Option<String>,
        /// Its number of operations.
        len: usize,
    },
}

/// Search limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// Give up on a partition after about this many search steps (an operation tried,
    /// skipped or checked; the count reported may exceed it by a few). Default: no limit.
    pub max_steps: Option<u64>,
    /// Shrink a failing partition's counterexample (default `true`). Without it the
    /// counterexample is the partition's completed operations.
    pub minimize: bool,
    /// Total steps shrinking may spend; when they run out the counterexample is still a
    /// counterexample but may not be minimal ([`Counterexample::minimal`]). Default 20 M
    /// (a second or two at most).
    pub shrink_steps: u64,
    /// Stop at the first failing partition (Porcupine's behaviour, for verdict-only use):
    /// [`Counterexample::failing_partitions`] then names only that one. Default `false`:
    /// every partition is checked, and the counterexample comes from the smallest failing one.
    pub first_failure: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { max_steps: None, minimize: true, shrink_steps: 20_000_000, first_failure: false }
    }
}

/// The verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// Every partition has a linearization.
    Linearizable,
    /// Some partition has none.
    NotLinearizable(Counterexample),
    /// A partition exhausted [`CheckOptions::max_steps`] and no partition was found not
    /// linearizable.
    GaveUp {
        /// The first partition (in key order) that gave up.
        partition: Option<String>,
        /// The steps it took.
        steps: u64,
    },
}

impl CheckResult {
    /// Whether the verdict is [`CheckResult::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        matches!(self, CheckResult::Linearizable)
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckResult::Linearizable => f.write_str("linearizable"),
            CheckResult::NotLinearizable(cx) => write!(f, "not linearizable: {cx}"),
            CheckResult::GaveUp { partition, steps } => {
                write!(f, "undecided: gave up after {steps} steps in partition {}", show_key(partition))
            }
        }
    }
}

/// Why a partition is not linearizable: operations that cannot be linearized, whatever the
/// partition's other operations did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counterexample {
    /// The partition's key (`None` for an unpartitioned model).
    pub partition: Option<String>,
    /// The operations, in call order.
    pub operations: Vec<CounterexampleOp>,
    /// Whether 1-minimality was established (false if shrinking was off or ran out of steps).
    pub minimal: bool,
    /// The number of operations in the partition.
    pub partition_len: usize,
    /// Every partition that is not linearizable, in key order (the counterexample comes from
    /// the smallest of them, fewest operations first).
    pub failing_partitions: Vec<Option<String>>,
}

/// One operation of a [`Counterexample`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterexampleOp {
    /// Its position in the checked history.
    pub index: usize,
    /// Its client.
    pub client: u64,
    /// Call time (ns).
    pub call: u64,
    /// Return time (ns); a counterexample holds only completed operations.
    pub ret: u64,
    /// Input and output, from [`Model::describe`].
    pub description: String,
}

fn show_key(key: &Option<String>) -> String {
    match key {
        Some(k) => format!("{k:?}"),
        None => "(all)".into(),
    }
}

impl Counterexample {
    /// When the evidence was complete: the latest return among its operations (`None` for an
    /// empty counterexample).
    pub fn last_return(&self) -> Option<std::time::Duration> {
        self.operations.iter().map(|o| o.ret).max().map(std::time::Duration::from_nanos)
    }
}

impl fmt::Display for Counterexample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.operations.len();
        write!(
            f,
            "partition {}: {} of its {} operations cannot be linearized{}, whatever the others did",
            show_key(&self.partition),
            n,
            self.partition_len,
            if self.minimal { " (a minimal set)" } else { "" },
        )?;
        if self.failing_partitions.len() > 1 {
            write!(f, " ({} partitions fail in all)", self.failing_partitions.len())?;
        }
        for op in &self.operations {
            write!(
                f,
                "\n  op {:<6} client {:<4} call {:>14}  return {:>14}  {}",
                op.index, op.client, op.call, op.ret, op.description
            )?;
        }
        Ok(())
    }
}

/// Checks `history` against `model` with the default [`CheckOptions`] (no step limit).
pub fn check<M: Model>(model: &M, history: &[Operation<M::Input, M::Output>]) -> Result<CheckResult, InvalidHistory> {
    check_with(model, history, &CheckOptions::default())
}

/// Checks `history` against `model` within `options`' limits.
pub fn check_with<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    options: &CheckOptions,
) -> Result<CheckResult, InvalidHistory> {
    run(model, history, &|_| true, options)
}

/// Checks `history` with only the operations at positions `strong` held to their recorded
/// outcome: every other operation may have taken effect at any instant of its interval, with
/// any result, or not at all. A [`Counterexample`]'s operations make this not linearizable,
/// and every set with one of them left out makes it linearizable.
pub fn check_weakened<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    strong: &[usize],
) -> Result<CheckResult, InvalidHistory> {
    let mut keep = vec![false; history.len()];
    for &index in strong {
        *keep.get_mut(index).ok_or(InvalidHistory::NoSuchOperation { index, len: history.len() })? = true;
    }
    run(model, history, &|i| keep[i], &CheckOptions::default())
}

fn run<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    strong: &dyn Fn(usize) -> bool,
    options: &CheckOptions,
) -> Result<CheckResult, InvalidHistory> {
    for (index, op) in history.iter().enumerate() {
        if let Some(ret) = op.ret {
            if ret < op.call {
                return Err(InvalidHistory::ReturnBeforeCall { index, call: op.call, ret });
            }
        }
    }
    // Partitions by key, in key order.
    let mut keys = Interner::default();
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (i, op) in history.iter().enumerate() {
        let id = keys.intern(model.partition_key(&op.input)) as usize;
        if id == members.len() {
            members.push(Vec::new());
        }
        members[id].push(i);
    }
    let keys = keys.into_items();
    // Smallest partitions first (ties in key order): the first failing one is the smallest,
    // so the counterexample is shrunk from the fewest operations, and a verdict-only check
    // ([`CheckOptions::first_failure`]) stops after the least work.
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by(|&a, &b| members[a].len().cmp(&members[b].len()).then_with(|| keys[a].cmp(&keys[b])));
    if let Some(&p) = order.iter().find(|&&p| members[p].len() >= 1 << 30) {
        return Err(InvalidHistory::TooLarge { partition: keys[p].clone(), len: members[p].len() });
    }

    let max_steps = options.max_steps.unwrap_or(u64::MAX);
    let mut failing = Vec::new();
    let mut first: Option<Counterexample> = None;
    let mut gave_up = None;
    for p in order {
        let part = Partition::new(history, &members[p], strong);
        let strong_ops = part.strong_ops();
        let Some(ops) = part.instance(model, &strong_ops, false) else { continue };
        let out = search(model, &ops, max_steps);
        match out.found {
            Found::Linearizable => {}
            Found::GaveUp => {
                gave_up.get_or_insert((keys[p].clone(), out.steps));
            }
            Found::NotLinearizable => {
                failing.push(keys[p].clone());
                if first.is_none() {
                    let shrunk = if options.minimize {
                        shrink(model, &part, strong_ops, options.shrink_steps)
                    } else {
                        shrink::Shrunk { ops: strong_ops, minimal: false }
                    };
                    let operations = shrunk
                        .ops
                        .iter()
                        .map(|&i| {
                            let o = &part.ops[i];
                            CounterexampleOp {
                                index: o.index,
                                client: history[o.index].client,
                                call: o.call,
                                ret: o.ret.unwrap_or(o.call),
                                description: model.describe(o.input, o.output),
                            }
                        })
                        .collect();
                    first = Some(Counterexample {
                        partition: keys[p].clone(),
                        operations,
                        minimal: shrunk.minimal,
                        partition_len: part.ops.len(),
                        failing_partitions: Vec::new(),
                    });
                }
                if options.first_failure {
                    break;
                }
            }
        }
    }
    Ok(match (first, gave_up) {
        (Some(mut cx), _) => {
            // Reported in key order, whatever order they were checked in.
            failing.sort();
            cx.failing_partitions = failing;
            CheckResult::NotLinearizable(cx)
        }
        (None, Some((partition, steps))) => CheckResult::GaveUp { partition, steps },
        (None, None) => CheckResult::Linearizable,
    })
}
