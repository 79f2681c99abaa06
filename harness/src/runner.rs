//! The runner: deploys a scenario, runs workloads and the chaos timeline, checks expectations
//! while it runs (safety fails fast), then runs the liveness phase — faults stop, the network
//! heals, crashed nodes restart — and waits for every liveness expectation to hold within the
//! cooldown. The [`Deployer`] trait is what backends implement; [`SimDeployer`] runs the whole
//! thing inside a seeded [`World`].

use crate::app::{Application, NodeRef, NodeSetup};
use crate::chaos::{self, AimedFault, ChurnEvent, Timeline};
use crate::expect::{ClusterView, NodeView, Phase};
use crate::judge::Judge;
use crate::observe::{
    FnSources, ObservationConfig, ObservationHandle, ObservationRuntime, ObserveError, ObservedSource, Observer,
};
use crate::scenario::Scenario;
use crate::verdict::{Failure, FailureClass, MembershipChange, Observation, RunOutcome, Verdict};
use crate::workload::{self, Membership, OpLog, SharedOpLog};
use gauntlet_sim::time::{self, Instant};
use gauntlet_sim::{Fault, NodeSpec, NodeStatus, RunError, Seeds, Sim, World};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod scripted;

pub use scripted::{SCRIPT_CLIENT, SCRIPT_WORKLOAD};

/// Name of the observer's client node.
pub const OBSERVER_NODE: &str = "observer";

/// A backend that can run a scenario: the simulator here; local processes, compose and
/// kubernetes later.
pub trait Deployer<A: Application> {
    /// Deploys `scenario`, runs it with `seeds`, tears it down and reports.
    fn run(&self, scenario: &Scenario<A>, seeds: Seeds) -> Result<RunOutcome, RunError>;
}

/// Runs scenarios in a seeded simulated world.
#[derive(Debug, Clone, Default)]
pub struct SimDeployer {
    keep_events: bool,
    check_determinism: bool,
}

impl SimDeployer {
    /// Keep every trace event in the outcome (default: only the hash and counts).
    pub fn keep_events(mut self, keep: bool) -> Self {
        self.keep_events = keep;
        self
    }

    /// Run every seed twice and fail on divergence (default off; `SIM_CHECK_DETERMINISM=1`
    /// turns it on too).
    pub fn check_determinism(mut self, on: bool) -> Self {
        self.check_determinism = on;
        self
    }
}

/// Runs `scenario` once under simulation with its seeds (see [`Scenario::seeds`]).
///
/// ```
/// # use gauntlet::{Application, Launch, NodeRef, NodeSetup, OpOutcome, Operation, ScenarioBuilder, Scenario};
/// # use gauntlet::sim::{NodeContext, Transport};
/// # use std::time::Duration;
/// # struct Echo;
/// # impl Application for Echo {
/// #     type State = u8; type Client = Transport;
/// #     fn name(&self) -> &str { "echo" }
/// #     fn roles(&self) -> Vec<String> { vec!["node".into()] }
/// #     fn operations(&self) -> Vec<String> { vec!["ping".into()] }
/// #     fn node(&self, ctx: NodeContext, _: NodeSetup) -> impl std::future::Future<Output = ()> + 'static + use<> {
/// #         async move { let t = ctx.transport(); loop { let m = t.recv().await; if let Some(r) = m.reply_to { t.reply(r, vec![1]); } } }
/// #     }
/// #     fn client(&self, ctx: &NodeContext) -> Transport { ctx.transport() }
/// #     async fn execute(&self, t: &Transport, op: &Operation, nodes: &[NodeRef]) -> OpOutcome {
/// #         match t.request(nodes[0].id, vec![0], Duration::from_millis(100)).await { Ok(_) => OpOutcome::ok(""), Err(e) => OpOutcome::info(e.to_string()) }
/// #     }
/// #     async fn read_state(&self, t: &Transport, n: &NodeRef) -> Result<u8, String> {
/// #         t.request(n.id, vec![0], Duration::from_millis(100)).await.map(|b| b[0]).map_err(|e| e.to_string())
/// #     }
/// #     fn launch(&self, _: &NodeSetup, _: &gauntlet::Placement) -> Launch { Launch::binary("echo") }
/// # }
/// let plan = ScenarioBuilder::new("echo")
///     .app("echo")
///     .topology(|t| t.nodes("node", 3))
///     .workload_with("pings", |w| w.rate(20.0))
///     .expect_convergence()
///     .with_run_duration(Duration::from_secs(5))
///     .seed(7)
///     .build()
///     .unwrap();
/// let outcome = gauntlet::run(&Scenario::new(Echo, plan).unwrap()).unwrap();
/// assert!(outcome.verdict.passed(), "{}", outcome.verdict);
/// assert!(outcome.ops["pings"].ok > 50);
/// ```
pub fn run<A: Application + Send + Sync>(scenario: &Scenario<A>) -> Result<RunOutcome, RunError> {
    let seeds = scenario.seeds()?;
    SimDeployer::default().run(scenario, seeds)
}

