//! The built-in `mutual_exclusion` expectation: no two clients held a lock at the same true
//! time. Clients acquire a lock, hold it a while and release it; a client holds the lock from
//! the moment its acquisition was acknowledged until it next invokes an operation on the lock
//! (its release). Two such holds of different clients that overlap in the history's time (one
//! clock: the harness's) are a violation. An application maps its history entries to lock
//! operations with [`Application::lock_op`](crate::Application::lock_op).
//!
//! With `trust = "lease"` a client trusts its lock only as long as the lease it was granted
//! under can still be running: until its acquisition's invocation plus the lease's time to
//! live, whichever ends first. That is what a careful client of a lease-based lock can know;
//! the default (`trust = "release"`) is what a client of a lock service believes.
//!
//! ```
//! use gauntlet::mutex::{holds, overlaps, LockOp, Trust};
//! use gauntlet::sim::OpPhase;
//! use gauntlet::workload::HistoryEntry;
//! use std::time::Duration;
//! let entry = |user, id, at: u64, done: u64, result: &str| HistoryEntry {
//!     workload: "w".into(), user, id, op: "lock".into(), arg: 0,
//!     invoke: Duration::from_millis(at), complete: Some(Duration::from_millis(done)),
//!     outcome: OpPhase::Ok, result: result.into(),
//! };
//! // Client 0 acquires at 10 ms and releases at 50; client 1's acquisition came back at 40.
//! let history = [entry(0, 0, 0, 10, "acquired"), entry(1, 1, 5, 40, "acquired"), entry(0, 2, 50, 51, "released")];
//! let map = |e: &HistoryEntry| Some(if e.result == "acquired" {
//!     LockOp::Acquire { lease: Some(Duration::from_millis(20)) }
//! } else {
//!     LockOp::Release
//! });
//! let held = holds(&history, map);
//! assert_eq!(overlaps(&held, Trust::Release).len(), 1);
//! // Client 0's lease (20 ms from its request at 0) ran out before client 1 acquired.
//! assert!(overlaps(&held, Trust::Lease).is_empty());
//! ```

use crate::expect::{secs, unmapped_history, Check, Expectation, ExpectationRegistry, Params, Status};
use crate::verdict::FailureClass;
use crate::workload::HistoryEntry;
use crate::Application;
use gauntlet_sim::OpPhase;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a history entry is to the lock check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockOp {
    /// An attempt to acquire the lock. When it succeeded its client holds the lock from the
    /// entry's completion; `lease` is how long the lock is granted for at most, counted from
    /// the entry's invocation (a lease's time to live), if it has such a bound.
    Acquire {
        /// The lease's time to live, if the lock is leased.
        lease: Option<Duration>,
    },
    /// Any other operation on the lock (a release): it ends a hold its client had.
    Release,
}

/// How long a client trusts a lock it acquired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Until it releases it (its next operation on the lock).
    Release,
    /// Until it releases it or its lease may have run out, whichever comes first.
    Lease,
}

/// One client's hold of the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The client: its workload and user.
    pub client: (String, u32),
    /// The acquisition's operation id.
    pub op: u64,
    /// The acquisition's result text (the lock's key, say).
    pub result: String,
    /// When the acquisition was acknowledged.
    pub from: Duration,
    /// When the client next invoked an operation on the lock (`None`: never, by the end).
    pub released: Option<Duration>,
    /// When its lease may have run out: the acquisition's invocation plus the lease.
    pub lease_end: Option<Duration>,
}

impl Hold {
    /// When the client stops trusting the lock under `trust` (`None`: never in the history).
    pub fn until(&self, trust: Trust) -> Option<Duration> {
        match (trust, self.released, self.lease_end) {
            (Trust::Lease, Some(r), Some(l)) => Some(r.min(l)),
            (Trust::Lease, None, Some(l)) => Some(l),
            (_, released, _) => released,
        }
    }
}

/// Every hold in `history`, in the order they began, with entries mapped by `map`. Holds are
/// successful acquisitions; a client's hold ends at its next mapped entry's invocation.
pub fn holds(history: &[HistoryEntry], map: impl Fn(&HistoryEntry) -> Option<LockOp>) -> Vec<Hold> {
    let mut open: BTreeMap<(String, u32), usize> = BTreeMap::new();
    let mut out: Vec<Hold> = Vec::new();
    let mut entries: Vec<(&HistoryEntry, LockOp)> = history.iter().filter_map(|e| map(e).map(|op| (e, op))).collect();
    entries.sort_by_key(|(e, _)| (e.invoke, e.id));
    for (e, op) in entries {
        let client = (e.workload.clone(), e.user);
        if let Some(i) = open.remove(&client) {
            out[i].released = Some(e.invoke);
        }
        if let (LockOp::Acquire { lease }, OpPhase::Ok, Some(done)) = (op, e.outcome, e.complete) {
            open.insert(client.clone(), out.len());
            out.push(Hold {
                client,
                op: e.id,
                result: e.result.clone(),
                from: done,
                released: None,
                lease_end: lease.map(|l| e.invoke + l),
            });
        }
    }
    out.sort_by(|a, b| (a.from, &a.client).cmp(&(b.from, &b.client)));
    out
}

