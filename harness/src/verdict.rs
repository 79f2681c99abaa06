//! How a run ended: [`Verdict`], with failures classified as crash, safety or liveness.

use crate::expect::OpCounts;
use crate::workload::HistoryEntry;
use gauntlet_sim::{FaultSchedule, Seeds};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The class of a failure. Each has its own exit code in the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// A node, a workload or the harness panicked, or the run could not complete.
    Crash,
    /// Something that must never happen happened.
    Safety,
    /// Something that must eventually happen did not happen within the cooldown.
    Liveness,
    /// A scripted run's script went wrong: a Lua error, a bad argument to a module function
    /// (an unknown node), or a limit (instructions, memory, time). The test itself is broken,
    /// not the system (see `docs/SCRIPTING.md`).
    Script,
}

impl FailureClass {
    /// Process exit code for this class: crash 3, safety 1, liveness 4, script 5 (0 is a pass,
    /// 2 usage).
    pub fn exit_code(self) -> i32 {
        match self {
            FailureClass::Safety => 1,
            FailureClass::Crash => 3,
            FailureClass::Liveness => 4,
            FailureClass::Script => 5,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureClass::Crash => "crash",
            FailureClass::Safety => "safety",
            FailureClass::Liveness => "liveness",
            FailureClass::Script => "script",
        })
    }
}

/// One failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Its class.
    pub class: FailureClass,
    /// The expectation (or `workload <name>`, `node <name>`) that failed.
    pub source: String,
    /// Simulated time since the run started.
    pub at: Duration,
    /// What happened.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failure at {:?} in {}: {}", self.class, self.at, self.source, self.message)
    }
}

/// Pass, or the first failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// Every expectation held.
    Pass,
    /// The run failed.
    Fail(Failure),
}

impl Verdict {
    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    /// The failure's class, if any.
    pub fn class(&self) -> Option<FailureClass> {
        match self {
            Verdict::Pass => None,
            Verdict::Fail(f) => Some(f.class),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Pass => f.write_str("pass"),
            Verdict::Fail(failure) => write!(f, "FAIL: {failure}"),
        }
    }
}

/// Everything a run reports.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The plan's name.
    pub plan: String,
    /// The seeds that replay it.
    pub seeds: Seeds,
    /// The verdict.
    pub verdict: Verdict,
    /// Stable trace hash (0 when the run crashed before producing a trace).
    pub trace_hash: u64,
    /// Trace events recorded.
    pub events: u64,
    /// Simulated time the run took.
    pub sim_time: Duration,
    /// Event counts by kind.
    pub counts: BTreeMap<&'static str, u64>,
    /// Operation counts per workload.
    pub ops: BTreeMap<String, OpCounts>,
    /// Fault kinds on in this run (all configured ones, or the swarm's pick).
    pub chaos_kinds: Vec<&'static str>,
    /// The generated and explicit faults, in order.
    pub schedule: FaultSchedule,
    /// When each liveness expectation came to hold, since the run started.
    pub settled: BTreeMap<String, Duration>,
    /// Nodes that joined or left during the run (churn and kills), in order.
    pub membership_changes: Vec<MembershipChange>,
    /// The observation runtime's sources when the run ended, sorted.
    pub observed_sources: Vec<String>,
    /// The trace (events kept).
    pub trace: Option<gauntlet_sim::Trace>,
    /// Every client operation, in invocation order.
    pub history: Vec<HistoryEntry>,
    /// Each change the observation runtime saw in a node's state, in time order.
    pub observations: Vec<Observation>,
    /// Each member's last observed state ([`crate::Application::describe`]), by node name.
    pub final_states: BTreeMap<String, String>,
    /// What expectations reported beyond their verdict: the full evidence behind a capped
    /// failure message (a whole counterexample), or why a check could not decide.
    pub findings: Vec<Finding>,
    /// The sometimes-assertions ([`crate::sometimes!`], [`crate::reachable!`]) by name: every
    /// one in the application's [scope](crate::Application::probe_scope), reached or not,
    /// and any other the run evaluated; each with its kind, how often it was evaluated and
    /// held, and when it first held. A run that crashed (a node panicked) recorded none.
    pub probes: gauntlet_sim::Probes,
}

/// Something an expectation reported beyond pass or fail (kept in the bundle and the report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The expectation.
    pub expectation: String,
    /// What it is.
    pub kind: FindingKind,
    /// The whole text.
    pub text: String,
}

/// The kinds of [`Finding`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FindingKind {
    /// The full evidence of the expectation's failure (its verdict message is capped).
    Evidence,
    /// The expectation could not decide (a search budget ran out): not a failure, but the
    /// run was not fully checked.
    Undecided,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FindingKind::Evidence => "evidence",
            FindingKind::Undecided => "undecided",
        };
        write!(f, "{} ({kind}): {}", self.expectation, self.text)
    }
}

/// A node's observed state changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// When it was seen, since the run started.
    pub at: Duration,
    /// The node.
    pub node: String,
    /// The new state, as [`crate::Application::describe`] renders it.
    pub state: String,
}

/// A node joined or left the membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipChange {
    /// When, since the run started.
    pub at: Duration,
    /// The node.
    pub node: String,
    /// `true` for a join, `false` for a departure (leave or kill).
    pub joined: bool,
}

impl MembershipChange {
    /// The node's name if it joined.
    pub fn joined(&self) -> Option<&str> {
        self.joined.then_some(self.node.as_str())
    }
    /// The node's name if it left.
    pub fn left(&self) -> Option<&str> {
        (!self.joined).then_some(self.node.as_str())
    }
}

impl RunOutcome {
    /// The line that replays this run.
    pub fn replay_line(&self, test_name: &str) -> String {
        format!("{} cargo test {test_name}", self.seeds)
    }
}
