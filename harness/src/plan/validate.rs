//! Plan validation: every problem found is listed with its path and the bad value, and names
//! that do not exist are listed next to the ones that do. Validation never panics.

use super::*;
use std::collections::BTreeSet;
use std::fmt;

/// Longest active phase or cooldown a plan may ask for (simulated time).
pub const MAX_PHASE: Duration = Duration::from_secs(24 * 3600);
/// Most nodes a topology may have.
pub const MAX_NODES: u32 = 512;
/// Highest rate a workload may offer, in operations per second.
pub const MAX_RATE: f64 = 100_000.0;
/// Most users a workload may spread operations over.
pub const MAX_USERS: u32 = 100_000;
/// Lowest rate a workload may offer (one operation every ~17 minutes).
pub const MIN_RATE: f64 = 0.001;
/// Shortest cadence delay and observation interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// Most operations one workload may be expected to offer in a run (rate × time + bursts).
pub const MAX_OPS: f64 = 2_000_000.0;

/// One thing wrong with a plan: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path into the plan (`chaos.restart`, `workloads[1].mix.delete`).
    pub path: String,
    /// What is wrong, with the bad value.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a plan cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The text is not a plan (TOML syntax, a missing field, a wrong type, an unknown key).
    #[error("{source_name}: {message}")]
    Parse {
        /// File name, or `<string>`.
        source_name: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The plan parsed but does not make sense; every problem is listed.
    #[error("plan {plan:?} has {} problem{}:\n{}", problems.len(), if problems.len() == 1 { "" } else { "s" }, list(problems))]
    Invalid {
        /// The plan's name.
        plan: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")
}

impl PlanError {
    /// The problems (one pseudo-problem at path `<parse>` for a parse error).
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            PlanError::Parse { message, .. } => vec![Problem { path: "<parse>".into(), message: message.clone() }],
            PlanError::Invalid { problems, .. } => problems.clone(),
        }
    }
}

/// Problems found in a table of options or parameters: `(key, message)` pairs.
pub type KeyProblems = Vec<(String, String)>;
/// Checks `app.options`.
pub type OptionsCheck = Box<dyn Fn(&toml::Table) -> KeyProblems>;
/// Checks an expectation's parameters (with the whole plan for context).
pub type ParamsCheck = Box<dyn Fn(&toml::Table, &Plan) -> KeyProblems>;

/// What an application offers, for validating plans against it. Built by
/// [`Scenario`](crate::Scenario) from an [`Application`](crate::Application) and the expectation
/// registry.
pub struct Catalog {
    /// The application's name.
    pub app: String,
    /// Roles its nodes may have.
    pub roles: Vec<String>,
    /// Operations its workloads may issue.
    pub operations: Vec<String>,
    /// Whether the application elects leaders (chaos may then be aimed at the leader).
    pub elects_leaders: bool,
    /// Checks `app.options`; returns `(option, message)` pairs.
    pub check_options: OptionsCheck,
    /// Registered expectations: name → checker of its parameters (returns `(param, message)`).
    pub expectations: BTreeMap<String, ParamsCheck>,
}

struct Checker<'a> {
    problems: Vec<Problem>,
    plan: &'a Plan,
    catalog: Option<&'a Catalog>,
    /// Member names (empty when the topology is over its limit: node checks are then skipped).
    members: Vec<String>,
    /// Members plus client nodes (`client-<workload>`, `observer`), which faults may name.
    nameable: Vec<String>,
    /// Whether the node count is within [`MAX_NODES`].
    sized: bool,
}

