//! A scripted run on a real deployment: the [`Target`] a script's modules drive
//! ([`RealTarget`]), and [`drive_script`], which runs the script where a plan's timeline would
//! run, with the plan's workloads, observer and expectations around it as in [`live::drive`].
//!
//! A script and the cluster meet through a channel: the script's task sends each fault and
//! upgrade to the loop that owns the cluster, which applies it and answers, so the script
//! (a Lua state, tied to its thread) never holds the cluster itself. Operations, HTTP calls and
//! checks go straight from the script to the nodes' HTTP APIs.

use crate::error::{BackendError, Result};
use crate::http;
use crate::live::{self, Cluster, Progress, Record, Running};
use gauntlet::expect::{ClusterView, Status};
use gauntlet::judge::Judge;
use gauntlet::script::{Fut, Halt, NodeInfo, OpReply, ScriptChecks, Target, SCRIPT_WORKLOAD};
use gauntlet::workload::{HistoryEntry, SharedOpLog};
use gauntlet::{
    FailureClass, HttpApplication, HttpCall, NodeRef, Observation, OpOutcome, Operation, RunOutcome, Scenario, Verdict,
};
use gauntlet_sim::{Fault, OpPhase, Seeds};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Longest a `client.http` call waits for its answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the script asks of the loop that owns the cluster.
enum Command {
    /// Apply a fault now.
    Apply(Fault, oneshot::Sender<Result<()>>),
    /// Restart a node on another build.
    Upgrade { node: String, version: String, reply: oneshot::Sender<Result<()>> },
    /// A line for the person watching.
    Say(Duration, String),
}

/// How each node's process is, as the cluster loop last looked: `running`, `paused` or
/// `crashed`.
type Processes = Rc<RefCell<BTreeMap<String, &'static str>>>;

/// A script's view of a real deployment.
pub struct RealTarget<A: HttpApplication> {
    backend: String,
    app: Arc<A>,
    plan: gauntlet::Plan,
    start: Instant,
    endpoints: Arc<BTreeMap<String, SocketAddr>>,
    membership: Arc<Mutex<Vec<NodeRef>>>,
    log: SharedOpLog,
    latest: Arc<Mutex<Option<ClusterView<A::State>>>>,
    commands: mpsc::UnboundedSender<Command>,
    processes: Processes,
    /// The build each node runs, once a script upgraded it.
    versions: RefCell<BTreeMap<String, String>>,
    /// When the script last (re)started or resumed each node: older observations say nothing
    /// of its readiness.
    changed: RefCell<BTreeMap<String, Duration>>,
    checks: RefCell<ScriptChecks<A>>,
    /// The node that last served each of the script's users.
    sticky: Mutex<BTreeMap<u32, u32>>,
    next_id: Cell<u64>,
    printed: Rc<RefCell<Vec<Observation>>>,
}

impl<A: HttpApplication> RealTarget<A> {
    fn version_of(&self, node: &str) -> String {
        self.versions.borrow().get(node).cloned().or_else(|| self.app.versions().into_iter().next()).unwrap_or_default()
    }

    /// Sends `make(reply)` to the cluster loop and waits for its answer.
    async fn ask(&self, what: &str, make: impl FnOnce(oneshot::Sender<Result<()>>) -> Command) -> Result<(), Halt> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).map_err(|_| Halt::crash(format!("{what}: the run is over")))?;
        match answer.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e @ (BackendError::Invalid(_) | BackendError::Unsupported { .. }))) => {
                Err(Halt::script(format!("{what}: {e}")))
            }
            Ok(Err(e)) => Err(Halt::crash(format!("{what}: {e}"))),
            Err(_) => Err(Halt::crash(format!("{what}: the run is over"))),
        }
    }

    /// After a fault or an upgrade went through: note when, for readiness and for checks.
    fn applied(&self, node: Option<&str>) {
        let now = self.now();
        if let Some(node) = node {
            self.changed.borrow_mut().insert(node.to_owned(), now);
        }
        self.checks.borrow_mut().fault_applied(now, self.log.lock().expect("op log").total());
    }
}

