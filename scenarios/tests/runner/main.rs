//! The runner on gossip plans: verdicts, replay, load progression, restart cadence, churn,
//! swarm and liveness classification.

#![cfg(madsim)]
use gauntlet::sim::{EventKind, Fault, OpPhase, Seeds};
use gauntlet::{Deployer, FailureClass, Plan, RunOutcome, Scenario, SimDeployer};
use gauntlet_scenarios::gossip::GossipApp;
use gauntlet_scenarios::plans;
use std::time::Duration;

fn run(plan: Plan, seed: u64) -> RunOutcome {
    let scenario = Scenario::new(GossipApp, plan).unwrap();
    SimDeployer::default().keep_events(true).run(&scenario, Seeds::new(seed)).unwrap()
}

#[test]
fn the_smoke_plan_passes_and_replays() {
    for seed in 0..3 {
        let a = run(plans::gossip_smoke(), seed);
        assert!(a.verdict.passed(), "seed {seed}: {}", a.verdict);
        assert!(a.ops["bumps"].ok > 100, "seed {seed}: {:?}", a.ops);
        assert!(a.counts["fault"] > 3, "seed {seed}: faults were applied: {:?}", a.counts);
        let b = run(plans::gossip_smoke(), seed);
        assert_eq!((a.trace_hash, a.events), (b.trace_hash, b.events), "seed {seed} replays");
    }
}

/// Invocations recorded in the trace within `[from, to)`.
fn invocations(outcome: &RunOutcome, from: Duration, to: Duration) -> usize {
    let trace = outcome.trace.as_ref().expect("events kept");
    trace
        .events()
        .iter()
        .filter(|e| e.at >= from && e.at < to && matches!(e.kind, EventKind::Op { phase: OpPhase::Invoke, .. }))
        .count()
}

#[test]
fn load_progression_changes_the_offered_rate_at_each_step() {
    let outcome = run(plans::gossip_load_progression(), 11);
    assert!(outcome.verdict.passed(), "{}", outcome.verdict);
    let s = Duration::from_secs(1);
    let measured: Vec<usize> = (0..3).map(|i| invocations(&outcome, s * 5 * i, s * 5 * (i + 1))).collect();
    // Uniform arrivals at 10, 40 and 80 ops/s for 5 s each: 50, 200, 400 (±2 at the edges).
    for (got, want) in measured.iter().zip([50, 200, 400]) {
        assert!(got.abs_diff(want) <= 2, "measured {measured:?}, wanted 50/200/400");
    }
    // The rate holds at the last step's value in the cooldown (workloads_in_cooldown = true),
    // which ends as soon as `progress` holds.
    let cooldown = invocations(&outcome, s * 15, outcome.sim_time);
    let want = ((outcome.sim_time - s * 15).as_secs_f64() * 80.0).round() as usize;
    assert!(want >= 20 && cooldown.abs_diff(want) <= 2, "cooldown invocations {cooldown}, wanted {want}");
}

#[test]
fn poisson_arrivals_follow_the_step_rates_on_average() {
    let mut plan = plans::gossip_load_progression();
    plan.workloads[0].arrival = gauntlet::plan::Arrival::Poisson;
    let outcome = run(plan, 12);
    let s = Duration::from_secs(1);
    let measured: Vec<usize> = (0..3).map(|i| invocations(&outcome, s * 5 * i, s * 5 * (i + 1))).collect();
    for (got, want) in measured.iter().zip([50usize, 200, 400]) {
        // Poisson counts: within 4 standard deviations (sqrt(mean)).
        let sd = (want as f64).sqrt();
        assert!((*got as f64 - want as f64).abs() < 4.0 * sd, "measured {measured:?}");
    }
    assert!(measured[0] < measured[1] && measured[1] < measured[2], "{measured:?}");
}

