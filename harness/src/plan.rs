//! Plans are data: a [`Plan`] is what a person writes as TOML (files under `scenarios/plans/`)
//! and what the [`ScenarioBuilder`](crate::ScenarioBuilder) produces. Every field has a default
//! unless it says otherwise, and every table rejects unknown keys, so a typo is an error.
//!
//! ```
//! use gauntlet::Plan;
//!
//! let plan = Plan::from_toml(r#"
//!     name = "smoke"
//!     [app]
//!     name = "kv"
//!     [topology.nodes]
//!     replica = 3
//!     [run]
//!     duration = "20s"
//! "#).unwrap();
//! assert_eq!(plan.topology.node_names(), ["replica-0", "replica-1", "replica-2"]);
//! assert_eq!(plan.run.cooldown, std::time::Duration::from_secs(10)); // the default
//! ```

mod validate;

/// The node name an explicit schedule's fault may use for whichever member leads when it
/// fires (applications that elect leaders only): `partition` with groups `[["@leader"]]`
/// cuts the leader off from everyone else, `crash`, `pause` hit the leader, and a later
/// `restart` or `resume` of `@leader` undoes the last `@leader` crash or pause. A fault whose
/// leader is not known when it fires is skipped (and annotated in the trace). Shrinking writes
/// faults that a plan aimed at the leader this way, so they keep their aim when others go.
pub const LEADER: &str = "@leader";

/// Whether `fault` names [`LEADER`].
pub fn names_leader(fault: &gauntlet_sim::Fault) -> bool {
    fault.nodes().contains(&LEADER)
}

pub use validate::{fmt_duration, Catalog, KeyProblems, OptionsCheck, ParamsCheck, PlanError, Problem};

use gauntlet_sim::{FaultSchedule, LinkConfig};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A whole scenario plan: which application, on what topology, under which load and chaos,
/// judged by which expectations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Name of the plan (required; used in reports and bundle names).
    pub name: String,
    /// What the plan is for. Default empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The application under test (required).
    pub app: AppPlan,
    /// The cluster (required).
    pub topology: TopologyPlan,
    /// Durations and seed.
    #[serde(default)]
    pub run: RunPlan,
    /// Clients driving traffic. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workloads: Vec<WorkloadPlan>,
    /// Faults. Default none.
    #[serde(default)]
    pub chaos: ChaosPlan,
    /// What must hold. Default none (the run then only fails on a crash).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<ExpectationPlan>,
    /// A scripted run: a Lua procedure drives the deployment in place of the chaos timeline
    /// (`gauntlet script`, `docs/SCRIPTING.md`). Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<ScriptPlan>,
}

/// A script a plan runs (`[script]`): its source, and the limits it runs under. The plan's
/// workloads run alongside it; when it returns, the cooldown begins as after an active phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScriptPlan {
    /// The name tracebacks and errors give the script (its file name). Default `script.lua`.
    pub name: String,
    /// A Lua file, relative to the plan file: [`Plan::load`] reads it into `source` (and
    /// clears this), so a bundle's plan carries the whole script.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The Lua 5.4 source.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// Most Lua instructions the script may execute (waiting costs none). Default 100 million.
    pub max_instructions: u64,
    /// Most memory the script's Lua state may hold, in bytes. Default 64 MiB.
    pub max_memory: u64,
    /// Longest the script may run, in the deployment's time (simulated under simulation).
    /// Default 10 min.
    #[serde(with = "humantime_serde")]
    pub time_limit: Duration,
}

impl Default for ScriptPlan {
    fn default() -> Self {
        ScriptPlan {
            name: "script.lua".into(),
            file: None,
            source: String::new(),
            max_instructions: 100_000_000,
            max_memory: 64 << 20,
            time_limit: Duration::from_secs(600),
        }
    }
}

impl ScriptPlan {
    /// A script named `name` with `source` and the default limits.
    pub fn new(name: impl Into<String>, source: impl Into<String>) -> ScriptPlan {
        ScriptPlan { name: name.into(), source: source.into(), ..ScriptPlan::default() }
    }
}

impl Plan {
    /// Parses a plan from TOML. Syntax and type errors name the line; call
    /// [`Plan::validate`] (or [`Plan::check`]) for the semantic checks.
    pub fn from_toml(text: &str) -> Result<Plan, PlanError> {
        toml::from_str(text).map_err(|e| PlanError::Parse { source_name: "<string>".into(), message: e.to_string() })
    }

