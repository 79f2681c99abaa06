//! Turns a plan's chaos section into a concrete, seeded timeline of faults and membership
//! changes. Each fault kind draws from its own stream (`chaos/<kind>`), so turning one kind off
//! does not change what the others do; targets are chosen in time order against the
//! membership as it will be (killed and departed nodes are never chosen again).

use crate::plan::{Aim, ChaosPlan, ClientSide, Network, PartitionKind, Plan};
use gauntlet_sim::seed::{stream, Purpose};
use gauntlet_sim::{Fault, FaultSchedule, Latency, LinkConfig};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::time::Duration;

/// A membership change the runner performs itself (a join needs a node program).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChurnEvent {
    /// A node with a fresh identity joins.
    Join {
        /// Its new, never used name.
        name: String,
        /// Its role.
        role: String,
    },
    /// A node leaves for good (it is crashed and dropped from the membership).
    Leave {
        /// Its name.
        name: String,
    },
}

/// The seeded chaos of one run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Timeline {
    /// Fault kinds on in this run.
    pub kinds: Vec<&'static str>,
    /// Faults to apply, in time order.
    pub faults: FaultSchedule,
    /// Joins and leaves, in time order.
    pub churn: Vec<(Duration, ChurnEvent)>,
    /// Nodes killed for good by `chaos.kill`, with when.
    pub killed: Vec<(Duration, String)>,
    /// Faults aimed at whichever member leads when they fire (`aim = "leader"`), in time
    /// order: the runner picks the target then.
    pub aimed: Vec<(Duration, AimedFault)>,
}

/// A fault whose target is chosen when it fires ([`crate::plan::Aim::Leader`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AimedFault {
    /// Crash the leader, and restart it after `down` (at once when zero).
    Restart {
        /// How long it stays down.
        down: Duration,
    },
    /// Pause the leader for `duration`.
    Pause {
        /// How long it stays paused.
        duration: Duration,
    },
    /// Cut the leader off from the other members (the partition's heal is in the schedule).
    Isolate,
}

/// Links set when the run starts (and restored when the cooldown begins): the network shape.
pub fn topology_links(plan: &Plan) -> Vec<Fault> {
    let t = &plan.topology;
    let nodes = t.nodes();
    let mut out = Vec::new();
    match &t.network {
        Network::Mesh => {}
        Network::Star { hub } => {
            let hub = hub.clone().unwrap_or_else(|| nodes[0].0.clone());
            let (lo, hi) = t.link.latency.bounds();
            let far = t.link.clone().latency(Latency::uniform(lo * 2, hi * 2));
            for (a, _) in nodes.iter().filter(|(n, _)| *n != hub) {
                for (b, _) in nodes.iter().filter(|(n, _)| *n != hub && n != a) {
                    out.push(set_link(a, b, far.clone()));
                }
            }
        }
        Network::Tiers { tiers } => {
            let mut tier_of: BTreeMap<String, Duration> = BTreeMap::new();
            for tier in tiers {
                for m in &tier.members {
                    for (n, r) in &nodes {
                        if n == m || r == m {
                            tier_of.insert(n.clone(), tier.latency);
                        }
                    }
                }
            }
            for (a, _) in &nodes {
                for (b, _) in nodes.iter().filter(|(b, _)| b != a) {
                    let lat = tier_of.get(a).max(tier_of.get(b));
                    if let Some(&lat) = lat {
                        out.push(set_link(a, b, t.link.clone().latency(Latency::fixed(lat))));
                    }
                }
            }
        }
    }
    out
}

fn set_link(a: &str, b: &str, link: LinkConfig) -> Fault {
    Fault::SetLink { from: Some(a.to_owned()), to: Some(b.to_owned()), link }
}

/// Which configured kinds a run turns on: all of them, or with `swarm` a random non-empty
/// subset drawn from `chaos_seed`.
pub fn enabled_kinds(chaos: &ChaosPlan, chaos_seed: u64) -> Vec<&'static str> {
    let all = chaos.kinds();
    if !chaos.swarm || all.is_empty() {
        return all;
    }
    let mut rng = stream(chaos_seed, Purpose::Chaos, "swarm", 0);
    let mut on: Vec<&'static str> = all.iter().copied().filter(|_| rng.random_bool(0.5)).collect();
    if on.is_empty() {
        on.push(*all.choose(&mut rng).expect("not empty"));
    }
    on
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Trigger {
    Skew,
    PowerLoss,
    Restart,
    Kill,
    Pause,
    Partition,
    Churn,
}

