//! Property: any plan — every section, every fault kind, every latency shape — survives
//! plan → TOML → plan unchanged; and validation never panics on one.

use gauntlet::plan::*;
use gauntlet::sim::{Fault, FaultSchedule, Latency, LinkConfig};
use gauntlet::{millis, Plan, ScenarioBuilder};
use proptest::prelude::*;
use std::time::Duration;

fn dur() -> impl Strategy<Value = Duration> {
    prop_oneof![(0u64..100_000).prop_map(millis), (0u64..10_000_000_000).prop_map(Duration::from_nanos)]
}

fn name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,8}"
}

fn prob() -> impl Strategy<Value = f64> {
    (0u32..=1000).prop_map(|p| f64::from(p) / 1000.0)
}

fn latency() -> impl Strategy<Value = Latency> {
    prop_oneof![
        dur().prop_map(Latency::fixed),
        (dur(), dur()).prop_map(|(a, b)| Latency::uniform(a, b)),
        (dur(), dur(), 1u32..40).prop_map(|(a, b, s)| Latency::long_tail(a, b, f64::from(s) / 10.0)),
    ]
}

fn link() -> impl Strategy<Value = LinkConfig> {
    (latency(), prob(), prob(), prob(), dur())
        .prop_map(|(l, a, b, c, d)| LinkConfig::default().latency(l).loss(a).duplicate(b).reorder(c, d))
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        prop::collection::vec(prop::collection::vec(name(), 1..3), 1..3).prop_map(|groups| Fault::Partition { groups }),
        (name(), name()).prop_map(|(from, to)| Fault::CutOneWay { from, to }),
        Just(Fault::Heal),
        (prop::option::of(name()), prop::option::of(name()), link()).prop_map(|(from, to, link)| Fault::SetLink {
            from,
            to,
            link
        }),
        Just(Fault::ResetLinks),
        name().prop_map(|node| Fault::Crash { node }),
        name().prop_map(|node| Fault::Restart { node }),
        name().prop_map(|node| Fault::Pause { node }),
        name().prop_map(|node| Fault::Resume { node }),
        (name(), any::<i32>(), any::<i32>()).prop_map(|(node, o, d)| Fault::ClockSkew {
            node,
            offset_ms: i64::from(o),
            drift_ppm: i64::from(d)
        }),
    ]
}

fn network() -> impl Strategy<Value = Network> {
    prop_oneof![
        Just(Network::Mesh),
        prop::option::of(name()).prop_map(|hub| Network::Star { hub }),
        prop::collection::vec((dur(), prop::collection::vec(name(), 0..3)), 0..3).prop_map(|t| Network::Tiers {
            tiers: t.into_iter().map(|(latency, members)| Tier { latency, members }).collect()
        }),
    ]
}

fn workload() -> impl Strategy<Value = WorkloadPlan> {
    (
        name(),
        0u32..100,
        prop::option::of(0u32..100_000),
        prop::collection::vec((0u32..1000, dur()), 0..3),
        prop::collection::vec((dur(), 0u32..1000, dur()), 0..3),
        prop::collection::btree_map(name(), 0u32..10, 0..3),
        any::<bool>(),
        (dur(), 0u32..1000, dur()),
    )
        .prop_map(|(n, users, rate, steps, bursts, mix, uniform, (start, max_in_flight, op_timeout))| {
            WorkloadPlan {
                name: n,
                users,
                rate: rate.map(|r| f64::from(r) / 8.0),
                steps: steps.into_iter().map(|(r, d)| LoadStep { rate: f64::from(r) / 4.0, duration: d }).collect(),
                bursts: bursts.into_iter().map(|(at, ops, over)| Burst { at, ops, over }).collect(),
                mix,
                arrival: if uniform { Arrival::Uniform } else { Arrival::Poisson },
                start,
                max_in_flight,
                op_timeout,
                closed_loop: uniform && max_in_flight % 2 == 0,
                think: if uniform && max_in_flight % 4 == 0 { op_timeout / 2 } else { Duration::ZERO },
            }
        })
}

fn roles() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(name(), 0..2)
}