    /// Reads and parses a plan file.
    pub fn load(path: impl AsRef<Path>) -> Result<Plan, PlanError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| PlanError::Parse { source_name: path.display().to_string(), message: e.to_string() })?;
        let mut plan: Plan = toml::from_str(&text)
            .map_err(|e| PlanError::Parse { source_name: path.display().to_string(), message: e.to_string() })?;
        if let Some(script) = plan.script.as_mut() {
            if let Some(file) = script.file.take() {
                let file = path.parent().unwrap_or(Path::new(".")).join(file);
                script.source = std::fs::read_to_string(&file).map_err(|e| PlanError::Parse {
                    source_name: path.display().to_string(),
                    message: format!("script.file {}: {e}", file.display()),
                })?;
                if script.name == ScriptPlan::default().name {
                    script.name = file.file_name().map_or(script.name.clone(), |n| n.to_string_lossy().into_owned());
                }
            }
        }
        Ok(plan)
    }

    /// Switches on planted bugs: adds each of `bugs` to `app.options.bugs` (an array of
    /// names, as applications read it), keeping those already there and their order.
    pub fn add_bugs(&mut self, bugs: &[String]) {
        if bugs.is_empty() {
            return;
        }
        let entry = self.app.options.entry("bugs").or_insert_with(|| toml::Value::Array(Vec::new()));
        if !entry.is_array() {
            *entry = toml::Value::Array(Vec::new());
        }
        let list = entry.as_array_mut().expect("an array");
        for b in bugs {
            if !list.iter().any(|v| v.as_str() == Some(b)) {
                list.push(toml::Value::String(b.clone()));
            }
        }
    }

    /// The plan as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a plan always serialises to TOML")
    }
}

/// The application under test and its options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AppPlan {
    /// The application's registered name (required).
    pub name: String,
    /// App-specific options (planted bugs, tuning). Default empty; the app validates them.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub options: toml::Table,
}

/// The cluster: how many nodes of each role, the network shape and the default link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TopologyPlan {
    /// Node count per role (required). Nodes are named `<role>-<index>`, roles in name order.
    pub nodes: BTreeMap<String, u32>,
    /// Network shape. Default [`Network::Mesh`].
    #[serde(default)]
    pub network: Network,
    /// The link model every pair starts with. Default: [`LinkConfig::default`].
    #[serde(default)]
    pub link: LinkConfig,
    /// Simulated time an fsync takes (a crash meanwhile loses what was being synced).
    /// Default 0.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Duration::is_zero")]
    pub fsync: Duration,
}

impl TopologyPlan {
    /// Every node's `(name, role)`, roles in name order, indices from 0.
    pub fn nodes(&self) -> Vec<(String, String)> {
        self.nodes.iter().flat_map(|(role, &n)| (0..n).map(move |i| (format!("{role}-{i}"), role.clone()))).collect()
    }

    /// Every node's name, in the order of [`TopologyPlan::nodes`].
    pub fn node_names(&self) -> Vec<String> {
        self.nodes().into_iter().map(|(n, _)| n).collect()
    }
}

/// The network's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "shape", rename_all = "snake_case", deny_unknown_fields)]
pub enum Network {
    /// Every pair is one link with the default model.
    #[default]
    Mesh,
    /// Messages between two spokes pass through the hub: spoke-to-spoke links take twice the
    /// default latency.
    Star {
        /// The hub node. Default: the first node.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hub: Option<String>,
    },
    /// Nodes sit in latency tiers; a message takes the latency of the slower tier of its two
    /// ends. Nodes in no tier use the default link.
    Tiers {
        /// The tiers.
        tiers: Vec<Tier>,
    },
}

/// One latency tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    /// The tier's one-way latency.
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    /// Node names or role names (a role stands for all its nodes).
    pub members: Vec<String>,
}

/// Durations and seed of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunPlan {
    /// Length of the active phase (workloads and faults). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
    /// Liveness window after the active phase: faults stop, the network heals, and every
    /// liveness expectation must hold within it. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    /// Whether workloads keep running during the cooldown. Default `false`.
    pub workloads_in_cooldown: bool,
    /// Time between observations (and expectation checks). Default 100 ms.
    #[serde(with = "humantime_serde")]
    pub observe_every: Duration,
    /// A fixed seed for this plan; `SIM_SEED` still overrides it. Default: none (drawn).
    /// Written as an integer, or as a string (`"0xdeadbeef"`, or decimal) for seeds above
    /// TOML's largest integer (2^63 - 1).
    #[serde(skip_serializing_if = "Option::is_none", with = "seed_serde")]
    pub seed: Option<u64>,
}

impl Default for RunPlan {
    fn default() -> Self {
        RunPlan {
            duration: Duration::from_secs(30),
            cooldown: Duration::from_secs(10),
            workloads_in_cooldown: false,
            observe_every: Duration::from_millis(100),
            seed: None,
        }
    }
}