struct Member {
    name: String,
    role: String,
    busy_until: Duration,
    last_restart: Option<Duration>,
}

/// Compiles the plan's chaos for `chaos_seed`. The plan must be valid.
pub fn compile(plan: &Plan, chaos_seed: u64) -> Timeline {
    let chaos = &plan.chaos;
    let kinds = enabled_kinds(chaos, chaos_seed);
    let on = |k: &str| kinds.contains(&k);
    let end = plan.run.duration;
    let start = chaos.start;
    let rng = |kind: &str| stream(chaos_seed, Purpose::Chaos, kind, 0);
    let mut faults: Vec<(Duration, Fault)> = Vec::new();
    let mut churn = Vec::new();
    let mut killed = Vec::new();
    let mut aimed = Vec::new();

    // Link degradation and latency tiers for the whole active phase.
    let members0 = plan.topology.nodes();
    if on("latency_tiers") || on("link") {
        faults.extend(
            active_links(plan, &mut rng("latency_tiers"), on("latency_tiers"), on("link"))
                .into_iter()
                .map(|f| (start, f)),
        );
    }
    if let (true, Some(s)) = (on("clock_skew"), &chaos.clock_skew) {
        let mut r = rng("clock_skew");
        let mut names: Vec<&String> =
            members0.iter().filter(|(_, role)| s.roles.is_empty() || s.roles.contains(role)).map(|(n, _)| n).collect();
        names.shuffle(&mut r);
        let max_ms = s.max_offset.as_millis() as i64;
        for n in names.into_iter().take(s.nodes.unwrap_or(u32::MAX) as usize) {
            let offset_ms = r.random_range(-max_ms..=max_ms);
            let d = i64::from(s.max_drift_ppm);
            let drift_ppm = r.random_range(-d..=d);
            faults.push((start, Fault::ClockSkew { node: n.clone(), offset_ms, drift_ppm }));
        }
    }

    // Cadenced kinds: trigger times from each kind's own stream, then targets in time order.
    let mut streams: BTreeMap<Trigger, ChaCha8Rng> = BTreeMap::new();
    let mut triggers: Vec<(Duration, Trigger)> = Vec::new();
    let mut cadence = |t: Trigger, name: &str, min: Duration, max: Duration, limit: Option<u32>| {
        let mut r = rng(name);
        let mut at = start;
        let mut n = 0;
        loop {
            at += Duration::from_nanos(r.random_range(min.as_nanos() as u64..=max.as_nanos() as u64));
            if at >= end || limit.is_some_and(|l| n >= l) {
                break;
            }
            triggers.push((at, t));
            n += 1;
        }
        streams.insert(t, r);
    };
    if let (true, Some(c)) = (on("clock_skew"), &chaos.clock_skew) {
        if let (Some(lo), Some(hi)) = (c.min_delay, c.max_delay) {
            cadence(Trigger::Skew, "clock_jumps", lo, hi, None);
        }
    }
    if let (true, Some(c)) = (on("power_loss"), &chaos.power_loss) {
        cadence(Trigger::PowerLoss, "power_loss", c.min_delay, c.max_delay, None);
    }
    if let (true, Some(c)) = (on("restart"), &chaos.restart) {
        cadence(Trigger::Restart, "restart", c.min_delay, c.max_delay, None);
    }
    if let (true, Some(c)) = (on("kill"), &chaos.kill) {
        cadence(Trigger::Kill, "kill", c.min_delay, c.max_delay, Some(c.count));
    }
    if let (true, Some(c)) = (on("pause"), &chaos.pause) {
        cadence(Trigger::Pause, "pause", c.min_delay, c.max_delay, None);
    }
    if let (true, Some(c)) = (on("partition"), &chaos.partition) {
        cadence(Trigger::Partition, "partition", c.min_delay, c.max_delay, None);
    }
    if let (true, Some(c)) = (on("churn"), &chaos.churn) {
        cadence(Trigger::Churn, "churn", c.min_delay, c.max_delay, Some(c.joins + c.leaves));
    }
    triggers.sort();

    let mut members: Vec<Member> = members0
        .iter()
        .map(|(name, role)| Member {
            name: name.clone(),
            role: role.clone(),
            busy_until: Duration::ZERO,
            last_restart: None,
        })
        .collect();
    let mut partition_until = Duration::ZERO;
    let mut client_sides = rng("partition_clients");
    let (mut joins, mut leaves) = chaos.churn.as_ref().map_or((0, 0), |c| (c.joins, c.leaves));
    let mut joined = 0;
    for (at, trigger) in triggers {
        let r = streams.get_mut(&trigger).expect("a stream per trigger kind");
        let free = |m: &Member, roles: &[String]| m.busy_until <= at && (roles.is_empty() || roles.contains(&m.role));
        match trigger {
            Trigger::PowerLoss => {
                let c = chaos.power_loss.as_ref().expect("power loss configured");
                // Every member that is not already down goes down together.
                let up: Vec<usize> = (0..members.len()).filter(|&i| members[i].busy_until <= at).collect();
                for &i in &up {
                    let m = &mut members[i];
                    faults.push((at, Fault::Crash { node: m.name.clone() }));
                    m.busy_until = at.saturating_add(c.down);
                }
                for &i in &up {
                    if at.saturating_add(c.down) < end {
                        faults.push((at + c.down, Fault::Restart { node: members[i].name.clone() }));
                    }
                }
            }
            Trigger::Skew => {
                let c = chaos.clock_skew.as_ref().expect("clock skew configured");
                let of_roles: Vec<&Member> =
                    members.iter().filter(|m| c.roles.is_empty() || c.roles.contains(&m.role)).collect();
                let Some(m) = of_roles.choose(r) else { continue };
                let max_ms = c.max_offset.as_millis() as i64;
                let d = i64::from(c.max_drift_ppm);
                let (offset_ms, drift_ppm) = (r.random_range(-max_ms..=max_ms), r.random_range(-d..=d));
                faults.push((at, Fault::ClockSkew { node: m.name.clone(), offset_ms, drift_ppm }));
            }
            Trigger::Restart => {
                let c = chaos.restart.as_ref().expect("restart configured");
                if c.aim == Aim::Leader {
                    aimed.push((at, AimedFault::Restart { down: c.down }));
                    continue;
                }
                let eligible: Vec<usize> = (0..members.len())
                    .filter(|&i| {
                        let m = &members[i];
                        free(m, &c.roles) && m.last_restart.is_none_or(|t| at.saturating_sub(t) >= c.target_cooldown)
                    })
                    .collect();
                let Some(&i) = eligible.choose(r) else { continue };
                let m = &mut members[i];
                m.last_restart = Some(at);
                if c.down.is_zero() {
                    faults.push((at, Fault::Restart { node: m.name.clone() }));
                } else {
                    faults.push((at, Fault::Crash { node: m.name.clone() }));
                    m.busy_until = at + c.down;
                    if at.saturating_add(c.down) < end {
                        faults.push((at + c.down, Fault::Restart { node: m.name.clone() }));
                    }
                }
            }
            Trigger::Kill => {
                let c = chaos.kill.as_ref().expect("kill configured");
                let eligible: Vec<usize> = (0..members.len()).filter(|&i| free(&members[i], &c.roles)).collect();
                // Never the last member: a cluster of nobody proves nothing.
                let Some(&i) = eligible.choose(r).filter(|_| members.len() > 1) else { continue };
                let m = members.remove(i);
                killed.push((at, m.name.clone()));
                faults.push((at, Fault::Crash { node: m.name }));
            }
            Trigger::Pause => {
                let c = chaos.pause.as_ref().expect("pause configured");
                if c.aim == Aim::Leader {
                    aimed.push((at, AimedFault::Pause { duration: between(r, c.min_duration, c.max_duration) }));
                    continue;
                }
                let eligible: Vec<usize> = (0..members.len()).filter(|&i| free(&members[i], &c.roles)).collect();
                let Some(&i) = eligible.choose(r) else { continue };
                let d = between(r, c.min_duration, c.max_duration);
                let m = &mut members[i];
                m.busy_until = at + d;
                faults.push((at, Fault::Pause { node: m.name.clone() }));
                if at.saturating_add(d) < end {
                    faults.push((at + d, Fault::Resume { node: m.name.clone() }));
                }
            }
            Trigger::Partition => {
                let c = chaos.partition.as_ref().expect("partition configured");
                let d = between(r, c.min_duration, c.max_duration);
                if at < partition_until || members.len() < 2 {
                    continue;
                }
                let kind = *c.kinds.choose(r).expect("kinds validated non-empty");
                if kind == PartitionKind::Leader {
                    aimed.push((at, AimedFault::Isolate));
                    partition_until = at.saturating_add(d);
                    if partition_until < end {
                        faults.push((at + d, Fault::Heal));
                    }
                    continue;
                }
                let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
                let departed: Vec<String> = killed
                    .iter()
                    .map(|(_, n)| n.clone())
                    .chain(churn.iter().filter_map(|(_, e)| match e {
                        ChurnEvent::Leave { name } => Some(name.clone()),
                        ChurnEvent::Join { .. } => None,
                    }))
                    .collect();
                let mut cut = partition(kind, &names, &c.groups, &departed, r);
                if c.clients == ClientSide::Random {
                    // Each client joins a random side, drawn from its own stream.
                    for f in &mut cut {
                        if let Fault::Partition { groups } = f {
                            for w in &plan.workloads {
                                let side = client_sides.random_range(0..groups.len());
                                groups[side].push(format!("client-{}", w.name));
                            }
                        }
                    }
                }
                if cut.is_empty() {
                    // The shape cuts nothing at this membership size (say, a ring of 3).
                    continue;
                }
                faults.extend(cut.into_iter().map(|f| (at, f)));
                partition_until = at.saturating_add(d);
                if partition_until < end {
                    faults.push((at + d, Fault::Heal));
                }
            }
            Trigger::Churn => {
                let c = chaos.churn.as_ref().expect("churn configured");
                let of_role: Vec<usize> =
                    (0..members.len()).filter(|&i| members[i].role == c.role && members[i].busy_until <= at).collect();
                let can_leave = leaves > 0 && of_role.len() > 1 && members.len() > 1;
                let join = joins > 0 && (!can_leave || r.random_bool(0.5));
                if join {
                    joins -= 1;
                    let name = format!("{}-j{joined}", c.role);
                    joined += 1;
                    members.push(Member {
                        name: name.clone(),
                        role: c.role.clone(),
                        busy_until: at,
                        last_restart: None,
                    });
                    churn.push((at, ChurnEvent::Join { name, role: c.role.clone() }));
                } else if can_leave {
                    leaves -= 1;
                    let i = *of_role.choose(r).expect("more than one");
                    let m = members.remove(i);
                    churn.push((at, ChurnEvent::Leave { name: m.name }));
                }
            }
        }
    }
    faults.extend(chaos.schedule.entries.iter().map(|e| (e.at, e.fault.clone())));
    faults.sort_by_key(|(at, _)| *at);
    let mut schedule = FaultSchedule::new();
    for (at, f) in faults {
        schedule.push(at, f);
    }
    Timeline { kinds, faults: schedule, churn, killed, aimed }
}

