//! The applications this workspace ships, registered by the name plans use in `app.name`, so a
//! plan file can be checked and run without writing Rust (`gauntlet check`, `gauntlet run`, the
//! golden tests). The shipped `gauntlet` binary registers the same four with `gauntlet_cli`.

use crate::gossip::GossipApp;
use crate::ledger::Ledger;
use crate::pbkv::PbKv;
use crate::raft::RaftKv;
use gauntlet::plan::{Plan, PlanError};
use gauntlet::registry::Registry;

pub use gauntlet::registry::{AppInfo, RunOptions, RunPlanError};

/// The reference systems: gossip, raft-kv, the ledger and pb-kv.
pub fn registry() -> Registry {
    Registry::new().with(GossipApp).with(RaftKv).with(Ledger).with(PbKv)
}

/// Every registered application, sorted by name.
pub fn apps() -> Vec<AppInfo> {
    registry().apps()
}

/// Validates `plan` against its application (an unknown one is named with the registered).
pub fn check(plan: &Plan) -> Result<(), PlanError> {
    registry().check(plan)
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
    registry().run_plan(plan, seeds, options)
}
