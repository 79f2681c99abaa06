//! [`Registry`]: applications by the name plans give in `app.name`, type-erased, so that plan
//! files can be checked, run, swept, replayed and shrunk without writing Rust for each
//! application. An application registered once gets every command (`gauntlet_cli` takes a
//! registry; so do [`crate::sweep`] and [`crate::shrink`] through [`PlanRunner`]).
//!
//! ```
//! use gauntlet::registry::Registry;
//! # use gauntlet::{Application, NodeRef, NodeSetup, OpOutcome, Operation};
//! # use gauntlet::sim::{NodeContext, Transport};
//! # struct Counter;
//! # impl Application for Counter {
//! #     type State = u8; type Client = Transport;
//! #     fn name(&self) -> &str { "counter" }
//! #     fn roles(&self) -> Vec<String> { vec!["node".into()] }
//! #     fn operations(&self) -> Vec<String> { vec!["add".into()] }
//! #     fn node(&self, ctx: NodeContext, _: NodeSetup) -> impl std::future::Future<Output = ()> + 'static + use<> {
//! #         async move { let _ = ctx; }
//! #     }
//! #     fn client(&self, ctx: &NodeContext) -> Transport { ctx.transport() }
//! #     async fn execute(&self, _: &Transport, _: &Operation, _: &[NodeRef]) -> OpOutcome { OpOutcome::ok("") }
//! #     async fn read_state(&self, _: &Transport, _: &NodeRef) -> Result<u8, String> { Ok(0) }
//! # }
//! let apps = Registry::new().with(Counter);
//! assert_eq!(apps.names(), vec!["counter"]);
//! let plan = gauntlet::Plan::from_toml("name = \"p\"\n[app]\nname = \"nope\"\n[topology.nodes]\nnode = 1\n").unwrap();
//! let err = apps.check(&plan).unwrap_err().to_string();
//! assert!(err.contains("unknown application \"nope\"; registered: counter"), "{err}");
//! ```

use crate::app::Application;
use crate::plan::{Plan, PlanError, Problem};
use crate::scenario::{catalog, Scenario};
use std::sync::Arc;

/// What a registered application offers, for `gauntlet list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    /// Its name in plans.
    pub name: String,
    /// Node roles.
    pub roles: Vec<String>,
    /// Operations workloads may issue.
    pub operations: Vec<String>,
    /// Expectations plans may name (built-in and the application's own).
    pub expectations: Vec<String>,
    /// Planted bugs (`app.options.bugs`).
    pub bugs: Vec<String>,
    /// Whether chaos can be aimed at its leader.
    pub elects_leaders: bool,
}

/// How [`Registry::run_with`] (and every [`PlanRunner`]) runs a plan.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Keep every trace event (for bundles, replay windows and diffs).
    pub keep_events: bool,
    /// Run twice and fail on the first divergent event.
    pub check_determinism: bool,
}

/// Why a plan could not be run.
#[derive(Debug, thiserror::Error)]
pub enum RunPlanError {
    /// The plan is invalid (an unknown application among the reasons).
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The world could not run it (a panic, a limit, nondeterminism).
    #[cfg(madsim)]
    #[error(transparent)]
    Run(#[from] gauntlet_sim::RunError),
}

/// Something that runs plans under simulation: a [`Registry`] (any registered application),
/// or a [`Scenario`] (its own application, for plans derived from its plan). Sweeps and
/// shrinking are written against this, so they work for every application.
pub trait PlanRunner: Sync {
    /// Validates `plan` against its application.
    fn check(&self, plan: &Plan) -> Result<(), PlanError>;
    /// Smaller versions of `plan`'s application options, for shrinking
    /// ([`Application::smaller_options`]); none for an unknown application.
    fn smaller_options(&self, plan: &Plan) -> Vec<toml::Table>;
    /// Runs `plan` once with `seeds`.
    #[cfg(madsim)]
    fn run_plan(
        &self,
        plan: &Plan,
        seeds: gauntlet_sim::Seeds,
        options: RunOptions,
    ) -> Result<crate::RunOutcome, RunPlanError>;
}

/// One registered application, type-erased.
trait Entry: Send + Sync {
    fn name(&self) -> &str;
    fn info(&self) -> AppInfo;
    fn check(&self, plan: &Plan) -> Result<(), PlanError>;
    fn smaller_options(&self, options: &toml::Table) -> Vec<toml::Table>;
    #[cfg(madsim)]
    fn run(
        &self,
        plan: &Plan,
        seeds: gauntlet_sim::Seeds,
        options: RunOptions,
    ) -> Result<crate::RunOutcome, RunPlanError>;
}

struct Registered<A: Application>(Arc<A>);

impl<A: Application + Send + Sync> Entry for Registered<A> {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn info(&self) -> AppInfo {
        let catalog = catalog(self.0.clone());
        AppInfo {
            name: self.0.name().to_owned(),
            roles: catalog.roles,
            operations: catalog.operations,
            expectations: catalog.expectations.keys().cloned().collect(),
            bugs: self.0.bugs(),
            elects_leaders: catalog.elects_leaders,
        }
    }

    fn check(&self, plan: &Plan) -> Result<(), PlanError> {
        Scenario::from_shared(self.0.clone(), plan.clone()).map(|_| ())
    }

    fn smaller_options(&self, options: &toml::Table) -> Vec<toml::Table> {
        self.0.smaller_options(options)
    }

