//! [`Target`]: what a script's modules drive — a simulated world or a real deployment — and
//! [`Halt`], how a script's run stops short.

use crate::expect::Status;
use crate::verdict::{Failure, FailureClass};
use crate::workload::HistoryEntry;
use futures::future::LocalBoxFuture;
use gauntlet_sim::{Fault, LinkConfig};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Why a script stopped before its end: a failure of the system (an expectation, an
/// assertion) or of the script (a Lua error, a bad argument, a limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Halt {
    /// The failure's class: [`FailureClass::Script`] when the script is at fault.
    pub class: FailureClass,
    /// What failed: an expectation's name, `check.assert`, `script`.
    pub source: String,
    /// What happened, starting with the script's file and line when known.
    pub message: String,
}

impl Halt {
    /// The script is at fault (a bad argument, an unknown node): class `script`.
    pub fn script(message: impl Into<String>) -> Halt {
        Halt { class: FailureClass::Script, source: "script".into(), message: message.into() }
    }

    /// The deployment could not do what the script asked (a backend error): class `crash`.
    pub fn crash(message: impl Into<String>) -> Halt {
        Halt { class: FailureClass::Crash, source: "script".into(), message: message.into() }
    }

    /// This halt as a run's failure at `at`.
    pub fn into_failure(self, at: Duration) -> Failure {
        Failure { class: self.class, source: self.source, at, message: self.message }
    }
}

impl fmt::Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failure of {}: {}", self.class, self.source, self.message)
    }
}

impl std::error::Error for Halt {}

/// A node as `sut.status(node)` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// `running`, `crashed` or `paused`.
    pub status: String,
    /// The build it runs (empty when the application has one build).
    pub version: String,
    /// Whether it is ready to serve, as last observed after its last restart (`None`: not
    /// observed since).
    pub ready: Option<bool>,
    /// Its last observed state, described by the application.
    pub state: Option<String>,
}

/// How an operation a script issued ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpReply {
    /// `ok`, `fail` or `info` (unknown: it may or may not have taken effect).
    pub status: &'static str,
    /// The application's result text (a read's value, a failure's reason).
    pub value: String,
}

/// A future a [`Target`] returns: it runs on the script's own task (never sent elsewhere).
pub type Fut<'a, T> = LocalBoxFuture<'a, T>;

/// What a script drives: a simulated world (`harness::runner`) or a real deployment
/// (`gauntlet-backends`). Node names are checked by the script engine before a call reaches
/// the target, so a target may treat an unknown name as a harness error.
pub trait Target {
    /// The backend's name (`sim`, `local`, `compose`).
    fn backend(&self) -> String;
    /// The member nodes, by name, in the plan's order.
    fn nodes(&self) -> Vec<String>;
    /// Time since the run started, in the deployment's time.
    fn now(&self) -> Duration;
    /// The plan the run follows.
    fn plan(&self) -> &crate::Plan;
    /// How often the cluster is observed (polling waits this long between looks).
    fn observe_every(&self) -> Duration {
        self.plan().run.observe_every
    }
    /// The plan's default link model (what `net.latency` and `net.loss` start from).
    fn base_link(&self) -> LinkConfig {
        self.plan().topology.link.clone()
    }
    /// The application's builds (`sut.upgrade`); empty when it has one.
    fn versions(&self) -> Vec<String>;
    /// One node's status.
    fn status(&self, node: &str) -> NodeInfo;
    /// The member leading now, from the latest observation.
    fn leader(&self) -> Option<String>;
    /// Applies a fault now.
    fn apply<'a>(&'a self, fault: Fault) -> Fut<'a, Result<(), Halt>>;
    /// Restarts `node` on build `version` (checked against [`Target::versions`]).
    fn upgrade<'a>(&'a self, node: &'a str, version: &'a str) -> Fut<'a, Result<(), Halt>>;
    /// Issues operation `op` with argument `arg` as logical user `user`, waits at most
    /// `timeout`, and records it in the run's history (workload `script`).
    fn op<'a>(&'a self, op: &'a str, arg: u64, user: u32, timeout: Duration) -> Fut<'a, Result<OpReply, Halt>>;
    /// The application's argument for `op` from named fields and a draw from the script's
    /// stream ([`crate::Application::script_arg`]).
    fn op_arg(&self, op: &str, fields: &BTreeMap<String, String>, random: u64) -> Result<u64, String>;
    /// The operations the application offers.
    fn operations(&self) -> Vec<String>;
    /// Sends an HTTP request to `node`'s API (real backends), answering status and body.
    fn http<'a>(
        &'a self,
        node: &'a str,
        method: &'a str,
        path: &'a str,
        body: &'a str,
    ) -> Fut<'a, Result<(u16, String), Halt>>;
    /// Judges expectation `name` with `params` now: against the latest observation, then
    /// against the history so far. `Err` for an unknown name or bad parameters.
    fn expect<'a>(&'a self, name: &'a str, params: &'a toml::Table) -> Fut<'a, Result<(FailureClass, Status), String>>;
    /// The run's history so far (the plan's workloads' and the script's operations).
    fn history(&self) -> Vec<HistoryEntry>;
    /// Waits `d` in the deployment's time.
    fn sleep<'a>(&'a self, d: Duration) -> Fut<'a, ()>;
    /// A line the script printed (`print`, `log`).
    fn log(&self, line: &str);
}
