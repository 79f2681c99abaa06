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
    /// Whether `node` runs (not crashed, not paused).
    fn is_running(&mut self, node: &str) -> bool;
    /// Waits until every node answers its health check.
    fn wait_ready(&mut self, timeout: Duration) -> impl std::future::Future<Output = Result<()>>;
    /// The cooldown's recovery of one node: resume it if paused, start it if down.
    fn recover(&mut self, node: &str) -> impl std::future::Future<Output = Result<()>>;
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
/// wall time the run took.
pub async fn drive<A: HttpApplication, C: Cluster>(
    scenario: &Scenario<A>,
    seeds: Seeds,
    cluster: &mut C,
    progress: Progress<'_>,
) -> Result<RunOutcome> {
    let plan = scenario.plan().clone();
    let app = scenario.shared_app();
    let timeline = chaos::compile(&plan, seeds.chaos);
    if let Some((_, ChurnEvent::Join { name, .. } | ChurnEvent::Leave { name })) = timeline.churn.first() {
        return Err(BackendError::Unsupported {
            backend: cluster.backend(),
            plan: plan.name.clone(),
            missing: vec![format!("membership churn ({name} joins or leaves) is simulation-only so far")],
        });
    }
    let members = scenario.initial_members();
    let mut endpoints = BTreeMap::new();
    for m in &members {
        let addr =
            cluster.endpoint(&m.name).ok_or_else(|| BackendError::Invalid(format!("no endpoint for {}", m.name)))?;
        endpoints.insert(m.name.clone(), addr);
    }
    let endpoints = Arc::new(endpoints);
    let membership = Arc::new(Mutex::new(members.clone()));
    let log: SharedOpLog = Arc::default();
    let latest: Arc<Mutex<Option<ClusterView<A::State>>>> = Arc::default();
    let start = Instant::now();
    let since = move || start.elapsed();
    let workload_end =
        plan.run.duration + if plan.run.workloads_in_cooldown { plan.run.cooldown } else { Duration::ZERO };

    let mut tasks = tokio::task::JoinSet::new();
    for w in &plan.workloads {
        let ops = PlannedOps::new(w, seeds.sim, workload_end, app.operations());
        let (app, log, membership, endpoints) = (app.clone(), log.clone(), membership.clone(), endpoints.clone());
        let (name, op_timeout, think) = (w.name.clone(), w.op_timeout, w.think);
        let admission = Arc::new(Mutex::new(Admission::of(w)));
        log.lock().expect("op log").counts.entry(name.clone()).or_default();
        tasks.spawn(async move {
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
                        let outcome =
                            tokio::time::timeout(op_timeout, execute(&*app, &op, &nodes, &endpoints, &sticky))
                                .await
                                .unwrap_or_else(|_| OpOutcome::info(format!("no answer within {op_timeout:?}")));
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
    {
        let (app, latest, membership, endpoints) = (app.clone(), latest.clone(), membership.clone(), endpoints.clone());
        let (every, patience) = (plan.run.observe_every, plan.run.observe_every * 5);
        tasks.spawn(async move {
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
    let mut applied: Vec<(Duration, Fault)> = Vec::new();
    let mut gone: Vec<String> = Vec::new();
    let mut changes: Vec<MembershipChange> = Vec::new();
    let mut observations: Vec<Observation> = Vec::new();
    let mut described: BTreeMap<String, String> = BTreeMap::new();

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
                    Action::Fault(f) => apply_logged(cluster, &f, at, &mut applied).await?,
                    Action::Aimed(aimed) => {
                        let view = latest.lock().expect("view").clone().unwrap_or_default();
                        let Some(leader) = current_leader(&*app, &view, cluster, &gone) else {
                            progress(at, &format!("no leader seen: {aimed:?} skipped"));
                            continue;
                        };
                        let (now, undo) = aimed_faults(aimed, &leader, &membership, &gone);
                        progress(at, &format!("fault aimed at the leader: {now}"));
                        apply_logged(cluster, &now, at, &mut applied).await?;
                        if let Some((after, undo)) = undo.filter(|(after, _)| at + *after < plan.run.duration) {
                            let pos = actions.iter().position(|(t, _, _)| *t > at + after).unwrap_or(actions.len());
                            actions.insert(pos, (at + after, 1, Action::Fault(undo)));
                        }
                    }
                    Action::Leave(name) => {
                        membership.lock().expect("membership").retain(|m| m.name != name);
                        changes.push(MembershipChange { at, node: name.clone(), joined: false });
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
        let Some(view) = latest.lock().expect("view").clone() else { continue };
        for (node, v) in &view {
            let Some(state) = v.state.as_ref() else { continue };
            let text = app.describe(state);
            if described.get(node) != Some(&text) {
                observations.push(Observation { at: now, node: node.clone(), state: text.clone() });
                described.insert(node.clone(), text);
            }
        }
        let ops = log.lock().expect("op log").total();
        // Facts are simulation-only: a real process logs them, with no shared true time.
        if let Some(v) = judge.judge(&*app, now, &view, ops, &log, &[]) {
            break v;
        }
        // A wall-clock guard: a real run that cannot decide (every poll failing) still ends.
        if now > plan.run.duration + plan.run.cooldown * 2 + Duration::from_secs(30) {
            break Verdict::Fail(Failure {
                class: FailureClass::Liveness,
                source: "observer".into(),
                at: now,
                message: "no decision: the cluster could not be observed".into(),
            });
        }
    };
    let elapsed = since();
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let log = Arc::try_unwrap(log).map(|m| m.into_inner().expect("op log")).unwrap_or_else(|shared| {
        let l = shared.lock().expect("op log");
        OpLog { counts: l.counts.clone(), history: l.history.clone(), panics: l.panics.clone() }
    });
    let mut schedule = FaultSchedule::new();
    for (at, f) in applied {
        schedule.push(at, f);
    }
    let mut observed_sources: Vec<String> =
        membership.lock().expect("membership").iter().map(|m| m.name.clone()).collect();
    observed_sources.sort();
    Ok(RunOutcome {
        plan: plan.name.clone(),
        seeds,
        verdict,
        trace_hash: 0,
        events: 0,
        sim_time: elapsed,
        counts: BTreeMap::new(),
        ops: log.counts,
        chaos_kinds: timeline.kinds.clone(),
        schedule,
        settled: judge.settled().clone(),
        membership_changes: changes,
        observed_sources,
        trace: None,
        history: log.history,
        observations,
        final_states: described,
        findings: judge.findings().to_vec(),
        // The nodes' sometimes-assertions are counted in their own processes, out of reach.
        probes: gauntlet::sim::Probes::new(),
    })
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
fn heal_all(plan: &gauntlet::Plan, members: &[NodeRef], gone: &[String]) -> Vec<Fault> {
    let mut out = vec![Fault::Heal, Fault::ResetLinks];
    out.extend(chaos::topology_links(plan));
    for m in members.iter().filter(|m| !gone.contains(&m.name)) {
        out.push(Fault::ClockSkew { node: m.name.clone(), offset_ms: 0, drift_ppm: 0 });
    }
    out
}

/// The running member that leads, by the highest epoch any state reports (ties: first name).
fn current_leader<A: HttpApplication, C: Cluster>(
    app: &A,
    view: &ClusterView<A::State>,
    cluster: &mut C,
    gone: &[String],
) -> Option<String> {
    let mut best: Option<(u64, String)> = None;
    for (name, v) in view {
        if gone.contains(name) || !cluster.is_running(name) {
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
