//! The built-in `linearizable` expectation on a toy register: a single-copy register passes,
//! a register that reads from a lagging replica fails with a counterexample, a spent search
//! budget is "undecided" (a pass with a finding), and a plan without a model is refused.
#![cfg(madsim)]

use gauntlet::lincheck::{HistoryOp, RegisterOp, Reply};
use gauntlet::sim::{NodeContext, Seeds, Transport};
use gauntlet::workload::HistoryEntry;
use gauntlet::{Application, FindingKind, NodeRef, NodeSetup, OpOutcome, Operation, Plan, Scenario, Verdict};
use std::time::Duration;

/// A register on two nodes. Writes go to node 0, which forwards them to node 1 one way
/// (so node 1 lags by a network delay); with option `stale = true` reads go to node 1.
struct Reg;

const WRITE: u8 = 1;
const READ: u8 = 2;
const COPY: u8 = 3;

impl Application for Reg {
    type State = String;
    type Client = (Transport, bool);
    fn name(&self) -> &str {
        "reg"
    }
    fn roles(&self) -> Vec<String> {
        vec!["node".into()]
    }
    fn operations(&self) -> Vec<String> {
        vec!["write".into(), "read".into()]
    }
    fn check_options(&self, _: &toml::Table) -> Vec<(String, String)> {
        Vec::new()
    }
    fn node(&self, ctx: NodeContext, _: NodeSetup) -> impl std::future::Future<Output = ()> + 'static + use<> {
        async move {
            let t = ctx.transport();
            let mut value = String::from("nil");
            loop {
                let m = t.recv().await;
                let body = String::from_utf8_lossy(&m.body[1..]).into_owned();
                match m.body[0] {
                    WRITE => {
                        value = body.clone();
                        if let Some((peer, _)) = ctx.members().into_iter().find(|(id, _)| *id != ctx.id()) {
                            let mut copy = vec![COPY];
                            copy.extend_from_slice(body.as_bytes());
                            // The copy lags by 100 ms: reads of the second node see old values.
                            let t = t.clone();
                            gauntlet::sim::time::spawn(async move {
                                gauntlet::sim::time::sleep(Duration::from_millis(100)).await;
                                t.send(peer, copy);
                            });
                        }
                    }
                    COPY => value = body,
                    _ => {}
                }
                if let Some(r) = m.reply_to {
                    t.reply(r, value.clone().into_bytes());
                }
            }
        }
    }
    fn client(&self, ctx: &NodeContext) -> (Transport, bool) {
        (ctx.transport(), false)
    }
    async fn execute(&self, (t, _): &(Transport, bool), op: &Operation, nodes: &[NodeRef]) -> OpOutcome {
        let stale = op.workload == "stale";
        let (to, body) = match op.op.as_str() {
            "write" => (nodes[0].id, [&[WRITE][..], (op.arg % 5).to_string().as_bytes()].concat()),
            _ => (nodes[usize::from(stale)].id, vec![READ]),
        };
        match t.request(to, body, Duration::from_millis(300)).await {
            Ok(b) => OpOutcome::ok(String::from_utf8_lossy(&b).into_owned()),
            Err(e) => OpOutcome::info(e.to_string()),
        }
    }
    async fn read_state(&self, (t, _): &(Transport, bool), n: &NodeRef) -> Result<String, String> {
        let b = t.request(n.id, vec![READ], Duration::from_millis(200)).await.map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }
    fn history_op(&self, e: &HistoryEntry) -> Option<HistoryOp> {
        Some(match e.op.as_str() {
            "write" => HistoryOp::register(RegisterOp::Write((e.arg % 5).to_string().into()), Some(Reply::Ack)),
            _ => {
                let seen = (e.result != "nil").then_some(e.result.as_str());
                HistoryOp::register(RegisterOp::Read, Some(Reply::value(seen)))
            }
        })
    }
}

fn plan(workload: &str, expect: &str) -> Plan {
    Plan::from_toml(&format!(
        r#"
name = "reg"
[app]
name = "reg"
[topology]
[topology.nodes]
node = 2
[run]
duration = "3s"
cooldown = "1s"
[[workloads]]
name = "{workload}"
rate = 60.0
users = 4
[[expect]]
{expect}
"#
    ))
    .expect("the plan parses")
}

fn run(plan: Plan) -> gauntlet::RunOutcome {
    let scenario = Scenario::new(Reg, plan).expect("the plan fits");
    gauntlet::registry::PlanRunner::run_plan(&scenario, scenario.plan(), Seeds::new(7), Default::default())
        .expect("the run runs")
}

#[test]
fn a_single_copy_register_is_linearizable() {
    let outcome = run(plan("single", "name = \"linearizable\"\nmodel = \"register\""));
    assert!(outcome.verdict.passed(), "{}", outcome.verdict);
    assert!(outcome.history.len() > 100, "a real history was checked ({} ops)", outcome.history.len());
    assert!(outcome.findings.is_empty(), "{:?}", outcome.findings);
}

#[test]
fn reads_from_a_lagging_replica_are_not_linearizable() {
    let outcome = run(plan("stale", "name = \"linearizable\"\nmodel = \"register\""));
    let Verdict::Fail(f) = &outcome.verdict else { panic!("stale reads pass: {}", outcome.verdict) };
    assert_eq!(f.source, "linearizable");
    assert!(f.message.contains("cannot be linearized"), "{}", f.message);
    assert!(f.message.len() <= gauntlet::lincheck::expectation::MAX_MESSAGE, "the message is capped");
}

#[test]
fn a_spent_budget_is_undecided_and_not_a_failure() {
    let outcome = run(plan("single", "name = \"linearizable\"\nmodel = \"register\"\nmax_steps = 3"));
    assert!(outcome.verdict.passed(), "undecided is not a safety failure: {}", outcome.verdict);
    let [finding] = &outcome.findings[..] else { panic!("one finding: {:?}", outcome.findings) };
    assert_eq!(finding.kind, FindingKind::Undecided);
    assert!(finding.text.contains("undecided"), "{}", finding.text);
}

#[test]
fn the_model_is_required_and_named() {
    let err = Scenario::new(Reg, plan("single", "name = \"linearizable\"")).err().expect("refused").to_string();
    assert!(err.contains("model") && err.contains("register or kv"), "{err}");
    let err = Scenario::new(Reg, plan("single", "name = \"linearizable\"\nmodel = \"queue\"")).err().expect("refused");
    assert!(err.to_string().contains("\"queue\" is not a model"), "{err}");
}

#[test]
fn long_messages_are_capped_at_a_line_with_the_rest_counted() {
    let text: String = (0..500).map(|i| format!("op {i} write(\"{i}\")\n")).collect();
    let capped = gauntlet::lincheck::expectation::cap(&text, 2_000);
    assert!(capped.len() <= 2_000, "{}", capped.len());
    assert!(capped.contains("more lines") && capped.starts_with("op 0 "), "{capped}");
}
