//! A scripted run under simulation: the [`Target`] a script's modules drive inside the world,
//! and the client node that performs the script's operations.

use super::{current_leader, Shared};
use crate::app::{Application, NodeRef};
use crate::expect::{ClusterView, Status};
use crate::observe::ObservationHandle;
use crate::runner::NodeChange;
use crate::script::{Fut, Halt, NodeInfo, OpReply, ScriptChecks, Target};
use crate::verdict::{FailureClass, Observation};
use crate::workload::HistoryEntry;
use crate::{OpOutcome, Operation};
use futures::channel::{mpsc, oneshot};
use futures::StreamExt;
use gauntlet_sim::{Fault, NodeContext, NodeStatus, OpPhase, Sim};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The client node that performs a script's operations.
pub const SCRIPT_CLIENT: &str = "client-script";
pub use crate::script::SCRIPT_WORKLOAD;

/// One operation the script asks its client node to perform.
pub(super) struct OpRequest {
    op: Operation,
    nodes: Vec<NodeRef>,
    timeout: Duration,
    reply: oneshot::Sender<OpOutcome>,
}

/// The receiving end the script's client node takes when it starts.
pub(super) type Requests = Arc<Mutex<Option<mpsc::UnboundedReceiver<OpRequest>>>>;

/// The script's client node: performs each request in turn with the application's client.
pub(super) async fn serve_ops<A: Application>(app: Arc<A>, ctx: NodeContext, requests: Requests) {
    let Some(mut rx) = requests.lock().expect("script requests").take() else { return };
    let client = app.client(&ctx);
    while let Some(r) = rx.next().await {
        let outcome = gauntlet_sim::time::timeout(r.timeout, app.execute(&client, &r.op, &r.nodes))
            .await
            .unwrap_or_else(|_| OpOutcome::info(format!("no answer within {:?}", r.timeout)));
        let _ = r.reply.send(outcome);
    }
}

/// A script's view of the simulated world.
pub(super) struct SimTarget<A: Application> {
    pub(super) sim: Sim,
    pub(super) app: Arc<A>,
    pub(super) plan: crate::Plan,
    pub(super) shared: Arc<Shared>,
    pub(super) handle: ObservationHandle<ClusterView<A::State>, NodeChange<A::State>>,
    pub(super) gone: Arc<Mutex<BTreeSet<String>>>,
    pub(super) ops: mpsc::UnboundedSender<OpRequest>,
    /// When the script last (re)started or resumed each node: older observations say nothing
    /// of its readiness.
    pub(super) changed: RefCell<BTreeMap<String, Duration>>,
    pub(super) next_id: Cell<u64>,
    /// The expectations the script judged since its last fault.
    pub(super) checks: RefCell<ScriptChecks<A>>,
}

impl<A: Application + Send + Sync> SimTarget<A> {
    fn version_of(&self, node: &str) -> String {
        let versions = self.shared.versions.lock().expect("versions");
        versions.get(node).cloned().or_else(|| self.app.versions().into_iter().next()).unwrap_or_default()
    }

    fn apply_now(&self, fault: Fault) -> Result<(), Halt> {
        let now = self.sim.now();
        self.sim.annotate(format!("script: {fault}"));
        self.sim.apply(&fault).map_err(|e| Halt::crash(format!("applying {fault}: {e}")))?;
        if let Fault::Restart { node } | Fault::Resume { node } = &fault {
            self.changed.borrow_mut().insert(node.clone(), now);
        }
        self.shared.aimed.lock().expect("aimed").push((now, fault));
        self.checks.borrow_mut().fault_applied(now, self.shared.log.lock().expect("op log").total());
        Ok(())
    }
}

impl<A: Application + Send + Sync> Target for SimTarget<A> {
    fn backend(&self) -> String {
        "sim".into()
    }

    fn nodes(&self) -> Vec<String> {
        let gone = self.gone.lock().expect("gone");
        let members = self.shared.membership.lock().expect("membership");
        members.iter().filter(|m| !gone.contains(&m.name)).map(|m| m.name.clone()).collect()
    }

    fn now(&self) -> Duration {
        self.sim.now()
    }

    fn plan(&self) -> &crate::Plan {
        &self.plan
    }

    fn versions(&self) -> Vec<String> {
        self.app.versions()
    }

