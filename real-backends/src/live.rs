//! Driving a real cluster with a plan: the same operations per workload
//! ([`PlannedOps`]) and the same concrete fault timeline ([`chaos::compile`]) as the
//! simulation with the same seeds, executed in wall time against the nodes' HTTP APIs; the
//! nodes' states polled every `observe_every`; the expectations judged by the same [`Judge`]
//! as in simulation. A backend plugs in through [`Cluster`].

use crate::error::{BackendError, Result};
use crate::http::{self, HttpError};
use gauntlet::chaos::{self, AimedFault, ChurnEvent};
use gauntlet::expect::{ClusterView, NodeView, Phase};
use gauntlet::judge::Judge;
use gauntlet::workload::{Admission, Admit, OpLog, PlannedOps, SharedOpLog};
use gauntlet::{
    Failure, FailureClass, HttpApplication, HttpReply, MembershipChange, NodeRef, Observation, OpOutcome, Operation,
    RunOutcome, Scenario, Verdict,
};
use gauntlet_sim::{Fault, FaultSchedule, OpPhase, Seeds};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// A deployed cluster a plan can be driven against.
pub trait Cluster {
    /// The backend's name (`local`, `compose`, `k8s`).
    fn backend(&self) -> String;
    /// Where clients reach `node`'s HTTP API.
    fn endpoint(&self, node: &str) -> Option<SocketAddr>;
    /// Applies one fault of the plan's timeline for real.
    fn apply(&mut self, fault: &Fault) -> impl std::future::Future<Output = Result<()>>;
    /// Faults that fire at one instant are about to be applied (a partition compiles to many
    /// one-way cuts): a backend may hold its updates until [`Cluster::end_batch`].
    fn begin_batch(&mut self) {}
    /// The faults of one instant are applied: install what was held.
    fn end_batch(&mut self) -> impl std::future::Future<Output = Result<()>> {
        async { Ok(()) }
    }
    /// Whether links can be shaped here (latency, loss): the local backend on loopback
    /// cannot, and a script's `net.latency` there is refused rather than ignored.
    fn shapes_links(&self) -> bool {
        true
    }
    /// Whether `node` runs (not crashed, not paused).
    fn is_running(&mut self, node: &str) -> bool;
    /// Waits until every node answers its health check.
    fn wait_ready(&mut self, timeout: Duration) -> impl std::future::Future<Output = Result<()>>;
    /// The cooldown's recovery of one node: resume it if paused, start it if down.
    fn recover(&mut self, node: &str) -> impl std::future::Future<Output = Result<()>>;
    /// Restarts `node` on build `version` of its program, keeping its data: one step of a
    /// script's rolling upgrade (`sut.upgrade`). Backends that cannot change a node's command
    /// line say so.
    fn upgrade(&mut self, node: &str, version: &str) -> impl std::future::Future<Output = Result<()>> {
        let refused = BackendError::Invalid(format!(
            "backend {} cannot upgrade {node} to {version}: it cannot change a running node's build",
            self.backend()
        ));
        async move { Err(refused) }
    }
}

/// Progress lines (`at`, text) for the person watching.
pub type Progress<'a> = &'a (dyn Fn(Duration, &str) + Sync);

/// One step of the timeline.
#[derive(Debug, Clone)]
enum Action {
    Fault(Fault),
    Aimed(AimedFault),
    Leave(String),
}