/// A client workload: open-loop arrivals at a rate that may change in steps, plus bursts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadPlan {
    /// Unique name (required); its client node is called `client-<name>`.
    pub name: String,
    /// Logical users the operations are spread over. Default 1.
    #[serde(default = "one")]
    pub users: u32,
    /// Sustained rate in operations per second, used when there are no `steps` and after the
    /// last step ends (without it, the last step's rate continues). Default none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Load progression: rates held for a duration each, in order, from `start`. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<LoadStep>,
    /// Extra operations injected at once. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bursts: Vec<Burst>,
    /// Operation mix: name → weight. Default: the app's operations, equally weighted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mix: BTreeMap<String, u32>,
    /// How arrival times are spaced. Default [`Arrival::Poisson`].
    #[serde(default)]
    pub arrival: Arrival,
    /// When the workload starts, since the run started. Default 0.
    #[serde(default, with = "humantime_serde")]
    pub start: Duration,
    /// Operations in flight at most; arrivals beyond it are shed and counted. Default 256.
    #[serde(default = "default_in_flight")]
    pub max_in_flight: u32,
    /// An operation not answered within this is recorded as indeterminate. Default 1 s.
    #[serde(default = "default_op_timeout", with = "humantime_serde")]
    pub op_timeout: Duration,
    /// Closed loop, Jepsen's process model: each user has at most one operation in flight; an
    /// arrival for a busy user waits until that user's previous operation ends, in order (and
    /// is shed if still waiting when the workload ends). Checkers that assume one operation per
    /// client at a time need it. Default `false`: open loop, arrivals follow the rate whether
    /// or not earlier operations finished.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub closed_loop: bool,
    /// Closed loop only: after each operation ends, its user waits this long before it starts
    /// its next (it stays busy meanwhile, so arrivals for it wait). A client that holds a lock
    /// between an acquisition and its release holds it at least this long. Default 0.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Duration::is_zero")]
    pub think: Duration,
}

fn one() -> u32 {
    1
}
fn default_in_flight() -> u32 {
    256
}
fn default_op_timeout() -> Duration {
    Duration::from_secs(1)
}

impl WorkloadPlan {
    /// A workload with every default and no load (set a rate, steps or bursts).
    pub fn new(name: impl Into<String>) -> Self {
        WorkloadPlan {
            name: name.into(),
            users: 1,
            rate: None,
            steps: Vec::new(),
            bursts: Vec::new(),
            mix: BTreeMap::new(),
            arrival: Arrival::default(),
            start: Duration::ZERO,
            max_in_flight: default_in_flight(),
            op_timeout: default_op_timeout(),
            closed_loop: false,
            think: Duration::ZERO,
        }
    }

    /// Operations this workload offers in `[0, end)`: the rate integrated over time, plus
    /// bursts. Used to bound a plan's size before it runs.
    pub fn expected_ops(&self, end: Duration) -> f64 {
        let mut total: f64 = self.bursts.iter().map(|b| f64::from(b.ops)).sum();
        let mut t = self.start.min(end);
        for step in &self.steps {
            let until = t.saturating_add(step.duration).min(end);
            total += step.rate.max(0.0) * (until - t).as_secs_f64();
            t = until;
        }
        let after = self.rate.or(self.steps.last().map(|s| s.rate)).unwrap_or(0.0).max(0.0);
        total + after * end.saturating_sub(t).as_secs_f64()
    }

    /// The offered rate (ops/s) at `t` since the run started, ignoring bursts.
    pub fn rate_at(&self, t: Duration) -> f64 {
        if t < self.start {
            return 0.0;
        }
        let mut step_start = self.start;
        for step in &self.steps {
            if t < step_start + step.duration {
                return step.rate;
            }
            step_start += step.duration;
        }
        self.rate.or(self.steps.last().map(|s| s.rate)).unwrap_or(0.0)
    }
}

/// One step of a load progression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadStep {
    /// Operations per second during the step.
    pub rate: f64,
    /// How long the step lasts.
    #[serde(with = "humantime_serde")]
    pub duration: Duration,
}

/// A burst of operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    /// When it starts, since the run started.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// How many operations.
    pub ops: u32,
    /// Spread evenly over this long. Default 0 (all at once).
    #[serde(default, with = "humantime_serde")]
    pub over: Duration,
}

/// How arrivals are spaced at a given rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Exponential gaps (a Poisson process): realistic, bursty.
    #[default]
    Poisson,
    /// Equal gaps.
    Uniform,
}

