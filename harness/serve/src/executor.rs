//! What the service needs from the command line that embeds it: checking a plan, reading
//! seeds, and the command that runs one seed. The service itself knows no application.

use std::path::Path;
use std::process::Command;

/// A checked plan: what the store keeps about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanInfo {
    /// The plan's name.
    pub name: String,
    /// Its application.
    pub app: String,
}

/// One seed's outcome as the seed's process printed it.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedOutcome {
    /// Whether every expectation held.
    pub passed: bool,
    /// The failure class.
    pub class: Option<String>,
    /// The expectation that failed.
    pub source: Option<String>,
    /// The failure, in words.
    pub message: Option<String>,
    /// The failing seed's bundle.
    pub bundle: Option<String>,
    /// The line that replays the seed.
    pub replay: Option<String>,
    /// The run's trace hash.
    pub trace_hash: Option<String>,
    /// A promotion's comparison with its simulated baseline (both sides' observables and
    /// the deviations), as the executor reports it.
    pub comparison: Option<serde_json::Value>,
}

/// The command line's side of the service.
pub trait Executor: Send + Sync + 'static {
    /// Checks a plan (TOML) with `bugs` switched on against the registered applications, for
    /// `backend` (one of [`Executor::backends`]): its name and application, or every problem
    /// in words (a malformed plan, an unknown application or bug, an application that cannot
    /// run on that backend).
    fn check(&self, plan_toml: &str, bugs: &[String], backend: &str) -> Result<PlanInfo, String>;
    /// The backends runs may name: `sim` (the simulation, the default) and whatever real
    /// backends the command line promotes to. Default: `sim` only.
    fn backends(&self) -> Vec<String> {
        vec!["sim".to_owned()]
    }
    /// How many seeds of a run on `backend` may execute at once (a real backend deploys a
    /// cluster per seed). Default: any number for `sim`, one otherwise.
    fn max_jobs(&self, backend: &str) -> u32 {
        if backend == "sim" {
            u32::MAX
        } else {
            1
        }
    }
    /// The seeds `spec` names (`42`, `0..200`, `100+50`, a commit id), or why not.
    fn seeds(&self, spec: &str) -> Result<Vec<u64>, String>;
    /// The command that runs `seed` of the plan file `plan` with `bugs` on `backend`, writes
    /// a failing seed's bundle (a promotion: its observed bundle) under `out`, and prints its
    /// outcome (see [`Executor::parse_outcome`]). The service ends it with SIGTERM (then
    /// SIGKILL after a grace period), so a promotion can tear its cluster down.
    fn seed_command(&self, plan: &Path, seed: u64, bugs: &[String], backend: &str, out: &Path) -> Command;
    /// Reads the seed command's standard output; `None` if it printed no outcome.
    fn parse_outcome(&self, stdout: &[u8]) -> Option<SeedOutcome>;
    /// One line the seed command printed while it ran, as a live event of the run (kind and
    /// data: e.g. `fault_applied` during a promotion); `None` for any other line. Default:
    /// none.
    fn parse_event(&self, line: &str) -> Option<(String, serde_json::Value)> {
        let _ = line;
        None
    }
    /// `gauntlet diff --json` of two bundles: the first divergent event and the summary diff.
    /// Default: not available.
    fn compare(&self, a: &Path, b: &Path) -> Result<serde_json::Value, String> {
        Err(format!("this command line cannot compare {} and {}", a.display(), b.display()))
    }
    /// Shrinks a failing seed's bundle, writing the shrunk plan to `out`: the plan's text and
    /// the shrinker's report. Default: not available.
    fn shrink(&self, bundle: &Path, out: &Path) -> Result<(String, serde_json::Value), String> {
        let _ = out;
        Err(format!("this command line cannot shrink {}", bundle.display()))
    }
    /// The HTML report of a bundle (the command line's `gauntlet report`), for the dashboard.
    /// Default: none.
    fn report_html(&self, bundle: &Path) -> Result<String, String> {
        Err(format!("this command line renders no report of {}", bundle.display()))
    }
    /// The build that executes runs (part of a run's identity): e.g. the version and the
    /// executable's modification time.
    fn build(&self) -> String;
}
