//! Sometimes-assertions through the harness: a run lists every assertion of its application
//! (reached or not) in `RunOutcome::probes`, expectations record them too, the bundle keeps
//! them, and a sweep reports per assertion in how many seeds it held — one the plan never
//! reaches is a finding.
#![cfg(madsim)]

use gauntlet::expect::{Check, Expectation, ExpectationRegistry, Params, Status};
use gauntlet::sim::{NodeContext, ProbeKind, Seeds, Transport};
use gauntlet::sweep::{sweep_plan, SweepFinding, SweepOptions};
use gauntlet::{Application, Bundle, FailureClass, NodeRef, NodeSetup, OpOutcome, Operation, Plan, Scenario};
use std::time::Duration;

const RESTARTED: &str = "probes test: a node restarted";
const SERVED: &str = "probes test: a request served";
const NEVER_SENT: &str = "probes test: a message no client sends";
const SAW_STATE: &str = "probes test: the expectation saw a node's state";

/// Echo nodes with probes on their paths (option `probes = false` leaves them out): a restart,
/// a served request, and a message tag that no client ever sends.
struct Echo;

impl Application for Echo {
    type State = u8;
    type Client = Transport;
    fn name(&self) -> &str {
        "echo"
    }
    fn roles(&self) -> Vec<String> {
        vec!["node".into()]
    }
    fn operations(&self) -> Vec<String> {
        vec!["ping".into()]
    }
    fn check_options(&self, _: &toml::Table) -> Vec<(String, String)> {
        Vec::new()
    }
    fn node(&self, ctx: NodeContext, setup: NodeSetup) -> impl std::future::Future<Output = ()> + 'static + use<> {
        let probes = setup.options.get("probes").and_then(|v| v.as_bool()).unwrap_or(true);
        async move {
            if probes {
                gauntlet::sometimes!(ctx.incarnation() > 0, "probes test: a node restarted");
            }
            let t = ctx.transport();
            loop {
                let m = t.recv().await;
                if probes && m.body.first() == Some(&9) {
                    gauntlet::reachable!("probes test: a message no client sends");
                }
                if let Some(r) = m.reply_to {
                    if probes {
                        gauntlet::reachable!("probes test: a request served");
                    }
                    t.reply(r, vec![1]);
                }
            }
        }
    }
    fn client(&self, ctx: &NodeContext) -> Transport {
        ctx.transport()
    }
    async fn execute(&self, t: &Transport, op: &Operation, nodes: &[NodeRef]) -> OpOutcome {
        let to = nodes[op.user as usize % nodes.len()].id;
        match t.request(to, vec![0], Duration::from_millis(100)).await {
            Ok(_) => OpOutcome::ok(""),
            Err(e) => OpOutcome::info(e.to_string()),
        }
    }
    async fn read_state(&self, t: &Transport, n: &NodeRef) -> Result<u8, String> {
        t.request(n.id, vec![0], Duration::from_millis(100)).await.map(|b| b[0]).map_err(|e| e.to_string())
    }
    fn expectations(&self, r: &mut ExpectationRegistry<Self>) {
        r.register("sees_states", |p, _| {
            Params::new("sees_states", p, &[]).done()?;
            Ok(Box::new(SeesStates) as Box<dyn Expectation<Echo>>)
        });
    }
}

/// Always holds; says through a probe that it saw a node's state at least once.
struct SeesStates;

impl Expectation<Echo> for SeesStates {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, cx: &Check<'_, Echo>) -> Status {
        gauntlet::sometimes!(
            cx.view.values().any(|v| v.state.is_some()),
            "probes test: the expectation saw a node's state"
        );
        Status::Holds
    }
}

/// Three echo nodes pinged for 4 s; with `restarts`, chaos restarts them.
fn plan(restarts: bool, probes: bool) -> Plan {
    let chaos = if restarts {
        "[chaos]\nstart = \"1s\"\n[chaos.restart]\nmin_delay = \"500ms\"\nmax_delay = \"1s\"\n"
    } else {
        ""
    };
    Plan::from_toml(&format!(
        "name = \"echo-probes\"\n[app]\nname = \"echo\"\noptions = {{ probes = {probes} }}\n[topology.nodes]\nnode = 3\n\
         [run]\nduration = \"4s\"\ncooldown = \"1s\"\n\
         [[workloads]]\nname = \"pings\"\nrate = 20.0\n\
         {chaos}\
         [[expect]]\nname = \"sees_states\"\n"
    ))
    .expect("the plan parses")
}

