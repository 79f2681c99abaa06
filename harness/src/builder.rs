//! The fluent builder: mirrors [`Plan`] one to one. Building a plan with it and writing the
//! same plan as TOML give equal plans. Application crates add their own verbs (`wallets`,
//! `validators(3)`) through extension traits on these builders.
//!
//! ```
//! use gauntlet::{secs, ScenarioBuilder};
//!
//! let plan = ScenarioBuilder::topology_with(|t| t.network_star().nodes("validator", 3).nodes("executor", 2))
//!     .app("chain")
//!     .workload_with("transactions", |w| w.rate(5.0).users(20))
//!     .chaos_with(|c| c.restart().min_delay(secs(10)).max_delay(secs(20)).target_cooldown(secs(15)))
//!     .expect_convergence()
//!     .with_run_duration(secs(90))
//!     .build()
//!     .unwrap();
//! let again = gauntlet::Plan::from_toml(&plan.to_toml()).unwrap();
//! assert_eq!(plan, again);
//! ```

use crate::plan::*;
use gauntlet_sim::{Fault, LinkConfig};
use std::time::Duration;

/// Builds a [`Plan`]. Defaults are those of the plan's fields; the name defaults to
/// `"scenario"`.
#[derive(Debug, Clone)]
pub struct ScenarioBuilder {
    plan: Plan,
}

impl ScenarioBuilder {
    /// A plan called `name` with no nodes yet.
    pub fn new(name: impl Into<String>) -> Self {
        ScenarioBuilder {
            plan: Plan {
                name: name.into(),
                description: String::new(),
                app: AppPlan::default(),
                topology: TopologyPlan::default(),
                run: RunPlan::default(),
                workloads: Vec::new(),
                chaos: ChaosPlan::default(),
                expect: Vec::new(),
                script: None,
            },
        }
    }

    /// Starts a plan called `"scenario"` from its topology.
    pub fn topology_with(f: impl FnOnce(TopologyBuilder) -> TopologyBuilder) -> Self {
        Self::new("scenario").with_topology(f)
    }

    /// Configures the topology (again).
    pub fn with_topology(mut self, f: impl FnOnce(TopologyBuilder) -> TopologyBuilder) -> Self {
        self.plan.topology = f(TopologyBuilder(std::mem::take(&mut self.plan.topology))).0;
        self
    }

    /// Same as [`ScenarioBuilder::with_topology`], for chaining after `new`.
    pub fn topology(self, f: impl FnOnce(TopologyBuilder) -> TopologyBuilder) -> Self {
        self.with_topology(f)
    }

