//! The applications this workspace ships, by the name plans use in `app.name`, so a plan file
//! can be checked and run without writing Rust (`gauntlet check`, `gauntlet run`).

use crate::gossip::GossipApp;
use crate::ledger::Ledger;
use crate::raft::RaftKv;
use gauntlet::plan::{Plan, PlanError, Problem};
use gauntlet::{Application, Scenario};
use std::sync::Arc;

/// Names of the registered applications.
pub const APPS: [&str; 3] = ["gossip", "ledger", "raft-kv"];

/// What a registered application offers, for `gauntlet list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    /// Its name in plans.
    pub name: &'static str,
    /// Node roles.
    pub roles: Vec<String>,
    /// Operations workloads may issue.
    pub operations: Vec<String>,
    /// Expectations plans may name (built-in and the application's own).
    pub expectations: Vec<String>,
    /// Planted bugs (`app.options.bugs`).
    pub bugs: Vec<&'static str>,
    /// Whether chaos can be aimed at its leader.
    pub elects_leaders: bool,
}

fn info<A: Application>(name: &'static str, app: A, bugs: &[&'static str]) -> AppInfo {
    let app = Arc::new(app);
    let catalog = gauntlet::scenario::catalog(app.clone());
    AppInfo {
        name,
        roles: catalog.roles,
        operations: catalog.operations,
        expectations: catalog.expectations.keys().cloned().collect(),
        bugs: bugs.to_vec(),
        elects_leaders: catalog.elects_leaders,
    }
}

/// Every registered application.
pub fn apps() -> Vec<AppInfo> {
    vec![
        info("gossip", GossipApp, &crate::gossip::BUGS),
        info("ledger", Ledger, &crate::ledger::validator::BUG_NAMES),
        info("raft-kv", RaftKv, &crate::raft::bugs::NAMES),
    ]
}

/// Validates `plan` against its application.
pub fn check(plan: &Plan) -> Result<(), PlanError> {
    match plan.app.name.as_str() {
        "gossip" => Scenario::new(GossipApp, plan.clone()).map(|_| ()),
        "raft-kv" => Scenario::new(RaftKv, plan.clone()).map(|_| ()),
        "ledger" => Scenario::new(Ledger, plan.clone()).map(|_| ()),
        other => {
            let mut problems = vec![Problem {
                path: "app.name".into(),
                message: format!("unknown application {other:?}; registered: {}", APPS.join(", ")),
            }];
            problems.extend(plan.problems(None));
            Err(PlanError::Invalid { plan: plan.name.clone(), problems })
        }
    }
}

/// How [`run_with`] runs a plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Keep every trace event (for bundles, replay windows and diffs).
    pub keep_events: bool,
    /// Run twice and fail on the first divergent event.
    pub check_determinism: bool,
}

/// Runs `plan` once under simulation with `seeds`, keeping the trace's events if asked.
#[cfg(madsim)]
pub fn run(plan: &Plan, seeds: gauntlet::sim::Seeds, keep_events: bool) -> Result<gauntlet::RunOutcome, RunPlanError> {
    run_with(plan, seeds, RunOptions { keep_events, ..RunOptions::default() })
}

/// Runs `plan` once under simulation with `seeds` and `options`.
#[cfg(madsim)]
pub fn run_with(
    plan: &Plan,
    seeds: gauntlet::sim::Seeds,
    options: RunOptions,
) -> Result<gauntlet::RunOutcome, RunPlanError> {
    use gauntlet::{Deployer, SimDeployer};
    check(plan)?;
    let deployer = SimDeployer::default().keep_events(options.keep_events).check_determinism(options.check_determinism);
    match plan.app.name.as_str() {
        "gossip" => Ok(deployer.run(&Scenario::new(GossipApp, plan.clone())?, seeds)?),
        "raft-kv" => Ok(deployer.run(&Scenario::new(RaftKv, plan.clone())?, seeds)?),
        "ledger" => Ok(deployer.run(&Scenario::new(Ledger, plan.clone())?, seeds)?),
        _ => unreachable!("check() accepted only registered applications"),
    }
}

/// Why a plan could not be run.
#[cfg(madsim)]
#[derive(Debug, thiserror::Error)]
pub enum RunPlanError {
    /// The plan is invalid.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The world could not run it.
    #[error(transparent)]
    Run(#[from] gauntlet::sim::RunError),
}