/// Faults to inject during the active phase. Each section is off unless present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosPlan {
    /// Swarm testing: each seed turns a random subset of the configured fault kinds on (at
    /// least one). Default `false`.
    pub swarm: bool,
    /// No generated fault before this. Default 0.
    #[serde(with = "humantime_serde")]
    pub start: Duration,
    /// Restarts at random intervals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<RestartChaos>,
    /// Kills without restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kill: Option<KillChaos>,
    /// Pauses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseChaos>,
    /// Power loss: every member crashes at once, then all restart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub power_loss: Option<PowerLossChaos>,
    /// Partitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<PartitionChaos>,
    /// Latency tiers: each member is put in a random tier for the active phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_tiers: Option<LatencyTiersChaos>,
    /// Loss, duplication and reordering on every link during the active phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkChaos>,
    /// Clock offsets and drift.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_skew: Option<ClockSkewChaos>,
    /// Nodes joining with fresh identities and leaving for good.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub churn: Option<ChurnChaos>,
    /// Explicit faults at explicit times, applied as written.
    #[serde(skip_serializing_if = "FaultSchedule::is_empty")]
    pub schedule: FaultSchedule,
}

/// Restart a random node every `[min_delay, max_delay]`, never the same node twice within
/// `target_cooldown`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartChaos {
    /// Shortest gap between restarts (required, > 0).
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    /// Longest gap between restarts (required, ≥ `min_delay`).
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// A node is not restarted again within this. Default 0.
    #[serde(default, with = "humantime_serde")]
    pub target_cooldown: Duration,
    /// How long a restarted node stays down first. Default 0 (restart at once).
    #[serde(default, with = "humantime_serde")]
    pub down: Duration,
    /// Roles that may be targeted. Default: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Which node each restart hits: `any` member (default) or the current `leader`.
    #[serde(default, skip_serializing_if = "Aim::is_any")]
    pub aim: Aim,
}

/// Which node a cadenced fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Aim {
    /// A member drawn from the chaos stream when the plan is compiled (before the run).
    #[default]
    Any,
    /// Whichever member leads when the fault fires, judged from the members' latest observed
    /// states ([`crate::Application::leader_epoch`]); skipped when no member is seen leading.
    Leader,
}

impl Aim {
    fn is_any(&self) -> bool {
        *self == Aim::Any
    }
}

/// Kill `count` random nodes for good, one every `[min_delay, max_delay]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillChaos {
    /// How many nodes to kill (required).
    pub count: u32,
    /// Shortest gap before each kill (required, > 0).
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    /// Longest gap before each kill (required).
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Roles that may be targeted. Default: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// Crash every member at once every `[min_delay, max_delay]` (a power loss), and restart them
/// all after `down`: whatever was not synced is gone everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerLossChaos {
    /// Shortest gap between power losses (required, > 0).
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    /// Longest gap between power losses (required).
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// How long the cluster stays down. Default 0 (restart at once).
    #[serde(default, with = "humantime_serde")]
    pub down: Duration,
}

/// Pause a random node every `[min_delay, max_delay]` for `[min_duration, max_duration]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseChaos {
    /// Shortest gap between pauses (required, > 0).
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    /// Longest gap between pauses (required).
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Shortest pause (required).
    #[serde(with = "humantime_serde")]
    pub min_duration: Duration,
    /// Longest pause (required).
    #[serde(with = "humantime_serde")]
    pub max_duration: Duration,
    /// Roles that may be targeted. Default: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Which node each pause hits: `any` member (default) or the current `leader`.
    #[serde(default, skip_serializing_if = "Aim::is_any")]
    pub aim: Aim,
}

/// Partition the members every `[min_delay, max_delay]` for `[min_duration, max_duration]`,
/// choosing a shape from `kinds` each time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionChaos {
    /// Shapes to choose from (required, not empty).
    pub kinds: Vec<PartitionKind>,
    /// Groups for [`PartitionKind::Groups`], by node name. Default none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Vec<String>>,
    /// Shortest gap between partitions (required, > 0).
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    /// Longest gap between partitions (required).
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Shortest partition (required).
    #[serde(with = "humantime_serde")]
    pub min_duration: Duration,
    /// Longest partition (required).
    #[serde(with = "humantime_serde")]
    pub max_duration: Duration,
    /// Where the workloads' client nodes are during a partition. Default
    /// [`ClientSide::Connected`] (clients reach every member).
    #[serde(default, skip_serializing_if = "ClientSide::is_connected")]
    pub clients: ClientSide,
}

