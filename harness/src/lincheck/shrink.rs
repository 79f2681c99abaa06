//! One partition prepared for the search, and the shrinking of a non-linearizable partition to a
//! minimal counterexample.
//!
//! A counterexample is a set `S` of completed operations that cannot be linearized **whatever
//! the other operations of the partition did**: every operation outside `S` is *weakened* — it
//! may have taken effect at any instant of its interval, with any result, or not at all (an
//! unknown outcome already is). Weakening only adds behaviours, so:
//! * the verdict is monotone: if the history with `S` strong is linearizable, so is every
//!   history with a subset of `S` strong;
//! * `S` is a genuine witness: the full history is not linearizable, and neither is `S` alone;
//! * a read is never left "orphaned": removing the write whose value it returned does not make
//!   a smaller counterexample, because the weakened write can still explain the read.
//!
//! (Plain deletion would not be sound: `{write 1, write 2, read -> 1}` is a stale read, but
//! deleting the writes leaves `{read -> 1}`, which is "non-linearizable" only because the
//! write that explains it is gone.)
//!
//! Shrinking first finds the shortest prefix `P` (by call time) of the strong operations that
//! is already a counterexample — a binary search, by monotonicity — then removes chunks of
//! `P` (halves, quarters, …, single operations, as in delta debugging) while the rest stays a
//! counterexample. The final pass over single operations makes the result 1-minimal: making
//! any one of its operations weak makes the partition linearizable. Weak operations called
//! after the last strong return are dropped (they cannot precede any strong operation), as are
//! weak reads (they constrain nothing).

use super::search::{search, Found, SearchOp};
use super::{Model, Operation};

/// An operation of one partition, in call order.
pub(crate) struct PartOp<'h, I, O> {
    /// Position in the caller's history.
    pub index: usize,
    pub input: &'h I,
    pub output: Option<&'h O>,
    pub call: u64,
    /// `None`: the outcome is unknown.
    pub ret: Option<u64>,
    /// Held to its recorded outcome (a completed operation the caller did not weaken).
    pub strong: bool,
}

/// One partition's operations, sorted by call time (ties by history position).
pub(crate) struct Partition<'h, I, O> {
    pub ops: Vec<PartOp<'h, I, O>>,
}

impl<'h, I, O> Partition<'h, I, O> {
    pub(crate) fn new(history: &'h [Operation<I, O>], members: &[usize], strong: &dyn Fn(usize) -> bool) -> Self {
        let mut ops: Vec<PartOp<'h, I, O>> = members
            .iter()
            .map(|&index| {
                let op = &history[index];
                PartOp {
                    index,
                    input: &op.input,
                    output: op.output.as_ref(),
                    call: op.call,
                    ret: op.ret,
                    strong: op.ret.is_some() && strong(index),
                }
            })
            .collect();
        ops.sort_by_key(|o| (o.call, o.index));
        Partition { ops }
    }

    /// Local indices of the strong operations, in call order.
    pub(crate) fn strong_ops(&self) -> Vec<usize> {
        (0..self.ops.len()).filter(|&i| self.ops[i].strong).collect()
    }

    /// The search input with exactly the operations in `strong` (local indices) strong and the
    /// rest weakened; `None` when nothing is strong (trivially linearizable). `defer` tries weak
    /// operations after strong ones (good when the search must be exhaustive, as when proving a
    /// shrunk set is still a counterexample); otherwise they go in call order.
    pub(crate) fn instance<M: Model<Input = I, Output = O>>(
        &self,
        model: &M,
        strong: &[usize],
        defer: bool,
    ) -> Option<Vec<SearchOp<'h, I, O>>> {
        let mut is_strong = vec![false; self.ops.len()];
        let mut last_ret = None;
        for &i in strong {
            if let Some(r) = self.ops[i].ret {
                is_strong[i] = true;
                last_ret = Some(last_ret.map_or(r, |t: u64| t.max(r)));
            }
        }
        let end = last_ret?;
        let mut out = Vec::with_capacity(self.ops.len());
        for (i, o) in self.ops.iter().enumerate() {
            if is_strong[i] {
                out.push(SearchOp {
                    input: o.input,
                    output: o.output,
                    call: o.call,
                    ret: o.ret.unwrap_or(end),
                    weak: false,
                    read_only: model.is_read_only(o.input),
                    deferred: false,
                });
            } else if o.call <= end && !model.is_read_only(o.input) {
                let ret = o.ret.map_or(end, |r| r.min(end));
                out.push(SearchOp {
                    input: o.input,
                    output: None,
                    call: o.call,
                    ret,
                    weak: true,
                    read_only: false,
                    deferred: defer,
                });
            }
        }
        Some(out)
    }
}

/// The result of shrinking: local indices in call order, and whether 1-minimality was proved
/// (false when the step budget ran out first).
pub(crate) struct Shrunk {
    pub ops: Vec<usize>,
    pub minimal: bool,
}

/// Shrinks a partition that is not linearizable with `strong` strong, spending at most `budget`
/// search steps in total.
pub(crate) fn shrink<M: Model>(
    model: &M,
    part: &Partition<'_, M::Input, M::Output>,
    strong: Vec<usize>,
    budget: u64,
) -> Shrunk {
    let mut left = budget;
    let mut minimal = true;
    // Some(true): still a counterexample; None: undecided within the budget.
    let mut counterexample = |set: &[usize]| -> Option<bool> {
        let ops = part.instance(model, set, true)?;
        if left == 0 {
            return None;
        }
        let out = search(model, &ops, left);
        left = left.saturating_sub(out.steps);
        match out.found {
            Found::NotLinearizable => Some(true),
            Found::Linearizable => Some(false),
            Found::GaveUp => None,
        }
    };

    // The shortest counterexample prefix (the whole set is one).
    let (mut lo, mut hi) = (1, strong.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match counterexample(&strong[..mid]) {
            Some(true) => hi = mid,
            Some(false) => lo = mid + 1,
            None => {
                minimal = false;
                lo = mid + 1;
            }
        }
    }
    let mut set = strong;
    set.truncate(hi);
    // The prefix's last operation is needed: without it the shorter prefix is linearizable.
    let Some(last) = set.pop() else {
        return Shrunk { ops: set, minimal: false };
    };

    let mut chunk = set.len().div_ceil(2).max(1);
    loop {
        let mut i = 0;
        while i < set.len() {
            let end = (i + chunk).min(set.len());
            let trial: Vec<usize> = set[..i].iter().chain(&set[end..]).copied().chain([last]).collect();
            match counterexample(&trial) {
                Some(true) => {
                    set.drain(i..end);
                }
                Some(false) => i = end,
                None => {
                    minimal = false;
                    i = end;
                }
            }
        }
        if chunk == 1 || set.is_empty() {
            break;
        }
        chunk = chunk.div_ceil(2);
    }
    set.push(last);
    Shrunk { ops: set, minimal }
}