/// Runs `scenario` with `seeds` against `cluster` (deployed and healthy) and reports as the
/// simulator does; the outcome has no trace (real runs have none) and its `sim_time` is the
/// wall time the run took. A plan with a script runs it in place of the timeline
/// ([`crate::scripted::drive_script`]).
pub async fn drive<A: HttpApplication, C: Cluster>(
    scenario: &Scenario<A>,
    seeds: Seeds,
    cluster: &mut C,
    progress: Progress<'_>,
) -> Result<RunOutcome> {
    if scenario.plan().script.is_some() {
        return crate::scripted::drive_script(scenario, seeds, cluster, progress).await;
    }
    let plan = scenario.plan().clone();
    let timeline = chaos::compile(&plan, seeds.chaos);
    if let Some((_, ChurnEvent::Join { name, .. } | ChurnEvent::Leave { name })) = timeline.churn.first() {
        return Err(BackendError::Unsupported {
            backend: cluster.backend(),
            plan: plan.name.clone(),
            missing: vec![format!("membership churn ({name} joins or leaves) is simulation-only so far")],
        });
    }
    let members = scenario.initial_members();
    let workload_end =
        plan.run.duration + if plan.run.workloads_in_cooldown { plan.run.cooldown } else { Duration::ZERO };
    let run = Running::start(scenario, seeds, cluster, workload_end)?;
    let (app, log, latest, membership) = (run.app.clone(), run.log.clone(), run.latest.clone(), run.membership.clone());
    let start = run.start;
    let since = move || start.elapsed();

    // The timeline, in time order: faults, faults aimed at the leader, kills' departures.
    let mut actions: Vec<(Duration, u8, Action)> = Vec::new();
    for e in &timeline.faults.entries {
        actions.push((e.at, 1, Action::Fault(e.fault.clone())));
    }
    for (at, aimed) in &timeline.aimed {
        actions.push((*at, 1, Action::Aimed(*aimed)));
    }
    for (at, name) in &timeline.killed {
        actions.push((*at, 2, Action::Leave(name.clone())));
    }
    actions.sort_by_key(|(at, rank, _)| (*at, *rank));
    let mut actions = std::collections::VecDeque::from(actions);
    let mut gone: Vec<String> = Vec::new();
    let mut record = Record::default();

    for f in chaos::topology_links(&plan) {
        cluster.apply(&f).await?;
    }
    let mut judge = Judge::new(&*app, &plan).map_err(BackendError::Invalid)?;
    let mut tick = 0u32;
    let verdict = loop {
        let next_tick = plan.run.observe_every * (tick + 1);
        // Timeline steps due before the next check run first, at their own times, those of
        // one instant together. Times are the schedule's, not the clock's: a loop that fell
        // behind catches up rather than skipping steps.
        if let Some(&(at, _, _)) = actions.front().filter(|(at, _, _)| *at <= next_tick && *at < plan.run.duration) {
            tokio::time::sleep_until(start + at).await;
            let mut batch = Vec::new();
            while actions.front().is_some_and(|(t, _, _)| *t == at) {
                batch.push(actions.pop_front().expect("front").2);
            }
            // One line per instant: a partition is many one-way cuts.
            let plain: Vec<String> = batch
                .iter()
                .filter_map(|a| if let Action::Fault(f) = a { Some(f.to_string()) } else { None })
                .collect();
            if !plain.is_empty() {
                progress(at, &format!("fault: {}", plain.join("; ")));
            }
            cluster.begin_batch();
            for action in batch {
                match action {
                    Action::Fault(f) => apply_logged(cluster, &f, at, &mut record.applied).await?,
                    Action::Aimed(aimed) => {
                        let view = latest.lock().expect("view").clone().unwrap_or_default();
                        let Some(leader) = current_leader(&*app, &view, |n| cluster.is_running(n), &gone) else {
                            progress(at, &format!("no leader seen: {aimed:?} skipped"));
                            continue;
                        };
                        let (now, undo) = aimed_faults(aimed, &leader, &membership, &gone);
                        progress(at, &format!("fault aimed at the leader: {now}"));
                        apply_logged(cluster, &now, at, &mut record.applied).await?;
                        if let Some((after, undo)) = undo.filter(|(after, _)| at + *after < plan.run.duration) {
                            let pos = actions.iter().position(|(t, _, _)| *t > at + after).unwrap_or(actions.len());
                            actions.insert(pos, (at + after, 1, Action::Fault(undo)));
                        }
                    }
                    Action::Leave(name) => {
                        membership.lock().expect("membership").retain(|m| m.name != name);
                        record.changes.push(MembershipChange { at, node: name.clone(), joined: false });
                        gone.push(name);
                    }
                }
            }
            cluster.end_batch().await?;
            continue;
        }
        tick += 1;
        tokio::time::sleep_until(start + next_tick).await;
        let now = since();
        if judge.phase() == Phase::Active && next_tick >= plan.run.duration {
            progress(now, "cooldown: faults stop, the network heals");
            cluster.begin_batch();
            for f in heal_all(&plan, &members, &gone) {
                cluster.apply(&f).await?;
            }
            cluster.end_batch().await?;
            for m in members.iter().filter(|m| !gone.contains(&m.name)) {
                cluster.recover(&m.name).await?;
            }
            judge.enter_cooldown(now, log.lock().expect("op log").total());
        }
        if let Some(v) = run.judge(&mut judge, &mut record, now, plan.run.duration + plan.run.cooldown * 2) {
            break v;
        }
    };
    drop((log, latest, membership));
    Ok(run.finish(&plan, seeds, verdict, record, &judge, timeline.kinds.clone()).await)
}

