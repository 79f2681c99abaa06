//! Property: any plan the builder can express survives plan → TOML → plan unchanged.

use gauntlet::plan::{Arrival, PartitionKind};
use gauntlet::{millis, Plan, ScenarioBuilder};
use proptest::prelude::*;

fn dur() -> impl Strategy<Value = std::time::Duration> {
    (1u64..100_000).prop_map(millis)
}

prop_compose! {
    fn plans()(
        name in "[a-z][a-z0-9-]{0,12}",
        roles in prop::collection::btree_map("[a-z]{1,8}", 1u32..6, 1..3),
        star in any::<bool>(),
        rate in prop::option::of(1u32..500),
        steps in prop::collection::vec((1u32..100, dur()), 0..4),
        users in 1u32..50,
        uniform in any::<bool>(),
        restart in prop::option::of((dur(), dur(), dur())),
        loss in prop::option::of(0u32..100),
        kinds in prop::collection::vec(prop::sample::select(PartitionKind::ALL.to_vec()), 0..4),
        swarm in any::<bool>(),
        duration in dur(),
        seed in prop::option::of(any::<u64>()),
        option in prop::option::of(("[a-z]{1,6}", any::<i32>())),
    ) -> Plan {
        let mut b = ScenarioBuilder::new(name).app("toy").with_run_duration(duration);
        if let Some((k, v)) = option { b = b.app_option(k, i64::from(v)); }
        b = b.topology(|mut t| {
            for (r, n) in &roles { t = t.nodes(r.clone(), *n); }
            if star { t.network_star() } else { t }
        });
        b = b.workload_with("w", |mut w| {
            if let Some(r) = rate { w = w.rate(f64::from(r) / 4.0); }
            for (r, d) in &steps { w = w.step(f64::from(*r), *d); }
            w.users(users).arrival(if uniform { Arrival::Uniform } else { Arrival::Poisson })
        });
        b = b.chaos_with(|mut c| {
            if swarm { c = c.swarm(); }
            if let Some(p) = loss { c = c.loss(f64::from(p) / 100.0); }
            if !kinds.is_empty() { c = c.partition(&kinds).and(); }
            match restart {
                Some((a, m, cd)) => c.restart().min_delay(a).max_delay(m).target_cooldown(cd).and(),
                None => c,
            }
        });
        if let Some(s) = seed { b = b.seed(s); }
        b.expect_with("custom", |p| p.param("level", 3).duration("within", millis(1500))).plan()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn plans_round_trip_through_toml(plan in plans()) {
        let text = plan.to_toml();
        let back = Plan::from_toml(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(back, plan, "{}", text);
    }
}
