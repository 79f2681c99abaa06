//! The applications this workspace ships, by the name plans use in `app.name`, so a plan file
//! can be checked and run without writing Rust (`gauntlet check`, `gauntlet run`).

use crate::gossip::GossipApp;
use crate::raft::RaftKv;
use gauntlet::plan::{Plan, PlanError, Problem};
use gauntlet::Scenario;

/// Names of the registered applications.
pub const APPS: [&str; 2] = ["gossip", "raft-kv"];

/// Validates `plan` against its application.
pub fn check(plan: &Plan) -> Result<(), PlanError> {
    match plan.app.name.as_str() {
        "gossip" => Scenario::new(GossipApp, plan.clone()).map(|_| ()),
        "raft-kv" => Scenario::new(RaftKv, plan.clone()).map(|_| ()),
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

/// Runs `plan` once under simulation with `seeds`, keeping the trace's events if asked.
#[cfg(madsim)]
pub fn run(plan: &Plan, seeds: gauntlet::sim::Seeds, keep_events: bool) -> Result<gauntlet::RunOutcome, RunPlanError> {
    use gauntlet::{Deployer, SimDeployer};
    check(plan)?;
    let deployer = SimDeployer::default().keep_events(keep_events);
    match plan.app.name.as_str() {
        "gossip" => Ok(deployer.run(&Scenario::new(GossipApp, plan.clone())?, seeds)?),
        "raft-kv" => Ok(deployer.run(&Scenario::new(RaftKv, plan.clone())?, seeds)?),
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
