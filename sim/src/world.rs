//! [`World`]: a seeded simulation of nodes, network, clocks and disks, and [`Sim`], the handle
//! the supervisor uses to drive it and inject faults.

use crate::context::NodeContext;
use crate::fault::{Fault, FaultSchedule};
use crate::link::LinkConfig;
use crate::node::{NodeId, NodeSpec, NodeStatus};
use crate::seed::{SeedError, Seeds};
use crate::state::{install, uninstall, with_world, BuggifyConfig, Limits, WorldState};
use crate::trace::{EventKind, Trace, TraceLimitExceeded};
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// A node's program: called at first boot and again at every restart.
pub type Program = Arc<dyn Fn(NodeContext) -> LocalBoxFuture<'static, ()> + Send + Sync>;

/// Environment variable that makes every [`World::run`] run twice and compare the traces.
pub const CHECK_DETERMINISM_ENV: &str = "SIM_CHECK_DETERMINISM";

/// Why a run did not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A node's program (or the supervisor) panicked.
    #[error("{seeds}: {who} panicked{}: {message}", at.map(|t| format!(" at {t:?}")).unwrap_or_default())]
    Panic {
        /// The run's seeds.
        seeds: Seeds,
        /// `node "name"` or `the supervisor`/`a task`.
        who: String,
        /// The panic message.
        message: String,
        /// Simulated time of the panic, when known (always for a node's program).
        at: Option<Duration>,
    },
    /// The run recorded more events than allowed.
    #[error("{seeds}: {source}")]
    TraceLimit {
        /// The run's seeds.
        seeds: Seeds,
        /// The bound that was hit.
        #[source]
        source: TraceLimitExceeded,
    },
    /// Two runs of the same seed diverged.
    #[error("{seeds}: {divergence}")]
    Nondeterministic {
        /// The run's seeds.
        seeds: Seeds,
        /// Where they diverged.
        divergence: Box<crate::determinism::Divergence>,
    },
    /// The world was configured wrongly (duplicate node name, bad link, unknown node in a fault).
    #[error("invalid world: {0}")]
    Invalid(String),
    /// A seed variable was not a number.
    #[error(transparent)]
    Seed(#[from] SeedError),
}

/// What a finished run leaves behind.
#[derive(Debug, Clone)]
pub struct RunReport<T> {
    /// The seeds that reproduce this run.
    pub seeds: Seeds,
    /// What the supervisor returned.
    pub output: T,
    /// The trace (events kept unless the builder said otherwise) and its hash.
    pub trace: Trace,
    /// Simulated time when the supervisor returned.
    pub sim_elapsed: Duration,
    /// Final state of each node, in id order.
    pub nodes: Vec<NodeSummary>,
    /// The sometimes-assertions evaluated during the run, by name ([`crate::probes`]): node
    /// code and the supervisor alike, up to the moment the supervisor returned.
    pub probes: crate::probes::Probes,
}

impl<T> RunReport<T> {
    /// The stable trace hash (see [`crate::trace`]).
    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }
}

/// A node's final state in a [`RunReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSummary {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Status at the end.
    pub status: NodeStatus,
    /// Number of restarts.
    pub incarnation: u32,
}

struct NodeDef {
    spec: NodeSpec,
    program: Program,
}

/// Configures a [`World`]. Every setter documents its default.
///
/// ```
/// use gauntlet_sim::{World, NodeSpec, LinkConfig};
/// use std::time::Duration;
///
/// let world = World::builder()
///     .seed(7)
///     .default_link(LinkConfig::fixed(Duration::from_millis(2)))
///     .node(NodeSpec::new("a"), |ctx| async move {
///         ctx.transport().send(gauntlet_sim::NodeId(1), &b"hi"[..]);
///     })
///     .node(NodeSpec::new("b"), |ctx| async move {
///         let msg = ctx.transport().recv().await;
///         assert_eq!(&msg.body[..], b"hi");
///     })
///     .build()
///     .unwrap();
/// let report = world.run(|sim| async move { sim.sleep(Duration::from_secs(1)).await }).unwrap();
/// assert_eq!(report.trace.counts_by_kind()["deliver"], 1);
/// ```
pub struct WorldBuilder {
    seeds: Option<Seeds>,
    print_seed: bool,
    nodes: Vec<NodeDef>,
    default_link: LinkConfig,
    max_trace_events: usize,
    keep_events: bool,
    inbox_capacity: usize,
    in_flight_capacity: usize,
    buggify: Option<BuggifyConfig>,
    torn_writes: bool,
    fsync_latency: Duration,
    tcp: crate::TcpConfig,
    time_limit: Duration,
    check_determinism: Option<bool>,
}