impl Checker<'_> {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { path: path.into(), message: message.into() });
    }

    fn positive(&mut self, path: &str, name: &str, d: Duration) {
        if d.is_zero() {
            self.problem(path, format!("{name} must be more than 0"));
        }
        self.bounded(path, name, d);
    }

    fn bounded(&mut self, path: &str, name: &str, d: Duration) {
        if d > MAX_PHASE {
            self.problem(path, format!("{name} {} is longer than the limit of {}", fmt_d(d), fmt_d(MAX_PHASE)));
        }
    }

    fn interval(&mut self, path: &str, name: &str, d: Duration) {
        if d < MIN_INTERVAL {
            self.problem(path, format!("{name} {} is shorter than the limit of {}", fmt_d(d), fmt_d(MIN_INTERVAL)));
        }
        self.bounded(path, name, d);
    }

    fn range(&mut self, path: &str, (lo_name, lo): (&str, Duration), (hi_name, hi): (&str, Duration)) {
        if lo > hi {
            self.problem(path, format!("{lo_name} {} > {hi_name} {}", fmt_d(lo), fmt_d(hi)));
        }
    }

    fn probability(&mut self, path: &str, p: f64) {
        if !(0.0..=1.0).contains(&p) {
            self.problem(path, format!("{p} is not a probability in [0, 1]"));
        }
    }

    fn roles(&mut self, path: &str, roles: &[String]) {
        for r in roles {
            if !self.plan.topology.nodes.contains_key(r) {
                let known = self.plan.topology.nodes.keys().cloned().collect::<Vec<_>>().join(", ");
                self.problem(path, format!("no node has role {r:?}; the topology has: {known}"));
            }
        }
    }

    /// Checks that chaos aimed at the leader is aimed at an application that elects one, and
    /// is not also restricted to roles (the leader is whoever leads, whatever its role).
    fn aim(&mut self, path: &str, aim: crate::plan::Aim, roles: &[String]) {
        if aim != crate::plan::Aim::Leader {
            return;
        }
        if !roles.is_empty() {
            self.problem(format!("{path}.aim"), "aim = \"leader\" cannot be combined with roles");
        }
        if let Some(cat) = self.catalog {
            if !cat.elects_leaders {
                let path = if path.ends_with(".kinds") { path.to_owned() } else { format!("{path}.aim") };
                self.problem(
                    path,
                    format!("chaos aimed at the leader, but application {:?} does not elect leaders", cat.app),
                );
            }
        }
    }

    /// Checks that `name` is a node a fault may name (a member or a client node).
    fn node(&mut self, path: &str, name: &str) {
        if self.sized && !self.nameable.iter().any(|n| n == name) {
            self.problem(path, format!("unknown node {name:?}; nodes are: {}", self.nameable.join(", ")));
        }
    }

    /// Member nodes the `roles` selector covers (all when empty).
    fn targets(&self, roles: &[String]) -> u64 {
        self.plan
            .topology
            .nodes
            .iter()
            .filter(|(r, _)| roles.is_empty() || roles.contains(r))
            .map(|(_, &n)| u64::from(n))
            .sum()
    }
}

/// A duration written the way plans write them (`"1m 30s"`).
pub fn fmt_duration(d: Duration) -> String {
    fmt_d(d)
}

pub(crate) fn fmt_d(d: Duration) -> String {
    humantime_serde::re::humantime::format_duration(d).to_string()
}

impl Plan {
    /// Checks everything that does not depend on the application. See [`Plan::validate`].
    pub fn check(&self) -> Result<(), PlanError> {
        self.result(None)
    }

    /// Checks the plan against what `catalog`'s application offers: every problem is listed,
    /// each with its path and the bad value.
    pub fn validate(&self, catalog: &Catalog) -> Result<(), PlanError> {
        self.result(Some(catalog))
    }

    fn result(&self, catalog: Option<&Catalog>) -> Result<(), PlanError> {
        let problems = self.problems(catalog);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PlanError::Invalid { plan: self.name.clone(), problems })
        }
    }

    /// Every problem with the plan (empty when it is valid).
    pub fn problems(&self, catalog: Option<&Catalog>) -> Vec<Problem> {
        let total: u64 = self.topology.nodes.values().map(|&n| u64::from(n)).sum();
        let sized = total <= u64::from(MAX_NODES);
        let members = if sized { self.topology.node_names() } else { Vec::new() };
        let mut nameable = members.clone();
        nameable.extend(self.workloads.iter().map(|w| format!("client-{}", w.name)));
        nameable.push("observer".into());
        let mut c = Checker { problems: Vec::new(), plan: self, catalog, members, nameable, sized };
        if self.name.trim().is_empty() {
            c.problem("name", "must not be empty");
        }
        check_app(&mut c);
        check_topology(&mut c);
        check_run(&mut c);
        check_workloads(&mut c);
        check_chaos(&mut c);
        check_expectations(&mut c);
        check_script(&mut c);
        c.problems
    }
}