/// A real run under way: the plan's workloads issuing their operations and an observer polling
/// every member's state, both against the cluster's HTTP endpoints, in wall time from `start`.
/// A plan's timeline ([`drive`]) and a script ([`crate::scripted::drive_script`]) run around it.
pub(crate) struct Running<A: HttpApplication> {
    pub(crate) app: Arc<A>,
    pub(crate) start: Instant,
    pub(crate) endpoints: Arc<BTreeMap<String, SocketAddr>>,
    pub(crate) membership: Arc<Mutex<Vec<NodeRef>>>,
    pub(crate) log: SharedOpLog,
    pub(crate) latest: Arc<Mutex<Option<ClusterView<A::State>>>>,
    workloads: tokio::task::JoinSet<()>,
    observer: tokio::task::JoinSet<()>,
}

impl<A: HttpApplication> Running<A> {
    /// Starts the plan's workloads (their operations planned up to `workload_end`) and the
    /// observer against `cluster`'s initial members.
    pub(crate) fn start<C: Cluster>(
        scenario: &Scenario<A>,
        seeds: Seeds,
        cluster: &C,
        workload_end: Duration,
    ) -> Result<Running<A>> {
        let plan = scenario.plan();
        let app = scenario.shared_app();
        let members = scenario.initial_members();
        let mut endpoints = BTreeMap::new();
        for m in &members {
            let addr = cluster
                .endpoint(&m.name)
                .ok_or_else(|| BackendError::Invalid(format!("no endpoint for {}", m.name)))?;
            endpoints.insert(m.name.clone(), addr);
        }
        let endpoints = Arc::new(endpoints);
        let membership = Arc::new(Mutex::new(members.clone()));
        let log: SharedOpLog = Arc::default();
        let latest: Arc<Mutex<Option<ClusterView<A::State>>>> = Arc::default();
        let start = Instant::now();
        let mut workloads = tokio::task::JoinSet::new();
        for w in &plan.workloads {
            let ops = PlannedOps::new(w, seeds.sim, workload_end, app.operations());
            let (app, log, membership, endpoints) = (app.clone(), log.clone(), membership.clone(), endpoints.clone());
            let (name, op_timeout, think) = (w.name.clone(), w.op_timeout, w.think);
            let admission = Arc::new(Mutex::new(Admission::of(w)));
            log.lock().expect("op log").counts.entry(name.clone()).or_default();
            workloads.spawn(async move {
                // Each logical user remembers the node that last served it, as a real client would.
                let sticky: Arc<Mutex<BTreeMap<u32, u32>>> = Arc::default();
                let mut ops_tasks = tokio::task::JoinSet::new();
                for (at, op) in ops {
                    tokio::time::sleep_until(start + at).await;
                    let op = match admission.lock().expect("admission").arrive(op) {
                        Admit::Start(op) => op,
                        Admit::Wait => continue,
                        Admit::Shed => {
                            log.lock().expect("op log").counts.get_mut(&name).expect("entry").shed += 1;
                            continue;
                        }
                    };
                    let (app, log, membership, endpoints, sticky, admission) = (
                        app.clone(),
                        log.clone(),
                        membership.clone(),
                        endpoints.clone(),
                        sticky.clone(),
                        admission.clone(),
                    );
                    // In closed loop the task goes on with its user's next waiting operation.
                    ops_tasks.spawn(async move {
                        let mut op = op;
                        loop {
                            let slot = log.lock().expect("op log").invoke(&op, start.elapsed());
                            let nodes = membership.lock().expect("membership").clone();
                            let outcome = execute_within(&*app, &op, &nodes, &endpoints, &sticky, op_timeout).await;
                            let (phase, text) = match outcome {
                                OpOutcome::Ok(r) => (OpPhase::Ok, r),
                                OpOutcome::Fail(r) => (OpPhase::Fail, r),
                                OpOutcome::Info(r) => (OpPhase::Info, r),
                            };
                            log.lock().expect("op log").complete(slot, &op, phase, text, start.elapsed());
                            if !think.is_zero() {
                                tokio::time::sleep(think).await;
                            }
                            let next = admission.lock().expect("admission").finished(op.user);
                            match next {
                                Some(n) => op = n,
                                None => break,
                            }
                        }
                    });
                }
                let unstarted = admission.lock().expect("admission").close();
                log.lock().expect("op log").counts.get_mut(&name).expect("entry").shed += unstarted;
                while ops_tasks.join_next().await.is_some() {}
            });
        }
        let mut observer = tokio::task::JoinSet::new();
        {
            let (app, latest, membership, endpoints) =
                (app.clone(), latest.clone(), membership.clone(), endpoints.clone());
            let (every, patience) = (plan.run.observe_every, plan.run.observe_every * 5);
            observer.spawn(async move {
                let mut view: ClusterView<A::State> = BTreeMap::new();
                let mut tick = 0u32;
                loop {
                    tick += 1;
                    let members = membership.lock().expect("membership").clone();
                    view.retain(|name, _| members.iter().any(|m| &m.name == name));
                    let mut polls = tokio::task::JoinSet::new();
                    for m in &members {
                        let (app, addr, m) = (app.clone(), endpoints[&m.name], m.clone());
                        polls.spawn(async move {
                            let read = match http::request(addr, &app.status_call(), patience).await {
                                Ok((200, body)) => app.parse_state(&body),
                                Ok((status, body)) => Err(format!("HTTP {status}: {body}")),
                                Err(e) => Err(e.to_string()),
                            };
                            (m, read)
                        });
                    }
                    while let Some(Ok((m, read))) = polls.join_next().await {
                        let v = view.entry(m.name.clone()).or_insert_with(|| NodeView {
                            role: m.role.clone(),
                            state: None,
                            observed_at: None,
                            error: None,
                        });
                        match read {
                            Ok(s) => {
                                v.state = Some(s);
                                v.observed_at = Some(start.elapsed());
                                v.error = None;
                            }
                            Err(e) => v.error = Some(e),
                        }
                    }
                    *latest.lock().expect("view") = Some(view.clone());
                    tokio::time::sleep_until(start + every * tick).await;
                }
            });
        }

        Ok(Running { app, start, endpoints, membership, log, latest, workloads, observer })
    }