struct Shared {
    /// What the judge reported beyond its verdict.
    findings: Mutex<Vec<crate::verdict::Finding>>,
    membership: Membership,
    log: SharedOpLog,
    changes: Mutex<Vec<MembershipChange>>,
    /// Timeline steps that could not be applied (a harness bug; reported as a crash).
    errors: Mutex<Vec<String>>,
    /// Faults aimed at the leader, as they were applied (target resolved), in time order.
    aimed: Mutex<Vec<(Duration, Fault)>>,
    /// State changes seen at the supervisor's checks, and each node's last described state.
    observed: Mutex<(Vec<Observation>, BTreeMap<String, String>)>,
    /// The build each node a script upgraded runs (the others run the first of
    /// [`Application::versions`]); read whenever a member's program starts.
    versions: Arc<Mutex<BTreeMap<String, String>>>,
}

impl<A: Application + Send + Sync> Deployer<A> for SimDeployer {
    /// Runs once; with determinism checking on (the builder flag or `SIM_CHECK_DETERMINISM=1`)
    /// runs twice, each with fresh harness state, and fails with the first divergent event.
    fn run(&self, scenario: &Scenario<A>, seeds: Seeds) -> Result<RunOutcome, RunError> {
        let check = self.check_determinism
            || std::env::var(gauntlet_sim::world::CHECK_DETERMINISM_ENV).is_ok_and(|v| v == "1" || v == "true");
        if !check {
            return self.run_once(scenario, seeds, self.keep_events);
        }
        let first = self.run_once(scenario, seeds, true)?;
        let second = self.run_once(scenario, seeds, true)?;
        if let (Some(a), Some(b)) = (&first.trace, &second.trace) {
            if let Some(d) = gauntlet_sim::determinism::first_divergence(a, b) {
                return Err(RunError::Nondeterministic { seeds, divergence: Box::new(d) });
            }
        } else if first.verdict != second.verdict {
            let msg = format!("the same seed gave {} and then {}", first.verdict, second.verdict);
            return Err(RunError::Invalid(format!("nondeterministic run: {msg}")));
        }
        Ok(first)
    }
}