fn check_app(c: &mut Checker<'_>) {
    let Some(cat) = c.catalog else { return };
    if c.plan.app.name != cat.app {
        c.problem("app.name", format!("unknown application {:?}; this runner has: {}", c.plan.app.name, cat.app));
        return;
    }
    for (option, message) in (cat.check_options)(&c.plan.app.options) {
        c.problem(format!("app.options.{option}"), message);
    }
}

fn check_topology(c: &mut Checker<'_>) {
    let t = &c.plan.topology;
    if t.nodes.is_empty() {
        c.problem("topology.nodes", "no nodes; give at least one role a count");
    }
    let mut total: u64 = 0;
    for (role, &n) in &t.nodes {
        total += u64::from(n);
        if n == 0 {
            c.problem(format!("topology.nodes.{role}"), "count 0; give at least 1 or remove the role");
        }
        if let Some(cat) = c.catalog {
            if !cat.roles.contains(role) {
                c.problem(
                    format!("topology.nodes.{role}"),
                    format!("unknown role {role:?}; {} has roles: {}", cat.app, cat.roles.join(", ")),
                );
            }
        }
    }
    if total > u64::from(MAX_NODES) {
        c.problem("topology.nodes", format!("{total} nodes is more than the limit of {MAX_NODES}"));
    }
    if let Err(problems) = t.link.validate("topology.link") {
        for p in problems {
            let (path, msg) = p.split_once(": ").unwrap_or(("topology.link", &p));
            c.problem(path.to_owned(), msg.to_owned());
        }
    }
    if t.fsync > Duration::from_secs(10) {
        c.problem("topology.fsync", format!("{} is longer than the limit of 10s", fmt_d(t.fsync)));
    }
    let names = c.members.clone();
    match &t.network {
        Network::Mesh => {}
        Network::Star { hub } => {
            if let Some(hub) = hub {
                if c.sized && !names.contains(hub) {
                    c.problem(
                        "topology.network.hub",
                        format!("unknown node {hub:?}; members are: {}", names.join(", ")),
                    );
                }
            }
        }
        Network::Tiers { tiers } => {
            if tiers.is_empty() {
                c.problem("topology.network.tiers", "no tiers; give at least one or use shape = \"mesh\"");
            }
            let mut seen: BTreeMap<String, usize> = BTreeMap::new();
            for (i, tier) in tiers.iter().enumerate() {
                c.bounded(&format!("topology.network.tiers[{i}].latency"), "latency", tier.latency);
                let path = format!("topology.network.tiers[{i}].members");
                if tier.members.is_empty() {
                    c.problem(&path, "empty tier");
                }
                for m in &tier.members {
                    let covered: Vec<String> = if t.nodes.contains_key(m) {
                        t.nodes().into_iter().filter(|(_, r)| r == m).map(|(n, _)| n).collect()
                    } else if names.contains(m) || !c.sized {
                        vec![m.clone()]
                    } else {
                        c.problem(&path, format!("{m:?} is neither a node nor a role"));
                        continue;
                    };
                    for n in covered {
                        if let Some(prev) = seen.insert(n.clone(), i) {
                            c.problem(&path, format!("node {n:?} is in tiers {prev} and {i}"));
                        }
                    }
                }
            }
        }
    }
}