impl Default for WorldBuilder {
    fn default() -> Self {
        WorldBuilder {
            seeds: None,
            print_seed: true,
            nodes: Vec::new(),
            default_link: LinkConfig::default(),
            max_trace_events: 10_000_000,
            keep_events: true,
            inbox_capacity: 100_000,
            in_flight_capacity: 1_000_000,
            buggify: None,
            torn_writes: false,
            fsync_latency: Duration::ZERO,
            tcp: crate::TcpConfig::default(),
            time_limit: Duration::from_secs(24 * 3600),
            check_determinism: None,
        }
    }
}

impl WorldBuilder {
    /// Uses this seed for everything (no printing). Default: `SIM_SEED`/`CHAOS_SEED` from the
    /// environment, or a freshly drawn seed, printed to stderr before the run starts.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seeds = Some(Seeds::new(seed));
        self.print_seed = false;
        self
    }

    /// Uses these seeds (no printing). See [`WorldBuilder::seed`].
    pub fn seeds(mut self, seeds: Seeds) -> Self {
        self.seeds = Some(seeds);
        self.print_seed = false;
        self
    }

    /// Adds a node running `program`, which is called again on every restart. Node ids are
    /// assigned in the order nodes are added, from 0.
    pub fn node<F, Fut>(mut self, spec: NodeSpec, program: F) -> Self
    where
        F: Fn(NodeContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.nodes.push(NodeDef { spec, program: Arc::new(move |ctx| program(ctx).boxed_local()) });
        self
    }

    /// The link model every link starts with. Default: uniform 1–10 ms latency, no loss.
    pub fn default_link(mut self, link: LinkConfig) -> Self {
        self.default_link = link;
        self
    }

    /// Bound on recorded events; a run that exceeds it fails with [`RunError::TraceLimit`].
    /// Default: 10,000,000.
    pub fn max_trace_events(mut self, limit: usize) -> Self {
        self.max_trace_events = limit;
        self
    }

    /// Whether the trace keeps its events (`true`, default) or only their count and hash.
    pub fn keep_events(mut self, keep: bool) -> Self {
        self.keep_events = keep;
        self
    }

    /// Messages a node's inbox holds before new ones are dropped. Default: 100,000.
    pub fn inbox_capacity(mut self, n: usize) -> Self {
        self.inbox_capacity = n;
        self
    }

    /// Messages the network holds in flight before new ones are dropped. Default: 1,000,000.
    pub fn in_flight_capacity(mut self, n: usize) -> Self {
        self.in_flight_capacity = n;
        self
    }

    /// Switches buggify on with the given per-site and per-call probabilities.
    /// Default: off. (FoundationDB's classic values are 0.25 and 0.05.)
    pub fn buggify(mut self, site_probability: f64, fire_probability: f64) -> Self {
        self.buggify = Some(BuggifyConfig { site_probability, fire_probability });
        self
    }

    /// Whether a crash may keep a random prefix of the first unsynced write. Default: off.
    pub fn torn_writes(mut self, on: bool) -> Self {
        self.torn_writes = on;
        self
    }

    /// Simulated time an fsync takes; a node that crashes meanwhile loses the writes it was
    /// syncing. Default: 0 (instant).
    pub fn fsync_latency(mut self, d: Duration) -> Self {
        self.fsync_latency = d;
        self
    }

    /// How simulated TCP behaves: retransmission and reset timeouts, window, backlog
    /// ([`crate::TcpConfig`], whose docs give the defaults).
    pub fn tcp(mut self, config: crate::TcpConfig) -> Self {
        self.tcp = config;
        self
    }

    /// Simulated time after which the run is aborted as hung. Default: 24 h.
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
    }

    /// Runs every seed twice and compares traces. Default: on when `SIM_CHECK_DETERMINISM=1`.
    pub fn check_determinism(mut self, on: bool) -> Self {
        self.check_determinism = Some(on);
        self
    }

    /// Validates the configuration and resolves the seeds.
    pub fn build(self) -> Result<World, RunError> {
        let mut problems = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for n in &self.nodes {
            if n.spec.name.is_empty() {
                problems.push("a node has an empty name".to_owned());
            } else if !names.insert(n.spec.name.clone()) {
                problems.push(format!("duplicate node name {:?}", n.spec.name));
            }
        }
        if let Err(e) = self.default_link.validate("default_link") {
            problems.extend(e);
        }
        if !problems.is_empty() {
            return Err(RunError::Invalid(problems.join("; ")));
        }
        let (seeds, print) = match self.seeds {
            Some(s) => (s, self.print_seed),
            None => (Seeds::from_env()?, true),
        };
        let check = match self.check_determinism {
            Some(c) => c,
            None => std::env::var(CHECK_DETERMINISM_ENV).is_ok_and(|v| v == "1" || v == "true"),
        };
        Ok(World { inner: Arc::new(WorldConfig { seeds, print, check, builder: self }) })
    }
}

