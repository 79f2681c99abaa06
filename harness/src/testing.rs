//! Running scenarios from `cargo test`: a failing run prints, before anything else, the line
//! that replays it, the path of its bundle, and (unless `GAUNTLET_SHRINK=0`) a shrunk
//! reproducer — a plan with an explicit fault schedule, and its bundle.
//!
//! [`test_run!`](crate::test_run) makes a [`TestRun`] that knows where it is: the package and
//! test target from the calling crate, the test's name from the test harness, the profile and
//! `--ignored` from how the test binary was started, and bundles under that crate's own
//! target directory.
//!
//! ```
//! use gauntlet::testing::TestRun;
//! use gauntlet::sim::Seeds;
//! let t = TestRun::new("gauntlet-scenarios", "raft", "kv_partition_passes");
//! assert_eq!(
//!     t.replay_line(Seeds { sim: 5, chaos: 9 }),
//!     format!("SIM_SEED=5 CHAOS_SEED=9 cargo test{} -p gauntlet-scenarios --test raft kv_partition_passes", t.profile_flag())
//! );
//! ```

use crate::bundle::{Bundle, EXTENSION};
use crate::shrink::ShrinkError;
use crate::{Application, Plan, RunOutcome, Scenario};
use gauntlet_sim::Seeds;
use std::path::{Path, PathBuf};

/// A [`TestRun`] for the test this is called in: its package and test target come from the
/// calling crate, its name from the running test.
///
/// ```no_run
/// # fn demo<A: gauntlet::Application + Send + Sync>(scenario: gauntlet::Scenario<A>) {
/// gauntlet::test_run!().sweep_passes(&scenario, 0..10);
/// # }
/// ```
#[macro_export]
macro_rules! test_run {
    () => {
        $crate::testing::TestRun::here(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_CRATE_NAME"),
            module_path!(),
            // Cargo sets CARGO_TARGET_TMPDIR only when it builds an integration test (or bench).
            option_env!("CARGO_TARGET_TMPDIR").is_some(),
        )
    };
}

/// Where a test lives, so that its failures can say how to replay them.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// The cargo package (`-p`).
    pub package: String,
    /// The integration test binary (`--test`), empty for unit tests.
    pub test: String,
    /// The test's name filter.
    pub name: String,
    /// Where bundles of failing runs go. Default: `gauntlet-bundles` in the running crate's
    /// target directory (`$CARGO_TARGET_DIR`, or the one the test binary is in).
    pub bundle_dir: PathBuf,
    /// Trial runs a failing test may spend shrinking its failure (0: do not shrink).
    /// Default 300, or `GAUNTLET_SHRINK` (`0` turns shrinking off).
    pub shrink_runs: usize,
}

impl TestRun {
    /// A test `name` in integration test `test` of `package`.
    pub fn new(package: &str, test: &str, name: &str) -> TestRun {
        let shrink_runs = std::env::var("GAUNTLET_SHRINK").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
        TestRun {
            package: package.to_owned(),
            test: test.to_owned(),
            name: name.to_owned(),
            bundle_dir: target_dir().join("gauntlet-bundles"),
            shrink_runs,
        }
    }

    /// What [`test_run!`](crate::test_run) expands to: `crate_name` is the calling crate's (an
    /// integration test's target name when `integration`, else a unit test's library),
    /// `module` its `module_path!()`; the test's name comes from the running test's thread
    /// name (libtest names it after the test), else the module's last segment.
    pub fn here(package: &str, crate_name: &str, module: &str, integration: bool) -> TestRun {
        let test = if integration { crate_name } else { "" };
        let from_thread = std::thread::current().name().filter(|n| *n != "main").map(str::to_owned);
        let name = from_thread.unwrap_or_else(|| module.rsplit("::").next().unwrap_or(module).to_owned());
        TestRun::new(package, test, &name)
    }

    /// The cargo flag that selects the profile the test binary was built with (` --release`,
    /// ` --profile NAME`, or nothing for the dev profile).
    pub fn profile_flag(&self) -> String {
        std::env::current_exe().ok().as_deref().and_then(cargo_profile_flag).unwrap_or_default()
    }

    /// The command that replays the run with `seeds`: the profile it was built with, the
    /// package, the test target, the test's name, and `-- --ignored` when the test is run so.
    pub fn replay_line(&self, seeds: Seeds) -> String {
        let test = if self.test.is_empty() { String::new() } else { format!(" --test {}", self.test) };
        let ignored = std::env::args().any(|a| a == "--ignored" || a == "--include-ignored");
        let tail = if ignored { " -- --ignored --exact" } else { "" };
        format!(
            "SIM_SEED={} CHAOS_SEED={} cargo test{} -p {}{test} {}{tail}",
            seeds.sim,
            seeds.chaos,
            self.profile_flag(),
            self.package,
            self.name
        )
    }

