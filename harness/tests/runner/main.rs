//! The runner with a toy application: verdict classes (crash, safety, liveness), fail-fast,
//! determinism, and app-registered expectations.
#![cfg(madsim)]

use gauntlet::expect::{Check, Expectation, ExpectationRegistry, Status};
use gauntlet::plan::PartitionKind;
use gauntlet::sim::{Fault, NodeContext, Seeds, Transport};
use gauntlet::{
    millis, secs, Application, Deployer, FailureClass, Launch, NodeRef, NodeSetup, OpOutcome, Operation, Plan,
    Scenario, ScenarioBuilder, SimDeployer, Verdict,
};
use std::time::Duration;

/// A counter: `add` requests add one, any other request reads. Option `panic_on` makes the
/// client panic on that operation (to test that workload panics become failures).
struct Counter;

impl Application for Counter {
    type State = u64;
    type Client = Transport;
    fn name(&self) -> &str {
        "counter"
    }
    fn roles(&self) -> Vec<String> {
        vec!["node".into()]
    }
    fn operations(&self) -> Vec<String> {
        vec!["add".into(), "boom".into()]
    }
    fn check_options(&self, _: &toml::Table) -> Vec<(String, String)> {
        Vec::new()
    }
    fn node(&self, ctx: NodeContext, setup: NodeSetup) -> impl std::future::Future<Output = ()> + 'static + use<> {
        // Option `panic_at = N`: the node panics when its count reaches N (a planted crash).
        let panic_at = setup.options.get("panic_at").and_then(|v| v.as_integer()).map(|n| n as u64);
        async move {
            let (t, mut n) = (ctx.transport(), 0u64);
            loop {
                let m = t.recv().await;
                if m.body.first() == Some(&1) {
                    n += 1;
                    assert!(Some(n) != panic_at, "count reached {n}");
                }
                if let Some(r) = m.reply_to {
                    t.reply(r, n.to_le_bytes().to_vec());
                }
            }
        }
    }
    fn client(&self, ctx: &NodeContext) -> Transport {
        ctx.transport()
    }
    async fn execute(&self, t: &Transport, op: &Operation, nodes: &[NodeRef]) -> OpOutcome {
        assert!(op.op != "boom", "the client blew up on purpose");
        match t.request(nodes[0].id, vec![1], Duration::from_millis(200)).await {
            Ok(_) => OpOutcome::ok(""),
            Err(e) => OpOutcome::info(e.to_string()),
        }
    }
    async fn read_state(&self, t: &Transport, n: &NodeRef) -> Result<u64, String> {
        let b = t.request(n.id, vec![0], Duration::from_millis(200)).await.map_err(|e| e.to_string())?;
        Ok(u64::from_le_bytes(b[..8].try_into().map_err(|_| "short reply")?))
    }
    fn converged(&self, _: &[(&str, &u64)]) -> Result<(), String> {
        Ok(())
    }
    /// The node that has counted something leads (only the first node is sent adds).
    fn elects_leaders(&self) -> bool {
        true
    }
    fn leader_epoch(&self, count: &u64) -> Option<u64> {
        (*count > 0).then_some(*count)
    }
    fn expectations(&self, r: &mut ExpectationRegistry<Self>) {
        r.register("at_most", |p, _| {
            let limit = gauntlet::expect::Params::new("at_most", p, &["limit"]).u64("limit", 0)?;
            Ok(Box::new(AtMost(limit)) as Box<dyn Expectation<Counter>>)
        });
    }
    fn launch(&self, s: &NodeSetup, _: &gauntlet::Placement) -> Launch {
        Launch::binary("counter").arg(&s.node.name)
    }
}

/// Safety: no node's count ever exceeds the limit.
struct AtMost(u64);

impl Expectation<Counter> for AtMost {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, cx: &Check<'_, Counter>) -> Status {
        for (name, v) in cx.view {
            if let Some(n) = v.state.filter(|&n| n > self.0) {
                return Status::Violated(format!("{name} counted {n} > {}", self.0));
            }
        }
        Status::Holds
    }
}

fn base() -> ScenarioBuilder {
    ScenarioBuilder::new("counter").app("counter").topology(|t| t.nodes("node", 2)).with_run_duration(secs(10))
}

fn run(plan: Plan, seed: u64) -> gauntlet::RunOutcome {
    SimDeployer::default().run(&Scenario::new(Counter, plan).unwrap(), Seeds::new(seed)).unwrap()
}

