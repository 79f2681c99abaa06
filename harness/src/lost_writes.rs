//! The built-in `no_lost_writes` expectation: Jepsen's set check. Clients add unique elements
//! to a set and read it back; every add the system acknowledged before the last successful read
//! began must be in that read. An application maps its history entries to set operations with
//! [`Application::set_op`](crate::Application::set_op).
//!
//! ```
//! use gauntlet::lost_writes::{lost_writes, SetOp};
//! use gauntlet::sim::OpPhase;
//! use gauntlet::workload::HistoryEntry;
//! use std::time::Duration;
//! let entry = |id, op: &str, at: u64, result: &str| HistoryEntry {
//!     workload: "w".into(), user: 0, id, op: op.into(), arg: 0,
//!     invoke: Duration::from_millis(at), complete: Some(Duration::from_millis(at + 1)),
//!     outcome: OpPhase::Ok, result: result.into(),
//! };
//! let history = [entry(0, "add", 0, "1"), entry(1, "add", 10, "1"), entry(2, "read", 20, "w:0")];
//! let map = |e: &HistoryEntry| Some(match e.op.as_str() {
//!     "add" => SetOp::Add(format!("w:{}", e.id)),
//!     _ => SetOp::Read(e.result.split(',').map(str::to_owned).collect()),
//! });
//! let found = lost_writes(&history, map).unwrap();
//! assert_eq!(found.lost, ["w:1"]);
//! ```

use crate::expect::{secs, unmapped_history, Check, Expectation, ExpectationRegistry, Params, Status};
use crate::verdict::FailureClass;
use crate::workload::HistoryEntry;
use crate::Application;
use gauntlet_sim::OpPhase;
use std::collections::BTreeSet;
use std::time::Duration;

/// What a history entry is to the set check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOp {
    /// Adds this element (unique per operation).
    Add(String),
    /// Read the whole set: these elements (meaningful for a successful read only).
    Read(Vec<String>),
}

/// What the set check found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetCheck {
    /// Acknowledged adds (completed successfully) before the final read began, missing from it.
    pub lost: Vec<String>,
    /// When the lost adds were acknowledged: the first and the last.
    pub lost_acked: Option<(Duration, Duration)>,
    /// Elements in the final read that no operation added.
    pub unexpected: Vec<String>,
    /// Acknowledged adds the final read could be held to.
    pub acknowledged: usize,
    /// Adds whose outcome was unknown (timed out) that the final read holds anyway.
    pub recovered: usize,
    /// The final read: when it began and ended, and how many elements it held.
    pub final_read: (Duration, Duration, usize),
}

/// Runs the set check over `history`, mapping entries with `map`. `None` when no read
/// succeeded (nothing to hold the adds to).
pub fn lost_writes(history: &[HistoryEntry], map: impl Fn(&HistoryEntry) -> Option<SetOp>) -> Option<SetCheck> {
    let mut adds = Vec::new();
    let mut last_read: Option<(&HistoryEntry, Vec<String>)> = None;
    for e in history {
        match map(e) {
            Some(SetOp::Add(element)) => adds.push((e, element)),
            Some(SetOp::Read(elements))
                if e.outcome == OpPhase::Ok && last_read.as_ref().is_none_or(|(r, _)| e.invoke >= r.invoke) =>
            {
                last_read = Some((e, elements));
            }
            _ => {}
        }
    }
    let (read, elements) = last_read?;
    let held: BTreeSet<&str> = elements.iter().map(String::as_str).collect();
    let mut found =
        SetCheck { final_read: (read.invoke, read.complete.unwrap_or(read.invoke), held.len()), ..SetCheck::default() };
    let mut added = BTreeSet::new();
    for (e, element) in &adds {
        added.insert(element.as_str());
        let present = held.contains(element.as_str());
        match (e.outcome, e.complete) {
            (OpPhase::Ok, Some(done)) if done < read.invoke => {
                found.acknowledged += 1;
                if !present {
                    found.lost.push(element.clone());
                    let (first, last) = found.lost_acked.unwrap_or((done, done));
                    found.lost_acked = Some((first.min(done), last.max(done)));
                }
            }
            (OpPhase::Info | OpPhase::Invoke, _) if present => found.recovered += 1,
            _ => {}
        }
    }
    found.unexpected = held.iter().filter(|x| !added.contains(*x)).map(|x| (*x).to_owned()).collect();
    Some(found)
}

/// Registers `no_lost_writes`.
pub(crate) fn register_builtin<A: Application>(r: &mut ExpectationRegistry<A>) {
    r.register("no_lost_writes", |p, _| {
        Params::new("no_lost_writes", p, &[]).done()?;
        Ok(Box::new(NoLostWrites { evidence: None, evidence_at: None }) as Box<dyn Expectation<A>>)
    });
}