#[test]
fn restart_chaos_respects_min_and_max_delay_and_target_cooldown() {
    let (min, max, cooldown) = (Duration::from_secs(1), Duration::from_secs(3), Duration::from_secs(7));
    let plan = gauntlet::ScenarioBuilder::topology_with(|t| t.nodes("gossip", 4))
        .app("gossip")
        .named("restarts")
        .with_run_duration(Duration::from_secs(120))
        .chaos_with(|c| c.restart().min_delay(min).max_delay(max).target_cooldown(cooldown))
        .expect_convergence()
        .plan();
    for seed in 0..5 {
        let outcome = run(plan.clone(), seed);
        assert!(outcome.verdict.passed(), "seed {seed}: {}", outcome.verdict);
        let restarts: Vec<(Duration, String)> = outcome
            .trace
            .as_ref()
            .unwrap()
            .events()
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Fault { fault: Fault::Restart { node } } => Some((e.at, node.clone())),
                _ => None,
            })
            .collect();
        assert!(restarts.len() >= 20, "seed {seed}: {} restarts", restarts.len());
        // Every gap is a whole number of [min, max] draws (a draw finds no eligible node when
        // all are cooling down), and at least min.
        for w in restarts.windows(2) {
            let gap = w[1].0 - w[0].0;
            assert!(gap >= min, "seed {seed}: restarts {gap:?} apart: {w:?}");
            let draws_max = gap.as_nanos().div_ceil(min.as_nanos());
            let draws_min = gap.as_nanos() / max.as_nanos();
            assert!(draws_min <= draws_max, "seed {seed}: gap {gap:?} fits no number of draws");
        }
        // With 4 nodes and a 7 s cooldown against 1-3 s gaps, the cooldown binds: check it.
        let mut last: std::collections::BTreeMap<&str, Duration> = Default::default();
        for (at, node) in &restarts {
            if let Some(prev) = last.insert(node, *at) {
                assert!(
                    *at - prev >= cooldown,
                    "seed {seed}: {node} restarted {:?} after its last restart",
                    *at - prev
                );
            }
        }
        // The first gap is one draw: within [min, max] of chaos.start (0).
        assert!(restarts[0].0 >= min && restarts[0].0 <= max, "seed {seed}: first restart at {:?}", restarts[0].0);
    }
}

#[test]
fn churn_adds_and_removes_nodes_and_the_observed_sources_follow() {
    let plan = gauntlet::ScenarioBuilder::topology_with(|t| t.nodes("gossip", 3))
        .app("gossip")
        .named("churn")
        .with_run_duration(Duration::from_secs(30))
        .chaos_with(|c| {
            c.churn("gossip").min_delay(Duration::from_secs(2)).max_delay(Duration::from_secs(4)).joins(3).leaves(2)
        })
        .expect_convergence()
        .plan();
    for seed in 0..4 {
        let outcome = run(plan.clone(), seed);
        assert!(outcome.verdict.passed(), "seed {seed}: {}", outcome.verdict);
        let joined: Vec<&str> = outcome.membership_changes.iter().filter_map(|c| c.joined()).collect();
        let left: Vec<&str> = outcome.membership_changes.iter().filter_map(|c| c.left()).collect();
        assert_eq!((joined.len(), left.len()), (3, 2), "seed {seed}: {:?}", outcome.membership_changes);
        let mut expected: Vec<String> = ["gossip-0", "gossip-1", "gossip-2"].iter().map(|s| s.to_string()).collect();
        expected.extend(joined.iter().map(|s| s.to_string()));
        expected.retain(|n| !left.contains(&n.as_str()));
        expected.sort();
        assert_eq!(outcome.observed_sources, expected, "seed {seed}: the observer follows the membership");
        // Joined nodes really ran: each has a node_start in the trace.
        assert_eq!(outcome.counts["node_start"], 3 + 1 + 3, "seed {seed}: members, the observer and joiners started");
    }
}

#[test]
fn swarm_mode_picks_different_fault_sets_on_different_seeds_deterministically() {
    let plan = plans::gossip_swarm();
    let mut sets = std::collections::BTreeSet::new();
    for seed in 0..8 {
        let a = run(plan.clone(), seed);
        let b = run(plan.clone(), seed);
        assert_eq!(a.chaos_kinds, b.chaos_kinds, "seed {seed}: the same seed turns on the same kinds");
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed} replays");
        assert!(!a.chaos_kinds.is_empty());
        assert!(a.verdict.passed(), "seed {seed} ({:?}): {}", a.chaos_kinds, a.verdict);
        // Only enabled kinds produce faults.
        let has = |f: fn(&Fault) -> bool| a.schedule.entries.iter().any(|e| f(&e.fault));
        if !a.chaos_kinds.contains(&"pause") {
            assert!(!has(|f| matches!(f, Fault::Pause { .. })), "seed {seed}: pause is off but a pause happened");
        }
        if !a.chaos_kinds.contains(&"clock_skew") {
            assert!(!has(|f| matches!(f, Fault::ClockSkew { .. })), "seed {seed}: skew is off");
        }
        sets.insert(a.chaos_kinds.clone());
    }
    assert!(sets.len() >= 4, "8 seeds gave only {} distinct fault sets: {sets:?}", sets.len());
}