fn check_run(c: &mut Checker<'_>) {
    let r = &c.plan.run;
    c.positive("run.duration", "duration", r.duration);
    c.bounded("run.cooldown", "cooldown", r.cooldown);
    c.interval("run.observe_every", "observe_every", r.observe_every);
    if !c.plan.expect.is_empty() && r.cooldown < r.observe_every * 2 {
        c.problem(
            "run.cooldown",
            format!(
                "{} leaves no time for the liveness phase; give at least two observations ({})",
                fmt_d(r.cooldown),
                fmt_d(r.observe_every * 2)
            ),
        );
    }
}

fn check_workloads(c: &mut Checker<'_>) {
    let mut names = BTreeSet::new();
    let end = c.plan.run.duration;
    for (i, w) in c.plan.workloads.iter().enumerate() {
        let at = format!("workloads[{i}]");
        if w.name.trim().is_empty() {
            c.problem(format!("{at}.name"), "must not be empty");
        } else if !names.insert(w.name.clone()) {
            c.problem(format!("{at}.name"), format!("duplicate workload {:?}", w.name));
        }
        if w.users == 0 || w.users > MAX_USERS {
            c.problem(format!("{at}.users"), format!("{} is not in 1..={MAX_USERS}", w.users));
        }
        if w.max_in_flight == 0 {
            c.problem(format!("{at}.max_in_flight"), "must be at least 1");
        }
        c.positive(&format!("{at}.op_timeout"), "op_timeout", w.op_timeout);
        if !w.think.is_zero() && !w.closed_loop {
            c.problem(
                format!("{at}.think"),
                "a think time needs closed_loop = true (it is a user's pause between its own operations)",
            );
        }
        let rate = |c: &mut Checker<'_>, path: String, r: f64| {
            if !r.is_finite() || !(MIN_RATE..=MAX_RATE).contains(&r) {
                c.problem(path, format!("{r} is not a rate in [{MIN_RATE}, {MAX_RATE}] operations per second"));
            }
        };
        if let Some(r) = w.rate {
            rate(c, format!("{at}.rate"), r);
        }
        for (j, s) in w.steps.iter().enumerate() {
            rate(c, format!("{at}.steps[{j}].rate"), s.rate);
            c.positive(&format!("{at}.steps[{j}].duration"), "duration", s.duration);
        }
        for (j, b) in w.bursts.iter().enumerate() {
            if b.at >= end {
                c.problem(
                    format!("{at}.bursts[{j}].at"),
                    format!("{} is not before the end of the active phase ({})", fmt_d(b.at), fmt_d(end)),
                );
            } else if b.at.saturating_add(b.over) > end {
                c.problem(
                    format!("{at}.bursts[{j}].over"),
                    format!(
                        "the burst runs to {}, past the end of the active phase ({})",
                        fmt_d(b.at + b.over),
                        fmt_d(end)
                    ),
                );
            } else if b.at < w.start {
                c.problem(
                    format!("{at}.bursts[{j}].at"),
                    format!("{} is before the workload starts ({})", fmt_d(b.at), fmt_d(w.start)),
                );
            }
            if b.ops == 0 {
                c.problem(format!("{at}.bursts[{j}].ops"), "must be at least 1");
            }
        }
        let horizon = end + if c.plan.run.workloads_in_cooldown { c.plan.run.cooldown } else { Duration::ZERO };
        let expected = w.expected_ops(horizon);
        if expected > MAX_OPS {
            c.problem(
                &at,
                format!("offers about {expected:.0} operations, more than the limit of {MAX_OPS:.0} per run"),
            );
        }
        if w.rate.is_none() && w.steps.is_empty() && w.bursts.is_empty() {
            c.problem(&at, format!("workload {:?} offers no load; set rate, steps or bursts", w.name));
        }
        if w.start >= end {
            c.problem(
                format!("{at}.start"),
                format!("{} is not before the end of the active phase ({})", fmt_d(w.start), fmt_d(end)),
            );
        }
        if !w.mix.is_empty() && w.mix.values().all(|&x| x == 0) {
            c.problem(format!("{at}.mix"), "every weight is 0");
        }
        if let Some(cat) = c.catalog {
            for op in w.mix.keys() {
                if !cat.operations.contains(op) {
                    c.problem(
                        format!("{at}.mix.{op}"),
                        format!("unknown operation; {} supports: {}", cat.app, cat.operations.join(", ")),
                    );
                }
            }
        }
    }
}