struct WorldConfig {
    seeds: Seeds,
    print: bool,
    check: bool,
    builder: WorldBuilder,
}

/// A configured world, ready to run. Cheap to clone; each run starts from scratch.
#[derive(Clone)]
pub struct World {
    inner: Arc<WorldConfig>,
}

/// Payload of a panic raised inside a node's program, carrying the node's name.
struct NodePanic {
    node: String,
    message: String,
    at: Duration,
}

impl World {
    /// Starts configuring a world.
    pub fn builder() -> WorldBuilder {
        WorldBuilder::default()
    }

    /// The seeds this world runs with.
    pub fn seeds(&self) -> Seeds {
        self.inner.seeds
    }

    /// Runs the world: boots every node, then runs `supervisor` to completion on simulated
    /// time. The run happens on a fresh OS thread, so nothing (not even `HashMap` seeds) leaks
    /// between runs, and when it ends every node is killed and every task the supervisor
    /// spawned is aborted, so its memory is freed (many runs in one process stay flat). With
    /// determinism checking on, it runs twice and compares the traces.
    pub fn run<F, Fut, T>(&self, supervisor: F) -> Result<RunReport<T>, RunError>
    where
        F: Fn(Sim) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        if self.inner.print {
            eprintln!("gauntlet: {} (replay with this prefix)", self.inner.seeds);
        }
        let supervisor = Arc::new(supervisor);
        let first = self.run_once(supervisor.clone(), self.inner.check)?;
        if self.inner.check {
            let second = self.run_once(supervisor, true)?;
            if let Some(d) = crate::determinism::first_divergence(&first.trace, &second.trace) {
                return Err(RunError::Nondeterministic { seeds: self.inner.seeds, divergence: Box::new(d) });
            }
        }
        Ok(first)
    }

    fn run_once<F, Fut, T>(&self, supervisor: Arc<F>, force_keep: bool) -> Result<RunReport<T>, RunError>
    where
        F: Fn(Sim) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let cfg = self.inner.clone();
        let seeds = cfg.seeds;
        let handle = std::thread::Builder::new()
            .name(format!("gauntlet-sim-{}", seeds.sim))
            .stack_size(32 << 20)
            .spawn(move || run_on_this_thread(&cfg, supervisor, force_keep))
            .map_err(|e| RunError::Invalid(format!("cannot start the simulation thread: {e}")))?;
        match handle.join() {
            Ok(result) => result,
            Err(payload) => {
                // Drop whatever the dead run left in this thread's slot (nothing: it was another thread).
                let (who, message, at) = match payload.downcast::<NodePanic>() {
                    Ok(p) => (format!("node {:?}", p.node), p.message, Some(p.at)),
                    Err(other) => ("a task".to_owned(), panic_message(&*other), None),
                };
                Err(RunError::Panic { seeds, who, message, at })
            }
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-string panic payload)".to_owned()
    }
}