impl SimDeployer {
    fn run_once<A: Application + Send + Sync>(
        &self,
        scenario: &Scenario<A>,
        seeds: Seeds,
        keep_events: bool,
    ) -> Result<RunOutcome, RunError> {
        if !scenario.app().simulated() {
            return Err(RunError::Invalid(format!(
                "application {:?} runs on real backends only (it has no simulated node): run its plans with \
                 `gauntlet test-real PLAN --backend local`",
                scenario.app().name()
            )));
        }
        let plan = scenario.plan.clone();
        let app = scenario.app.clone();
        let timeline = chaos::compile(&plan, seeds.chaos);
        let members = scenario.initial_members();
        let shared = Arc::new(Shared {
            findings: Mutex::default(),
            membership: Arc::new(Mutex::new(members.clone())),
            log: Arc::default(),
            changes: Mutex::default(),
            errors: Mutex::default(),
            aimed: Mutex::default(),
            observed: Mutex::default(),
            versions: Arc::default(),
        });
        let handle: ObservationHandle<ClusterView<A::State>, NodeChange<A::State>> = ObservationHandle::new(
            ObservationConfig::default()
                .interval(plan.run.observe_every)
                .refresh_every(plan.run.observe_every)
                .poll_timeout(plan.run.observe_every * 5),
        );
        // A script's run has no fixed active phase: workloads go on until it returns (they are
        // stopped then), and its time limit bounds it.
        let active = plan.script.as_ref().map_or(plan.run.duration, |s| s.time_limit);
        let workload_end = active + if plan.run.workloads_in_cooldown { plan.run.cooldown } else { Duration::ZERO };

        // The deployer checks determinism itself (fresh harness state per run), never the world.
        let mut builder = World::builder()
            .seeds(seeds)
            .default_link(plan.topology.link.clone())
            .fsync_latency(plan.topology.fsync)
            .keep_events(keep_events)
            .check_determinism(false)
            .time_limit(active + plan.run.cooldown + Duration::from_secs(3600));
        for m in &members {
            let (app, setup) = (app.clone(), NodeSetup::new(m.clone(), plan.app.options.clone()));
            let versions = shared.versions.clone();
            builder = builder.node(NodeSpec::new(&m.name).role(&m.role), move |ctx| {
                let mut setup = setup.clone();
                setup.version = versions.lock().expect("versions").get(&setup.node.name).cloned();
                app.node(ctx, setup)
            });
        }
        let (script_ops, requests) = futures::channel::mpsc::unbounded();
        if plan.script.is_some() {
            let (app, requests) = (app.clone(), Arc::new(Mutex::new(Some(requests))));
            builder = builder.node(NodeSpec::new(SCRIPT_CLIENT).role("client").as_client(), move |ctx| {
                scripted::serve_ops(app.clone(), ctx, requests.clone())
            });
        }
        for w in &plan.workloads {
            let (app, w, shared) = (app.clone(), w.clone(), shared.clone());
            let sim_seed = seeds.sim;
            builder =
                builder.node(NodeSpec::new(format!("client-{}", w.name)).role("client").as_client(), move |ctx| {
                    let drive = workload::Drive {
                        plan: w.clone(),
                        seed: sim_seed,
                        run_start: run_start(&ctx),
                        end: workload_end,
                        members: shared.membership.clone(),
                        log: shared.log.clone(),
                    };
                    workload::drive(app.clone(), ctx, drive)
                });
        }
        {
            let (app, shared, handle) = (app.clone(), shared.clone(), handle.clone());
            builder = builder.node(NodeSpec::new(OBSERVER_NODE).role("observer").as_client(), move |ctx| {
                let observer =
                    ClusterObserver { app: app.clone(), client: app.client(&ctx), run_start: run_start(&ctx) };
                let membership = shared.membership.clone();
                let provider = FnSources(move || {
                    membership
                        .lock()
                        .expect("membership")
                        .iter()
                        .map(|m| ObservedSource::new(&m.name, m.clone()))
                        .collect()
                });
                ObservationRuntime::with_handle(observer, provider, handle.clone()).run()
            });
        }
        let world = builder.build()?;
        let (plan2, app2, timeline2, shared2, handle2) =
            (plan.clone(), app.clone(), timeline.clone(), shared.clone(), handle.clone());
        let report = world.run(move |sim| {
            let parts = Parts {
                plan: plan2.clone(),
                app: app2.clone(),
                timeline: timeline2.clone(),
                shared: shared2.clone(),
                handle: handle2.clone(),
                script_ops: script_ops.clone(),
                seed: seeds.sim,
            };
            supervise(sim, parts)
        });
        let log = shared.log.lock().expect("op log");
        let membership_changes = shared.changes.lock().expect("changes").clone();
        let mut observed_sources: Vec<String> = handle.sources().into_iter().map(|s| s.name).collect();
        observed_sources.sort();
        let run_probes = report.as_ref().map(|r| r.probes.clone()).unwrap_or_default();
        // A node's panic is a crash verdict (without a trace: the world stopped); any other
        // run error means the run did not happen.
        let (verdict, settled, trace, sim_time) = match report {
            Ok(report) => {
                let (verdict, settled) = report.output;
                (verdict, settled, Some(report.trace), report.sim_elapsed)
            }
            Err(RunError::Panic { who, message, at, .. }) => {
                let at = at.unwrap_or_default();
                let failure = Failure { class: FailureClass::Crash, source: who, at, message };
                (Verdict::Fail(failure), BTreeMap::new(), None, at)
            }
            Err(e) => return Err(e),
        };
        let (observations, final_states) = std::mem::take(&mut *shared.observed.lock().expect("observed"));
        // Every assertion of the application's scope, reached or not, then what the run hit
        // (a run that crashed recorded nothing).
        let mut probes = gauntlet_sim::probes::unreached_in(&app.probe_scope());
        gauntlet_sim::probes::merge_into(&mut probes, &run_probes);
        let findings = std::mem::take(&mut *shared.findings.lock().expect("findings"));
        Ok(RunOutcome {
            plan: plan.name.clone(),
            seeds,
            verdict,
            trace_hash: trace.as_ref().map_or(0, |t| t.hash()),
            events: trace.as_ref().map_or(0, |t| t.len()),
            sim_time,
            counts: trace.as_ref().map(|t| t.counts_by_kind()).unwrap_or_default(),
            ops: log.counts.clone(),
            chaos_kinds: timeline.kinds.clone(),
            schedule: concrete_schedule(&timeline, &shared),
            settled,
            membership_changes,
            observed_sources,
            trace,
            history: log.history.clone(),
            observations,
            final_states,
            findings,
            probes,
        })
    }
}

