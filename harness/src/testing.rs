//! Running scenarios from `cargo test`: a failing run prints, before anything else, the line
//! that replays it and the path of its bundle.
//!
//! ```
//! use gauntlet::testing::TestRun;
//! use gauntlet::sim::Seeds;
//! let t = TestRun::new("gauntlet-scenarios", "raft", "kv_partition_passes");
//! assert_eq!(
//!     t.replay_line(Seeds { sim: 5, chaos: 9 }),
//!     "SIM_SEED=5 CHAOS_SEED=9 cargo test -p gauntlet-scenarios --test raft kv_partition_passes"
//! );
//! ```

use crate::bundle::{Bundle, EXTENSION};
use crate::{Application, Plan, RunOutcome, Scenario};
use gauntlet_sim::Seeds;
use std::path::PathBuf;

/// Where a test lives, so that its failures can say how to replay them.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The cargo package (`-p`).
    pub package: String,
    /// The integration test binary (`--test`), empty for unit tests.
    pub test: String,
    /// The test's name filter.
    pub name: String,
    /// Where bundles of failing runs go. Default: `$CARGO_TARGET_DIR/gauntlet-bundles` or
    /// `target/gauntlet-bundles` under the workspace.
    pub bundle_dir: PathBuf,
}

impl TestRun {
    /// A test `name` in integration test `test` of `package`.
    pub fn new(package: &str, test: &str, name: &str) -> TestRun {
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"));
        TestRun {
            package: package.to_owned(),
            test: test.to_owned(),
            name: name.to_owned(),
            bundle_dir: target.join("gauntlet-bundles"),
        }
    }

    /// The command that replays the run with `seeds`.
    pub fn replay_line(&self, seeds: Seeds) -> String {
        let test = if self.test.is_empty() { String::new() } else { format!(" --test {}", self.test) };
        format!("SIM_SEED={} CHAOS_SEED={} cargo test -p {}{test} {}", seeds.sim, seeds.chaos, self.package, self.name)
    }

    /// Where the bundle of `plan` run with `seeds` goes.
    pub fn bundle_path(&self, plan: &Plan, seeds: Seeds) -> PathBuf {
        self.bundle_dir.join(format!("{}-{}-{}.{EXTENSION}", plan.name, seeds.sim, seeds.chaos))
    }

    /// Writes the bundle of a failing run (re-running it to keep the trace's events when the
    /// first run kept only the hash) and returns the message a failing test starts with: the
    /// replay line, the bundle's path, then the verdict.
    pub fn failure_report<A: Application + Send + Sync>(&self, scenario: &Scenario<A>, outcome: &RunOutcome) -> String {
        use crate::{Deployer, SimDeployer};
        let seeds = outcome.seeds;
        let path = self.bundle_path(&scenario.plan, seeds);
        let kept = if outcome.trace.as_ref().is_some_and(|t| !t.events().is_empty()) {
            Ok(outcome.clone())
        } else {
            SimDeployer::default().keep_events(true).run(scenario, seeds)
        };
        let bundle = match kept.map(|o| Bundle::of(&scenario.plan, &o).write(&path)) {
            Ok(Ok(())) => path.display().to_string(),
            Ok(Err(e)) => format!("(not written: {e})"),
            Err(e) => format!("(not written: the re-run broke: {e})"),
        };
        format!("replay: {}\nbundle: {bundle}\n{}", self.replay_line(seeds), outcome.verdict)
    }

    /// Runs `scenario` with `seeds`; panics with [`TestRun::failure_report`] when it fails.
    #[track_caller]
    pub fn run_passes<A: Application + Send + Sync>(&self, scenario: &Scenario<A>, seeds: Seeds) -> RunOutcome {
        use crate::{Deployer, SimDeployer};
        let outcome = match SimDeployer::default().run(scenario, seeds) {
            Ok(o) => o,
            Err(e) => panic!("replay: {}\nthe run broke: {e}", self.replay_line(seeds)),
        };
        if !outcome.verdict.passed() {
            panic!("{}", self.failure_report(scenario, &outcome));
        }
        outcome
    }
}

/// The workspace root: the nearest ancestor of this crate's directory with a `Cargo.lock`.
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().find(|d| d.join("Cargo.lock").exists()).map_or(here.clone(), |d| d.to_path_buf())
}
