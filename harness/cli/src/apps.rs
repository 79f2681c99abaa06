//! [`Apps`]: what a `gauntlet` command line knows — the registered applications, which of
//! them can be promoted to real deployments, the demo plan, and where plans and the corpus
//! live by default.

use crate::promote::PromoteFlags;
use gauntlet::registry::Registry;
use gauntlet::{Application, HttpApplication, Plan, Scenario};
use gauntlet_sim::Seeds;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Promotes a plan of one application to a real backend; returns the exit code.
type Promoter = Arc<dyn Fn(&Apps, &Plan, Seeds, &PromoteFlags) -> i32 + Send + Sync>;

/// The applications a `gauntlet` command line serves, and its defaults.
///
/// ```no_run
/// # use gauntlet_cli::Apps;
/// let apps = Apps::new() /* .with(MyApp) or .with_http(MyHttpApp) */.plans_dir("plans");
/// gauntlet_cli::main(apps)
/// ```
#[derive(Clone)]
pub struct Apps {
    pub(crate) registry: Registry,
    promoters: BTreeMap<String, Promoter>,
    pub(crate) demo: Option<(Plan, String)>,
    pub(crate) plans_dir: PathBuf,
    pub(crate) corpus: Option<PathBuf>,
}

impl Default for Apps {
    fn default() -> Self {
        Apps::new()
    }
}

impl std::fmt::Debug for Apps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Apps")
            .field("apps", &self.registry.names())
            .field("promotable", &self.promoters.keys().collect::<Vec<_>>())
            .field("plans_dir", &self.plans_dir)
            .finish()
    }
}

impl Apps {
    /// No applications yet; plans default to `plans/`, and sweeps keep no failing-seed corpus
    /// unless `--corpus` is given.
    pub fn new() -> Self {
        Apps {
            registry: Registry::new(),
            promoters: BTreeMap::new(),
            demo: None,
            plans_dir: PathBuf::from("plans"),
            corpus: None,
        }
    }

    /// Registers a simulated application: every command but `promote` serves it.
    #[track_caller]
    pub fn with<A: Application + Send + Sync>(mut self, app: A) -> Self {
        self.registry = self.registry.with(app);
        self
    }

    /// Registers an application whose nodes serve HTTP: every command serves it, `promote`
    /// included.
    #[track_caller]
    pub fn with_http<A: HttpApplication + Send + Sync>(mut self, app: A) -> Self {
        let app = Arc::new(app);
        let name = app.name().to_owned();
        self.registry = self.registry.with_shared(app.clone());
        let promote: Promoter =
            Arc::new(move |apps, plan, seeds, flags| match Scenario::from_shared(app.clone(), plan.clone()) {
                Ok(s) => crate::promote::promote(apps, &s, seeds, flags),
                Err(e) => {
                    eprintln!("gauntlet: {e}");
                    crate::EXIT_USAGE
                }
            });
        self.promoters.insert(name, promote);
        self
    }

    /// Registers an application that exists only for real backends (binaries nobody here
    /// wrote: etcd, Redis…): plans of it are checked like any other, `test-real` and
    /// `promote` run it (with no simulated baseline), and simulations refuse it by name.
    #[track_caller]
    pub fn with_real<R: gauntlet::real_app::RealApplication>(self, app: R) -> Self {
        self.with_http(gauntlet::real_app::RealOnly(app))
    }

    /// The plan `gauntlet demo` runs, and a line saying what it shows.
    pub fn demo(mut self, plan: Plan, about: impl Into<String>) -> Self {
        self.demo = Some((plan, about.into()));
        self
    }

    /// Where `gauntlet list` looks for plans by default.
    pub fn plans_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.plans_dir = dir.into();
        self
    }

    /// The failing-seed corpus `gauntlet sweep` adds to by default (`<plan>.seeds` in it).
    pub fn corpus(mut self, dir: impl Into<PathBuf>) -> Self {
        self.corpus = Some(dir.into());
        self
    }

    /// The registered applications.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The promoter of `app`, if it can be promoted.
    pub(crate) fn promoter(&self, app: &str) -> Option<Promoter> {
        self.promoters.get(app).cloned()
    }

    /// The names of the applications that can be promoted.
    pub(crate) fn promotable(&self) -> Vec<&str> {
        self.promoters.keys().map(String::as_str).collect()
    }
}

/// How to run this program again, for replay lines: `cargo run [--release] --bin NAME --`
/// when it is a cargo build under `target/`, else its path.
pub(crate) fn self_command() -> String {
    let Ok(exe) = std::env::current_exe() else { return "gauntlet".to_owned() };
    let name = exe.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "gauntlet".into());
    match gauntlet::testing::cargo_profile_flag(&exe) {
        Some(flag) => format!("cargo run{flag} --bin {name} --"),
        None => exe.display().to_string(),
    }
}