fn run_on_this_thread<F, Fut, T>(
    cfg: &WorldConfig,
    supervisor: Arc<F>,
    force_keep: bool,
) -> Result<RunReport<T>, RunError>
where
    F: Fn(Sim) -> Fut,
    Fut: Future<Output = T>,
{
    let b = &cfg.builder;
    let mut rt = madsim::runtime::Runtime::with_seed_and_config(cfg.seeds.sim, madsim::Config::default());
    rt.set_time_limit(b.time_limit);
    let limits = Limits {
        inbox_capacity: b.inbox_capacity,
        in_flight_capacity: b.in_flight_capacity,
        pending_requests_max: 100_000,
        buggify: b.buggify,
        torn_writes: b.torn_writes,
        fsync_latency: b.fsync_latency,
        tcp: b.tcp.clone(),
    };
    let trace = Trace::new(b.max_trace_events, b.keep_events || force_keep);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async move {
            install(WorldState::new(cfg.seeds, limits, b.default_link.clone(), trace));
            // A run's probes start from nothing (the thread is fresh; this says it).
            crate::probes::take();
            let sim = Sim { _private: () };
            for def in &b.nodes {
                sim.add_node_inner(def.spec.clone(), def.program.clone());
            }
            crate::time::spawn_local(network_driver());
            let output = supervisor(sim).await;
            (output, madsim::time::TimeHandle::current().elapsed())
        })
    }));
    // Tasks made ready in the supervisor's last step still ran (deterministically) before
    // block_on returned, and they may have touched the world: the run ends here. Take what the
    // report needs before the tear-down, so nothing the tear-down does can change it.
    let report = result.map(|(output, sim_elapsed)| {
        with_world(|w| {
            let trace = std::mem::replace(&mut w.trace, Trace::new(0, false));
            let nodes = w
                .nodes
                .iter()
                .map(|n| NodeSummary {
                    name: n.spec.name.clone(),
                    role: n.spec.role.clone(),
                    status: n.status,
                    incarnation: n.incarnation,
                })
                .collect();
            RunReport { seeds: cfg.seeds, output, trace, sim_elapsed, nodes, probes: crate::probes::take() }
        })
    });
    // A panicking run (a node's panic, the time limit) is torn down too, then re-raised.
    if crate::state::has_world() {
        tear_down(&rt);
    }
    // Drop the runtime while the world is still installed: a Drop impl in a task the tear-down
    // could not reach (spawned on the supervisor with madsim's own `spawn`, not ours) may
    // still touch its transport or disk.
    drop(rt);
    let state = uninstall();
    let report = match report {
        Ok(report) => report,
        Err(payload) => std::panic::resume_unwind(payload),
    };
    drop(state.expect("world installed for the whole run"));
    report.trace.check_limit().map_err(|source| RunError::TraceLimit { seeds: cfg.seeds, source })?;
    Ok(report)
}

