//! Ground truth from node code: facts recorded with `NodeContext::fact` carry the world's true
//! time (not the node's skewed clock) and reach expectations through `Check::facts`, so an
//! expectation can judge what nodes believed when — here, "at most one node claims a term".
#![cfg(madsim)]

use gauntlet::expect::{Check, Expectation, ExpectationRegistry, Params, Status};
use gauntlet::sim::{NodeContext, Seeds, Transport};
use gauntlet::{Application, FailureClass, NodeRef, NodeSetup, OpOutcome, Operation, Plan, Scenario, Verdict};
use std::time::{Duration, UNIX_EPOCH};

/// Every node claims term 1 at true time 1 s (and, with option `greedy`, node 0 claims term 2
/// twice: once at 1 s and again at 2 s, as a second node would).
struct Claims;

impl Application for Claims {
    type State = u8;
    type Client = Transport;
    fn name(&self) -> &str {
        "claims"
    }
    fn roles(&self) -> Vec<String> {
        vec!["node".into()]
    }
    fn operations(&self) -> Vec<String> {
        vec!["noop".into()]
    }
    fn check_options(&self, _: &toml::Table) -> Vec<(String, String)> {
        Vec::new()
    }
    fn node(&self, ctx: NodeContext, setup: NodeSetup) -> impl std::future::Future<Output = ()> + 'static + use<> {
        let greedy = setup.options.get("greedy").and_then(|v| v.as_bool()).unwrap_or(false);
        async move {
            gauntlet::sim::time::sleep(Duration::from_secs(1)).await;
            let local = ctx.clock().now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
            let term = if ctx.id().0 == 0 { 2 } else { 1 };
            ctx.fact("claim", format!("term={term} local_ms={local}"));
            if greedy && ctx.id().0 == 1 {
                ctx.fact("claim", "term=2");
            }
            let t = ctx.transport();
            loop {
                let m = t.recv().await;
                if let Some(r) = m.reply_to {
                    t.reply(r, vec![0]);
                }
            }
        }
    }
    fn client(&self, ctx: &NodeContext) -> Transport {
        ctx.transport()
    }
    async fn execute(&self, _: &Transport, _: &Operation, _: &[NodeRef]) -> OpOutcome {
        OpOutcome::ok("")
    }
    async fn read_state(&self, _: &Transport, _: &NodeRef) -> Result<u8, String> {
        Ok(0)
    }
    fn expectations(&self, r: &mut ExpectationRegistry<Self>) {
        r.register("one_claim_per_term", |p, _| {
            Params::new("one_claim_per_term", p, &[]).done()?;
            Ok(Box::new(OneClaimPerTerm) as Box<dyn Expectation<Claims>>)
        });
    }
}

struct OneClaimPerTerm;

impl Expectation<Claims> for OneClaimPerTerm {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, cx: &Check<'_, Claims>) -> Status {
        let mut by_term = std::collections::BTreeMap::<&str, Vec<&str>>::new();
        for f in cx.facts.iter().filter(|f| f.key == "claim") {
            let term = f.value.split_whitespace().next().unwrap_or("");
            by_term.entry(term).or_default().push(&f.node);
        }
        match by_term.iter().find(|(_, nodes)| nodes.len() > 1) {
            Some((term, nodes)) => Status::Violated(format!("{term} claimed by {}", nodes.join(" and "))),
            None => Status::Holds,
        }
    }
}

fn run(greedy: bool) -> gauntlet::RunOutcome {
    let plan = Plan::from_toml(&format!(
        "name = \"claims\"\n[app]\nname = \"claims\"\noptions = {{ greedy = {greedy} }}\n[topology.nodes]\nnode = 2\n\
         [run]\nduration = \"3s\"\ncooldown = \"1s\"\n\
         [[chaos.schedule]]\nat = \"0s\"\nfault = {{ kind = \"clock_skew\", node = \"node-0\", offset_ms = 5000, drift_ppm = 0 }}\n\
         [[expect]]\nname = \"one_claim_per_term\"\n"
    ))
    .expect("the plan parses");
    let scenario = Scenario::new(Claims, plan).expect("fits");
    gauntlet::registry::PlanRunner::run_plan(&scenario, scenario.plan(), Seeds::new(1), Default::default())
        .expect("runs")
}

#[test]
fn facts_carry_true_time_and_reach_expectations() {
    let ok = run(false);
    assert!(ok.verdict.passed(), "{}", ok.verdict);
    let bad = run(true);
    let Verdict::Fail(f) = &bad.verdict else { panic!("two claims of term 2 pass: {}", bad.verdict) };
    assert_eq!(f.source, "one_claim_per_term");
    assert!(f.message.starts_with("term=2 claimed by"), "{}", f.message);
    assert!(f.message.contains("node-0") && f.message.contains("node-1"), "{}", f.message);
    assert!(f.at >= Duration::from_secs(1) && f.at < Duration::from_secs(2), "caught at the first check after 1s");
}

#[test]
fn a_fact_is_stamped_with_true_time_whatever_the_node_clock_says() {
    // The world keeps the facts of its run on its thread; the supervisor reads them.
    let facts = gauntlet::sim::World::builder()
        .seed(3)
        .node(gauntlet::sim::NodeSpec::new("a"), |ctx: NodeContext| async move {
            gauntlet::sim::time::sleep(Duration::from_millis(1500)).await;
            ctx.fact("lease", "held");
        })
        .build()
        .expect("world")
        .run(|sim| async move {
            sim.apply(&gauntlet::sim::Fault::ClockSkew { node: "a".into(), offset_ms: 5_000, drift_ppm: 0 }).unwrap();
            sim.sleep(Duration::from_secs(2)).await;
            gauntlet::sim::facts::with(|f| f.to_vec())
        })
        .expect("runs")
        .output;
    let [fact] = &facts[..] else { panic!("one fact: {facts:?}") };
    assert_eq!((fact.node.as_str(), fact.key.as_str(), fact.value.as_str()), ("a", "lease", "held"));
    assert!(
        fact.at >= Duration::from_millis(1500) && fact.at < Duration::from_millis(1510),
        "true time: {:?}",
        fact.at
    );
}