fn check_cadence(c: &mut Checker<'_>, path: &str, min: Duration, max: Duration) {
    if min.is_zero() {
        c.problem(path, "min_delay must be more than 0");
    } else {
        c.interval(path, "min_delay", min);
    }
    c.bounded(path, "max_delay", max);
    c.range(path, ("min_delay", min), ("max_delay", max));
}

/// Most instructions a script may be allowed (about a minute of pure Lua).
pub const MAX_SCRIPT_INSTRUCTIONS: u64 = 100_000_000_000;
/// Most memory a script's Lua state may be allowed.
pub const MAX_SCRIPT_MEMORY: u64 = 4 << 30;

fn check_script(c: &mut Checker<'_>) {
    let Some(s) = &c.plan.script else { return };
    if s.source.trim().is_empty() {
        let why = match &s.file {
            Some(f) => format!("file {} was not read (load the plan with Plan::load)", f.display()),
            None => "empty; give the Lua source (source = ...) or a file (file = \"x.lua\")".to_owned(),
        };
        c.problem("script.source", why);
    } else if !cfg!(feature = "script") {
        c.problem("script", crate::script::NEEDS_FEATURE);
    } else if let Some(e) = crate::script::syntax_error(&s.name, &s.source) {
        c.problem("script.source", format!("the script does not compile: {e}"));
    }
    if c.plan.chaos != ChaosPlan::default() {
        c.problem("chaos", "a scripted plan's faults come from its script; remove [chaos] (or the script)");
    }
    if !(1_000..=MAX_SCRIPT_INSTRUCTIONS).contains(&s.max_instructions) {
        c.problem(
            "script.max_instructions",
            format!("{} is outside 1000..={MAX_SCRIPT_INSTRUCTIONS}", s.max_instructions),
        );
    }
    if !(1 << 20..=MAX_SCRIPT_MEMORY).contains(&s.max_memory) {
        c.problem("script.max_memory", format!("{} bytes is outside 1 MiB..=4 GiB", s.max_memory));
    }
    if s.time_limit.is_zero() || s.time_limit > MAX_PHASE {
        c.problem("script.time_limit", format!("{} is not between 0 and {}", fmt_d(s.time_limit), fmt_d(MAX_PHASE)));
    }
    if c.plan.workloads.iter().any(|w| w.name == "script") {
        c.problem("workloads", "a workload named \"script\" would share its name with the script's operations");
    }
}