    fn status(&self, node: &str) -> NodeInfo {
        let status = match self.sim.node_id(node).map(|id| self.sim.status(id)) {
            Some(NodeStatus::Running) => "running".to_owned(),
            Some(NodeStatus::Crashed) => "crashed".to_owned(),
            Some(NodeStatus::Paused) => "paused".to_owned(),
            Some(other) => format!("{other:?}").to_lowercase(),
            None => "unknown".to_owned(),
        };
        let since = self.changed.borrow().get(node).copied();
        let view = self.handle.latest();
        let seen = view.as_ref().and_then(|v| v.get(node)).filter(|v| match (since, v.observed_at) {
            (Some(since), Some(at)) => at > since,
            (None, _) => true,
            (Some(_), None) => false,
        });
        let state = seen.and_then(|v| v.state.as_ref());
        NodeInfo {
            status,
            version: self.version_of(node),
            ready: seen.map(|_| state.is_some_and(|s| self.app.ready(s))),
            state: state.map(|s| self.app.describe(s)),
        }
    }

    fn leader(&self) -> Option<String> {
        current_leader(&self.sim, &*self.app, &self.handle, &self.shared, &self.gone)
    }

    fn apply<'a>(&'a self, fault: Fault) -> Fut<'a, Result<(), Halt>> {
        Box::pin(async move { self.apply_now(fault) })
    }

    fn upgrade<'a>(&'a self, node: &'a str, version: &'a str) -> Fut<'a, Result<(), Halt>> {
        Box::pin(async move {
            self.sim.annotate(format!("script: upgrade {node} from {} to {version}", self.version_of(node)));
            self.shared.versions.lock().expect("versions").insert(node.to_owned(), version.to_owned());
            self.apply_now(Fault::Restart { node: node.to_owned() })
        })
    }

    fn op<'a>(&'a self, op: &'a str, arg: u64, user: u32, timeout: Duration) -> Fut<'a, Result<OpReply, Halt>> {
        Box::pin(async move {
            let id = self.next_id.get();
            self.next_id.set(id + 1);
            let op = Operation { workload: SCRIPT_WORKLOAD.into(), op: op.to_owned(), user, id, arg };
            let slot = self.shared.log.lock().expect("op log").invoke(&op, self.sim.now());
            let nodes = self.shared.membership.lock().expect("membership").clone();
            let (reply, answer) = oneshot::channel();
            let outcome = match self.ops.unbounded_send(OpRequest { op: op.clone(), nodes, timeout, reply }) {
                Ok(()) => answer.await.unwrap_or_else(|_| OpOutcome::info("the script's client stopped")),
                Err(_) => OpOutcome::info("the script's client is not running"),
            };
            let (phase, status, value) = match outcome {
                OpOutcome::Ok(v) => (OpPhase::Ok, "ok", v),
                OpOutcome::Fail(v) => (OpPhase::Fail, "fail", v),
                OpOutcome::Info(v) => (OpPhase::Info, "info", v),
            };
            self.shared.log.lock().expect("op log").complete(slot, &op, phase, value.clone(), self.sim.now());
            Ok(OpReply { status, value })
        })
    }

    fn op_arg(&self, op: &str, fields: &BTreeMap<String, String>, random: u64) -> Result<u64, String> {
        self.app.script_arg(op, fields, random)
    }

    fn operations(&self) -> Vec<String> {
        self.app.operations()
    }

    fn http<'a>(&'a self, _: &'a str, _: &'a str, _: &'a str, _: &'a str) -> Fut<'a, Result<(u16, String), Halt>> {
        Box::pin(async {
            Err(Halt::script(
                "client.http: under simulation nodes have no HTTP API; use client.op (client.http is for real backends)",
            ))
        })
    }

    fn expect<'a>(&'a self, name: &'a str, params: &'a toml::Table) -> Fut<'a, Result<(FailureClass, Status), String>> {
        Box::pin(async move {
            let view = self.handle.latest().unwrap_or_default();
            let log = self.shared.log.lock().expect("op log");
            let now = self.sim.now();
            gauntlet_sim::facts::with(|facts| {
                self.checks.borrow_mut().judge(&*self.app, &self.plan, name, params, now, &view, &log, facts)
            })
        })
    }

    fn history(&self) -> Vec<HistoryEntry> {
        self.shared.log.lock().expect("op log").history.clone()
    }

    fn sleep<'a>(&'a self, d: Duration) -> Fut<'a, ()> {
        Box::pin(gauntlet_sim::time::sleep(d))
    }

    fn log(&self, line: &str) {
        let at = self.sim.now();
        let mut observed = self.shared.observed.lock().expect("observed");
        observed.0.push(Observation { at, node: SCRIPT_WORKLOAD.into(), state: line.to_owned() });
    }
}