/// The pairs `(i, j)` of holds (indices into `holds`, sorted as [`holds`] returns them, `i`
/// the earlier) of different clients that overlap when clients trust locks as `trust` says.
pub fn overlaps(holds: &[Hold], trust: Trust) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (i, a) in holds.iter().enumerate() {
        let end = a.until(trust);
        if end.is_some_and(|end| end <= a.from) {
            continue; // Never trusted: the acknowledgement came after the lease ran out.
        }
        for (j, b) in holds.iter().enumerate().skip(i + 1) {
            if end.is_some_and(|end| b.from >= end) {
                break; // Sorted by start: no later hold begins before `a` ends either.
            }
            if b.client != a.client && b.until(trust).is_none_or(|e| e > b.from) {
                out.push((i, j));
            }
        }
    }
    out
}

/// Why overlapping holds of leased locks overlapped, counted over pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseExplanation {
    /// One of the two was acknowledged only after its lease had run out (the lock service
    /// granted a lock it no longer had; no client can be safe from that but by its lease).
    pub late: usize,
    /// Otherwise: the earlier holder kept the lock past its lease (the client's doing).
    pub outheld: usize,
    /// Both were within their leases: the lease itself did not exclude.
    pub within: usize,
}

/// Explains each overlapping pair of `found` (from [`overlaps`]) by the holds' leases.
pub fn explain(held: &[Hold], found: &[(usize, usize)]) -> LeaseExplanation {
    let mut why = LeaseExplanation::default();
    for &(i, j) in found {
        let (a, b) = (&held[i], &held[j]);
        let late = |h: &Hold| h.lease_end.is_some_and(|l| l <= h.from);
        if late(a) || late(b) {
            why.late += 1;
        } else if a.lease_end.is_some_and(|l| b.from >= l) {
            why.outheld += 1;
        } else {
            why.within += 1;
        }
    }
    why
}

/// Registers `mutual_exclusion`.
pub(crate) fn register_builtin<A: Application>(r: &mut ExpectationRegistry<A>) {
    r.register("mutual_exclusion", |p, plan| {
        let trust = match Params::new("mutual_exclusion", p, &["trust"]).choice("trust", &["release", "lease"])? {
            "lease" => Trust::Lease,
            _ => Trust::Release,
        };
        if let Some(w) = plan.workloads.iter().find(|w| !w.closed_loop) {
            return Err(vec![(
                String::new(),
                format!(
                    "mutual_exclusion needs each client to have one operation at a time: set closed_loop = true in \
                     workload {:?}",
                    w.name
                ),
            )]);
        }
        Ok(Box::new(MutualExclusion { trust, evidence: None, evidence_at: None }) as Box<dyn Expectation<A>>)
    });
}

/// Safety, at the end of the run: no two clients held the lock at once.
struct MutualExclusion {
    trust: Trust,
    evidence: Option<String>,
    evidence_at: Option<Duration>,
}

/// At most this many overlapping pairs are listed in the evidence.
const LISTED: usize = 50;

fn until(d: Option<Duration>) -> String {
    d.map_or_else(|| "the end".to_owned(), secs)
}

fn describe(h: &Hold, trust: Trust) -> String {
    let (w, u) = &h.client;
    format!("client {w}/{u} (op {}, {}) from {} until {}", h.op, h.result, secs(h.from), until(h.until(trust)))
}