impl<A: HttpApplication> Target for RealTarget<A> {
    fn backend(&self) -> String {
        self.backend.clone()
    }

    fn nodes(&self) -> Vec<String> {
        self.membership.lock().expect("membership").iter().map(|m| m.name.clone()).collect()
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn plan(&self) -> &gauntlet::Plan {
        &self.plan
    }

    fn versions(&self) -> Vec<String> {
        self.app.versions()
    }

    fn status(&self, node: &str) -> NodeInfo {
        let status = self.processes.borrow().get(node).copied().unwrap_or("unknown").to_owned();
        let since = self.changed.borrow().get(node).copied();
        let view = self.latest.lock().expect("view").clone();
        let seen = view.as_ref().and_then(|v| v.get(node)).filter(|v| match (since, v.observed_at) {
            (Some(since), Some(at)) => at > since,
            (None, _) => true,
            (Some(_), None) => false,
        });
        // A node that stopped answering is not ready, whatever it said before.
        let state = seen.filter(|v| v.error.is_none()).and_then(|v| v.state.as_ref());
        NodeInfo {
            status,
            version: self.version_of(node),
            ready: seen.map(|_| state.is_some_and(|s| self.app.ready(s))),
            state: state.map(|s| self.app.describe(s)),
        }
    }

    fn leader(&self) -> Option<String> {
        let view = self.latest.lock().expect("view").clone().unwrap_or_default();
        let processes = self.processes.borrow();
        live::current_leader(&*self.app, &view, |n| processes.get(n) == Some(&"running"), &[])
    }

    fn apply<'a>(&'a self, fault: Fault) -> Fut<'a, Result<(), Halt>> {
        Box::pin(async move {
            let node = match &fault {
                Fault::Restart { node } | Fault::Resume { node } => Some(node.clone()),
                _ => None,
            };
            let what = fault.to_string();
            self.ask(&what, |reply| Command::Apply(fault, reply)).await?;
            self.applied(node.as_deref());
            Ok(())
        })
    }

    fn upgrade<'a>(&'a self, node: &'a str, version: &'a str) -> Fut<'a, Result<(), Halt>> {
        Box::pin(async move {
            let what = format!("upgrade {node} from {} to {version}", self.version_of(node));
            let (n, v) = (node.to_owned(), version.to_owned());
            self.ask(&what, |reply| Command::Upgrade { node: n, version: v, reply }).await?;
            self.versions.borrow_mut().insert(node.to_owned(), version.to_owned());
            self.applied(Some(node));
            Ok(())
        })
    }

    fn op<'a>(&'a self, op: &'a str, arg: u64, user: u32, timeout: Duration) -> Fut<'a, Result<OpReply, Halt>> {
        Box::pin(async move {
            let id = self.next_id.get();
            self.next_id.set(id + 1);
            let op = Operation { workload: SCRIPT_WORKLOAD.into(), op: op.to_owned(), user, id, arg };
            let slot = self.log.lock().expect("op log").invoke(&op, self.now());
            let nodes = self.membership.lock().expect("membership").clone();
            let outcome = live::execute_within(&*self.app, &op, &nodes, &self.endpoints, &self.sticky, timeout).await;
            let (phase, status, value) = match outcome {
                OpOutcome::Ok(v) => (OpPhase::Ok, "ok", v),
                OpOutcome::Fail(v) => (OpPhase::Fail, "fail", v),
                OpOutcome::Info(v) => (OpPhase::Info, "info", v),
            };
            self.log.lock().expect("op log").complete(slot, &op, phase, value.clone(), self.now());
            Ok(OpReply { status, value })
        })
    }

    fn op_arg(&self, op: &str, fields: &BTreeMap<String, String>, random: u64) -> std::result::Result<u64, String> {
        self.app.script_arg(op, fields, random)
    }

    fn operations(&self) -> Vec<String> {
        self.app.operations()
    }

    fn http<'a>(
        &'a self,
        node: &'a str,
        method: &'a str,
        path: &'a str,
        body: &'a str,
    ) -> Fut<'a, Result<(u16, String), Halt>> {
        Box::pin(async move {
            let Some(addr) = self.endpoints.get(node) else {
                return Err(Halt::script(format!("client.http: {node} has no HTTP endpoint")));
            };
            if !path.starts_with('/') {
                return Err(Halt::script(format!("client.http: the path {path:?} must start with /")));
            }
            let call = HttpCall::new(method, path).body(body);
            // A node that is down or does not answer is something a script checks for: status
            // 0 and why, not an error.
            Ok(http::request(*addr, &call, HTTP_TIMEOUT).await.unwrap_or_else(|e| (0, e.to_string())))
        })
    }

    fn expect<'a>(
        &'a self,
        name: &'a str,
        params: &'a toml::Table,
    ) -> Fut<'a, std::result::Result<(FailureClass, Status), String>> {
        Box::pin(async move {
            let view = self.latest.lock().expect("view").clone().unwrap_or_default();
            let log = self.log.lock().expect("op log");
            let now = self.now();
            // Facts are simulation-only: a real process logs them, with no shared true time.
            self.checks.borrow_mut().judge(&*self.app, &self.plan, name, params, now, &view, &log, &[])
        })
    }

    fn history(&self) -> Vec<HistoryEntry> {
        self.log.lock().expect("op log").history.clone()
    }

    fn sleep<'a>(&'a self, d: Duration) -> Fut<'a, ()> {
        Box::pin(tokio::time::sleep(d))
    }

    fn log(&self, line: &str) {
        let at = self.now();
        self.printed.borrow_mut().push(Observation { at, node: SCRIPT_WORKLOAD.into(), state: line.to_owned() });
        let _ = self.commands.send(Command::Say(at, format!("script: {line}")));
    }
}