#[test]
fn a_cluster_that_never_converges_after_faults_stop_is_a_liveness_failure() {
    use gauntlet_scenarios::gossip::GossipBuilderExt;
    // A restarted node ignores gossip (planted bug); the others keep bumping after its restart.
    let plan = gauntlet::ScenarioBuilder::topology_with(|t| t.nodes("gossip", 3))
        .app("gossip")
        .named("deaf")
        .planted_bug("deaf_after_restart")
        .app_option("bump_until", "9s")
        .with_run_duration(Duration::from_secs(10))
        .with_cooldown(Duration::from_secs(5))
        .chaos_with(|c| c.fault(Duration::from_secs(2), Fault::Restart { node: "gossip-1".into() }))
        .expect_convergence()
        .plan();
    let outcome = run(plan, 3);
    let gauntlet::Verdict::Fail(failure) = &outcome.verdict else { panic!("the bug went unnoticed") };
    assert_eq!(failure.class, FailureClass::Liveness, "{failure}");
    assert_eq!(failure.source, "converge");
    assert!(failure.message.contains("not converged") && failure.at >= Duration::from_secs(15), "{failure}");
    // Without the bug the same plan passes.
    let mut healthy = outcome_plan_without_bug();
    healthy.name = "healthy".into();
    assert!(run(healthy, 3).verdict.passed());
}

fn outcome_plan_without_bug() -> Plan {
    gauntlet::ScenarioBuilder::topology_with(|t| t.nodes("gossip", 3))
        .app("gossip")
        .named("healthy")
        .app_option("bump_until", "9s")
        .with_run_duration(Duration::from_secs(10))
        .with_cooldown(Duration::from_secs(5))
        .chaos_with(|c| c.fault(Duration::from_secs(2), Fault::Restart { node: "gossip-1".into() }))
        .expect_convergence()
        .plan()
}

#[test]
fn every_plan_is_deterministic_under_the_double_run_check() {
    for (name, plan) in plans::gossip() {
        for seed in 0..3 {
            let scenario = Scenario::new(GossipApp, plan.clone()).unwrap();
            let outcome = SimDeployer::default()
                .check_determinism(true)
                .run(&scenario, Seeds::new(seed))
                .unwrap_or_else(|e| panic!("{name} seed {seed}: {e}"));
            assert!(outcome.verdict.passed(), "{name} seed {seed}: {}", outcome.verdict);
        }
    }
}