    /// Renames the plan.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.plan.name = name.into();
        self
    }

    /// Sets the description.
    pub fn describe(mut self, text: impl Into<String>) -> Self {
        self.plan.description = text.into();
        self
    }

    /// Sets the application's name.
    pub fn app(mut self, name: impl Into<String>) -> Self {
        self.plan.app.name = name.into();
        self
    }

    /// Sets one application option.
    pub fn app_option(mut self, key: impl Into<String>, value: impl Into<toml::Value>) -> Self {
        self.plan.app.options.insert(key.into(), value.into());
        self
    }

    /// Adds a workload called `name` (see [`WorkloadBuilder`]).
    pub fn workload_with(
        mut self,
        name: impl Into<String>,
        f: impl FnOnce(WorkloadBuilder) -> WorkloadBuilder,
    ) -> Self {
        self.plan.workloads.push(f(WorkloadBuilder(WorkloadPlan::new(name))).0);
        self
    }

    /// Configures chaos (see [`ChaosBuilder`]).
    pub fn chaos_with<R: Into<ChaosBuilder>>(mut self, f: impl FnOnce(ChaosBuilder) -> R) -> Self {
        self.plan.chaos = f(ChaosBuilder(std::mem::take(&mut self.plan.chaos))).into().0;
        self
    }

    /// Adds an expectation without parameters.
    pub fn expect(self, name: impl Into<String>) -> Self {
        self.expect_with(name, |p| p)
    }

    /// Adds an expectation with parameters.
    pub fn expect_with(mut self, name: impl Into<String>, f: impl FnOnce(ParamsBuilder) -> ParamsBuilder) -> Self {
        let params = f(ParamsBuilder(toml::Table::new())).0;
        self.plan.expect.push(ExpectationPlan { name: name.into(), params });
        self
    }

    /// Expects every live member to converge during the cooldown (`converge`).
    pub fn expect_convergence(self) -> Self {
        self.expect("converge")
    }

    /// Expects operations to succeed during the cooldown (`progress`); turns on workloads in
    /// the cooldown.
    pub fn expect_progress(self) -> Self {
        self.workloads_in_cooldown(true).expect("progress")
    }

    /// Expects every live member to be ready during the cooldown (`ready`).
    pub fn expect_ready(self) -> Self {
        self.expect("ready")
    }

    /// Sets the active phase's length (default 30 s).
    pub fn with_run_duration(mut self, d: Duration) -> Self {
        self.plan.run.duration = d;
        self
    }

    /// Sets the cooldown (default 10 s).
    pub fn with_cooldown(mut self, d: Duration) -> Self {
        self.plan.run.cooldown = d;
        self
    }

    /// Keeps workloads running in the cooldown (default off).
    pub fn workloads_in_cooldown(mut self, on: bool) -> Self {
        self.plan.run.workloads_in_cooldown = on;
        self
    }

    /// Sets the observation interval (default 100 ms).
    pub fn observe_every(mut self, d: Duration) -> Self {
        self.plan.run.observe_every = d;
        self
    }

    /// Pins the seed (default: drawn; `SIM_SEED` overrides).
    pub fn seed(mut self, seed: u64) -> Self {
        self.plan.run.seed = Some(seed);
        self
    }

    /// The plan as built, unchecked.
    pub fn plan(self) -> Plan {
        self.plan
    }

    /// The plan, after the checks that need no application ([`Plan::check`]).
    pub fn build(self) -> Result<Plan, PlanError> {
        self.plan.check()?;
        Ok(self.plan)
    }
}

/// Configures [`TopologyPlan`].
#[derive(Debug, Clone)]
pub struct TopologyBuilder(pub TopologyPlan);

impl TopologyBuilder {
    /// `n` nodes of `role` (replaces an earlier count for the role).
    pub fn nodes(mut self, role: impl Into<String>, n: u32) -> Self {
        self.0.nodes.insert(role.into(), n);
        self
    }
    /// Every pair is one link (the default).
    pub fn network_mesh(mut self) -> Self {
        self.0.network = Network::Mesh;
        self
    }
    /// A star around the first node.
    pub fn network_star(mut self) -> Self {
        self.0.network = Network::Star { hub: None };
        self
    }
    /// A star around `hub`.
    pub fn network_star_around(mut self, hub: impl Into<String>) -> Self {
        self.0.network = Network::Star { hub: Some(hub.into()) };
        self
    }
    /// Adds a latency tier of `members` (node or role names); switches the shape to tiers.
    pub fn tier(mut self, latency: Duration, members: &[&str]) -> Self {
        let tier = Tier { latency, members: members.iter().map(|s| s.to_string()).collect() };
        match &mut self.0.network {
            Network::Tiers { tiers } => tiers.push(tier),
            other => *other = Network::Tiers { tiers: vec![tier] },
        }
        self
    }
    /// Sets the default link model.
    pub fn link(mut self, link: LinkConfig) -> Self {
        self.0.link = link;
        self
    }
    /// Sets the simulated fsync time (default 0).
    pub fn fsync(mut self, d: Duration) -> Self {
        self.0.fsync = d;
        self
    }
}

/// Configures a [`WorkloadPlan`].
#[derive(Debug, Clone)]
pub struct WorkloadBuilder(pub WorkloadPlan);