#[test]
fn a_safety_violation_fails_fast_with_its_time() {
    let plan = base()
        .workload_with("adds", |w| w.rate(50.0).mix("add", 1))
        .expect_with("at_most", |p| p.param("limit", 100))
        .plan();
    let outcome = run(plan, 1);
    let Verdict::Fail(f) = &outcome.verdict else { panic!("passed") };
    assert_eq!((f.class, f.source.as_str()), (FailureClass::Safety, "at_most"));
    // 100 adds at 50/s take about 2 s; the run stops at the first check after that.
    assert!(f.at > secs(1) && f.at < secs(4), "{f}");
    assert!(outcome.sim_time < secs(4), "the run stopped early: {:?}", outcome.sim_time);
    assert!(f.message.contains("> 100"), "{f}");
}

#[test]
fn a_node_panic_is_a_crash_failure_with_its_node_and_time() {
    let plan = base().app_option("panic_at", 40).workload_with("adds", |w| w.rate(20.0).mix("add", 1)).plan();
    let outcome = run(plan, 4);
    let Verdict::Fail(f) = &outcome.verdict else { panic!("passed") };
    assert_eq!(f.class, FailureClass::Crash, "{f}");
    assert_eq!(f.source, "node \"node-0\"");
    assert!(f.message.contains("count reached 40"), "{f}");
    // 40 adds at 20/s: about two seconds in.
    assert!(f.at > secs(1) && f.at < secs(4), "{f}");
}

#[test]
fn a_workload_panic_is_a_crash_failure_not_an_abort() {
    let plan = base().workload_with("chaotic", |w| w.rate(10.0).mix("boom", 1)).plan();
    let outcome = run(plan, 2);
    let Verdict::Fail(f) = &outcome.verdict else { panic!("passed") };
    assert_eq!(f.class, FailureClass::Crash, "{f}");
    assert_eq!(f.source, "workload chaotic");
    assert!(f.message.contains("the client blew up on purpose"), "{f}");
    assert_ne!(outcome.trace_hash, 0, "the run completed with a trace");
}

#[test]
fn progress_is_a_liveness_expectation_that_needs_cooldown_load() {
    // `expect_progress` turns on workloads in the cooldown; the run ends once enough
    // operations succeeded after the faults stopped.
    let plan =
        base().workload_with("adds", |w| w.rate(20.0).mix("add", 1)).expect_progress().with_cooldown(secs(3)).plan();
    let outcome = run(plan.clone(), 3);
    assert!(outcome.verdict.passed(), "{}", outcome.verdict);
    assert!(outcome.settled["progress"] >= secs(10));
    // Same plan, same seed: same run.
    assert_eq!(run(plan, 3).trace_hash, outcome.trace_hash);
}

#[test]
fn runs_are_deterministic_and_seeds_change_them() {
    let plan = base()
        .workload_with("adds", |w| w.rate(30.0).users(4).mix("add", 1))
        .chaos_with(|c| c.restart().min_delay(secs(1)).max_delay(secs(2)).and().loss(0.05))
        .expect_convergence()
        .plan();
    let a = run(plan.clone(), 9);
    let b = run(plan.clone(), 9);
    let c = run(plan, 10);
    assert_eq!((a.trace_hash, a.events), (b.trace_hash, b.events));
    assert_ne!(a.trace_hash, c.trace_hash);
    assert!(a.ops["adds"].info > 0, "loss and restarts made some operations indeterminate: {:?}", a.ops);
}

#[test]
fn an_unknown_app_expectation_lists_the_registered_ones() {
    let plan = base().expect("linearisable").plan();
    let err = Scenario::new(Counter, plan).err().unwrap().to_string();
    assert!(
        err.contains("unknown expectation \"linearisable\"; known: at_most, converge, linearizable, mutual_exclusion, no_lost_writes, progress, ready"),
        "{err}"
    );
}

#[test]
fn an_invalid_plan_is_an_error_not_a_panic() {
    let plan = base().with_run_duration(Duration::ZERO).plan();
    assert!(plan.clone().check().is_err());
    assert!(Scenario::new(Counter, plan).is_err());
}

