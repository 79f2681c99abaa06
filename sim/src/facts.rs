//! Ground truth recorded by node code: [`NodeContext::fact`](crate::NodeContext::fact) notes
//! something the node believes or did ("leader for term 3", "lease until 12.4s") with the
//! **true** time of the world, which expectations read (`Check::facts` in the harness) to judge
//! claims no observation could catch in time — two leaders of one term, a lease used past its
//! end. In simulation the facts of a run live on its thread (every run has a fresh one) and are
//! also annotations in the trace; in the real build a fact is a log line.

use std::time::Duration;

/// One fact a node recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fact {
    /// True time since the run started (not the node's skewed clock).
    pub at: Duration,
    /// The node that recorded it.
    pub node: String,
    /// What it is about (`leader`, `lease`, …).
    pub key: String,
    /// Its value (`term=3`, `until=12.400s`, …).
    pub value: String,
}

/// The most facts one run keeps; later ones are counted and dropped.
pub const MAX_FACTS: usize = 1_000_000;

#[cfg(madsim)]
mod imp {
    use super::{Fact, MAX_FACTS};
    use std::cell::RefCell;

    thread_local! {
        static FACTS: RefCell<(Vec<Fact>, u64)> = const { RefCell::new((Vec::new(), 0)) };
    }

    pub(crate) fn record(fact: Fact) {
        FACTS.with(|f| {
            let mut f = f.borrow_mut();
            if f.0.len() < MAX_FACTS {
                f.0.push(fact);
            } else {
                f.1 += 1;
            }
        });
    }

    /// Calls `f` with the facts recorded so far in this thread's run, in time order.
    pub fn with<R>(f: impl FnOnce(&[Fact]) -> R) -> R {
        FACTS.with(|facts| f(&facts.borrow().0))
    }

    /// Facts dropped because [`MAX_FACTS`] were already kept.
    pub fn dropped() -> u64 {
        FACTS.with(|f| f.borrow().1)
    }

    /// Forgets this thread's facts (a world's run starts with none).
    pub fn clear() {
        FACTS.with(|f| *f.borrow_mut() = (Vec::new(), 0));
    }
}

#[cfg(madsim)]
pub(crate) use imp::record;
#[cfg(madsim)]
pub use imp::{clear, dropped, with};