/// Ends every task of a run that is over, so that the run's memory is freed.
///
/// Why this is needed: madsim 0.2.34 never frees a task that is still pending when its runtime
/// is dropped. Each task's `TaskInfo` holds the task's own waker (madsim keeps it to cancel
/// the task), and the task's future holds an `Arc` of that `TaskInfo`: a reference cycle
/// through the async-task allocation, which nothing breaks unless the task completes or is
/// cancelled and then drained by the executor. `Runtime` has no `Drop` that cancels tasks, and
/// the executor only drains inside `block_on`. Node programs, the tasks they spawn and the
/// network driver never complete, so every run used to keep all of its nodes' state (chains,
/// mempools, logs, the timers they sleep on) after it ended: 0.7 MB per raft-kv run, 3.8 MB per
/// `ledger-partition-recovery` run, 47 MB per `ledger-mempool-pressure` run; a 500-seed
/// in-process sweep reached 5.3 GB (`docs/PERFORMANCE.md`, "Memory"). `sim/tests/memory` holds
/// a reference from every kind of task that is pending at the end and checks that none
/// survives the run.
///
/// So, with the world still installed and after the report is taken: one more `block_on`
/// kills every Gauntlet node (madsim wakes each of its tasks, and the executor drops a killed
/// node's task instead of polling it) and aborts every task spawned on the supervisor, which
/// madsim cannot kill as a node (they are tracked by `crate::state::track_task`). The drain
/// then drops all those futures, in madsim's task context, so Drop impls that spawn or touch
/// the world still work. A Drop impl may spawn yet another supervisor task: rounds repeat
/// until none is left (bounded). A panic in a Drop impl is swallowed: the run is already
/// decided. None of this runs before the report is taken, so traces and hashes are unchanged.
fn tear_down(rt: &madsim::runtime::Runtime) {
    for _round in 0..8 {
        let drained = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(async {
                let (nodes, tasks) = with_world(|w| {
                    let nodes: Vec<madsim::task::NodeId> = w.nodes.iter().filter_map(|n| n.madsim).collect();
                    (nodes, std::mem::take(&mut w.supervisor_tasks))
                });
                let handle = madsim::runtime::Handle::current();
                for task in tasks {
                    task.abort();
                }
                for id in nodes {
                    handle.kill(id);
                }
            })
        }));
        // After the drain: whatever the dropped futures spawned on the supervisor is listed.
        let spawned_more = crate::state::has_world() && with_world(|w| !w.supervisor_tasks.is_empty());
        if drained.is_err() || !spawned_more {
            break;
        }
    }
}

/// Moves messages from the in-flight queue to inboxes at their delivery times.
async fn network_driver() {
    loop {
        let next = with_world(|w| {
            let now = w.now_nanos();
            w.deliver_due(now).map(|t| w.start + Duration::from_nanos(t))
        });
        NetWait { sleep: next.map(|at| Box::pin(exact_sleep_until(at))) }.await;
    }
}

/// madsim's `sleep_until` rounds deadlines closer than 1 ms up to 1 ms (tokio's behaviour);
/// deliveries and scheduled faults must happen at their exact time, and `reset` does not clamp.
fn exact_sleep_until(at: madsim::time::Instant) -> madsim::time::Sleep {
    let mut sleep = madsim::time::sleep_until(at);
    std::pin::Pin::new(&mut sleep).reset(at);
    sleep
}

/// Wakes when the earliest delivery is due or a message due earlier was sent.
struct NetWait {
    sleep: Option<std::pin::Pin<Box<madsim::time::Sleep>>>,
}

impl Future for NetWait {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        let kicked = with_world(|w| {
            if std::mem::take(&mut w.net.kicked) {
                true
            } else {
                w.net.driver_waker = Some(cx.waker().clone());
                false
            }
        });
        if kicked {
            return std::task::Poll::Ready(());
        }
        match self.sleep.as_mut() {
            Some(s) => s.as_mut().poll(cx),
            None => std::task::Poll::Pending,
        }
    }
}

/// The supervisor's handle on a running world: time, nodes and faults.
///
/// Only valid inside [`World::run`]; it is cheap to clone into tasks the supervisor spawns.
#[derive(Debug, Clone)]
pub struct Sim {
    _private: (),
}