impl WorkloadBuilder {
    /// Sustained rate in operations per second.
    pub fn rate(mut self, ops_per_s: f64) -> Self {
        self.0.rate = Some(ops_per_s);
        self
    }
    /// Logical users (default 1).
    pub fn users(mut self, n: u32) -> Self {
        self.0.users = n;
        self
    }
    /// Appends a load-progression step.
    pub fn step(mut self, ops_per_s: f64, duration: Duration) -> Self {
        self.0.steps.push(LoadStep { rate: ops_per_s, duration });
        self
    }
    /// Adds a burst of `ops` operations at `at`, spread over `over`.
    pub fn burst(mut self, at: Duration, ops: u32, over: Duration) -> Self {
        self.0.bursts.push(Burst { at, ops, over });
        self
    }
    /// Sets an operation's weight in the mix.
    pub fn mix(mut self, op: impl Into<String>, weight: u32) -> Self {
        self.0.mix.insert(op.into(), weight);
        self
    }
    /// Sets the arrival process (default Poisson).
    pub fn arrival(mut self, a: Arrival) -> Self {
        self.0.arrival = a;
        self
    }
    /// Starts the workload later (default 0).
    pub fn start(mut self, at: Duration) -> Self {
        self.0.start = at;
        self
    }
    /// Bounds operations in flight (default 256).
    pub fn max_in_flight(mut self, n: u32) -> Self {
        self.0.max_in_flight = n;
        self
    }
    /// Sets the operation timeout (default 1 s).
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.0.op_timeout = d;
        self
    }
    /// Closed loop: each user has at most one operation in flight (Jepsen's process model).
    pub fn closed_loop(mut self) -> Self {
        self.0.closed_loop = true;
        self
    }
    /// Closed loop with a pause: each user waits `d` after an operation ends before its next.
    pub fn think(mut self, d: Duration) -> Self {
        self.0.closed_loop = true;
        self.0.think = d;
        self
    }
}

/// Configures a [`ChaosPlan`]. Each fault kind's builder returns here with `.and()`.
#[derive(Debug, Clone, Default)]
pub struct ChaosBuilder(pub ChaosPlan);