fn between(r: &mut impl Rng, lo: Duration, hi: Duration) -> Duration {
    Duration::from_nanos(r.random_range(lo.as_nanos() as u64..=hi.as_nanos().max(lo.as_nanos()) as u64))
}

/// The faults that make one partition of the current members `names` (shuffled here); empty
/// when the shape cuts nothing at this size.
fn partition(
    kind: PartitionKind,
    names: &[String],
    groups: &[Vec<String>],
    departed: &[String],
    r: &mut impl Rng,
) -> Vec<Fault> {
    let mut shuffled = names.to_vec();
    shuffled.shuffle(r);
    let n = shuffled.len();
    let both_ways = |a: &[String], b: &[String]| -> Vec<Fault> {
        let mut v = Vec::new();
        for x in a {
            for y in b {
                v.push(Fault::CutOneWay { from: x.clone(), to: y.clone() });
                v.push(Fault::CutOneWay { from: y.clone(), to: x.clone() });
            }
        }
        v
    };
    match kind {
        _ if n < 2 => Vec::new(),
        PartitionKind::RandomHalves => {
            let (a, b) = shuffled.split_at(n / 2);
            vec![Fault::Partition { groups: vec![a.to_vec(), b.to_vec()] }]
        }
        PartitionKind::Minority => {
            let (a, b) = shuffled.split_at(((n - 1) / 2).max(1));
            vec![Fault::Partition { groups: vec![a.to_vec(), b.to_vec()] }]
        }
        PartitionKind::Groups => {
            // Groups name members by name; drop the ones that are gone (killed, departed).
            let groups: Vec<Vec<String>> = groups
                .iter()
                .map(|g| g.iter().filter(|n| !departed.contains(n)).cloned().collect::<Vec<_>>())
                .filter(|g| !g.is_empty())
                .collect();
            if groups.is_empty() {
                Vec::new()
            } else {
                vec![Fault::Partition { groups }]
            }
        }
        PartitionKind::Bridge if n < 3 => Vec::new(),
        PartitionKind::Bridge => {
            // Two halves that only the bridge (the middle node) talks to both of.
            let bridge = n / 2;
            let (a, rest) = shuffled.split_at(bridge);
            let b = &rest[1..];
            both_ways(a, b)
        }
        PartitionKind::MajorityRing => {
            // In ring order, each node talks to the m-1 nodes nearest to it (m = majority).
            let majority = n / 2 + 1;
            let reach = (majority - 1) / 2 + (majority - 1) % 2;
            let mut v = Vec::new();
            for i in 0..n {
                for j in 0..n {
                    let d = (i + n - j) % n;
                    let dist = d.min(n - d);
                    if i != j && dist > reach {
                        v.push(Fault::CutOneWay { from: shuffled[i].clone(), to: shuffled[j].clone() });
                    }
                }
            }
            v
        }
        // Resolved when it fires (see `AimedFault::Isolate`).
        PartitionKind::Leader => Vec::new(),
        PartitionKind::OneWay => {
            let x = &shuffled[0];
            shuffled[1..].iter().map(|y| Fault::CutOneWay { from: x.clone(), to: y.clone() }).collect()
        }
    }
}