/// Where client nodes stand when a partition splits the members into groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientSide {
    /// Clients reach every member (the default): only the members are split.
    #[default]
    Connected,
    /// Each workload's client node joins one random group of each partition, so it reaches
    /// only that side (drawn from its own stream: the partitions themselves do not change).
    /// Shapes made of one-way cuts (bridge, majority ring, one way) leave clients connected.
    Random,
}

impl ClientSide {
    fn is_connected(&self) -> bool {
        *self == ClientSide::Connected
    }
}

/// A partition shape (Jepsen's nemesis vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionKind {
    /// Two random halves.
    RandomHalves,
    /// A random minority cut off from the rest.
    Minority,
    /// Every node sees a majority, but no two nodes see the same one (a ring of majorities).
    MajorityRing,
    /// Two halves joined only through one bridge node.
    Bridge,
    /// One random node's outgoing messages are dropped; it still hears everyone.
    OneWay,
    /// The explicit `groups`.
    Groups,
    /// Whichever member leads when the partition starts, cut off from the other members
    /// (clients still reach it, as they reach a deposed leader in real life). Needs an
    /// application that elects leaders; skipped when no member is seen leading.
    Leader,
}

impl PartitionKind {
    /// Every kind, in declaration order.
    pub const ALL: [PartitionKind; 7] = [
        PartitionKind::RandomHalves,
        PartitionKind::Minority,
        PartitionKind::MajorityRing,
        PartitionKind::Bridge,
        PartitionKind::OneWay,
        PartitionKind::Groups,
        PartitionKind::Leader,
    ];
}

/// Latency tiers for the active phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyTiersChaos {
    /// One latency per tier (required, not empty), e.g. 10 ms, 100 ms, 300 ms.
    #[serde(with = "humantime_serde_vec")]
    pub tiers: Vec<Duration>,
}

/// Degraded links for the active phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LinkChaos {
    /// Loss probability. Default 0.
    pub loss: f64,
    /// Duplication probability. Default 0.
    pub duplicate: f64,
    /// Reordering probability. Default 0.
    pub reorder: f64,
}

/// Clock offsets and drift for some nodes, set when chaos starts (and changed again on a
/// cadence if `min_delay`/`max_delay` are set).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSkewChaos {
    /// Largest offset either way (required).
    #[serde(with = "humantime_serde")]
    pub max_offset: Duration,
    /// Largest drift either way, in parts per million. Default 0.
    #[serde(default)]
    pub max_drift_ppm: u32,
    /// How many nodes get a skew. Default: all members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<u32>,
    /// With `max_delay`: every `[min_delay, max_delay]` one random member's clock jumps to a
    /// new random offset and drift (clocks that step, as NTP makes them do). Default: skews
    /// are set once, when chaos starts.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "humantime_serde")]
    pub min_delay: Option<Duration>,
    /// See `min_delay`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "humantime_serde")]
    pub max_delay: Option<Duration>,
    /// Only members of these roles get skewed clocks. Default: every role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// Nodes join (fresh identities) and leave (for good) every `[min_delay, max_delay]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChurnChaos {
    /// Shortest gap between changes (required, > 0).
    #[serde(with = "humantime_serde")]
    pub min_delay: Duration,
    /// Longest gap between changes (required).
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Most nodes that may join. Default 0.
    #[serde(default)]
    pub joins: u32,
    /// Most nodes that may leave. Default 0.
    #[serde(default)]
    pub leaves: u32,
    /// The role of joining nodes and the role leavers are taken from (required).
    pub role: String,
}

/// An expectation by name, with its parameters inline (`[[expect]] name = "converge"
/// within = "5s"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectationPlan {
    /// A registered expectation (the harness's built-ins or the app's).
    pub name: String,
    /// Its parameters.
    #[serde(flatten)]
    pub params: toml::Table,
}

/// Seeds as TOML integers when they fit, hex strings when they do not.
mod seed_serde {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            Some(n) if i64::try_from(n).is_ok() => s.serialize_i64(n as i64),
            Some(n) => s.serialize_str(&format!("{n:#x}")),
            None => s.serialize_none(),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Int(i) => {
                u64::try_from(i).map(Some).map_err(|_| serde::de::Error::custom(format!("seed {i} is negative")))
            }
            Raw::Text(t) => gauntlet_sim::seed::parse_seed("run.seed", &t).map(Some).map_err(serde::de::Error::custom),
        }
    }
}

/// `humantime_serde` for a list of durations.
mod humantime_serde_vec {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(v: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(|d| humantime_serde::re::humantime::format_duration(*d).to_string())
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| humantime_serde::re::humantime::parse_duration(s).map_err(serde::de::Error::custom))
            .collect()
    }
}