impl<A: Application> Expectation<A> for MutualExclusion {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }

    fn check(&mut self, _: &Check<'_, A>) -> Status {
        Status::Holds
    }

    fn at_end(&mut self, cx: &Check<'_, A>) -> Status {
        let mapped = |e: &HistoryEntry| cx.app.lock_op(e).is_some();
        if let Some(missing) = unmapped_history(cx.history, mapped, "a lock operation", "lock_op", "mutual_exclusion") {
            return missing;
        }
        let held = holds(cx.history, |e| cx.app.lock_op(e));
        if held.is_empty() {
            return Status::Pending("no client acquired the lock: nothing to hold mutual exclusion to".into());
        }
        let found = overlaps(&held, self.trust);
        let Some(&(i, j)) = found.first() else {
            return Status::Holds;
        };
        let mut message = format!(
            "two clients held the lock at once: {} and {}; {} overlapping pairs in {} acquisitions",
            describe(&held[i], self.trust),
            describe(&held[j], self.trust),
            found.len(),
            held.len()
        );
        if held.iter().all(|h| h.lease_end.is_some()) {
            let why = explain(&held, &found);
            message.push_str(&format!(
                "; leases: in {} of the pairs a holder's acquisition was acknowledged only after its lease had run \
                 out, in {} a holder kept the lock past its lease, in {} both leases were still running",
                why.late, why.outheld, why.within
            ));
        }
        let listed: Vec<String> = found
            .iter()
            .take(LISTED)
            .map(|&(a, b)| format!("{}\n  overlaps {}", describe(&held[a], self.trust), describe(&held[b], self.trust)))
            .collect();
        self.evidence = Some(format!(
            "{} acquisitions, {} overlapping pairs (first {} listed):\n{}",
            held.len(),
            found.len(),
            listed.len(),
            listed.join("\n")
        ));
        self.evidence_at = Some(held[j].from);
        Status::Violated(message)
    }

    fn evidence(&mut self) -> Option<String> {
        self.evidence.clone()
    }

    fn evidence_at(&self) -> Option<Duration> {
        self.evidence_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(user: u32, id: u64, at: u64, done: Option<u64>, outcome: OpPhase, result: &str) -> HistoryEntry {
        HistoryEntry {
            workload: "w".into(),
            user,
            id,
            op: "lock".into(),
            arg: 0,
            invoke: Duration::from_millis(at),
            complete: done.map(Duration::from_millis),
            outcome,
            result: result.into(),
        }
    }

    fn map(e: &HistoryEntry) -> Option<LockOp> {
        Some(if e.result.starts_with("acquired") {
            LockOp::Acquire { lease: Some(Duration::from_millis(100)) }
        } else {
            LockOp::Release
        })
    }

    #[test]
    fn holds_in_turn_do_not_overlap() {
        let h = [
            entry(0, 0, 0, Some(10), OpPhase::Ok, "acquired"),
            entry(1, 1, 5, Some(31), OpPhase::Ok, "acquired"), // waited for 0's release at 30
            entry(0, 2, 30, Some(31), OpPhase::Ok, "released"),
            entry(1, 3, 60, None, OpPhase::Info, "timeout"), // its release timed out: still ends the hold
            entry(2, 4, 61, Some(70), OpPhase::Ok, "acquired"),
        ];
        let held = holds(&h, map);
        assert_eq!(held.len(), 3);
        assert_eq!(held[1].released, Some(Duration::from_millis(60)));
        assert_eq!(held[2].released, None, "never released by the end");
        assert!(overlaps(&held, Trust::Release).is_empty());
    }

    #[test]
    fn an_acquisition_acknowledged_while_another_holds_is_a_violation_unless_its_lease_ran_out() {
        let h = [
            // Client 0's answer came 250 ms after it asked, its 100 ms lease long gone.
            entry(0, 0, 0, Some(250), OpPhase::Ok, "acquired"),
            entry(1, 1, 120, Some(130), OpPhase::Ok, "acquired"),
            entry(1, 2, 300, Some(301), OpPhase::Ok, "released"),
            entry(0, 3, 400, Some(401), OpPhase::Ok, "released"),
            // A failed or unknown acquisition holds nothing.
            entry(2, 4, 140, None, OpPhase::Info, "acquired?"),
            entry(3, 5, 140, Some(150), OpPhase::Fail, "acquired?"),
        ];
        let held = holds(&h, map);
        assert_eq!(held.iter().map(|h| h.client.1).collect::<Vec<_>>(), [1, 0]);
        assert_eq!(overlaps(&held, Trust::Release), [(0, 1)]);
        assert!(overlaps(&held, Trust::Lease).is_empty());
        assert_eq!(explain(&held, &[(0, 1)]), LeaseExplanation { late: 1, outheld: 0, within: 0 });
        // Within the lease it is a violation either way.
        let h2 = [
            entry(0, 0, 0, Some(10), OpPhase::Ok, "acquired"),
            entry(1, 1, 20, Some(30), OpPhase::Ok, "acquired"),
            entry(0, 2, 60, Some(61), OpPhase::Ok, "released"),
        ];
        assert_eq!(overlaps(&holds(&h2, map), Trust::Lease), [(0, 1)]);
        assert_eq!(explain(&holds(&h2, map), &[(0, 1)]), LeaseExplanation { late: 0, outheld: 0, within: 1 });
        // Held past its lease (100 ms from 0), then another client took it.
        let h3 = [
            entry(0, 0, 0, Some(10), OpPhase::Ok, "acquired"),
            entry(1, 1, 110, Some(150), OpPhase::Ok, "acquired"),
            entry(0, 2, 200, Some(201), OpPhase::Ok, "released"),
        ];
        let held3 = holds(&h3, map);
        assert_eq!(
            explain(&held3, &overlaps(&held3, Trust::Release)),
            LeaseExplanation { late: 0, outheld: 1, within: 0 }
        );
        assert!(overlaps(&held3, Trust::Lease).is_empty());
    }
}