    /// Where the bundle of `plan` run with `seeds` goes.
    pub fn bundle_path(&self, plan: &Plan, seeds: Seeds) -> PathBuf {
        self.bundle_dir.join(format!("{}-{}-{}.{EXTENSION}", plan.name, seeds.sim, seeds.chaos))
    }

    /// Writes the bundle of a failing run (re-running it to keep the trace's events when the
    /// first run kept only the hash), shrinks it within [`TestRun::shrink_runs`], and returns
    /// the message a failing test starts with: the replay line, the bundle's path, the verdict,
    /// then the shrunk reproducer.
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
        let mut report = format!("replay: {}\nbundle: {bundle}\n{}", self.replay_line(seeds), outcome.verdict);
        if self.shrink_runs > 0 {
            report.push('\n');
            report.push_str(&self.shrunk(scenario, outcome));
        }
        report
    }

    fn shrunk<A: Application + Send + Sync>(&self, scenario: &Scenario<A>, outcome: &RunOutcome) -> String {
        let options = crate::shrink::ShrinkOptions { max_runs: self.shrink_runs, ..Default::default() };
        let shrunk = match crate::shrink::shrink_plan(scenario, &scenario.plan, outcome.into(), options) {
            Ok(s) => s,
            Err(e @ (ShrinkError::NotReproduced { .. } | ShrinkError::Unsupported(_))) => {
                return format!("shrunk: not shrunk ({e})")
            }
            Err(e) => return format!("shrunk: not shrunk: {e}"),
        };
        let toml = self.bundle_dir.join(format!("{}-{}.toml", shrunk.plan.name, shrunk.seeds.sim));
        let bundle = self.bundle_path(&shrunk.plan, shrunk.seeds);
        let written = write_atomically(&toml, shrunk.plan.to_toml().as_bytes())
            .and_then(|()| Bundle::of(&shrunk.plan, &shrunk.outcome).write(&bundle).map_err(|e| e.to_string()));
        match written {
            Ok(()) => format!(
                "{}shrunk plan: {} (run it with SIM_SEED={} CHAOS_SEED={})\nshrunk bundle: {}",
                shrunk.describe(),
                toml.display(),
                shrunk.seeds.sim,
                shrunk.seeds.chaos,
                bundle.display()
            ),
            Err(e) => format!("{}(the shrunk plan was not written: {e})", shrunk.describe()),
        }
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

    /// Runs `scenario` once per seed in `seeds` ([`crate::sweep`], on all cores); panics with
    /// the first failure's [`TestRun::failure_report`] (or the first run that broke), after
    /// saying how many seeds failed.
    #[track_caller]
    pub fn sweep_passes<A: Application + Send + Sync>(
        &self,
        scenario: &Scenario<A>,
        seeds: impl IntoIterator<Item = u64>,
    ) -> crate::sweep::SweepReport {
        let report = crate::sweep(scenario, seeds);
        if let Some((seeds, why)) = report.broken().first() {
            panic!("replay: {}\nthe run broke: {why}\n{}", self.replay_line(*seeds), report.describe());
        }
        if let Some(failing) = report.first_failure() {
            panic!("{}\n{}", self.failure_report(scenario, failing), report.describe());
        }
        report
    }
}

/// The cargo flag that selects the profile `exe` was built with — ` --release`, ` --profile
/// NAME`, or nothing for the dev profile — or `None` when `exe` is not in a cargo target
/// directory (cargo marks those with a `CACHEDIR.TAG`). Test binaries live in `deps/`.
pub fn cargo_profile_flag(exe: &Path) -> Option<String> {
    let mut dir = exe.parent()?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent()?;
    }
    if !dir.parent()?.join("CACHEDIR.TAG").exists() {
        return None;
    }
    Some(match dir.file_name()?.to_str()? {
        "release" => " --release".to_owned(),
        "debug" => String::new(),
        other => format!(" --profile {other}"),
    })
}

/// The target directory of the running build: `$CARGO_TARGET_DIR`, else the ancestor of the
/// running binary that cargo marked with a `CACHEDIR.TAG`, else the directory above the
/// binary's profile directory (`<target>/<profile>/deps/<test>`: cargo writes the tag only
/// when it creates the directory, so a target directory another build created first has
/// none), else `./target`.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().ok();
    let tagged = exe.as_deref().and_then(|e| e.ancestors().skip(1).find(|d| d.join("CACHEDIR.TAG").exists()));
    let above_profile = exe
        .as_deref()
        .and_then(Path::parent)
        .filter(|deps| deps.ends_with("deps"))
        .and_then(Path::parent)
        .and_then(Path::parent);
    tagged.or(above_profile).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target"))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    crate::files::write_atomically(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// The workspace root: the nearest ancestor of the current directory with a `Cargo.lock`
/// (cargo runs tests in their package's directory).
pub fn workspace_root() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    here.ancestors().find(|d| d.join("Cargo.lock").exists()).map_or(here.clone(), |d| d.to_path_buf())
}