impl Sim {
    fn add_node_inner(&self, spec: NodeSpec, program: Program) -> NodeId {
        let (id, name, ip) = with_world(|w| {
            let id = w.add_node(spec.clone());
            let ip = spec.addr.map(|a| a.ip()).unwrap_or_else(|| default_ip(id));
            (id, spec.name.clone(), ip)
        });
        let node = madsim::runtime::Handle::current()
            .create_node()
            .name(name.clone())
            .ip(ip)
            .init(move || {
                let program = program.clone();
                let name = name.clone();
                async move {
                    let ctx = NodeContext::attach(id);
                    let incarnation = ctx.incarnation();
                    if let Err(payload) = std::panic::AssertUnwindSafe(program(ctx)).catch_unwind().await {
                        let message = panic_message(&*payload);
                        let at = madsim::time::TimeHandle::current().elapsed();
                        std::panic::resume_unwind(Box::new(NodePanic { node: name, message, at }));
                    }
                    with_world(|w| w.node_exited(id, incarnation));
                }
            })
            .build();
        with_world(|w| {
            w.node_mut(id).madsim = Some(node.id());
            w.by_madsim.insert(node.id(), id);
        });
        id
    }

    /// Adds a node while the world runs (churn: a fresh identity joining). Its name must be new.
    pub fn add_node<F, Fut>(&self, spec: NodeSpec, program: F) -> Result<NodeId, RunError>
    where
        F: Fn(NodeContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        if with_world(|w| w.resolve(&spec.name).is_some()) {
            return Err(RunError::Invalid(format!("duplicate node name {:?}", spec.name)));
        }
        Ok(self.add_node_inner(spec, Arc::new(move |ctx| program(ctx).boxed_local())))
    }

    /// Simulated time since the run started.
    pub fn now(&self) -> Duration {
        with_world(|w| Duration::from_nanos(w.now_nanos()))
    }

    /// Sleeps for `d` of simulated time, exactly (madsim's own `sleep` rounds waits under
    /// 1 ms up to 1 ms; the supervisor's clock must not slip).
    pub async fn sleep(&self, d: Duration) {
        let at = self.now() + d;
        self.sleep_until(at).await
    }

    /// Sleeps until `at` since the run started (returns at once if already past).
    pub async fn sleep_until(&self, at: Duration) {
        if at > self.now() {
            let deadline = with_world(|w| w.start) + at;
            exact_sleep_until(deadline).await
        }
    }

