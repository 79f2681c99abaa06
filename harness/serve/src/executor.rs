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
}

/// The command line's side of the service.
pub trait Executor: Send + Sync + 'static {
    /// Checks a plan (TOML) with `bugs` switched on against the registered applications: its
    /// name and application, or every problem in words (a malformed plan, an unknown
    /// application or bug).
    fn check(&self, plan_toml: &str, bugs: &[String]) -> Result<PlanInfo, String>;
    /// The seeds `spec` names (`42`, `0..200`, `100+50`, a commit id), or why not.
    fn seeds(&self, spec: &str) -> Result<Vec<u64>, String>;
    /// The command that runs `seed` of the plan file `plan` with `bugs`, writes a failing
    /// seed's bundle under `out`, and prints its outcome (see [`Executor::parse_outcome`]).
    fn seed_command(&self, plan: &Path, seed: u64, bugs: &[String], out: &Path) -> Command;
    /// Reads the seed command's standard output; `None` if it printed no outcome.
    fn parse_outcome(&self, stdout: &[u8]) -> Option<SeedOutcome>;
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