/// Leaks state between runs of the same seed: a process-wide counter read by the node program.
struct Leaky;
static BOOTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Application for Leaky {
    type State = u64;
    type Client = Transport;
    fn name(&self) -> &str {
        "leaky"
    }
    fn roles(&self) -> Vec<String> {
        vec!["node".into()]
    }
    fn operations(&self) -> Vec<String> {
        vec!["noop".into()]
    }
    fn node(&self, ctx: NodeContext, _: NodeSetup) -> impl std::future::Future<Output = ()> + 'static + use<> {
        let boots = BOOTS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            // The number of earlier boots decides how long to wait before talking: a leak.
            gauntlet::sim::time::sleep(Duration::from_millis(1 + boots % 7)).await;
            ctx.transport().send(gauntlet::sim::NodeId(0), vec![1]);
            std::future::pending::<()>().await;
        }
    }
    fn client(&self, ctx: &NodeContext) -> Transport {
        ctx.transport()
    }
    async fn execute(&self, _: &Transport, _: &Operation, _: &[NodeRef]) -> OpOutcome {
        OpOutcome::ok("")
    }
    async fn read_state(&self, _: &Transport, _: &NodeRef) -> Result<u64, String> {
        Ok(0)
    }
    fn launch(&self, s: &NodeSetup, _: &gauntlet::Placement) -> Launch {
        Launch::binary("leaky").arg(&s.node.name)
    }
}

#[test]
fn chaos_aimed_at_the_leader_hits_whichever_node_leads_when_it_fires() {
    let plan = base()
        .topology(|t| t.nodes("node", 3))
        .workload_with("adds", |w| w.rate(50.0).mix("add", 1))
        .chaos_with(|c| {
            c.start(secs(1))
                .restart()
                .min_delay(millis(500))
                .max_delay(millis(900))
                .down(millis(100))
                .at_leader()
                .and()
                .pause()
                .min_delay(millis(700))
                .max_delay(secs(1))
                .min_duration(millis(50))
                .max_duration(millis(100))
                .at_leader()
                .and()
                .partition(&[PartitionKind::Leader])
                .min_delay(millis(600))
                .max_delay(secs(1))
                .min_duration(millis(100))
                .max_duration(millis(200))
        })
        .plan();
    let leader = plan.topology.node_names()[0].clone();
    let outcome = run(plan.clone(), 3);
    assert!(outcome.verdict.passed(), "{}", outcome.verdict);
    let (mut crashes, mut pauses, mut cuts) = (0, 0, 0);
    for e in &outcome.schedule.entries {
        match &e.fault {
            Fault::Crash { node } | Fault::Restart { node } | Fault::Pause { node } | Fault::Resume { node } => {
                assert_eq!(node, &leader, "{} at {:?}", e.fault, e.at);
                crashes += u32::from(matches!(e.fault, Fault::Crash { .. }));
                pauses += u32::from(matches!(e.fault, Fault::Pause { .. }));
            }
            Fault::Partition { groups } => {
                assert_eq!(groups[0], vec![leader.clone()], "the leader alone: {groups:?}");
                assert_eq!(groups[1].len(), 2, "the other members together: {groups:?}");
                cuts += 1;
            }
            _ => {}
        }
    }
    // The leader's count restarts at 0 after each crash, so some aimed faults find no leader
    // and are skipped; most fire.
    assert!(crashes >= 5 && pauses >= 3 && cuts >= 3, "crashes {crashes}, pauses {pauses}, cuts {cuts}");
    assert_eq!(run(plan, 3).schedule, outcome.schedule, "aimed targets are part of the deterministic run");
}

#[test]
fn chaos_aimed_at_the_leader_needs_an_app_that_elects_one() {
    let plan = ScenarioBuilder::new("leaky")
        .app("leaky")
        .topology(|t| t.nodes("node", 3))
        .with_run_duration(secs(5))
        .chaos_with(|c| c.restart().at_leader())
        .plan();
    let err = Scenario::new(Leaky, plan).err().expect("refused").to_string();
    assert!(err.contains("chaos.restart.aim") && err.contains("does not elect leaders"), "{err}");
}

#[test]
fn the_determinism_check_catches_state_leaking_between_runs() {
    let plan =
        ScenarioBuilder::new("leaky").app("leaky").topology(|t| t.nodes("node", 3)).with_run_duration(secs(1)).plan();
    let scenario = Scenario::new(Leaky, plan).unwrap();
    let err = SimDeployer::default().check_determinism(true).run(&scenario, Seeds::new(1)).expect_err("caught");
    let msg = err.to_string();
    assert!(msg.contains("SIM_SEED=1") && msg.contains("diverge"), "{msg}");
}
