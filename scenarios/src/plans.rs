//! The plans under `scenarios/plans/`, also written with the builder: each file and its
//! builder call must give equal plans (tested over every file).

use crate::gossip::{GossipBuilderExt, GossipTopologyExt};
use gauntlet::plan::PartitionKind::*;
use gauntlet::{millis, secs, Plan, ScenarioBuilder};
use std::path::PathBuf;

/// The directory holding the plan files.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plans")
}

/// The ledger's scenario catalogue: every `ledger-*.toml` under [`dir`], by file stem, loaded
/// from its file (these plans are written as TOML only; the gossip and raft-kv ones also have
/// builder equivalents, in [`all`]). Panics with the file's error if one does not load: the
/// catalogue ships with the crate.
pub fn ledger() -> Vec<(String, Plan)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("the plans directory ships with the crate")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|e| e == "toml")
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ledger-"))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            let plan = Plan::load(&f).unwrap_or_else(|e| panic!("{e}"));
            (stem, plan)
        })
        .collect()
}

/// Every plan file's stem with its builder equivalent (the ledger's catalogue is TOML only:
/// see [`ledger`]).
pub fn all() -> Vec<(&'static str, Plan)> {
    let mut v = gossip();
    v.extend(kv());
    v.extend(pbkv());
    v
}

/// The pb-kv plans.
pub fn pbkv() -> Vec<(&'static str, Plan)> {
    vec![("pb-kv-crash", pb_kv_crash())]
}

/// `pb-kv-crash.toml`: the primary restarts every 1-2.5 s under partitions and 2% loss; every
/// request and log shipment is HTTP over simulated streams.
pub fn pb_kv_crash() -> Plan {
    ScenarioBuilder::topology_with(|t| t.nodes("primary", 1).nodes("backup", 2).fsync(millis(5)))
        .named("pb-kv-crash")
        .app("pb-kv")
        .with_run_duration(secs(10))
        .with_cooldown(secs(5))
        .workloads_in_cooldown(true)
        .workload_with("clients", |w| w.rate(30.0).users(4).mix("get", 1).mix("put", 1))
        .chaos_with(|c| {
            c.start(secs(1))
                .loss(0.02)
                .restart()
                .roles(&["primary"])
                .min_delay(secs(1))
                .max_delay(millis(2500))
                .and()
                .partition(&[OneWay, Minority])
                .min_delay(secs(1))
                .max_delay(secs(3))
                .min_duration(millis(300))
                .max_duration(millis(1500))
        })
        .expect_with("linearizable", |p| p.param("model", "kv"))
        .expect_with("progress", |p| p.param("min_ops", 20))
        .expect_convergence()
        .plan()
}

/// The gossip plans.
pub fn gossip() -> Vec<(&'static str, Plan)> {
    vec![
        ("gossip-smoke", gossip_smoke()),
        ("gossip-load-progression", gossip_load_progression()),
        ("gossip-swarm", gossip_swarm()),
    ]
}

/// The raft-kv plans.
pub fn kv() -> Vec<(&'static str, Plan)> {
    vec![
        ("kv-partition", kv_partition()),
        ("kv-failover", kv_failover()),
        ("kv-skew", kv_skew()),
        ("kv-leader-partition", kv_leader_partition()),
        ("kv-leader-sparse", kv_leader_sparse()),
        ("kv-vote-restart", kv_vote_restart()),
    ]
}

/// What every raft-kv plan shares: `replicas` nodes with this fsync time, 20 s of 40 ops/s
/// from 5 users (the operation `mix`) that keep running through a 10 s cooldown.
fn kv_base(name: &str, replicas: u32, fsync: std::time::Duration, mix: &[(&str, u32)]) -> ScenarioBuilder {
    ScenarioBuilder::topology_with(|t| t.nodes("replica", replicas).fsync(fsync))
        .named(name)
        .app("raft-kv")
        .with_run_duration(secs(20))
        .with_cooldown(secs(10))
        .workloads_in_cooldown(true)
        .workload_with("clients", |w| mix.iter().fold(w.rate(40.0).users(5), |w, &(op, n)| w.mix(op, n)))
}

/// The expectations every raft-kv plan has.
fn kv_expectations(b: ScenarioBuilder) -> ScenarioBuilder {
    b.expect("linearizable")
        .expect("one_leader_per_term")
        .expect_with("progress", |p| p.param("min_ops", 10))
        .expect_convergence()
}

/// `kv-partition.toml`.
pub fn kv_partition() -> Plan {
    let b = kv_base("kv-partition", 5, millis(5), &[("get", 2), ("put", 2), ("cas", 1)]).chaos_with(|c| {
        c.start(secs(2))
            .loss(0.01)
            .partition(&[RandomHalves, Minority, MajorityRing, Bridge, OneWay])
            .min_delay(secs(2))
            .max_delay(secs(4))
            .min_duration(secs(1))
            .max_duration(secs(3))
            .and()
            .restart()
            .min_delay(secs(2))
            .max_delay(secs(5))
            .down(millis(500))
    });
    kv_expectations(b).plan()
}

/// `gossip-smoke.toml`.
pub fn gossip_smoke() -> Plan {
    ScenarioBuilder::topology_with(|t| t.gossipers(5))
        .named("gossip-smoke")
        .describe("gossip-max under restarts, partitions and loss converges once faults stop")
        .gossip()
        .fanout(2)
        .app_option("bump_until", "15s")
        .with_run_duration(secs(20))
        .with_cooldown(secs(10))
        .workload_with("bumps", |w| w.rate(20.0).users(5).mix("bump", 3).mix("read", 1))
        .chaos_with(|c| {
            c.start(secs(2))
                .loss(0.01)
                .restart()
                .min_delay(secs(3))
                .max_delay(secs(6))
                .target_cooldown(secs(8))
                .and()
                .partition(&[RandomHalves, Minority, MajorityRing, Bridge, OneWay])
                .min_delay(secs(4))
                .max_delay(secs(8))
                .min_duration(secs(1))
                .max_duration(secs(3))
        })
        .expect_convergence()
        .expect("bumps_raise")
        .plan()
}