fn chaos() -> impl Strategy<Value = ChaosPlan> {
    (
        (any::<bool>(), dur()),
        prop::option::of((dur(), dur(), dur(), dur(), roles())),
        prop::option::of((0u32..5, dur(), dur(), roles())),
        prop::option::of((dur(), dur(), dur(), dur(), roles())),
        prop::option::of((
            prop::collection::vec(prop::sample::select(PartitionKind::ALL.to_vec()), 0..4),
            dur(),
            dur(),
        )),
        prop::option::of(prop::collection::vec(dur(), 0..4)),
        prop::option::of((prob(), prob(), prob())),
        prop::option::of((dur(), 0u32..1000, prop::option::of(0u32..9))),
        prop::option::of((dur(), dur(), 0u32..5, 0u32..5, name())),
        prop::collection::vec((dur(), fault()), 0..4),
    )
        .prop_map(|((swarm, start), restart, kill, pause, partition, tiers, link, skew, churn, schedule)| {
            let power =
                restart.as_ref().map(|(a, b, _, d, _)| PowerLossChaos { min_delay: *a, max_delay: *b, down: *d });
            ChaosPlan {
                swarm,
                start,
                restart: restart.map(|(min_delay, max_delay, target_cooldown, down, roles)| RestartChaos {
                    min_delay,
                    max_delay,
                    target_cooldown,
                    down,
                    roles,
                    aim: Aim::Any,
                }),
                kill: kill.map(|(count, min_delay, max_delay, roles)| KillChaos { count, min_delay, max_delay, roles }),
                power_loss: power,
                pause: pause.map(|(min_delay, max_delay, min_duration, max_duration, roles)| PauseChaos {
                    min_delay,
                    max_delay,
                    min_duration,
                    max_duration,
                    roles,
                    aim: Aim::Any,
                }),
                partition: partition.map(|(kinds, a, b)| PartitionChaos {
                    kinds,
                    groups: vec![vec!["x-0".into()]],
                    min_delay: a,
                    max_delay: b,
                    min_duration: a,
                    max_duration: b,
                    clients: Default::default(),
                }),
                latency_tiers: tiers.map(|tiers| LatencyTiersChaos { tiers }),
                link: link.map(|(loss, duplicate, reorder)| LinkChaos { loss, duplicate, reorder }),
                clock_skew: skew.map(|(max_offset, max_drift_ppm, nodes)| ClockSkewChaos {
                    max_offset,
                    max_drift_ppm,
                    nodes,
                    min_delay: nodes.map(|n| millis(u64::from(n))),
                    max_delay: nodes.map(|n| millis(u64::from(n) * 2)),
                    roles: Vec::new(),
                }),
                churn: churn.map(|(min_delay, max_delay, joins, leaves, role)| ChurnChaos {
                    min_delay,
                    max_delay,
                    joins,
                    leaves,
                    role,
                }),
                schedule: {
                    let mut s = FaultSchedule::new();
                    for (at, f) in schedule {
                        s.push(at, f);
                    }
                    s
                },
            }
        })
}

fn param() -> impl Strategy<Value = toml::Value> {
    prop_oneof![
        any::<i64>().prop_map(toml::Value::Integer),
        "[ -~]{0,12}".prop_map(toml::Value::String),
        any::<bool>().prop_map(toml::Value::Boolean),
        (-1000i32..1000).prop_map(|x| toml::Value::Float(f64::from(x) / 8.0)),
        prop::collection::vec(any::<i32>().prop_map(|i| toml::Value::Integer(i64::from(i))), 0..3)
            .prop_map(toml::Value::Array),
    ]
}