/// Appends an observation for every node whose described state changed since the last check.
fn record_observations<A: Application>(app: &A, view: &ClusterView<A::State>, now: Duration, shared: &Shared) {
    let mut guard = shared.observed.lock().expect("observed");
    let (log, last) = &mut *guard;
    for (node, v) in view {
        let Some(state) = v.state.as_ref() else { continue };
        let text = app.describe(state);
        if last.get(node) != Some(&text) {
            log.push(Observation { at: now, node: node.clone(), state: text.clone() });
            last.insert(node.clone(), text);
        }
    }
}

/// The faults as they happened: the compiled schedule with the aimed faults' resolved
/// targets merged in by time (equal times keep compiled faults first).
fn concrete_schedule(timeline: &Timeline, shared: &Shared) -> gauntlet_sim::FaultSchedule {
    let mut schedule = timeline.faults.clone();
    // Faults naming `@leader` are recorded as resolved, with the aimed ones.
    schedule.entries.retain(|e| !crate::plan::names_leader(&e.fault));
    let aimed = shared.aimed.lock().expect("aimed");
    if aimed.is_empty() {
        return schedule;
    }
    let mut all: Vec<(Duration, u8, Fault)> = schedule.entries.drain(..).map(|e| (e.at, 0, e.fault)).collect();
    all.extend(aimed.iter().map(|(at, f)| (*at, 1, f.clone())));
    all.sort_by_key(|(at, rank, _)| (*at, *rank));
    for (at, _, fault) in all {
        schedule.push(at, fault);
    }
    schedule
}

/// The instant the run started, as seen from any node (simulated time is global).
fn run_start(_ctx: &gauntlet_sim::NodeContext) -> Instant {
    time::now() - time::elapsed()
}