    #[cfg(madsim)]
    fn run(
        &self,
        plan: &Plan,
        seeds: gauntlet_sim::Seeds,
        options: RunOptions,
    ) -> Result<crate::RunOutcome, RunPlanError> {
        run_scenario(&Scenario::from_shared(self.0.clone(), plan.clone())?, seeds, options)
    }
}

/// Applications by name. Build one with [`Registry::new`] and [`Registry::with`]; names must
/// be unique (a second registration under a taken name panics: it is a programming error).
#[derive(Default, Clone)]
pub struct Registry {
    entries: Vec<Arc<dyn Entry>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("apps", &self.names()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers `app` under [`Application::name`].
    #[track_caller]
    pub fn with<A: Application + Send + Sync>(self, app: A) -> Self {
        self.with_shared(Arc::new(app))
    }

    /// Registers an application already shared (so a caller can keep a handle on it).
    #[track_caller]
    pub fn with_shared<A: Application + Send + Sync>(mut self, app: Arc<A>) -> Self {
        let name = app.name().to_owned();
        assert!(
            !self.entries.iter().any(|e| e.name() == name),
            "application {name:?} is registered twice (application names must be unique)"
        );
        assert!(!name.is_empty(), "an application's name must not be empty");
        self.entries.push(Arc::new(Registered(app)));
        self
    }

    /// Every registered name, in registration order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name()).collect()
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|e| e.name() == name)
    }

    /// What each registered application offers, sorted by name.
    pub fn apps(&self) -> Vec<AppInfo> {
        let mut v: Vec<AppInfo> = self.entries.iter().map(|e| e.info()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Validates `plan` against its application ([`PlanRunner::check`]).
    pub fn check(&self, plan: &Plan) -> Result<(), PlanError> {
        PlanRunner::check(self, plan)
    }

    /// Runs `plan` once with `seeds` ([`PlanRunner::run_plan`]).
    #[cfg(madsim)]
    pub fn run_plan(
        &self,
        plan: &Plan,
        seeds: gauntlet_sim::Seeds,
        options: RunOptions,
    ) -> Result<crate::RunOutcome, RunPlanError> {
        PlanRunner::run_plan(self, plan, seeds, options)
    }

    fn entry(&self, plan: &Plan) -> Result<&Arc<dyn Entry>, PlanError> {
        self.entries.iter().find(|e| e.name() == plan.app.name).ok_or_else(|| {
            let mut names = self.names();
            names.sort_unstable();
            let registered = if names.is_empty() { "none".to_owned() } else { names.join(", ") };
            let mut problems = vec![Problem {
                path: "app.name".into(),
                message: format!("unknown application {:?}; registered: {registered}", plan.app.name),
            }];
            problems.extend(plan.problems(None));
            PlanError::Invalid { plan: plan.name.clone(), problems }
        })
    }
}

impl PlanRunner for Registry {
    fn check(&self, plan: &Plan) -> Result<(), PlanError> {
        self.entry(plan)?.check(plan)
    }

    fn smaller_options(&self, plan: &Plan) -> Vec<toml::Table> {
        self.entry(plan).map(|e| e.smaller_options(&plan.app.options)).unwrap_or_default()
    }

    #[cfg(madsim)]
    fn run_plan(
        &self,
        plan: &Plan,
        seeds: gauntlet_sim::Seeds,
        options: RunOptions,
    ) -> Result<crate::RunOutcome, RunPlanError> {
        self.entry(plan)?.run(plan, seeds, options)
    }
}

impl<A: Application + Send + Sync> Scenario<A> {
    /// This scenario's application bound to `plan`, which must name it (validated once).
    fn bind(&self, plan: &Plan) -> Result<Scenario<A>, PlanError> {
        if plan.app.name != self.app.name() {
            return Err(PlanError::Invalid {
                plan: plan.name.clone(),
                problems: vec![Problem {
                    path: "app.name".into(),
                    message: format!(
                        "unknown application {:?}; this scenario runs {:?}",
                        plan.app.name,
                        self.app.name()
                    ),
                }],
            });
        }
        self.with_plan(plan.clone())
    }
}

impl<A: Application + Send + Sync> PlanRunner for Scenario<A> {
    fn check(&self, plan: &Plan) -> Result<(), PlanError> {
        self.bind(plan).map(|_| ())
    }

    fn smaller_options(&self, plan: &Plan) -> Vec<toml::Table> {
        self.app.smaller_options(&plan.app.options)
    }

    #[cfg(madsim)]
    fn run_plan(
        &self,
        plan: &Plan,
        seeds: gauntlet_sim::Seeds,
        options: RunOptions,
    ) -> Result<crate::RunOutcome, RunPlanError> {
        run_scenario(&self.bind(plan)?, seeds, options)
    }
}

/// Runs a validated scenario once with `seeds` and `options`.
#[cfg(madsim)]
fn run_scenario<A: Application + Send + Sync>(
    scenario: &Scenario<A>,
    seeds: gauntlet_sim::Seeds,
    options: RunOptions,
) -> Result<crate::RunOutcome, RunPlanError> {
    use crate::runner::{Deployer, SimDeployer};
    let deployer = SimDeployer::default().keep_events(options.keep_events).check_determinism(options.check_determinism);
    Ok(deployer.run(scenario, seeds)?)
}