    /// The id of the node called `name`.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        with_world(|w| w.resolve(name))
    }

    /// Every node, in id order.
    pub fn nodes(&self) -> Vec<(NodeId, NodeSpec)> {
        with_world(|w| w.nodes.iter().enumerate().map(|(i, n)| (NodeId(i as u32), n.spec.clone())).collect())
    }

    /// A node's status.
    pub fn status(&self, id: NodeId) -> NodeStatus {
        with_world(|w| w.node(id).status)
    }

    /// A node's incarnation (number of restarts).
    pub fn incarnation(&self, id: NodeId) -> u32 {
        with_world(|w| w.node(id).incarnation)
    }

    /// The trace hash so far.
    pub fn trace_hash(&self) -> u64 {
        with_world(|w| w.trace.hash())
    }

    /// Records an annotation from the supervisor.
    pub fn annotate(&self, text: impl Into<String>) {
        let text = text.into();
        with_world(|w| w.record(None, EventKind::Annotation { text }));
    }

    /// Draws from the chaos stream (rooted at `CHAOS_SEED`, or the world seed).
    pub fn with_chaos_rng<R>(&self, f: impl FnOnce(&mut rand_chacha::ChaCha8Rng) -> R) -> R {
        // `f` is user code: run it without the world borrowed, so it may call back into `Sim`.
        let mut rng = with_world(|w| w.chaos_rng.clone());
        let out = f(&mut rng);
        with_world(|w| w.chaos_rng = rng);
        out
    }

    /// Checks that every node a schedule names exists, listing each unknown name.
    pub fn validate_schedule(&self, schedule: &FaultSchedule) -> Result<(), RunError> {
        let problems: Vec<String> = with_world(|w| {
            schedule
                .entries
                .iter()
                .enumerate()
                .flat_map(|(i, e)| w.fault_problems(&e.fault).into_iter().map(move |p| format!("schedule[{i}]: {p}")))
                .collect()
        });
        if problems.is_empty() {
            Ok(())
        } else {
            Err(RunError::Invalid(problems.join("; ")))
        }
    }

    /// Applies each fault of `schedule` at its time, in a task of its own. The schedule is
    /// validated first; an invalid one is an error and nothing is applied.
    pub fn spawn_schedule(&self, schedule: FaultSchedule) -> Result<(), RunError> {
        self.validate_schedule(&schedule)?;
        let sim = self.clone();
        crate::time::spawn_local(async move {
            for e in schedule.entries {
                sim.sleep_until(e.at).await;
                sim.apply(&e.fault).expect("validated schedule applies");
            }
        });
        Ok(())
    }

    /// Applies one fault now. Unknown nodes are an error naming the node and the known ones.
    pub fn apply(&self, fault: &Fault) -> Result<(), RunError> {
        // Check everything first, so a rejected fault leaves no trace and changes nothing.
        let problems = with_world(|w| w.fault_problems(fault));
        if !problems.is_empty() {
            return Err(RunError::Invalid(problems.join("; ")));
        }
        let lifecycle = match fault {
            Fault::Crash { node } | Fault::Restart { node } | Fault::Pause { node } | Fault::Resume { node } => {
                self.node_id(node)
            }
            _ => None,
        };
        with_world(|w| w.record(None, EventKind::Fault { fault: fault.clone() }));
        match (fault, lifecycle) {
            (Fault::Crash { .. }, Some(id)) => self.crash(id),
            (Fault::Restart { .. }, Some(id)) => self.restart(id),
            (Fault::Pause { .. }, Some(id)) => self.pause(id),
            (Fault::Resume { .. }, Some(id)) => self.resume(id),
            _ => with_world(|w| w.apply_network_fault(fault)).map_err(RunError::Invalid)?,
        }
        Ok(())
    }

    fn madsim_id(&self, id: NodeId) -> madsim::task::NodeId {
        with_world(|w| w.node(id).madsim.expect("node registered with madsim"))
    }

    /// Kills a node (no-op if it is already down).
    pub fn crash(&self, id: NodeId) {
        let down = with_world(|w| {
            if matches!(w.node(id).status, NodeStatus::Crashed | NodeStatus::Exited) {
                return true;
            }
            w.crash(id);
            false
        });
        if !down {
            madsim::runtime::Handle::current().kill(self.madsim_id(id));
        }
    }

    /// Restarts a node with only its durable state (crashing it first if it is up).
    pub fn restart(&self, id: NodeId) {
        with_world(|w| w.prepare_restart(id));
        madsim::runtime::Handle::current().restart(self.madsim_id(id));
    }

    /// Pauses a running node (no-op otherwise).
    pub fn pause(&self, id: NodeId) {
        let ok = with_world(|w| {
            let running = w.node(id).status == NodeStatus::Running;
            if running {
                w.pause(id);
            }
            running
        });
        if ok {
            madsim::runtime::Handle::current().pause(self.madsim_id(id));
        }
    }

    /// Resumes a paused node (no-op otherwise); held messages are delivered now.
    pub fn resume(&self, id: NodeId) {
        let ok = with_world(|w| {
            let paused = w.node(id).status == NodeStatus::Paused;
            if paused {
                w.resume(id);
            }
            paused
        });
        if ok {
            madsim::runtime::Handle::current().resume(self.madsim_id(id));
        }
    }

    /// Spawns a task on the supervisor (it is never crashed or partitioned; it is aborted when
    /// the run ends).
    pub fn spawn<Fut: Future<Output = ()> + 'static>(&self, fut: Fut) {
        crate::time::spawn_local(fut);
    }
}

fn default_ip(id: NodeId) -> IpAddr {
    let n = id.0 + 1;
    IpAddr::V4(Ipv4Addr::new(10, (n >> 16) as u8, (n >> 8) as u8, n as u8))
}

/// The address a node gets when its spec names none: `10.x.y.z:7000` from its id.
pub fn default_addr(id: NodeId) -> SocketAddr {
    SocketAddr::new(default_ip(id), 7000)
}