/// What the supervisor works with.
struct Parts<A: Application> {
    plan: crate::Plan,
    app: Arc<A>,
    timeline: Timeline,
    shared: Arc<Shared>,
    handle: ObservationHandle<ClusterView<A::State>, NodeChange<A::State>>,
    /// Where a script's operations go (its client node), for a scripted plan.
    script_ops: futures::channel::mpsc::UnboundedSender<scripted::OpRequest>,
    /// The run's seed (a script's `rand`).
    seed: u64,
}

/// A script's result, once it has returned or stopped.
type ScriptDone = std::rc::Rc<std::cell::RefCell<Option<Result<(), Failure>>>>;

async fn supervise<A: Application + Send + Sync>(sim: Sim, parts: Parts<A>) -> (Verdict, BTreeMap<String, Duration>) {
    let Parts { plan, app, timeline, shared, handle, script_ops, seed } = parts;
    let fail = |class, source: &str, at, message: String| {
        Verdict::Fail(Failure { class, source: source.to_owned(), at, message })
    };
    for f in chaos::topology_links(&plan) {
        if let Err(e) = sim.apply(&f) {
            return (fail(FailureClass::Crash, "topology", sim.now(), e.to_string()), BTreeMap::new());
        }
    }
    let gone: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let script: Option<ScriptDone> = match &plan.script {
        None => {
            spawn_timeline(&sim, &plan, &app, &timeline, &shared, &gone, &handle);
            None
        }
        Some(script) => {
            let done = ScriptDone::default();
            let target = scripted::SimTarget {
                sim: sim.clone(),
                app: app.clone(),
                plan: plan.clone(),
                shared: shared.clone(),
                handle: handle.clone(),
                gone: gone.clone(),
                ops: script_ops,
                changed: Default::default(),
                next_id: Default::default(),
                checks: Default::default(),
            };
            let (sim2, done2, script) = (sim.clone(), done.clone(), script.clone());
            sim.spawn(async move {
                let result = crate::script::run(std::rc::Rc::new(target), &script, seed).await;
                *done2.borrow_mut() = Some(result.map_err(|halt| halt.into_failure(sim2.now())));
            });
            Some(done)
        }
    };

    let mut judge = Judge::new(&*app, &plan).expect("the scenario validated every expectation");
    let mut tick = 0u32;
    loop {
        tick += 1;
        sim.sleep_until(plan.run.observe_every * tick).await;
        let now = sim.now();
        match script.as_ref().map(|done| done.borrow().clone()) {
            None if judge.phase() == Phase::Active && now >= plan.run.duration => {
                begin_cooldown(&sim, &plan, &gone);
                judge.enter_cooldown(now, shared.log.lock().expect("op log").total());
            }
            Some(Some(Err(failure))) => return (Verdict::Fail(failure), judge.settled().clone()),
            Some(Some(Ok(()))) if judge.phase() == Phase::Active => {
                // The script returned: its run's active phase is over.
                sim.annotate("script: returned");
                if !plan.run.workloads_in_cooldown {
                    for w in &plan.workloads {
                        if let Some(id) = sim.node_id(&format!("client-{}", w.name)) {
                            sim.crash(id);
                        }
                    }
                }
                begin_cooldown(&sim, &plan, &gone);
                judge.enter_cooldown_until(now, shared.log.lock().expect("op log").total(), now + plan.run.cooldown);
            }
            _ => {}
        }
        let (ops, panic) = {
            let log: std::sync::MutexGuard<'_, OpLog> = shared.log.lock().expect("op log");
            (log.total(), log.panics.first().cloned())
        };
        if let Some(e) = shared.errors.lock().expect("errors").first() {
            return (fail(FailureClass::Crash, "chaos", now, e.clone()), judge.settled().clone());
        }
        if let Some((at, workload, message)) = panic {
            return (fail(FailureClass::Crash, &format!("workload {workload}"), at, message), judge.settled().clone());
        }
        let Some(view) = handle.latest() else { continue };
        record_observations(&*app, &view, now, &shared);
        let judged = gauntlet_sim::facts::with(|facts| judge.judge(&*app, now, &view, ops, &shared.log, facts));
        if let Some(verdict) = judged {
            *shared.findings.lock().expect("findings") = judge.findings().to_vec();
            return (verdict, judge.settled().clone());
        }
    }
}

