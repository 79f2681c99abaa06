//! Gossip's own safety expectation, `bumps_raise`: a client's acknowledged bump raises the
//! value of the node it went to above everything that node answered before the bump was sent.

use super::GossipApp;
use gauntlet::expect::Status as Judgement;
use gauntlet::expect::{Check, Expectation};
use gauntlet::sim::trace::OpPhase;
use gauntlet::workload::HistoryEntry;
use gauntlet::FailureClass;
use std::collections::BTreeMap;
use std::time::Duration;

/// How an operation's result names the node that answered and the value it answered.
pub(super) fn result_text(node: &str, value: u64) -> String {
    format!("{node}={value}")
}

fn parse(result: &str) -> Option<(&str, u64)> {
    let (node, value) = result.rsplit_once('=')?;
    Some((node, value.parse().ok()?))
}

/// An acknowledged answer of one node: the operation, when it was sent and returned, the value.
struct Answer<'h> {
    entry: &'h HistoryEntry,
    returned: Duration,
    value: u64,
}

/// Safety: every acknowledged bump answers more than any value its node gave in a reply that
/// returned before the bump was invoked. Nodes persist before they answer and values only grow
/// (the largest wins), so a bump that answers no more than an earlier reply was not applied.
#[derive(Default)]
pub(super) struct BumpsRaise {
    evidence_at: Option<Duration>,
}

impl BumpsRaise {
    /// The first violation in the history (by the bump's return), if any.
    fn violation(history: &[HistoryEntry]) -> Option<(String, Duration)> {
        let mut by_node: BTreeMap<&str, Vec<Answer<'_>>> = BTreeMap::new();
        for e in history.iter().filter(|e| e.outcome == OpPhase::Ok) {
            if let (Some((node, value)), Some(returned)) = (parse(&e.result), e.complete) {
                by_node.entry(node).or_default().push(Answer { entry: e, returned, value });
            }
        }
        let mut first: Option<(String, Duration)> = None;
        for (node, mut answers) in by_node {
            answers.sort_by_key(|a| (a.returned, a.entry.invoke));
            let mut bumps: Vec<&Answer<'_>> = answers.iter().filter(|a| a.entry.op == "bump").collect();
            bumps.sort_by_key(|b| b.entry.invoke);
            // Sweep the bumps by invocation; `best` is the largest answer returned before it.
            let (mut i, mut best): (usize, Option<&Answer<'_>>) = (0, None);
            for bump in bumps {
                while i < answers.len() && answers[i].returned < bump.entry.invoke {
                    if best.is_none_or(|b| answers[i].value > b.value) {
                        best = Some(&answers[i]);
                    }
                    i += 1;
                }
                let Some(prior) = best.filter(|p| bump.value <= p.value) else { continue };
                if first.as_ref().is_some_and(|(_, at)| *at <= bump.returned) {
                    continue;
                }
                let b = bump.entry;
                let p = prior.entry;
                first = Some((
                    format!(
                        "{node} acknowledged {}'s bump #{} (sent at {:?}) with {}, but had already answered {} to {}'s {} #{} (returned at {:?}): the bump was not applied",
                        b.workload, b.id, b.invoke, bump.value, prior.value, p.workload, p.op, p.id, prior.returned
                    ),
                    bump.returned,
                ));
            }
        }
        first
    }
}

impl Expectation<GossipApp> for BumpsRaise {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, _: &Check<'_, GossipApp>) -> Judgement {
        Judgement::Holds
    }
    fn at_end(&mut self, cx: &Check<'_, GossipApp>) -> Judgement {
        match Self::violation(cx.history) {
            Some((message, at)) => {
                self.evidence_at = Some(at);
                Judgement::Violated(message)
            }
            None => Judgement::Holds,
        }
    }
    fn evidence_at(&self) -> Option<Duration> {
        self.evidence_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u64, op: &str, invoke_ms: u64, complete_ms: u64, result: &str) -> HistoryEntry {
        HistoryEntry {
            workload: "bumps".into(),
            user: 0,
            id,
            op: op.into(),
            arg: 0,
            invoke: Duration::from_millis(invoke_ms),
            complete: Some(Duration::from_millis(complete_ms)),
            outcome: OpPhase::Ok,
            result: result.into(),
        }
    }

    #[test]
    fn a_bump_answering_an_earlier_value_of_its_node_is_a_violation() {
        let h = vec![entry(1, "read", 0, 10, "g0=5"), entry(2, "bump", 20, 30, "g0=5")];
        let (message, at) = BumpsRaise::violation(&h).expect("violation");
        assert!(message.contains("bump #2") && message.contains("read #1"), "{message}");
        assert_eq!(at, Duration::from_millis(30));
    }

    #[test]
    fn overlapping_operations_and_other_nodes_do_not_count() {
        let h = vec![
            entry(1, "read", 0, 25, "g0=5"), // returned after the bump was sent: concurrent
            entry(2, "bump", 20, 30, "g0=5"),
            entry(3, "read", 0, 10, "g1=9"),  // another node
            entry(4, "bump", 40, 50, "g0=6"), // raised above everything before it
        ];
        assert!(BumpsRaise::violation(&h).is_none());
    }
}