/// Safety, at the end of the run: no acknowledged add is missing from the last successful read.
struct NoLostWrites {
    evidence: Option<String>,
    evidence_at: Option<Duration>,
}

/// At most this many elements are named in the verdict line (all of them in the evidence).
const NAMED: usize = 10;

impl<A: Application> Expectation<A> for NoLostWrites {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }

    fn check(&mut self, _: &Check<'_, A>) -> Status {
        Status::Holds
    }

    fn at_end(&mut self, cx: &Check<'_, A>) -> Status {
        let mapped = |e: &HistoryEntry| cx.app.set_op(e).is_some();
        if let Some(missing) = unmapped_history(cx.history, mapped, "a set add or read", "set_op", "no_lost_writes") {
            return missing;
        }
        let Some(found) = lost_writes(cx.history, |e| cx.app.set_op(e)) else {
            return Status::Pending("no read of the set succeeded: nothing to hold the acknowledged adds to".into());
        };
        let (read_at, read_done, size) = found.final_read;
        if found.lost.is_empty() && found.unexpected.is_empty() {
            return Status::Holds;
        }
        let name = |xs: &[String]| {
            let shown: Vec<&str> = xs.iter().take(NAMED).map(String::as_str).collect();
            let more = xs.len().saturating_sub(NAMED);
            if more > 0 {
                format!("{} and {more} more", shown.join(", "))
            } else {
                shown.join(", ")
            }
        };
        let mut parts = Vec::new();
        if let Some((first, last)) = found.lost_acked {
            parts.push(format!(
                "{} of {} acknowledged adds lost ({}; acknowledged between {} and {})",
                found.lost.len(),
                found.acknowledged,
                name(&found.lost),
                secs(first),
                secs(last)
            ));
        }
        if !found.unexpected.is_empty() {
            parts.push(format!("{} elements nobody added ({})", found.unexpected.len(), name(&found.unexpected)));
        }
        let message =
            format!("{}: missing from the last read, at {}, of {size} elements", parts.join("; "), secs(read_at));
        self.evidence = Some(format!(
            "lost: {}\nunexpected: {}\nrecovered (unknown outcome, present): {}",
            found.lost.join(", "),
            found.unexpected.join(", "),
            found.recovered
        ));
        self.evidence_at = Some(read_done);
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

    fn entry(id: u64, op: &str, at: u64, done: Option<u64>, outcome: OpPhase, result: &str) -> HistoryEntry {
        HistoryEntry {
            workload: "w".into(),
            user: 0,
            id,
            op: op.into(),
            arg: 0,
            invoke: Duration::from_millis(at),
            complete: done.map(Duration::from_millis),
            outcome,
            result: result.into(),
        }
    }

    fn map(e: &HistoryEntry) -> Option<SetOp> {
        match e.op.as_str() {
            "add" => Some(SetOp::Add(e.id.to_string())),
            "read" => Some(SetOp::Read(e.result.split(',').filter(|x| !x.is_empty()).map(str::to_owned).collect())),
            _ => None,
        }
    }

    #[test]
    fn an_acknowledged_add_missing_from_the_last_read_is_lost() {
        let h = [
            entry(0, "add", 0, Some(5), OpPhase::Ok, "1"),
            entry(1, "add", 10, Some(15), OpPhase::Ok, "1"),
            entry(2, "add", 20, None, OpPhase::Info, "timeout"),
            entry(3, "add", 30, Some(31), OpPhase::Fail, "READONLY"),
            // Concurrent with the final read: it may or may not be in it.
            entry(4, "add", 99, Some(120), OpPhase::Ok, "1"),
            entry(5, "read", 50, Some(60), OpPhase::Ok, "0"),
            entry(6, "read", 100, Some(110), OpPhase::Ok, "0,2"),
            entry(7, "read", 130, None, OpPhase::Info, ""),
        ];
        let found = lost_writes(&h, map).unwrap();
        assert_eq!(found.lost, ["1"]);
        assert_eq!(found.lost_acked, Some((Duration::from_millis(15), Duration::from_millis(15))));
        assert_eq!((found.acknowledged, found.recovered), (2, 1));
        assert_eq!(found.final_read, (Duration::from_millis(100), Duration::from_millis(110), 2));
        assert!(found.unexpected.is_empty());
    }

    #[test]
    fn elements_nobody_added_are_reported_and_no_read_means_no_verdict() {
        let h = [entry(0, "add", 0, Some(1), OpPhase::Ok, "1"), entry(1, "read", 5, Some(6), OpPhase::Ok, "0,9")];
        let found = lost_writes(&h, map).unwrap();
        assert_eq!((found.lost.len(), found.unexpected.clone()), (0, vec!["9".to_owned()]));
        assert_eq!(lost_writes(&h[..1], map), None);
    }
}