/// One step of the chaos timeline, as the runner applies it.
enum Action {
    Join {
        name: String,
        role: String,
    },
    Fault(Fault),
    Aimed(AimedFault),
    /// An explicit fault naming [`crate::plan::LEADER`]: resolved when it fires.
    AtLeader(Fault),
    Leave {
        name: String,
        crash: bool,
    },
}

impl Action {
    /// At equal times, joins come before faults (which may name the joiner) and departures after.
    fn rank(&self) -> u8 {
        match self {
            Action::Join { .. } => 0,
            Action::Fault(_) | Action::Aimed(_) | Action::AtLeader(_) => 1,
            Action::Leave { .. } => 2,
        }
    }
}

/// Applies the timeline — faults, joins, leaves and kills — in one task, in time order, so a
/// fault that names a node which joins earlier finds it.
fn spawn_timeline<A: Application + Send + Sync>(
    sim: &Sim,
    plan: &crate::Plan,
    app: &Arc<A>,
    timeline: &Timeline,
    shared: &Arc<Shared>,
    gone: &Arc<Mutex<BTreeSet<String>>>,
    handle: &ObservationHandle<ClusterView<A::State>, NodeChange<A::State>>,
) {
    let mut actions: Vec<(Duration, Action)> = Vec::new();
    for (at, change) in &timeline.churn {
        actions.push(match change.clone() {
            ChurnEvent::Join { name, role } => (*at, Action::Join { name, role }),
            ChurnEvent::Leave { name } => (*at, Action::Leave { name, crash: true }),
        });
    }
    for e in &timeline.faults.entries {
        if crate::plan::names_leader(&e.fault) {
            actions.push((e.at, Action::AtLeader(e.fault.clone())));
            continue;
        }
        actions.push((e.at, Action::Fault(e.fault.clone())));
    }
    // A kill's crash is in the faults; the membership change follows it at the same time.
    for (at, name) in &timeline.killed {
        actions.push((*at, Action::Leave { name: name.clone(), crash: false }));
    }
    for (at, aimed) in &timeline.aimed {
        actions.push((*at, Action::Aimed(*aimed)));
    }
    actions.sort_by_key(|(at, a)| (*at, a.rank()));
    let (sim2, app, shared, gone, options) =
        (sim.clone(), app.clone(), shared.clone(), gone.clone(), plan.app.options.clone());
    let (handle, active_end) = (handle.clone(), plan.run.duration);
    sim.spawn(async move {
        // The node each `@leader` crash or pause hit, for the restart or resume that undoes it.
        let mut hit: BTreeMap<&'static str, String> = BTreeMap::new();
        for (at, action) in actions {
            sim2.sleep_until(at).await;
            match action {
                Action::AtLeader(f) => {
                    let leader = || current_leader(&sim2, &*app, &handle, &shared, &gone);
                    let target = match &f {
                        Fault::Restart { .. } => hit.remove("crash"),
                        Fault::Resume { .. } => hit.remove("pause"),
                        _ => leader(),
                    };
                    let Some(target) = target else {
                        sim2.annotate(format!("chaos: no leader seen, {f} skipped"));
                        continue;
                    };
                    match &f {
                        Fault::Crash { .. } => drop(hit.insert("crash", target.clone())),
                        Fault::Pause { .. } => drop(hit.insert("pause", target.clone())),
                        _ => {}
                    }
                    apply_aimed(&sim2, &shared, at, f.renamed(crate::plan::LEADER, &target));
                }
                Action::Fault(f) => {
                    if let Err(e) = sim2.apply(&f) {
                        shared.errors.lock().expect("errors").push(format!("applying {f} at {at:?}: {e}"));
                    }
                }
                Action::Aimed(aimed) => {
                    let Some(leader) = current_leader(&sim2, &*app, &handle, &shared, &gone) else {
                        sim2.annotate(format!("chaos: no leader seen, {aimed:?} skipped"));
                        continue;
                    };
                    let (now, undo) = match aimed {
                        AimedFault::Restart { down } if down.is_zero() => {
                            (Fault::Restart { node: leader.clone() }, None)
                        }
                        AimedFault::Restart { down } => {
                            (Fault::Crash { node: leader.clone() }, Some((down, Fault::Restart { node: leader })))
                        }
                        AimedFault::Pause { duration } => {
                            (Fault::Pause { node: leader.clone() }, Some((duration, Fault::Resume { node: leader })))
                        }
                        AimedFault::Isolate => {
                            let gone = gone.lock().expect("gone").clone();
                            let rest: Vec<String> = (shared.membership.lock().expect("membership").iter())
                                .map(|m| m.name.clone())
                                .filter(|n| *n != leader && !gone.contains(n))
                                .collect();
                            (Fault::Partition { groups: vec![vec![leader], rest] }, None)
                        }
                    };
                    apply_aimed(&sim2, &shared, at, now);
                    // Undone in its own task so later timeline steps keep their times; the
                    // cooldown undoes whatever would fall after the active phase.
                    if let Some((after, undo)) = undo.filter(|(after, _)| at.saturating_add(*after) < active_end) {
                        let (sim3, shared3) = (sim2.clone(), shared.clone());
                        sim2.spawn(async move {
                            sim3.sleep_until(at + after).await;
                            apply_aimed(&sim3, &shared3, at + after, undo);
                        });
                    }
                }
                Action::Join { name, role } => {
                    let node = NodeRef { id: gauntlet_sim::NodeId(0), name: name.clone(), role: role.clone() };
                    let (app2, mut setup) = (app.clone(), NodeSetup::new(node, options.clone()));
                    let program = {
                        let setup = setup.clone();
                        move |ctx: gauntlet_sim::NodeContext| {
                            let mut setup = setup.clone();
                            setup.node.id = ctx.id();
                            app2.node(ctx, setup)
                        }
                    };
                    match sim2.add_node(NodeSpec::new(&name).role(&role), program) {
                        Ok(id) => {
                            setup.node.id = id;
                            shared.membership.lock().expect("membership").push(setup.node);
                            shared.changes.lock().expect("changes").push(MembershipChange {
                                at,
                                node: name,
                                joined: true,
                            });
                        }
                        Err(e) => shared.errors.lock().expect("errors").push(format!("joining {name}: {e}")),
                    }
                }
                Action::Leave { name, crash } => {
                    if crash {
                        if let Err(e) = sim2.apply(&Fault::Crash { node: name.clone() }) {
                            shared.errors.lock().expect("errors").push(format!("{name} leaving: {e}"));
                        }
                    }
                    shared.membership.lock().expect("membership").retain(|m| m.name != name);
                    shared.changes.lock().expect("changes").push(MembershipChange {
                        at,
                        node: name.clone(),
                        joined: false,
                    });
                    gone.lock().expect("gone").insert(name);
                }
            }
        }
    });
}

