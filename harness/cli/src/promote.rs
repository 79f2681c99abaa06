//! `gauntlet promote`: runs a plan on a real backend and compares it with the simulated
//! baseline; `gauntlet clean`: removes what killed runs left. The deployments themselves are
//! [`deploy`] (the `real` feature); without it these commands name the feature to turn on.

use crate::apps::Apps;
use crate::cli::RunFlags;
use crate::plan_cmd::{load_plan, seeds_for};
use crate::EXIT_USAGE;
use gauntlet::Plan;
use gauntlet_sim::Seeds;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(feature = "real")]
mod deploy;
#[cfg(feature = "real")]
pub(crate) use deploy::{clean, promote};

/// Without the `real` feature: what `promote`, `test-real`, `clean` and real scripts say.
#[cfg(not(feature = "real"))]
pub(crate) fn promote<A: gauntlet::HttpApplication>(
    _apps: &Apps,
    _scenario: &gauntlet::Scenario<A>,
    _seeds: Seeds,
    _p: &PromoteFlags,
) -> i32 {
    crate::features::missing("promote", "real")
}

/// Without the `real` feature: `gauntlet clean` has nothing of its own to clean.
#[cfg(not(feature = "real"))]
pub(crate) fn clean(_json: bool) -> i32 {
    crate::features::missing("clean", "real")
}

/// The real backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// Processes on this machine, in network namespaces when run as root.
    Local,
    /// Containers from locally built images, with docker compose.
    Compose,
    /// A kubernetes cluster, with kubectl.
    K8s,
}

/// `gauntlet promote`'s flags.
#[derive(clap::Args, Debug, Clone)]
pub struct PromoteFlags {
    /// Where to run it.
    #[arg(long, value_enum, default_value = "local")]
    pub backend: Backend,
    /// The simulated baseline bundle; default: simulate the plan with the same seeds now.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Directory of the node binaries. Default: $GAUNTLET_BIN_DIR, or target/real/release
    /// (or debug), after `cargo real-build --release -p gauntlet-scenarios --bins`.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Run directories (node logs and data) and bundles go here.
    #[arg(long, default_value = "gauntlet-out")]
    pub out: PathBuf,
    /// Local backend: share loopback instead of namespaces (no root needed; plans with
    /// network faults are refused).
    #[arg(long)]
    pub no_namespaces: bool,
    /// How long nodes have to answer /healthz.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub ready_timeout: Duration,
    /// k8s: write the manifests (one YAML file per object) into this directory and stop.
    #[arg(long, value_name = "DIR")]
    pub render_only: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also print the run's progress as JSON lines before the result, one per fault applied
    /// (`{"event":"fault_applied","at_ms":…,"text":…}`) or note: what the run service reads
    /// as live events. Implies --json.
    #[arg(long)]
    pub events: bool,
    /// The line that replays this promotion (set by `run`).
    #[arg(skip)]
    pub replay: String,
    /// No simulated baseline (`test-real`, or an application with no simulated node).
    #[arg(skip)]
    pub no_baseline: bool,
}

/// Runs `gauntlet promote`.
pub fn run(apps: &Apps, file: &Path, flags: &RunFlags, p: &PromoteFlags) -> i32 {
    let plan = match load_plan(apps, file, &flags.bugs) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    let seeds = match seeds_for(&plan, flags.seed.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    let mut p = p.clone();
    p.json |= p.events;
    let bugs: String = flags.bugs.iter().map(|b| format!(" --bug {b}")).collect();
    p.replay = format!(
        "{} {} {} {}{bugs} --backend {}",
        seeds.env_prefix(),
        crate::apps::self_command(),
        if p.no_baseline { "test-real" } else { "promote" },
        file.display(),
        backend_name(p.backend)
    );
    if p.events {
        // Started by the run service: a server that goes away stops the run, which tears
        // its cluster down (SIGTERM, not SIGKILL).
        crate::process::die_with_parent(nix::sys::signal::Signal::SIGTERM);
    }
    promote_plan(apps, &plan, seeds, &p)
}

/// Promotes a loaded `plan` with `seeds` as `p` says, through its application's promoter;
/// an application registered for simulation only is refused, naming the ones that can be.
pub(crate) fn promote_plan(apps: &Apps, plan: &Plan, seeds: Seeds, p: &PromoteFlags) -> i32 {
    if !cfg!(feature = "real") {
        return crate::features::missing("promote", "real");
    }
    match apps.promoter(&plan.app.name) {
        Some(promote) => promote(apps, plan, seeds, p),
        None => {
            let promotable = apps.promotable();
            eprintln!(
                "gauntlet: application {:?} cannot be promoted: it was registered with `Apps::with`, for simulation \
                 only; an application whose nodes serve HTTP implements `HttpApplication` and is registered with \
                 `Apps::with_http` (promotable here: {})",
                plan.app.name,
                if promotable.is_empty() { "none".to_owned() } else { promotable.join(", ") }
            );
            EXIT_USAGE
        }
    }
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Local => "local",
        Backend::Compose => "compose",
        Backend::K8s => "k8s",
    }
}