    /// Records the latest observation and judges the plan's expectations at `now`; past
    /// `deadline` (plus a margin) a run that cannot decide — every poll failing — ends.
    pub(crate) fn judge(
        &self,
        judge: &mut Judge<A>,
        record: &mut Record,
        now: Duration,
        deadline: Duration,
    ) -> Option<Verdict> {
        let view = self.latest.lock().expect("view").clone()?;
        for (node, v) in &view {
            let Some(state) = v.state.as_ref() else { continue };
            let text = self.app.describe(state);
            if record.described.get(node) != Some(&text) {
                record.observations.push(Observation { at: now, node: node.clone(), state: text.clone() });
                record.described.insert(node.clone(), text);
            }
        }
        let ops = self.log.lock().expect("op log").total();
        // Facts are simulation-only: a real process logs them, with no shared true time.
        if let Some(v) = judge.judge(&*self.app, now, &view, ops, &self.log, &[]) {
            return Some(v);
        }
        // A wall-clock guard: a real run that cannot decide (every poll failing) still ends.
        (now > deadline + Duration::from_secs(30)).then(|| {
            Verdict::Fail(Failure {
                class: FailureClass::Liveness,
                source: "observer".into(),
                at: now,
                message: "no decision: the cluster could not be observed".into(),
            })
        })
    }

