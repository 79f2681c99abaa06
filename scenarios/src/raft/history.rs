//! Turns a run's client history into a linearizability check of a key-value store with the
//! harness's checker ([`gauntlet::lincheck`], model `kv`, partitioned by key).

use super::app::command_for;
use super::core::ClientCommand;
use gauntlet::expect::Status;
use gauntlet::lincheck::{check_with, CheckOptions, CheckResult, KvInput, KvModel, Operation, Reply};

/// Search steps a partition may take before the check gives up (a few seconds at most); an
/// undecided check fails the expectation rather than passing unchecked.
pub const MAX_STEPS: u64 = 50_000_000;
use gauntlet::sim::OpPhase;
use gauntlet::workload::HistoryEntry;

/// The checker's view of one history entry; `None` for operations that certainly did not
/// happen (they constrain nothing).
pub fn operation(e: &HistoryEntry) -> Option<Operation<KvInput, Reply>> {
    let (input, output) = match (command_for(&e.op, e.arg), e.outcome) {
        // A failed operation had no effect, and a read whose answer never came changes
        // nothing: neither constrains the history (and unknowns cost the search dearly).
        (_, OpPhase::Fail) | (ClientCommand::Get { .. }, OpPhase::Info) => return None,
        (ClientCommand::Get { key }, phase) => {
            let out = (phase == OpPhase::Ok).then(|| Reply::value((e.result != "nil").then_some(e.result.as_str())));
            (KvInput::get(key), out)
        }
        (ClientCommand::Put { key, value }, phase) => {
            (KvInput::put(key, &value), (phase == OpPhase::Ok).then_some(Reply::Ack))
        }
        (ClientCommand::Cas { key, expected, new }, phase) => (
            KvInput::cas(key, expected.as_deref(), &new),
            (phase == OpPhase::Ok).then(|| Reply::Cas(e.result == "true")),
        ),
    };
    let nanos = |d: std::time::Duration| d.as_nanos() as u64;
    let ret = if e.outcome == OpPhase::Ok { e.complete.map(nanos) } else { None };
    Some(Operation::new(u64::from(e.user), input, output, nanos(e.invoke), ret))
}

/// Checks `history`: holds when it is linearizable, violated with the minimal counterexample
/// otherwise (and when the checker cannot decide, so that nothing passes unchecked).
///
/// The time is the counterexample's last return (when the evidence was complete), if any.
pub fn check_history(history: &[HistoryEntry]) -> (Status, Option<std::time::Duration>) {
    let ops: Vec<Operation<KvInput, Reply>> = history.iter().filter_map(operation).collect();
    let options = CheckOptions { max_steps: Some(MAX_STEPS), ..CheckOptions::default() };
    match check_with(&KvModel, &ops, &options) {
        Ok(CheckResult::Linearizable) => (Status::Holds, None),
        Ok(other) => {
            let until = match &other {
                CheckResult::NotLinearizable(cx) => cx.last_return(),
                _ => None,
            };
            (Status::Violated(other.to_string()), until)
        }
        Err(e) => (Status::Violated(format!("the history is malformed: {e}")), None),
    }
}