fn check_chaos(c: &mut Checker<'_>) {
    let ch = &c.plan.chaos;
    let end = c.plan.run.duration;
    c.bounded("chaos.start", "start", ch.start);
    if ch.start >= end && !ch.kinds().is_empty() {
        c.problem(
            "chaos.start",
            format!("{} is not before the end of the active phase ({})", fmt_d(ch.start), fmt_d(end)),
        );
    }
    if let Some(r) = &ch.restart {
        check_cadence(c, "chaos.restart", r.min_delay, r.max_delay);
        c.bounded("chaos.restart", "target_cooldown", r.target_cooldown);
        c.bounded("chaos.restart", "down", r.down);
        c.roles("chaos.restart.roles", &r.roles);
        c.aim("chaos.restart", r.aim, &r.roles);
    }
    if let Some(k) = &ch.kill {
        check_cadence(c, "chaos.kill", k.min_delay, k.max_delay);
        c.roles("chaos.kill.roles", &k.roles);
        let targets = c.targets(&k.roles);
        let leaves = ch.churn.as_ref().map_or(0, |x| u64::from(x.leaves));
        let joins = ch.churn.as_ref().map_or(0, |x| u64::from(x.joins));
        if k.count == 0 {
            c.problem("chaos.kill.count", "must be at least 1");
        } else if u64::from(k.count) >= targets {
            c.problem("chaos.kill.count", format!("{} would kill every targeted node ({targets} in all)", k.count));
        } else if u64::from(k.count) + leaves >= c.targets(&[]) + joins {
            c.problem(
                "chaos.kill.count",
                format!("{} kills and {leaves} churn departures could remove every member", k.count),
            );
        }
    }
    if let Some(p) = &ch.pause {
        check_cadence(c, "chaos.pause", p.min_delay, p.max_delay);
        c.positive("chaos.pause", "min_duration", p.min_duration);
        c.bounded("chaos.pause", "max_duration", p.max_duration);
        c.range("chaos.pause", ("min_duration", p.min_duration), ("max_duration", p.max_duration));
        c.roles("chaos.pause.roles", &p.roles);
        c.aim("chaos.pause", p.aim, &p.roles);
    }
    if let Some(p) = &ch.power_loss {
        check_cadence(c, "chaos.power_loss", p.min_delay, p.max_delay);
        c.bounded("chaos.power_loss", "down", p.down);
    }
    if let Some(p) = &ch.partition {
        check_cadence(c, "chaos.partition", p.min_delay, p.max_delay);
        c.positive("chaos.partition", "min_duration", p.min_duration);
        c.bounded("chaos.partition", "max_duration", p.max_duration);
        c.range("chaos.partition", ("min_duration", p.min_duration), ("max_duration", p.max_duration));
        let members = c.targets(&[]);
        for (kind, least) in [(PartitionKind::MajorityRing, 4), (PartitionKind::Bridge, 3)] {
            if p.kinds.contains(&kind) && members < least {
                c.problem(
                    "chaos.partition.kinds",
                    format!("{kind:?} needs at least {least} members to cut anything; the topology has {members}"),
                );
            }
        }
        if p.kinds.is_empty() {
            let all: Vec<String> = PartitionKind::ALL.iter().map(|k| format!("{k:?}")).collect();
            c.problem("chaos.partition.kinds", format!("empty; choose from {}", all.join(", ")));
        }
        if p.kinds.contains(&PartitionKind::Leader) {
            c.aim("chaos.partition.kinds", crate::plan::Aim::Leader, &[]);
        }
        if p.kinds.contains(&PartitionKind::Groups) && p.groups.is_empty() {
            c.problem("chaos.partition.groups", "kind \"groups\" needs at least one group");
        }
        let mut seen = BTreeSet::new();
        for (i, g) in p.groups.iter().enumerate() {
            let path = format!("chaos.partition.groups[{i}]");
            if g.is_empty() {
                c.problem(&path, "empty group");
            }
            for n in g {
                c.node(&path, n);
                if !seen.insert(n.clone()) {
                    c.problem(&path, format!("node {n:?} is in more than one group"));
                }
            }
        }
        if c.targets(&[]) < 2 {
            c.problem("chaos.partition", "a partition needs at least 2 nodes");
        }
    }
    if let Some(t) = &ch.latency_tiers {
        for (i, l) in t.tiers.iter().enumerate() {
            c.bounded(&format!("chaos.latency_tiers.tiers[{i}]"), "latency", *l);
        }
        if t.tiers.is_empty() {
            c.problem("chaos.latency_tiers.tiers", "no tiers; give latencies such as [\"10ms\", \"100ms\", \"300ms\"]");
        }
    }
    if let Some(l) = &ch.link {
        c.probability("chaos.link.loss", l.loss);
        c.probability("chaos.link.duplicate", l.duplicate);
        c.probability("chaos.link.reorder", l.reorder);
    }
    if let Some(s) = &ch.clock_skew {
        c.roles("chaos.clock_skew.roles", &s.roles);
        let members = c.targets(&[]);
        if let Some(n) = s.nodes {
            if n == 0 || u64::from(n) > members {
                c.problem("chaos.clock_skew.nodes", format!("{n} is not in 1..={members} (the member count)"));
            }
        }
        if s.max_offset > MAX_PHASE {
            c.problem(
                "chaos.clock_skew.max_offset",
                format!("{} is longer than {}", fmt_d(s.max_offset), fmt_d(MAX_PHASE)),
            );
        }
        match (s.min_delay, s.max_delay) {
            (Some(lo), Some(hi)) => check_cadence(c, "chaos.clock_skew", lo, hi),
            (None, None) => {}
            _ => c.problem("chaos.clock_skew", "set both min_delay and max_delay, or neither"),
        }
        if s.max_drift_ppm > 500_000 {
            c.problem("chaos.clock_skew.max_drift_ppm", format!("{} is more than 500000 (50%)", s.max_drift_ppm));
        }
    }
    if let Some(ch) = &ch.churn {
        check_cadence(c, "chaos.churn", ch.min_delay, ch.max_delay);
        c.roles("chaos.churn.role", std::slice::from_ref(&ch.role));
        if ch.joins == 0 && ch.leaves == 0 {
            c.problem("chaos.churn", "joins and leaves are both 0; nothing would change");
        }
        if ch.joins > MAX_NODES {
            c.problem("chaos.churn.joins", format!("{} is more than the node limit of {MAX_NODES}", ch.joins));
        }
        if u64::from(ch.leaves) >= c.targets(std::slice::from_ref(&ch.role)) + u64::from(ch.joins) {
            c.problem("chaos.churn.leaves", format!("{} could remove every {:?} node", ch.leaves, ch.role));
        }
    }
    for (i, e) in ch.schedule.entries.iter().enumerate() {
        let path = format!("chaos.schedule[{i}]");
        if e.at >= end {
            c.problem(
                format!("{path}.at"),
                format!("{} is not before the end of the active phase ({})", fmt_d(e.at), fmt_d(end)),
            );
        }
        if let Err(msg) = e.fault.validate() {
            c.problem(&path, msg);
        }
        for n in e.fault.nodes() {
            if n != crate::plan::LEADER {
                c.node(&path, n);
            } else if c.catalog.is_some_and(|cat| !cat.elects_leaders) {
                c.problem(&path, format!("{n} names the leader, but this application does not elect leaders"));
            }
        }
        if let gauntlet_sim::Fault::Partition { groups } = &e.fault {
            let names_leader = groups.iter().flatten().any(|n| n == crate::plan::LEADER);
            if names_leader && *groups != [[crate::plan::LEADER]] {
                c.problem(
                    &path,
                    format!("{} must be a partition's only group, alone: groups = [[\"{0}\"]]", crate::plan::LEADER),
                );
            }
        }
    }
    if ch.swarm && ch.kinds().len() < 2 {
        c.problem("chaos.swarm", "nothing to randomise: configure at least two fault kinds");
    }
}