    /// Stops everything and reports the run as the simulator does: no trace (real runs have
    /// none), and the wall time it took as its `sim_time`.
    pub(crate) async fn finish(
        self,
        plan: &gauntlet::Plan,
        seeds: Seeds,
        verdict: Verdict,
        record: Record,
        judge: &Judge<A>,
        chaos_kinds: Vec<&'static str>,
    ) -> RunOutcome {
        let elapsed = self.start.elapsed();
        let mut observed_sources: Vec<String> =
            self.membership.lock().expect("membership").iter().map(|m| m.name.clone()).collect();
        observed_sources.sort();
        let log = self.stop().await;
        let mut schedule = FaultSchedule::new();
        for (at, f) in record.applied {
            schedule.push(at, f);
        }
        RunOutcome {
            plan: plan.name.clone(),
            seeds,
            verdict,
            trace_hash: 0,
            events: 0,
            sim_time: elapsed,
            counts: BTreeMap::new(),
            ops: log.counts,
            chaos_kinds,
            schedule,
            settled: judge.settled().clone(),
            membership_changes: record.changes,
            observed_sources,
            trace: None,
            history: log.history,
            observations: record.observations,
            final_states: record.described,
            findings: judge.findings().to_vec(),
            // The nodes' sometimes-assertions are counted in their own processes, out of reach.
            probes: gauntlet::sim::Probes::new(),
        }
    }

    /// Stops the workloads (operations in flight are abandoned, unfinished in the history).
    pub(crate) async fn stop_workloads(&mut self) {
        self.workloads.abort_all();
        while self.workloads.join_next().await.is_some() {}
    }

    /// Stops everything and takes the operation log.
    pub(crate) async fn stop(mut self) -> OpLog {
        self.stop_workloads().await;
        self.observer.abort_all();
        while self.observer.join_next().await.is_some() {}
        Arc::try_unwrap(self.log).map(|m| m.into_inner().expect("op log")).unwrap_or_else(|shared| {
            let l = shared.lock().expect("op log");
            OpLog { counts: l.counts.clone(), history: l.history.clone(), panics: l.panics.clone() }
        })
    }
}

/// What a real run recorded besides its operations.
#[derive(Default)]
pub(crate) struct Record {
    /// The faults applied, when.
    pub(crate) applied: Vec<(Duration, Fault)>,
    /// Departures (and joins).
    pub(crate) changes: Vec<MembershipChange>,
    /// Each member's described state whenever it changed (and lines a script printed).
    pub(crate) observations: Vec<Observation>,
    /// Each member's latest described state.
    pub(crate) described: BTreeMap<String, String>,
}

async fn apply_logged<C: Cluster>(
    cluster: &mut C,
    f: &Fault,
    at: Duration,
    applied: &mut Vec<(Duration, Fault)>,
) -> Result<()> {
    cluster.apply(f).await?;
    applied.push((at, f.clone()));
    Ok(())
}

/// The most calls one operation makes ([`HttpReply::Then`]).
const MAX_STEPS: usize = 16;

/// What the cooldown undoes with faults: cuts, links (back to the topology's) and clocks.
pub(crate) fn heal_all(plan: &gauntlet::Plan, members: &[NodeRef], gone: &[String]) -> Vec<Fault> {
    let mut out = vec![Fault::Heal, Fault::ResetLinks];
    out.extend(chaos::topology_links(plan));
    for m in members.iter().filter(|m| !gone.contains(&m.name)) {
        out.push(Fault::ClockSkew { node: m.name.clone(), offset_ms: 0, drift_ppm: 0 });
    }
    out
}

/// The running member that leads, by the highest epoch any state reports (ties: first name).
pub(crate) fn current_leader<A: HttpApplication>(
    app: &A,
    view: &ClusterView<A::State>,
    mut running: impl FnMut(&str) -> bool,
    gone: &[String],
) -> Option<String> {
    let mut best: Option<(u64, String)> = None;
    for (name, v) in view {
        if gone.contains(name) || !running(name) {
            continue;
        }
        if let Some(epoch) = v.state.as_ref().and_then(|s| app.leader_epoch(s)) {
            if best.as_ref().is_none_or(|(e, _)| epoch > *e) {
                best = Some((epoch, name.clone()));
            }
        }
    }
    best.map(|(_, n)| n)
}