/// Faults stop: heal, restore the topology's links and clocks, resume and restart members.
/// The member that leads now, judged from the latest observation: among running members
/// whose state reports leadership, the highest epoch (ties: the first by name).
fn current_leader<A: Application>(
    sim: &Sim,
    app: &A,
    handle: &ObservationHandle<ClusterView<A::State>, NodeChange<A::State>>,
    shared: &Shared,
    gone: &Mutex<BTreeSet<String>>,
) -> Option<String> {
    let view = handle.latest()?;
    let members = shared.membership.lock().expect("membership").clone();
    let gone = gone.lock().expect("gone").clone();
    members
        .iter()
        .filter(|m| !gone.contains(&m.name))
        .filter(|m| sim.node_id(&m.name).is_some_and(|id| sim.status(id) == NodeStatus::Running))
        .filter_map(|m| {
            let epoch = view.get(&m.name)?.state.as_ref().and_then(|s| app.leader_epoch(s))?;
            Some((epoch, std::cmp::Reverse(m.name.clone())))
        })
        .max()
        .map(|(_, std::cmp::Reverse(name))| name)
}

fn apply_aimed(sim: &Sim, shared: &Shared, at: Duration, fault: Fault) {
    sim.annotate(format!("chaos aimed at the leader: {fault}"));
    match sim.apply(&fault) {
        Ok(()) => shared.aimed.lock().expect("aimed").push((at, fault)),
        Err(e) => shared.errors.lock().expect("errors").push(format!("applying {fault} at {at:?}: {e}")),
    }
}