/// `gossip-load-progression.toml`.
pub fn gossip_load_progression() -> Plan {
    ScenarioBuilder::topology_with(|t| t.network_star().gossipers(3))
        .named("gossip-load-progression")
        .gossip()
        .with_run_duration(secs(15))
        .with_cooldown(secs(5))
        .workload_with("ramp", |w| {
            w.users(10)
                .arrival(gauntlet::plan::Arrival::Uniform)
                .mix("bump", 1)
                .step(10.0, secs(5))
                .step(40.0, secs(5))
                .step(80.0, secs(5))
        })
        .workloads_in_cooldown(true)
        .expect_with("progress", |p| p.param("min_ops", 20))
        .plan()
}

/// `gossip-swarm.toml`.
pub fn gossip_swarm() -> Plan {
    ScenarioBuilder::topology_with(|t| t.gossipers(5))
        .named("gossip-swarm")
        .gossip()
        .app_option("bump_until", "12s")
        .with_run_duration(secs(15))
        .with_cooldown(secs(15))
        .workload_with("bumps", |w| w.rate(10.0).burst(secs(5), 50, millis(500)))
        .chaos_with(|c| {
            c.swarm()
                .start(secs(1))
                .latency_tiers(&[millis(10), millis(100), millis(300)])
                .loss(0.02)
                .duplicate(0.01)
                .clock_skew(millis(500), 200, None)
                .restart()
                .min_delay(secs(2))
                .max_delay(secs(4))
                .target_cooldown(secs(5))
                .down(millis(500))
                .and()
                .pause()
                .min_delay(secs(3))
                .max_delay(secs(5))
                .min_duration(millis(500))
                .max_duration(millis(1500))
                .and()
                .partition(&[RandomHalves, MajorityRing])
                .min_delay(secs(3))
                .max_delay(secs(5))
                .min_duration(secs(1))
                .max_duration(secs(2))
                .and()
                .churn("gossip")
                .min_delay(secs(2))
                .max_delay(secs(4))
                .joins(2)
                .leaves(1)
        })
        .expect_convergence()
        .plan()
}

/// `kv-failover.toml`.
pub fn kv_failover() -> Plan {
    let b = kv_base("kv-failover", 3, millis(10), &[("get", 2), ("put", 2), ("cas", 1)]).chaos_with(|c| {
        c.start(secs(1))
            .loss(0.02)
            .power_loss(secs(3), secs(6), millis(200))
            .restart()
            .min_delay(millis(300))
            .max_delay(secs(1))
            .and()
            .partition(&[OneWay, Minority])
            .min_delay(secs(1))
            .max_delay(secs(3))
            .min_duration(millis(300))
            .max_duration(secs(1))
    });
    kv_expectations(b).plan()
}

/// `kv-skew.toml`.
pub fn kv_skew() -> Plan {
    let b = kv_base("kv-skew", 5, millis(5), &[("get", 3), ("put", 2), ("cas", 1)]).chaos_with(|c| {
        c.start(secs(1))
            .clock_jumps(secs(2), 100_000, millis(200), secs(1))
            .pause()
            .min_delay(secs(1))
            .max_delay(secs(3))
            .min_duration(millis(300))
            .max_duration(millis(1500))
            .and()
            .partition(&[Minority])
            .min_delay(secs(2))
            .max_delay(secs(4))
            .min_duration(secs(1))
            .max_duration(secs(3))
    });
    kv_expectations(b).plan()
}

/// `kv-leader-partition.toml`.
pub fn kv_leader_partition() -> Plan {
    let b = kv_base("kv-leader-partition", 3, millis(10), &[("get", 12), ("put", 1)]).chaos_with(|c| {
        c.start(secs(1))
            .partition(&[Leader])
            .min_delay(millis(500))
            .max_delay(millis(1500))
            .min_duration(millis(500))
            .max_duration(millis(1500))
    });
    kv_expectations(b).plan()
}

/// `kv-leader-sparse.toml`.
pub fn kv_leader_sparse() -> Plan {
    let b = kv_base("kv-leader-sparse", 3, millis(10), &[("get", 12), ("put", 1)]).chaos_with(|c| {
        c.start(secs(1))
            .partition(&[Leader])
            .min_delay(secs(2))
            .max_delay(secs(4))
            .min_duration(millis(500))
            .max_duration(millis(1500))
    });
    kv_expectations(b).plan()
}

/// `kv-vote-restart.toml`: 10 s of light load (20 ops/s from 2 users) while a replica restarts
/// every 0.2-0.6 s and one-way cuts come and go.
pub fn kv_vote_restart() -> Plan {
    let b = ScenarioBuilder::topology_with(|t| t.nodes("replica", 3).fsync(millis(10)))
        .named("kv-vote-restart")
        .app("raft-kv")
        .with_run_duration(secs(10))
        .with_cooldown(secs(5))
        .workloads_in_cooldown(true)
        .workload_with("clients", |w| w.rate(20.0).users(2).mix("get", 2).mix("put", 2))
        .chaos_with(|c| {
            c.start(millis(500))
                .restart()
                .min_delay(millis(200))
                .max_delay(millis(600))
                .and()
                .partition(&[OneWay])
                .min_delay(millis(300))
                .max_delay(secs(1))
                .min_duration(millis(200))
                .max_duration(millis(800))
        });
    kv_expectations(b).plan()
}