/// The fault an aimed fault stands for at the leader, and its undoing after a while.
fn aimed_faults(
    aimed: AimedFault,
    leader: &str,
    membership: &Mutex<Vec<NodeRef>>,
    gone: &[String],
) -> (Fault, Option<(Duration, Fault)>) {
    let node = leader.to_owned();
    match aimed {
        AimedFault::Restart { down } if down.is_zero() => (Fault::Restart { node }, None),
        AimedFault::Restart { down } => (Fault::Crash { node: node.clone() }, Some((down, Fault::Restart { node }))),
        AimedFault::Pause { duration } => {
            (Fault::Pause { node: node.clone() }, Some((duration, Fault::Resume { node })))
        }
        AimedFault::Isolate => {
            let rest: Vec<String> = (membership.lock().expect("membership").iter())
                .map(|m| m.name.clone())
                .filter(|n| *n != node && !gone.contains(n))
                .collect();
            (Fault::Partition { groups: vec![vec![node], rest] }, None)
        }
    }
}

/// [`execute`] within `timeout`: past it the operation's outcome is unknown (`info`), and its
/// user forgets the node it was waiting on, so its next operation does not wait on it again
/// (a killed container's address may not even refuse the connection).
pub(crate) async fn execute_within<A: HttpApplication>(
    app: &A,
    op: &Operation,
    nodes: &[NodeRef],
    endpoints: &BTreeMap<String, SocketAddr>,
    sticky: &Mutex<BTreeMap<u32, u32>>,
    timeout: Duration,
) -> OpOutcome {
    match tokio::time::timeout(timeout, execute(app, op, nodes, endpoints, sticky)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            sticky.lock().expect("sticky").remove(&op.user);
            OpOutcome::info(format!("no answer within {timeout:?}"))
        }
    }
}

/// Performs `op` at the members whose role serves clients ([`HttpApplication::serves`]):
/// first at the node that last served its user (or one picked from the operation's argument),
/// then wherever the answers point, three attempts at most. An operation of several steps
/// ([`HttpReply::Then`]) sends its later calls to the node that answered, at most
/// [`MAX_STEPS`] in all.
async fn execute<A: HttpApplication>(
    app: &A,
    op: &Operation,
    nodes: &[NodeRef],
    endpoints: &BTreeMap<String, SocketAddr>,
    sticky: &Mutex<BTreeMap<u32, u32>>,
) -> OpOutcome {
    let nodes: Vec<&NodeRef> = nodes.iter().filter(|n| app.serves(&n.role)).collect();
    if nodes.is_empty() {
        return OpOutcome::fail("no members that serve clients");
    }
    let by_id = |id: u32| nodes.iter().position(|n| n.id.0 == id);
    let remembered = sticky.lock().expect("sticky").get(&op.user).copied();
    let mut i = remembered.and_then(by_id).unwrap_or((op.arg >> 40) as usize % nodes.len());
    let (mut attempts, mut step) = (0, 0);
    let mut call = app.request(op);
    while attempts < 3 && step < MAX_STEPS {
        let node = &nodes[i];
        match http::request(endpoints[&node.name], &call, Duration::from_secs(3600)).await {
            // Not connected: the request was not received; try the next node (a first step),
            // or give up not knowing what the steps already answered did.
            Err(e @ HttpError::Connect(..)) => {
                sticky.lock().expect("sticky").remove(&op.user);
                if step > 0 {
                    return OpOutcome::info(format!("step {} not delivered: {e}", step + 1));
                }
                attempts += 1;
                i = (i + 1) % nodes.len();
                call = app.request(op);
            }
            Err(e @ HttpError::NoAnswer(..)) => {
                sticky.lock().expect("sticky").remove(&op.user);
                return OpOutcome::info(e.to_string());
            }
            Ok((status, body)) => match app.reply(op, status, &body) {
                HttpReply::Done(outcome) => {
                    if matches!(outcome, OpOutcome::Ok(_)) {
                        sticky.lock().expect("sticky").insert(op.user, node.id.0);
                    }
                    return outcome;
                }
                HttpReply::Elsewhere(hint) => {
                    attempts += 1;
                    i = hint.and_then(by_id).filter(|&h| h != i).unwrap_or((i + 1) % nodes.len());
                    if step == 0 {
                        call = app.request(op);
                    }
                }
                HttpReply::Then(next) => {
                    step += 1;
                    call = next;
                }
            },
        }
    }
    if step >= MAX_STEPS {
        return OpOutcome::info(format!("more than {MAX_STEPS} steps: the operation was abandoned"));
    }
    if step > 0 {
        return OpOutcome::info(format!("no node could serve step {} in three attempts", step + 1));
    }
    OpOutcome::fail("no node could serve it in three attempts")
}