prop_compose! {
    fn plans()(
        (plan_name, description) in (name(), "[ -~]{0,20}"),
        app in (name(), prop::collection::btree_map(name(), param(), 0..3)),
        (nodes, network, link) in (prop::collection::btree_map(name(), 0u32..6, 0..3), network(), link()),
        run in (dur(), dur(), any::<bool>(), dur(), prop::option::of(any::<u64>())),
        workloads in prop::collection::vec(workload(), 0..3),
        chaos in chaos(),
        expect in prop::collection::vec((name(), prop::collection::btree_map("[b-z][a-z]{0,6}", param(), 0..3)), 0..3),
    ) -> Plan {
        let mut plan = ScenarioBuilder::new(plan_name).describe(description).app(app.0).plan();
        plan.app.options = app.1.into_iter().collect();
        plan.topology = TopologyPlan { nodes, network, link, fsync: Duration::from_millis(u64::from(run.3.subsec_millis())) };
        plan.run = RunPlan { duration: run.0, cooldown: run.1, workloads_in_cooldown: run.2, observe_every: run.3, seed: run.4 };
        plan.workloads = workloads;
        plan.chaos = chaos;
        plan.expect = expect.into_iter().map(|(name, params)| ExpectationPlan { name, params: params.into_iter().collect() }).collect();
        plan
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn plans_round_trip_through_toml(plan in plans()) {
        let text = plan.to_toml();
        let back = Plan::from_toml(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(back, plan, "{}", text);
    }

    /// Validation lists problems for arbitrary plans without panicking.
    #[test]
    fn validation_never_panics(plan in plans()) {
        let _ = plan.check();
    }

    /// A valid plan compiles into a timeline that keeps the plan's promises: faults in time
    /// order and inside the active phase, only existing nodes targeted, a killed node never
    /// touched again, restarts of one node at least `target_cooldown` apart.
    #[test]
    fn valid_plans_compile_into_timelines_that_keep_their_promises(plan in valid_plans(), seed in any::<u64>()) {
        prop_assert!(plan.check().is_ok(), "{}", plan.check().unwrap_err());
        let t = gauntlet::chaos::compile(&plan, seed);
        prop_assert_eq!(&t, &gauntlet::chaos::compile(&plan, seed));
        let entries = &t.faults.entries;
        prop_assert!(entries.windows(2).all(|w| w[0].at <= w[1].at), "faults in time order");
        prop_assert!(entries.iter().all(|e| e.at >= plan.chaos.start && e.at < plan.run.duration));
        let mut known: Vec<String> = plan.topology.node_names();
        known.extend(t.churn.iter().filter_map(|(_, c)| match c {
            gauntlet::chaos::ChurnEvent::Join { name, .. } => Some(name.clone()),
            _ => None,
        }));
        for e in entries {
            for n in e.fault.nodes() {
                prop_assert!(known.iter().any(|k| k == n), "{} targets unknown {}", e.fault, n);
            }
            for (killed_at, k) in &t.killed {
                prop_assert!(e.at <= *killed_at || !e.fault.nodes().contains(&k.as_str()), "{} after {} was killed", e.fault, k);
            }
        }
        if let Some(r) = &plan.chaos.restart {
            let mut last: std::collections::BTreeMap<String, Duration> = Default::default();
            for e in entries {
                if let (Fault::Restart { node }, 0) | (Fault::Crash { node }, _) = (&e.fault, r.down.as_nanos() as u64) {
                    if t.killed.iter().any(|(_, k)| k == node) && matches!(e.fault, Fault::Crash { .. }) {
                        continue;
                    }
                    if let Some(prev) = last.insert(node.clone(), e.at) {
                        prop_assert!(e.at - prev >= r.target_cooldown, "{} restarted {:?} apart", node, e.at - prev);
                    }
                }
            }
        }
        let members = plan.topology.node_names().len() as u64 + t.churn.iter().filter(|(_, c)| matches!(c, gauntlet::chaos::ChurnEvent::Join { .. })).count() as u64;
        let gone = t.killed.len() as u64 + t.churn.iter().filter(|(_, c)| matches!(c, gauntlet::chaos::ChurnEvent::Leave { .. })).count() as u64;
        prop_assert!(gone < members, "someone is always left");
    }
}

fn secs_between(lo: u64, hi: u64) -> impl Strategy<Value = Duration> {
    (lo * 1000..=hi * 1000).prop_map(millis)
}

prop_compose! {
    fn valid_plans()(
        n in 2u32..8,
        duration in secs_between(5, 60),
        restart in prop::option::of((secs_between(1, 3), secs_between(3, 6), secs_between(0, 10), secs_between(0, 2))),
        kill in prop::option::of((secs_between(1, 5), secs_between(5, 10))),
        pause in prop::option::of((secs_between(1, 3), secs_between(3, 5), secs_between(0, 1))),
        partition in prop::option::of(prop::collection::vec(prop::sample::select(vec![PartitionKind::RandomHalves, PartitionKind::Minority, PartitionKind::OneWay, PartitionKind::Groups]), 1..4)),
        tiers in prop::option::of(prop::collection::vec(secs_between(0, 1), 1..4)),
        churn in prop::option::of((0u32..4, 0u32..3)),
        swarm in any::<bool>(),
    ) -> Plan {
        let mut b = ScenarioBuilder::new("valid").app("x").topology(|t| t.nodes("r", n)).with_run_duration(duration);
        b = b.chaos_with(|mut c| {
            if let Some((a, z, cd, down)) = restart { c = c.restart().min_delay(a).max_delay(z).target_cooldown(cd).down(down).and(); }
            if let (Some((a, z)), true) = (kill, n >= 3) { c = c.kill(1).min_delay(a).max_delay(z).and(); }
            if let Some((a, z, d)) = pause { c = c.pause().min_delay(a).max_delay(z).min_duration(d + millis(1)).max_duration(d + millis(500)).and(); }
            if let Some(kinds) = &partition { c = c.partition(kinds).group(&["r-0"]).min_delay(millis(500)).max_delay(millis(3000)).and(); }
            if let Some(t) = &tiers { c = c.latency_tiers(t); }
            if let Some((joins, leaves)) = churn {
                let leaves = if n >= 3 { leaves.min(n - 2) } else { 0 };
                if joins + leaves > 0 { c = c.churn("r").min_delay(millis(700)).max_delay(millis(2000)).joins(joins).leaves(leaves).and(); }
            }
            c
        });
        let mut plan = b.plan();
        plan.chaos.swarm = swarm && plan.chaos.kinds().len() >= 2;
        plan
    }
}