/// Runs `scenario`'s script (its plan has `[script]`) with `seeds` against `cluster` (deployed
/// and healthy): the plan's workloads go on while the script runs; when it returns, the
/// cooldown heals the network, recovers every node and judges the plan's expectations, as
/// under simulation. A script that stops on an error or a failed check fails the run at once.
pub async fn drive_script<A: HttpApplication, C: Cluster>(
    scenario: &Scenario<A>,
    seeds: Seeds,
    cluster: &mut C,
    progress: Progress<'_>,
) -> Result<RunOutcome> {
    let plan = scenario.plan().clone();
    let script =
        plan.script.clone().ok_or_else(|| BackendError::Invalid(format!("plan {} has no script", plan.name)))?;
    let members = scenario.initial_members();
    // Workloads go on until the script returns (then they stop, unless the plan keeps them in
    // the cooldown), as under simulation.
    let mut run = Running::start(scenario, seeds, cluster, script.time_limit + plan.run.cooldown)?;
    for f in gauntlet::chaos::topology_links(&plan) {
        cluster.apply(&f).await?;
    }
    let (commands, mut asked) = mpsc::unbounded_channel();
    let processes: Processes = Rc::default();
    let printed: Rc<RefCell<Vec<Observation>>> = Rc::default();
    let target = Rc::new(RealTarget {
        backend: cluster.backend(),
        app: run.app.clone(),
        plan: plan.clone(),
        start: run.start,
        endpoints: run.endpoints.clone(),
        membership: run.membership.clone(),
        log: run.log.clone(),
        latest: run.latest.clone(),
        commands,
        processes: processes.clone(),
        versions: RefCell::default(),
        changed: RefCell::default(),
        checks: RefCell::default(),
        sticky: Mutex::default(),
        next_id: Cell::new(0),
        printed: printed.clone(),
    });
    let mut paused: Vec<String> = Vec::new();
    look(cluster, &members, &paused, &processes);
    let script_run = gauntlet::script::run(target, &script, seeds.sim);
    tokio::pin!(script_run);
    let mut judge = Judge::new(&*run.app, &plan).map_err(BackendError::Invalid)?;
    let mut record = Record::default();
    let mut deadline = script.time_limit + plan.run.cooldown * 2;
    let (mut tick, mut running) = (0u32, true);
    let verdict = loop {
        let next_tick = run.start + plan.run.observe_every * (tick + 1);
        if running {
            // Real code, but biased all the same (the architecture test asks every select!
            // to be): the script's requests before its end, both before the clock.
            tokio::select! {
                biased;
                Some(command) = asked.recv() => {
                    match command {
                        Command::Say(at, line) => progress(at, &line),
                        Command::Apply(fault, reply) => {
                            let at = run.start.elapsed();
                            progress(at, &format!("fault: {fault}"));
                            let done = apply(cluster, &fault).await;
                            if done.is_ok() {
                                record.applied.push((at, fault.clone()));
                                match &fault {
                                    Fault::Pause { node } => paused.push(node.clone()),
                                    Fault::Resume { node } | Fault::Restart { node } | Fault::Crash { node } => {
                                        paused.retain(|p| p != node);
                                    }
                                    _ => {}
                                }
                            }
                            look(cluster, &members, &paused, &processes);
                            let _ = reply.send(done);
                        }
                        Command::Upgrade { node, version, reply } => {
                            let at = run.start.elapsed();
                            progress(at, &format!("upgrade: {node} to {version}"));
                            let done = cluster.upgrade(&node, &version).await;
                            if done.is_ok() {
                                paused.retain(|p| *p != node);
                                // In the schedule as what it is to the nodes: a restart.
                                record.applied.push((at, Fault::Restart { node: node.clone() }));
                            }
                            look(cluster, &members, &paused, &processes);
                            let _ = reply.send(done);
                        }
                    }
                    continue;
                }
                result = &mut script_run => {
                    running = false;
                    let now = run.start.elapsed();
                    if let Err(halt) = result {
                        break Verdict::Fail(halt.into_failure(now));
                    }
                    progress(now, "script: returned; cooldown: faults stop, the network heals");
                    if !plan.run.workloads_in_cooldown {
                        run.stop_workloads().await;
                    }
                    cluster.begin_batch();
                    for f in live::heal_all(&plan, &members, &[]) {
                        cluster.apply(&f).await?;
                    }
                    cluster.end_batch().await?;
                    for m in &members {
                        cluster.recover(&m.name).await?;
                    }
                    judge.enter_cooldown_until(now, run.log.lock().expect("op log").total(), now + plan.run.cooldown);
                    deadline = now + plan.run.cooldown * 2;
                    continue;
                }
                () = tokio::time::sleep_until(next_tick) => {}
            }
        } else {
            tokio::time::sleep_until(next_tick).await;
        }
        tick += 1;
        look(cluster, &members, &paused, &processes);
        if let Some(v) = run.judge(&mut judge, &mut record, run.start.elapsed(), deadline) {
            break v;
        }
    };
    // The script's own lines, among the nodes' states, in time order.
    record.observations.extend(printed.take());
    record.observations.sort_by_key(|o| o.at);
    Ok(run.finish(&plan, seeds, verdict, record, &judge, Vec::new()).await)
}

/// Applies one fault the script asked for, alone in its batch. Link shaping where the
/// backend cannot shape links is refused, not ignored.
async fn apply<C: Cluster>(cluster: &mut C, fault: &Fault) -> Result<()> {
    if matches!(fault, Fault::SetLink { .. }) && !cluster.shapes_links() {
        return Err(BackendError::Invalid(format!(
            "backend {} cannot shape links here: the local backend needs network namespaces (root, without \
             --no-namespaces)",
            cluster.backend()
        )));
    }
    cluster.begin_batch();
    cluster.apply(fault).await?;
    cluster.end_batch().await
}

/// Looks at every member's process: `crashed` if it is not running, `paused` if the script
/// paused it, else `running`.
fn look<C: Cluster>(cluster: &mut C, members: &[NodeRef], paused: &[String], processes: &Processes) {
    let mut seen = processes.borrow_mut();
    for m in members {
        let state = if paused.contains(&m.name) {
            "paused"
        } else if cluster.is_running(&m.name) {
            "running"
        } else {
            "crashed"
        };
        seen.insert(m.name.clone(), state);
    }
}