fn run(plan: Plan, seed: u64) -> gauntlet::RunOutcome {
    let scenario = Scenario::new(Echo, plan).expect("fits");
    gauntlet::registry::PlanRunner::run_plan(&scenario, scenario.plan(), Seeds::new(seed), Default::default())
        .expect("runs")
}

#[test]
fn a_run_lists_every_probe_of_its_application_reached_or_not() {
    let outcome = run(plan(false, true), 1);
    assert!(outcome.verdict.passed(), "{}", outcome.verdict);
    let names: Vec<&str> = outcome.probes.keys().map(String::as_str).collect();
    assert_eq!(names, [NEVER_SENT, RESTARTED, SERVED, SAW_STATE], "the default scope is the app's crate");
    let served = outcome.probes[SERVED];
    assert_eq!(served.kind, ProbeKind::Reachable);
    assert!(served.held > 50 && served.held == served.evaluated, "{served:?}");
    assert!(served.first_held.is_some_and(|t| t < Duration::from_secs(1)), "{served:?}");
    let restarted = outcome.probes[RESTARTED];
    assert_eq!((restarted.evaluated, restarted.held), (3, 0), "evaluated at each boot, never held");
    assert_eq!(outcome.probes[NEVER_SENT].evaluated, 0, "listed although never executed");
    let saw = outcome.probes[SAW_STATE];
    assert!(saw.held > 0 && saw.evaluated >= saw.held, "an expectation's check records too: {saw:?}");
}

#[test]
fn a_bundle_keeps_the_runs_probes() {
    let plan = plan(true, true);
    let outcome = run(plan.clone(), 2);
    let back = Bundle::decode(&Bundle::of(&plan, &outcome).encode().unwrap()).unwrap();
    assert_eq!(back.probes, outcome.probes);
    assert!(back.probes[RESTARTED].hit(), "restarts were on");
}

#[test]
fn probes_change_neither_the_trace_nor_the_verdict() {
    for seed in 0..5 {
        let with = run(plan(true, true), seed);
        let without = run(plan(true, false), seed);
        assert_eq!(with.trace_hash, without.trace_hash, "seed {seed}");
        assert_eq!(with.verdict, without.verdict, "seed {seed}");
        assert_eq!(run(plan(true, true), seed).probes, with.probes, "seed {seed}: the same seed, the same probes");
        assert!(without.probes[SERVED].evaluated == 0 && with.probes[SERVED].held > 0, "seed {seed}");
    }
}

#[test]
fn a_sweep_reports_seeds_held_per_probe_and_the_never_reached_as_findings() {
    let options = SweepOptions { jobs: 2, first: false };
    let scenario = Scenario::new(Echo, plan(false, true)).expect("fits");
    let report = sweep_plan(&scenario, scenario.plan(), &[0, 1, 2, 3], options).expect("sweeps");
    assert_eq!(report.passed(), 4, "{}", report.describe());
    let served = &report.probes[SERVED];
    assert_eq!((served.seeds_ran, served.seeds_held, served.first_seed), (4, 4, Some(0)));
    assert!(served.hits > 200, "{served:?}");
    assert!(report.probes[SAW_STATE].seeds_held == 4);
    assert_eq!(report.never_held(), [NEVER_SENT, RESTARTED], "no restarts in this plan, no tag 9 ever");
    let findings = report.findings();
    assert_eq!(
        findings[0],
        SweepFinding::NeverHeld { name: NEVER_SENT.into(), kind: ProbeKind::Reachable, seeds: 4, evaluated: false }
    );
    assert_eq!(
        findings[1].to_string(),
        format!("sometimes assertion {RESTARTED:?} evaluated but never held in 4 seeds: the plan does not exercise that path")
    );
    let table = report.describe_probes();
    assert!(table.lines().any(|l| l.contains(RESTARTED) && l.ends_with("NEVER HELD")), "{table}");
    assert!(table.lines().any(|l| l.contains(SERVED) && !l.contains("NEVER")), "{table}");

    // With restarts on, the restart is reached in some seeds and is no longer a finding.
    let scenario = Scenario::new(Echo, plan(true, true)).expect("fits");
    let report = sweep_plan(&scenario, scenario.plan(), &[0, 1, 2, 3], options).expect("sweeps");
    assert!(report.probes[RESTARTED].seeds_held > 0, "{:?}", report.probes[RESTARTED]);
    assert_eq!(report.never_held(), [NEVER_SENT]);
}