/// Seeds per plan in [`every_plan_passes_a_seed_sweep`]: 10, or `GAUNTLET_SWEEP_SEEDS`.
fn sweep_seeds() -> u64 {
    std::env::var("GAUNTLET_SWEEP_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(10)
}

/// The shipped plans pass on every seed of a sweep. `cargo test` runs 10 seeds per plan;
/// `GAUNTLET_SWEEP_SEEDS=1000 cargo test --release -p gauntlet-scenarios --test scenarios runner::sweep`
/// runs the heavy sweep recorded in docs/PERFORMANCE.md.
#[test]
fn every_plan_passes_a_seed_sweep() {
    let n = sweep_seeds();
    let mut failures = Vec::new();
    for (name, plan) in plans::gossip() {
        let scenario = Scenario::new(GossipApp, plan).unwrap();
        // Only `SIM_SEED` when it is set: that is how a failure's replay line reruns one seed.
        let seeds: Vec<u64> = match gauntlet::sim::seed::seed_from_env(gauntlet::sim::seed::SIM_SEED_ENV) {
            Ok(Some(s)) => vec![s],
            _ => (1000..1000 + n).collect(),
        };
        for seed in seeds {
            let outcome = SimDeployer::default().run(&scenario, Seeds::new(seed)).unwrap();
            if !outcome.verdict.passed() {
                // Each failure starts with its replay line and the path of its bundle.
                let t =
                    gauntlet::testing::TestRun::new("gauntlet-scenarios", "runner", "every_plan_passes_a_seed_sweep");
                failures.push(format!("{name}: {}", t.failure_report(&scenario, &outcome)));
            }
        }
    }
    assert!(failures.is_empty(), "{} failing runs:\n{}", failures.len(), failures.join("\n"));
}

/// Regression: a restart with `down` crashes the node first; that crash used to count as the
/// kill's departure when the same node was later killed, dropping it from the membership early
/// and listing it twice.
#[test]
fn a_killed_node_leaves_once_at_its_kill() {
    let plan = gauntlet::ScenarioBuilder::topology_with(|t| t.nodes("gossip", 4))
        .app("gossip")
        .named("kill-and-restart")
        .with_run_duration(Duration::from_secs(40))
        .chaos_with(|c| {
            c.restart()
                .min_delay(Duration::from_secs(1))
                .max_delay(Duration::from_secs(2))
                .down(Duration::from_millis(500))
                .and()
                .kill(1)
                .min_delay(Duration::from_secs(20))
                .max_delay(Duration::from_secs(30))
        })
        .expect_convergence()
        .plan();
    for seed in 0..10 {
        let outcome = run(plan.clone(), seed);
        assert!(outcome.verdict.passed(), "seed {seed}: {}", outcome.verdict);
        let left: Vec<_> = outcome.membership_changes.iter().filter(|c| !c.joined).collect();
        assert_eq!(left.len(), 1, "seed {seed}: {:?}", outcome.membership_changes);
        let killed = &left[0].node;
        let crashes: Vec<Duration> = outcome
            .schedule
            .entries
            .iter()
            .filter(|e| matches!(&e.fault, Fault::Crash { node } if node == killed))
            .map(|e| e.at)
            .collect();
        assert_eq!(left[0].at, *crashes.last().unwrap(), "seed {seed}: it leaves at its last crash, the kill");
        assert!(!outcome.observed_sources.contains(killed), "seed {seed}: the observer dropped {killed}");
        assert_eq!(outcome.observed_sources.len(), 3);
    }
}

/// Regression: with only safety expectations (or none) the run used to end the moment the
/// cooldown began; recovery must be watched for the whole cooldown.
#[test]
fn without_liveness_expectations_the_whole_cooldown_is_watched() {
    let plan = gauntlet::ScenarioBuilder::topology_with(|t| t.nodes("gossip", 3))
        .app("gossip")
        .named("no-liveness")
        .with_run_duration(Duration::from_secs(5))
        .with_cooldown(Duration::from_secs(7))
        .plan();
    let scenario = Scenario::new(GossipApp, plan).unwrap();
    let outcome = SimDeployer::default().run(&scenario, Seeds::new(1)).unwrap();
    assert!(outcome.trace.as_ref().unwrap().events().is_empty(), "events were not kept");
    assert!(outcome.verdict.passed());
    assert!(outcome.sim_time >= Duration::from_secs(12), "ran {:?}", outcome.sim_time);
    assert!(outcome.counts["send"] > 0, "counts are kept without keeping events");
}

#[test]
fn a_latency_tier_slows_every_message_to_and_from_its_members() {
    let plan = gauntlet::ScenarioBuilder::topology_with(|t| {
        t.nodes("gossip", 4)
            .tier(Duration::from_millis(50), &["gossip-0"])
            .link(gauntlet::sim::LinkConfig::fixed(Duration::from_millis(2)))
    })
    .app("gossip")
    .named("tiers")
    .with_run_duration(Duration::from_secs(3))
    .plan();
    let outcome = run(plan, 1);
    let mut sent = std::collections::BTreeMap::new();
    let (mut slow, mut fast) = (0, 0);
    for e in outcome.trace.as_ref().unwrap().events() {
        match &e.kind {
            EventKind::Send { msg, to, .. } => {
                sent.insert(*msg, (e.at, e.node.unwrap(), *to));
            }
            EventKind::Deliver { msg, copy: 0, .. } => {
                let (at, from, to) = sent[msg];
                let (from_i, to_i) = (from.0, to.0);
                // Members are ids 0..4; the observer (a client) is outside every tier.
                if from_i >= 4 || to_i >= 4 {
                    continue;
                }
                let took = e.at - at;
                if from_i == 0 || to_i == 0 {
                    assert!(took >= Duration::from_millis(50) && took < Duration::from_millis(51), "{took:?}");
                    slow += 1;
                } else {
                    assert!(took < Duration::from_millis(3), "{took:?}");
                    fast += 1;
                }
            }
            _ => {}
        }
    }
    assert!(slow > 50 && fast > 50, "both kinds of links carried messages: {slow} slow, {fast} fast");
}

#[test]
fn the_operation_mix_and_bursts_shape_the_offered_load() {
    let outcome = run(plans::gossip_smoke(), 4);
    let trace = outcome.trace.as_ref().unwrap();
    let count = |name: &str| {
        trace
            .events()
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::Op { op, phase: OpPhase::Invoke } if op == name))
            .count()
    };
    let (bumps, reads) = (count("bump"), count("read"));
    let share = bumps as f64 / (bumps + reads) as f64;
    assert!((share - 0.75).abs() < 0.06, "mix bump=3 read=1 gave {bumps} bumps and {reads} reads");

    let swarm = run(plans::gossip_swarm(), 4);
    let s = Duration::from_secs(1);
    let in_burst = invocations(&swarm, s * 5, s * 5 + Duration::from_millis(500));
    let before = invocations(&swarm, s * 4, s * 4 + Duration::from_millis(500));
    assert!(in_burst >= 50, "the burst of 50 (plus the 10/s base) landed in its half second: {in_burst}");
    assert!(before < 20, "half a second without a burst carries ~5: {before}");
}

mod scripts;