macro_rules! sub_builder {
    ($(#[$doc:meta])* $name:ident, $field:ident, $ty:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name(ChaosBuilder);
        impl $name {
            fn get(&mut self) -> &mut $ty {
                self.0 .0.$field.as_mut().expect("section present")
            }
            /// Back to the chaos builder.
            pub fn and(self) -> ChaosBuilder {
                self.0
            }
        }
        impl From<$name> for ChaosBuilder {
            fn from(b: $name) -> ChaosBuilder {
                b.0
            }
        }
    };
}

macro_rules! setter {
    ($(#[$doc:meta])* $name:ident: $ty:ty) => {
        $(#[$doc])*
        pub fn $name(mut self, v: $ty) -> Self {
            self.get().$name = v;
            self
        }
    };
}

sub_builder!(
    /// Restart chaos (defaults: every 10–20 s, no target cooldown, restart at once).
    RestartBuilder, restart, RestartChaos);
sub_builder!(
    /// Kill chaos (defaults: one kill every 10–20 s).
    KillBuilder, kill, KillChaos);
sub_builder!(
    /// Pause chaos (defaults: every 10–20 s, for 1–5 s).
    PauseBuilder, pause, PauseChaos);
sub_builder!(
    /// Partition chaos (defaults: every 10–20 s, for 2–8 s).
    PartitionBuilder, partition, PartitionChaos);
sub_builder!(
    /// Churn (defaults: every 5–10 s).
    ChurnBuilder, churn, ChurnChaos);

impl RestartBuilder {
    setter!(/// Shortest gap between restarts.
        min_delay: Duration);
    setter!(/// Longest gap between restarts.
        max_delay: Duration);
    setter!(/// No node restarts twice within this.
        target_cooldown: Duration);
    setter!(/// Time down before restarting.
        down: Duration);
    /// Roles that may be restarted.
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.get().roles = roles.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Restart whichever member leads when each restart fires (Jepsen's kill-the-primary).
    pub fn at_leader(mut self) -> Self {
        self.get().aim = Aim::Leader;
        self
    }
}

impl KillBuilder {
    setter!(/// Shortest gap before each kill.
        min_delay: Duration);
    setter!(/// Longest gap before each kill.
        max_delay: Duration);
    /// Roles that may be killed.
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.get().roles = roles.iter().map(|s| s.to_string()).collect();
        self
    }
}

impl PauseBuilder {
    setter!(/// Shortest gap between pauses.
        min_delay: Duration);
    setter!(/// Longest gap between pauses.
        max_delay: Duration);
    setter!(/// Shortest pause.
        min_duration: Duration);
    setter!(/// Longest pause.
        max_duration: Duration);
    /// Roles that may be paused.
    pub fn roles(mut self, roles: &[&str]) -> Self {
        self.get().roles = roles.iter().map(|s| s.to_string()).collect();
        self
    }
    /// Pause whichever member leads when each pause fires.
    pub fn at_leader(mut self) -> Self {
        self.get().aim = Aim::Leader;
        self
    }
}

impl PartitionBuilder {
    setter!(/// Shortest gap between partitions.
        min_delay: Duration);
    setter!(/// Longest gap between partitions.
        max_delay: Duration);
    setter!(/// Shortest partition.
        min_duration: Duration);
    setter!(/// Longest partition.
        max_duration: Duration);
    /// Puts each workload's client on a random side of every partition (default: clients
    /// reach every member).
    pub fn clients_on_sides(mut self) -> Self {
        self.get().clients = ClientSide::Random;
        self
    }
    /// Adds an explicit group (and the `groups` kind if missing).
    pub fn group(mut self, nodes: &[&str]) -> Self {
        let p = self.get();
        p.groups.push(nodes.iter().map(|s| s.to_string()).collect());
        if !p.kinds.contains(&PartitionKind::Groups) {
            p.kinds.push(PartitionKind::Groups);
        }
        self
    }
}

impl ChurnBuilder {
    setter!(/// Shortest gap between changes.
        min_delay: Duration);
    setter!(/// Longest gap between changes.
        max_delay: Duration);
    setter!(/// Most joins.
        joins: u32);
    setter!(/// Most leaves.
        leaves: u32);
}

const S10: Duration = Duration::from_secs(10);
const S20: Duration = Duration::from_secs(20);

impl ChaosBuilder {
    /// Swarm testing: each seed turns on a random subset of the configured kinds.
    pub fn swarm(mut self) -> Self {
        self.0.swarm = true;
        self
    }
    /// No generated fault before `at`.
    pub fn start(mut self, at: Duration) -> Self {
        self.0.start = at;
        self
    }
    /// Restart chaos.
    pub fn restart(mut self) -> RestartBuilder {
        self.0.restart.get_or_insert(RestartChaos {
            min_delay: S10,
            max_delay: S20,
            target_cooldown: Duration::ZERO,
            down: Duration::ZERO,
            roles: Vec::new(),
            aim: Aim::Any,
        });
        RestartBuilder(self)
    }
    /// Kill `count` nodes for good.
    pub fn kill(mut self, count: u32) -> KillBuilder {
        self.0.kill = Some(KillChaos { count, min_delay: S10, max_delay: S20, roles: Vec::new() });
        KillBuilder(self)
    }
    /// Pause chaos.
    pub fn pause(mut self) -> PauseBuilder {
        self.0.pause.get_or_insert(PauseChaos {
            min_delay: S10,
            max_delay: S20,
            min_duration: Duration::from_secs(1),
            max_duration: Duration::from_secs(5),
            roles: Vec::new(),
            aim: Aim::Any,
        });
        PauseBuilder(self)
    }
    /// Power loss: every member crashes at once every `[min_delay, max_delay]` and restarts
    /// after `down`.
    pub fn power_loss(mut self, min_delay: Duration, max_delay: Duration, down: Duration) -> Self {
        self.0.power_loss = Some(PowerLossChaos { min_delay, max_delay, down });
        self
    }
    /// Partition chaos choosing among `kinds`.
    pub fn partition(mut self, kinds: &[PartitionKind]) -> PartitionBuilder {
        self.0.partition = Some(PartitionChaos {
            kinds: kinds.to_vec(),
            groups: Vec::new(),
            min_delay: S10,
            max_delay: S20,
            min_duration: Duration::from_secs(2),
            max_duration: Duration::from_secs(8),
            clients: ClientSide::Connected,
        });
        PartitionBuilder(self)
    }
    /// Latency tiers for the active phase.
    pub fn latency_tiers(mut self, tiers: &[Duration]) -> Self {
        self.0.latency_tiers = Some(LatencyTiersChaos { tiers: tiers.to_vec() });
        self
    }
    /// Loss on every link during the active phase.
    pub fn loss(mut self, p: f64) -> Self {
        self.0.link.get_or_insert_with(LinkChaos::default).loss = p;
        self
    }
    /// Duplication on every link during the active phase.
    pub fn duplicate(mut self, p: f64) -> Self {
        self.0.link.get_or_insert_with(LinkChaos::default).duplicate = p;
        self
    }
    /// Reordering on every link during the active phase.
    pub fn reorder(mut self, p: f64) -> Self {
        self.0.link.get_or_insert_with(LinkChaos::default).reorder = p;
        self
    }
    /// Clock skew on `nodes` members (all when `None`).
    pub fn clock_skew(mut self, max_offset: Duration, max_drift_ppm: u32, nodes: Option<u32>) -> Self {
        self.0.clock_skew = Some(ClockSkewChaos {
            max_offset,
            max_drift_ppm,
            nodes,
            min_delay: None,
            max_delay: None,
            roles: Vec::new(),
        });
        self
    }
    /// Limits clock skew (set by [`ChaosBuilder::clock_skew`] or [`ChaosBuilder::clock_jumps`]
    /// before) to members of `roles`.
    pub fn skew_roles(mut self, roles: &[&str]) -> Self {
        if let Some(c) = self.0.clock_skew.as_mut() {
            c.roles = roles.iter().map(|r| (*r).to_owned()).collect();
        }
        self
    }
    /// Clock skew that keeps changing: every `[min_delay, max_delay]` a random member's clock
    /// jumps to a new offset (within `max_offset`) and drift (within `max_drift_ppm`).
    pub fn clock_jumps(
        mut self,
        max_offset: Duration,
        max_drift_ppm: u32,
        min_delay: Duration,
        max_delay: Duration,
    ) -> Self {
        self.0.clock_skew = Some(ClockSkewChaos {
            max_offset,
            max_drift_ppm,
            nodes: None,
            min_delay: Some(min_delay),
            max_delay: Some(max_delay),
            roles: Vec::new(),
        });
        self
    }
    /// Churn of `role` nodes.
    pub fn churn(mut self, role: impl Into<String>) -> ChurnBuilder {
        self.0.churn = Some(ChurnChaos {
            min_delay: Duration::from_secs(5),
            max_delay: S10,
            joins: 0,
            leaves: 0,
            role: role.into(),
        });
        ChurnBuilder(self)
    }
    /// An explicit fault at `at`.
    pub fn fault(mut self, at: Duration, fault: Fault) -> Self {
        self.0.schedule.push(at, fault);
        self
    }
}

/// Parameters of an expectation.
#[derive(Debug, Clone)]
pub struct ParamsBuilder(pub toml::Table);

impl ParamsBuilder {
    /// Sets a parameter.
    pub fn param(mut self, key: impl Into<String>, value: impl Into<toml::Value>) -> Self {
        self.0.insert(key.into(), value.into());
        self
    }
    /// Sets a duration parameter (written like `"5s"`).
    pub fn duration(self, key: impl Into<String>, d: Duration) -> Self {
        let text = crate::plan::fmt_duration(d);
        self.param(key, text)
    }
}
