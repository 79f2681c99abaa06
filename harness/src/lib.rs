//! # gauntlet: scenario plans, the runner, expectations and the observation runtime
//!
//! The flow is **Topology → Scenario → Deployer → Runner → Workloads → Expectations**:
//!
//! * a [`Plan`] (TOML or [`ScenarioBuilder`]) says which application runs on what topology,
//!   under which workloads and chaos, judged by which expectations;
//! * a [`Scenario`] binds the plan to an [`Application`] and validates it, listing every
//!   problem with its path;
//! * a [`Deployer`] ([`SimDeployer`] here) deploys it and the runner drives workloads and the
//!   seeded chaos [`Timeline`](chaos::Timeline), checks expectations through the
//!   [observation runtime](observe) while it runs, then runs a liveness phase;
//! * the [`Verdict`] is pass, or a failure classed crash, safety or liveness.
//!
//! The harness knows no application semantics: applications plug in through [`Application`]
//! and register their own expectations. See `docs/WRITING_SCENARIOS.md`.
//!
//! Node code and expectations say which paths a plan must reach with
//! [`sometimes!`](crate::sometimes!) and [`reachable!`](crate::reachable!); a run records them
//! ([`RunOutcome::probes`]) and a [sweep](sweep::SweepReport::probes) reports, per assertion, in
//! how many seeds it held, and those that never did.

pub use gauntlet_sim as sim;
/// Sometimes-assertions for node code and expectations: see [`gauntlet_sim::probes`].
pub use gauntlet_sim::{reachable, sometimes};

pub mod app;
pub mod builder;
pub mod bundle;
pub mod chaos;
pub mod expect;
#[cfg(madsim)]
pub mod explore;
pub mod files;
pub mod judge;
pub mod lincheck;
pub mod lost_writes;
pub mod mutex;
pub mod observe;
pub mod plan;
pub mod real_app;
pub mod registry;
#[cfg(madsim)]
pub mod runner;
pub mod scenario;
pub mod script;
#[cfg(madsim)]
pub mod shrink;
#[cfg(madsim)]
pub mod sweep;
#[cfg(madsim)]
pub mod testing;
pub mod verdict;
pub mod workload;

pub use app::{
    Application, ClockControl, HttpApplication, HttpCall, HttpReply, Launch, NodeRef, NodeSetup, OpOutcome, Operation,
    Placed, Placement,
};
pub use builder::ScenarioBuilder;
pub use bundle::{Bundle, Summary};
pub use expect::{Check, ClusterView, Expectation, ExpectationRegistry, NodeView, Status};
pub use plan::{Plan, PlanError, Problem};
pub use registry::Registry;
#[cfg(madsim)]
pub use runner::{run, Deployer, SimDeployer};
pub use scenario::Scenario;
#[cfg(madsim)]
pub use shrink::shrink;
#[cfg(madsim)]
pub use sweep::{sweep, ProbeSummary};
pub use verdict::{Failure, FailureClass, Finding, FindingKind, MembershipChange, Observation, RunOutcome, Verdict};

use std::time::Duration;

/// `n` seconds.
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `n` milliseconds.
pub const fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}
