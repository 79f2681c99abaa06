//! [`ScriptChecks`]: how `check.expect` judges an expectation in the middle of a script, the
//! same way on every [`Target`](super::Target).
//!
//! A script's run has no fixed cooldown: after each fault the script applies, the cluster is
//! given the time the script chooses to wait. So a check judges as if the cooldown had begun
//! at the script's last fault — liveness counts from there — and an expectation that keeps
//! state between checks (a liveness check noting the operations it started from) keeps it
//! until the next fault.

use crate::app::Application;
use crate::expect::{Check, ClusterView, Expectation, ExpectationRegistry, OpCounts, Phase, Status};
use crate::verdict::FailureClass;
use crate::workload::OpLog;
use crate::Plan;
use std::collections::BTreeMap;
use std::time::Duration;

/// The expectations a script judged since its last fault, and when that fault was.
pub struct ScriptChecks<A: Application> {
    /// When the script last applied a fault, and the operation counts then.
    calm: (Duration, OpCounts),
    /// By name and parameters.
    judged: BTreeMap<String, Box<dyn Expectation<A>>>,
}

impl<A: Application> Default for ScriptChecks<A> {
    fn default() -> Self {
        ScriptChecks { calm: (Duration::ZERO, OpCounts::default()), judged: BTreeMap::new() }
    }
}

impl<A: Application> ScriptChecks<A> {
    /// The script applied a fault at `now`, with `ops` performed so far: later checks count
    /// from here and start afresh.
    pub fn fault_applied(&mut self, now: Duration, ops: OpCounts) {
        self.calm = (now, ops);
        self.judged.clear();
    }

    /// Judges expectation `name` with `params` at `now`: against `view` first, then against
    /// the whole history in `log`. `facts` are the simulation's ground truth (empty for real
    /// runs). `Err` names an unknown expectation (listing the known ones) or bad parameters.
    #[allow(clippy::too_many_arguments)]
    pub fn judge(
        &mut self,
        app: &A,
        plan: &Plan,
        name: &str,
        params: &toml::Table,
        now: Duration,
        view: &ClusterView<A::State>,
        log: &OpLog,
        facts: &[gauntlet_sim::Fact],
    ) -> Result<(FailureClass, Status), String> {
        let key = format!("{name} {params}");
        if !self.judged.contains_key(&key) {
            let registry = ExpectationRegistry::for_app(app);
            let built = match registry.build(name, params, plan) {
                Some(Ok(e)) => e,
                Some(Err(problems)) => {
                    let list: Vec<String> = problems.iter().map(|(k, m)| format!("{k}: {m}")).collect();
                    return Err(format!("{name}: {}", list.join("; ")));
                }
                None => {
                    let names = registry.names().join(", ");
                    return Err(format!("unknown expectation {name:?}; expectations: {names}"));
                }
            };
            self.judged.insert(key.clone(), built);
        }
        let e = self.judged.get_mut(&key).expect("just inserted");
        let cx = Check {
            app,
            now,
            phase: Phase::Cooldown { since: self.calm.0 },
            view,
            ops: log.total(),
            ops_at_cooldown: self.calm.1,
            history: &[],
            facts,
        };
        let status = match e.check(&cx) {
            Status::Violated(why) => Status::Violated(why),
            first => match e.at_end(&Check { history: &log.history, ..cx }) {
                Status::Holds => first,
                later => later,
            },
        };
        Ok((e.class(), status))
    }
}