/// Links for the active phase: the topology's shape, with the latency tiers and link
/// degradation of the chaos section on top.
fn active_links(plan: &Plan, r: &mut impl Rng, tiers: bool, degrade: bool) -> Vec<Fault> {
    let chaos = &plan.chaos;
    let degrade_link = |mut l: LinkConfig| {
        if let (true, Some(c)) = (degrade, &chaos.link) {
            l.loss = c.loss;
            l.duplicate = c.duplicate;
            l.reorder = c.reorder;
        }
        l
    };
    let mut out = vec![Fault::SetLink { from: None, to: None, link: degrade_link(plan.topology.link.clone()) }];
    let mut pairs: BTreeMap<(String, String), LinkConfig> = BTreeMap::new();
    for f in topology_links(plan) {
        if let Fault::SetLink { from: Some(a), to: Some(b), link } = f {
            pairs.insert((a, b), link);
        }
    }
    if let (true, Some(t)) = (tiers, &chaos.latency_tiers) {
        let names = plan.topology.node_names();
        let tier_of: BTreeMap<&String, Duration> =
            names.iter().map(|n| (n, *t.tiers.choose(r).expect("tiers validated non-empty"))).collect();
        for a in &names {
            for b in names.iter().filter(|b| *b != a) {
                let lat = tier_of[a].max(tier_of[b]);
                let base = pairs.get(&(a.clone(), b.clone())).cloned().unwrap_or_else(|| plan.topology.link.clone());
                pairs.insert((a.clone(), b.clone()), base.latency(Latency::uniform(lat, lat + lat / 10)));
            }
        }
    }
    out.extend(pairs.into_iter().map(|((a, b), l)| set_link(&a, &b, degrade_link(l))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("n{i}")).collect()
    }

    /// Who can send to whom after applying `faults` (cuts or one partition) to `nodes`.
    fn reach(nodes: &[String], faults: &[Fault]) -> BTreeSet<(String, String)> {
        let mut cut = BTreeSet::new();
        for f in faults {
            match f {
                Fault::CutOneWay { from, to } => {
                    cut.insert((from.clone(), to.clone()));
                }
                Fault::Partition { groups } => {
                    let group = |n: &String| groups.iter().position(|g| g.contains(n)).unwrap_or(groups.len());
                    for a in nodes {
                        for b in nodes {
                            if group(a) != group(b) {
                                cut.insert((a.clone(), b.clone()));
                            }
                        }
                    }
                }
                other => panic!("unexpected fault {other}"),
            }
        }
        let mut ok = BTreeSet::new();
        for a in nodes {
            for b in nodes {
                if a != b && !cut.contains(&(a.clone(), b.clone())) {
                    ok.insert((a.clone(), b.clone()));
                }
            }
        }
        ok
    }

    fn shape(kind: PartitionKind, n: usize, seed: u64) -> (Vec<String>, BTreeSet<(String, String)>) {
        let nodes = names(n);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let faults = partition(kind, &nodes, &[], &[], &mut rng);
        let r = reach(&nodes, &faults);
        (nodes, r)
    }

    #[test]
    fn random_halves_and_minority_split_into_two_sides_of_the_right_sizes() {
        for n in 2..9 {
            for seed in 0..5 {
                let (nodes, r) = shape(PartitionKind::RandomHalves, n, seed);
                let side =
                    nodes.iter().filter(|b| *b == &nodes[0] || r.contains(&(nodes[0].clone(), (*b).clone()))).count();
                assert!(side == n / 2 || side == n - n / 2, "n={n}: side of {side}");
                let (nodes, r) = shape(PartitionKind::Minority, n, seed);
                let sizes: BTreeSet<usize> = nodes
                    .iter()
                    .map(|a| 1 + nodes.iter().filter(|b| r.contains(&(a.clone(), (*b).clone()))).count())
                    .collect();
                let minority = ((n - 1) / 2).max(1);
                assert_eq!(sizes, BTreeSet::from([minority, n - minority]), "n={n}");
            }
        }
    }

    #[test]
    fn a_majority_ring_gives_every_node_a_different_majority() {
        for n in 4..10 {
            let (nodes, r) = shape(PartitionKind::MajorityRing, n, n as u64);
            let views: Vec<BTreeSet<&String>> = nodes
                .iter()
                .map(|a| nodes.iter().filter(|b| *b == a || r.contains(&(a.clone(), (*b).clone()))).collect())
                .collect();
            for v in &views {
                assert!(v.len() > n / 2, "n={n}: every node sees a majority (itself included): {v:?}");
            }
            if n >= 5 {
                let distinct: BTreeSet<_> = views.iter().collect();
                assert_eq!(distinct.len(), n, "n={n}: no two nodes see the same majority");
            }
            assert!(r.len() < n * (n - 1), "n={n}: something is cut");
        }
    }

    #[test]
    fn a_bridge_is_the_only_node_that_reaches_both_sides() {
        for n in 3..9 {
            let (nodes, r) = shape(PartitionKind::Bridge, n, 3);
            let full: Vec<&String> = nodes
                .iter()
                .filter(|a| nodes.iter().all(|b| b == *a || r.contains(&((*a).clone(), b.clone()))))
                .collect();
            assert_eq!(full.len(), 1, "n={n}: exactly one bridge: {full:?}");
        }
        assert!(shape(PartitionKind::Bridge, 2, 1).1.len() == 2, "two nodes: no bridge, nothing cut");
    }

    #[test]
    fn one_way_silences_one_node_but_it_still_hears() {
        let (nodes, r) = shape(PartitionKind::OneWay, 5, 9);
        let silent: Vec<&String> =
            nodes.iter().filter(|a| nodes.iter().all(|b| !r.contains(&((*a).clone(), b.clone())))).collect();
        assert_eq!(silent.len(), 1);
        assert!(nodes.iter().filter(|b| *b != silent[0]).all(|b| r.contains(&(b.clone(), silent[0].clone()))));
    }

    fn plan(toml: &str) -> Plan {
        let p = Plan::from_toml(toml).unwrap();
        p.check().unwrap();
        p
    }

    #[test]
    fn compile_is_a_function_of_the_chaos_seed_and_kinds_do_not_disturb_each_other() {
        let both = plan(
            r#"name = "p"
            [app]
            name = "x"
            [topology.nodes]
            r = 5
            [chaos.restart]
            min_delay = "1s"
            max_delay = "3s"
            [chaos.pause]
            min_delay = "1s"
            max_delay = "3s"
            min_duration = "100ms"
            max_duration = "200ms""#,
        );
        assert_eq!(compile(&both, 5), compile(&both, 5));
        assert_ne!(compile(&both, 5), compile(&both, 6));
        let mut restart_only = both.clone();
        restart_only.chaos.pause = None;
        let times = |t: &Timeline, f: fn(&Fault) -> bool| -> Vec<Duration> {
            t.faults.entries.iter().filter(|e| f(&e.fault)).map(|e| e.at).collect()
        };
        let restart = |f: &Fault| matches!(f, Fault::Restart { .. });
        // Restart times come from the restart stream alone (targets may differ: pauses make
        // some nodes ineligible).
        assert_eq!(times(&compile(&both, 5), restart).len(), times(&compile(&restart_only, 5), restart).len());
        assert_eq!(times(&compile(&both, 5), restart), times(&compile(&restart_only, 5), restart));
    }

    #[test]
    fn latency_tiers_set_every_pair_to_the_slower_tier() {
        let p = plan(
            r#"name = "p"
            [app]
            name = "x"
            [topology.nodes]
            r = 4
            [chaos]
            latency_tiers = { tiers = ["10ms", "300ms"] }"#,
        );
        let t = compile(&p, 1);
        let pairs: Vec<(&String, &String, Duration)> = t
            .faults
            .entries
            .iter()
            .filter_map(|e| match &e.fault {
                Fault::SetLink { from: Some(a), to: Some(b), link } => Some((a, b, link.latency.bounds().0)),
                _ => None,
            })
            .collect();
        assert_eq!(pairs.len(), 12, "every ordered pair of 4 nodes");
        for (a, b, lat) in &pairs {
            let back = pairs.iter().find(|(x, y, _)| x == b && y == a).unwrap().2;
            assert_eq!(*lat, back, "symmetric: {a} <-> {b}");
            assert!(*lat == Duration::from_millis(10) || *lat == Duration::from_millis(300));
        }
    }

    #[test]
    fn chaos_aimed_at_the_leader_is_left_for_the_runner_at_the_same_times() {
        let any = plan(
            r#"name = "p"
            [app]
            name = "x"
            [topology.nodes]
            r = 3
            [chaos.restart]
            min_delay = "1s"
            max_delay = "3s"
            down = "100ms"
            [chaos.partition]
            kinds = ["minority"]
            min_delay = "1s"
            max_delay = "3s"
            min_duration = "100ms"
            max_duration = "200ms""#,
        );
        let mut leader = any.clone();
        leader.chaos.restart.as_mut().unwrap().aim = Aim::Leader;
        leader.chaos.partition.as_mut().unwrap().kinds = vec![PartitionKind::Leader];
        let (a, l) = (compile(&any, 7), compile(&leader, 7));
        let crash_times = |t: &Timeline| -> Vec<Duration> {
            t.faults.entries.iter().filter(|e| matches!(e.fault, Fault::Crash { .. })).map(|e| e.at).collect()
        };
        let aimed = |kind: fn(&AimedFault) -> bool| -> Vec<Duration> {
            l.aimed.iter().filter(|(_, f)| kind(f)).map(|(at, _)| *at).collect()
        };
        assert!(a.aimed.is_empty());
        assert!(crash_times(&l).is_empty(), "no crash is decided before the run");
        assert_eq!(aimed(|f| matches!(f, AimedFault::Restart { .. })), crash_times(&a), "same restart times");
        assert!(l.aimed.iter().all(|(_, f)| !matches!(f, AimedFault::Pause { .. })));
        let cuts = aimed(|f| *f == AimedFault::Isolate);
        let heals: Vec<Duration> = l.faults.entries.iter().filter(|e| e.fault == Fault::Heal).map(|e| e.at).collect();
        assert!(!cuts.is_empty());
        assert_eq!(cuts.len(), heals.len(), "each leader cut heals on schedule: {cuts:?} {heals:?}");
        assert!(cuts.iter().zip(&heals).all(|(c, h)| h > c));
    }
}