fn begin_cooldown(sim: &Sim, plan: &crate::Plan, gone: &Arc<Mutex<BTreeSet<String>>>) {
    sim.annotate("cooldown: faults stop, the network heals");
    let mut heal = vec![Fault::Heal, Fault::ResetLinks];
    heal.extend(chaos::topology_links(plan));
    for f in &heal {
        sim.apply(f).expect("healing faults name existing nodes");
    }
    let gone = gone.lock().expect("gone").clone();
    for (id, spec) in sim.nodes() {
        if spec.client || gone.contains(&spec.name) {
            continue;
        }
        // Clocks come back to true time, whatever skewed them (generated or explicit faults).
        let _ = sim.apply(&Fault::ClockSkew { node: spec.name.clone(), offset_ms: 0, drift_ppm: 0 });
        match sim.status(id) {
            NodeStatus::Paused => sim.resume(id),
            NodeStatus::Crashed => sim.restart(id),
            _ => {}
        }
    }
}

/// A change the observer saw in one node's state.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeChange<S> {
    /// The node's state changed to this.
    State(S),
    /// A node joined the observed set.
    Joined(String),
    /// A node left the observed set.
    Left(String),
}

/// The harness's observer: reads every member's state through the application's client.
pub struct ClusterObserver<A: Application> {
    app: Arc<A>,
    client: A::Client,
    run_start: Instant,
}

impl<A: Application> Observer for ClusterObserver<A> {
    type Source = NodeRef;
    type State = ClusterView<A::State>;
    type Snapshot = ClusterView<A::State>;
    type Event = NodeChange<A::State>;

    async fn init(&self, sources: &[ObservedSource<NodeRef>]) -> Result<Self::State, ObserveError> {
        Ok(sources.iter().map(|s| (s.name.clone(), empty_view(&s.source))).collect())
    }

    async fn poll(
        &self,
        source: &ObservedSource<NodeRef>,
        state: &mut Self::State,
    ) -> Result<Vec<Self::Event>, ObserveError> {
        let result = self.app.read_state(&self.client, &source.source).await;
        let at = time::now().saturating_duration_since(self.run_start);
        let view = state.entry(source.name.clone()).or_insert_with(|| empty_view(&source.source));
        match result {
            Ok(s) => {
                let changed = view.state.as_ref() != Some(&s);
                view.state = Some(s.clone());
                view.observed_at = Some(at);
                view.error = None;
                Ok(if changed { vec![NodeChange::State(s)] } else { Vec::new() })
            }
            Err(e) => {
                view.error = Some(e.clone());
                Err(ObserveError(e))
            }
        }
    }

    fn sources_changed(
        &self,
        added: &[ObservedSource<NodeRef>],
        removed: &[String],
        state: &mut Self::State,
    ) -> Vec<Self::Event> {
        let mut events = Vec::new();
        for a in added {
            state.insert(a.name.clone(), empty_view(&a.source));
            events.push(NodeChange::Joined(a.name.clone()));
        }
        for r in removed {
            state.remove(r);
            events.push(NodeChange::Left(r.clone()));
        }
        events
    }

    fn snapshot(&self, state: &Self::State) -> Self::Snapshot {
        state.clone()
    }
}

fn empty_view<S>(node: &NodeRef) -> NodeView<S> {
    NodeView { role: node.role.clone(), state: None, observed_at: None, error: None }
}
