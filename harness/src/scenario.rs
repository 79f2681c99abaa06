//! [`Scenario`]: a plan bound to an application, validated against what the application offers.

use crate::app::{Application, NodeRef};
use crate::expect::ExpectationRegistry;
use crate::plan::{Catalog, Plan, PlanError};
use gauntlet_sim::seed::{seed_from_env, SeedError};
use gauntlet_sim::Seeds;
use std::sync::Arc;

/// A plan bound to an application. Constructing one validates the plan.
pub struct Scenario<A: Application> {
    pub(crate) app: Arc<A>,
    pub(crate) plan: Plan,
}

impl<A: Application + Send + Sync> Scenario<A> {
    /// Binds `plan` to `app`, listing every problem if the plan does not fit.
    pub fn new(app: A, plan: Plan) -> Result<Self, PlanError> {
        Scenario::from_shared(Arc::new(app), plan)
    }

    /// Binds `plan` to an application already shared (a registry's, or another scenario's).
    pub fn from_shared(app: Arc<A>, plan: Plan) -> Result<Self, PlanError> {
        plan.validate(&catalog(app.clone()))?;
        Ok(Scenario { app, plan })
    }

    /// This scenario's application bound to another plan (a shrunk or swept variant).
    pub fn with_plan(&self, plan: Plan) -> Result<Self, PlanError> {
        Scenario::from_shared(self.app.clone(), plan)
    }

    /// The plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, shared (for backends that hand it to tasks).
    pub fn shared_app(&self) -> Arc<A> {
        self.app.clone()
    }

    /// The seeds to run with: `SIM_SEED`/`CHAOS_SEED` if set, else the plan's `run.seed`, else
    /// drawn (and printed by the world).
    pub fn seeds(&self) -> Result<Seeds, SeedError> {
        match (seed_from_env("SIM_SEED")?, self.plan.run.seed) {
            (None, Some(seed)) => {
                let mut s = Seeds::new(seed);
                if let Some(chaos) = seed_from_env("CHAOS_SEED")? {
                    s.chaos = chaos;
                }
                Ok(s)
            }
            _ => Seeds::from_env(),
        }
    }

    /// The member nodes at the start, in plan order, with the ids the deployment gives them.
    pub fn initial_members(&self) -> Vec<NodeRef> {
        self.plan
            .topology
            .nodes()
            .into_iter()
            .enumerate()
            .map(|(i, (name, role))| NodeRef { id: gauntlet_sim::NodeId(i as u32), name, role })
            .collect()
    }
}

/// What `app` offers, for [`Plan::validate`].
pub fn catalog<A: Application>(app: Arc<A>) -> Catalog {
    let registry = ExpectationRegistry::for_app(&*app);
    let names = registry.names();
    let registry = Arc::new(registry);
    let expectations = names
        .into_iter()
        .map(|name| {
            let r = registry.clone();
            let n = name.clone();
            let check: crate::plan::ParamsCheck = Box::new(move |params, plan| match r.build(&n, params, plan) {
                Some(Err(problems)) => problems,
                _ => Vec::new(),
            });
            (name, check)
        })
        .collect();
    Catalog {
        app: app.name().to_owned(),
        roles: app.roles(),
        operations: app.operations(),
        elects_leaders: app.elects_leaders(),
        check_options: Box::new(move |options| app.check_options(options)),
        expectations,
    }
}