fn check_expectations(c: &mut Checker<'_>) {
    let Some(cat) = c.catalog else { return };
    for (i, e) in c.plan.expect.iter().enumerate() {
        match cat.expectations.get(&e.name) {
            None => {
                let known = cat.expectations.keys().cloned().collect::<Vec<_>>().join(", ");
                c.problem(format!("expect[{i}].name"), format!("unknown expectation {:?}; known: {known}", e.name));
            }
            Some(check) => {
                for (param, message) in check(&e.params, c.plan) {
                    let path = if param.is_empty() { format!("expect[{i}]") } else { format!("expect[{i}].{param}") };
                    c.problem(path, message);
                }
            }
        }
    }
}

impl ChaosPlan {
    /// The generated fault kinds this plan configures, by name (the explicit schedule is not
    /// one: it always applies).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        let on = [
            ("restart", self.restart.is_some()),
            ("kill", self.kill.is_some()),
            ("pause", self.pause.is_some()),
            ("power_loss", self.power_loss.is_some()),
            ("partition", self.partition.is_some()),
            ("latency_tiers", self.latency_tiers.is_some()),
            ("link", self.link.is_some()),
            ("clock_skew", self.clock_skew.is_some()),
            ("churn", self.churn.is_some()),
        ];
        for (name, present) in on {
            if present {
                k.push(name);
            }
        }
        k
    }
}
