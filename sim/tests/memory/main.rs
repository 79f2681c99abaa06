//! A run's world is freed when the run ends: every task future (node programs, the tasks they
//! spawn, the supervisor's tasks, the network driver) is dropped, so running many seeds in one
//! process does not grow its memory.
//!
//! The tests run one at a time (they share a lock, since the last one measures the process):
//! * `every_task_of_a_run_is_dropped_when_it_ends` and `a_panicking_run_is_dropped_too`:
//!   exact. Every kind of task that can still be pending when the run ends holds a clone of one
//!   `Arc`; after the run only the test's own reference may be left.
//! * `resident_memory_stays_flat_over_many_runs`: the process's resident set (`VmRSS`, Linux)
//!   after `GAUNTLET_MEMORY_RUNS` runs (default 60) is within 10% (+ 4 MiB) of what it was after
//!   a warm-up of 20 runs, each run keeping about 4 MB of node state alive until its end.
#![cfg(madsim)]

#[path = "../common/mod.rs"]
mod common;

use common::*;
use gauntlet_sim::time::{sleep, spawn, spawn_local};
use gauntlet_sim::{
    Fault, FaultSchedule, NodeContext, NodeId, NodeSpec, RunError, ScheduledFault, Sim, World, WorldBuilder,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Serializes the tests of this binary: the RSS test measures the whole process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

type Token = Arc<Vec<u8>>;

/// Adds nodes whose every task is still pending at the end, each holding `token`: programs
/// blocked in `recv` and tasks they spawned waiting for an answer that never comes (on nodes
/// `a`, `b`, `c`), and a node that exits, leaving a task behind (madsim kills it at the exit).
fn pending_nodes(mut b: WorldBuilder, token: &Token) -> WorldBuilder {
    for name in ["a", "b", "c"] {
        let token = token.clone();
        b = b.node(NodeSpec::new(name), move |ctx: NodeContext| {
            let token = token.clone();
            async move {
                let t = ctx.transport();
                let me = ctx.id();
                let (t2, token2) = (t.clone(), token.clone());
                spawn_local(async move {
                    let _hold = token2;
                    loop {
                        // Nobody answers requests: this waits until the end of the run.
                        let _ = t2.request(NodeId((me.0 + 1) % 3), &b"ping"[..], secs(3600)).await;
                    }
                });
                let _hold = token;
                loop {
                    let _ = t.recv().await;
                }
            }
        });
    }
    let token = token.clone();
    b.node(NodeSpec::new("exits"), move |_ctx: NodeContext| {
        let token = token.clone();
        async move {
            spawn(async move {
                let _hold = token;
                std::future::pending::<()>().await;
            });
            sleep(ms(10)).await;
        }
    })
}

/// Spawns supervisor tasks that never end, each holding `token` (through `Sim::spawn`,
/// `time::spawn_local` and a fault schedule), restarts `a`, pauses `c`, and returns after
/// `run_for` (if nothing ends the run first).
async fn supervise(sim: Sim, token: Token, run_for: Duration) {
    let held = token.clone();
    sim.spawn(async move {
        let _hold = held;
        std::future::pending::<()>().await;
    });
    let held = token.clone();
    spawn_local(async move {
        let _hold = held;
        loop {
            sleep(secs(1)).await;
        }
    });
    sim.spawn_schedule(FaultSchedule { entries: vec![ScheduledFault { at: secs(3600), fault: Fault::Heal }] }).unwrap();
    drop(token);
    sim.sleep(ms(300)).await;
    sim.apply(&Fault::Restart { node: "a".into() }).unwrap();
    sim.sleep(ms(200)).await;
    sim.apply(&Fault::Pause { node: "c".into() }).unwrap();
    sim.sleep(run_for).await;
}

fn assert_only_the_test_holds(token: &Token, what: &str) {
    assert_eq!(
        Arc::strong_count(token),
        1,
        "{what}: {} references to the token outlive the run (task futures kept after it ended)",
        Arc::strong_count(token) - 1
    );
}

#[test]
fn every_task_of_a_run_is_dropped_when_it_ends() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let token = Token::default();
    for seed in 0..5 {
        let world = pending_nodes(World::builder().seed(seed), &token).build().unwrap();
        let t = token.clone();
        let report = world.run(move |sim| supervise(sim, t.clone(), ms(100))).unwrap();
        assert!(report.trace.len() > 10, "the run did something");
        drop(world);
        assert_only_the_test_holds(&token, &format!("seed {seed}"));
    }
}

/// A run that ends in a panic (a node's, or the time limit) is torn down as well.
#[test]
fn a_panicking_run_is_dropped_too() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let token = Token::default();

    let panics = pending_nodes(World::builder().seed(1), &token).node(NodeSpec::new("panics"), |_ctx| async move {
        sleep(secs(1)).await;
        panic!("planted");
    });
    let t = token.clone();
    let err = panics.build().unwrap().run(move |sim| supervise(sim, t.clone(), secs(10))).unwrap_err();
    assert!(matches!(&err, RunError::Panic { message, .. } if message == "planted"), "{err}");
    assert_only_the_test_holds(&token, "a node's panic");

    let hangs = pending_nodes(World::builder().seed(2).time_limit(secs(2)), &token).build().unwrap();
    let t = token.clone();
    let err = hangs.run(move |sim| supervise(sim, t.clone(), secs(10))).unwrap_err();
    assert!(err.to_string().contains("time limit"), "{err}");
    drop(hangs);
    assert_only_the_test_holds(&token, "the time limit");
}

/// Resident set size of this process, in bytes (Linux `/proc/self/status`).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Runs, from the first seed to `GAUNTLET_MEMORY_RUNS` (default 60).
fn runs() -> u64 {
    std::env::var("GAUNTLET_MEMORY_RUNS").ok().and_then(|v| v.parse().ok()).unwrap_or(60)
}

/// A world of 4 nodes, each keeping 1 MB of state for the whole run.
fn heavy_world(seed: u64) -> World {
    let mut b = World::builder().seed(seed).keep_events(false);
    for name in ["a", "b", "c", "d"] {
        b = b.node(NodeSpec::new(name), move |ctx: NodeContext| async move {
            // Touched, so it is resident; different per node, so it cannot be shared.
            let state: Vec<u8> = (0..1u32 << 20).map(|i| (i ^ ctx.id().0) as u8).collect();
            let t = ctx.transport();
            loop {
                let m = t.recv().await;
                t.send(m.from, vec![state[m.body.len() % state.len()]]);
            }
        });
    }
    b.build().unwrap()
}

#[test]
fn resident_memory_stays_flat_over_many_runs() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if rss_bytes().is_none() {
        eprintln!("no /proc/self/status here: skipped");
        return;
    }
    const WARM_UP: u64 = 20;
    let total = runs().max(WARM_UP + 1);
    let mut after_warm_up = 0;
    for seed in 0..total {
        heavy_world(seed).run(|sim| async move { sim.sleep(ms(100)).await }).unwrap();
        if seed + 1 == WARM_UP {
            after_warm_up = rss_bytes().unwrap();
        }
    }
    let after = rss_bytes().unwrap();
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    eprintln!("VmRSS after {WARM_UP} runs: {:.1} MiB; after {total} runs: {:.1} MiB", mib(after_warm_up), mib(after));
    // 4 MiB of slack for the allocator (which arenas and size classes keep free pages varies a
    // little from run to run; measured: under 0.5 MiB), against about 4 MB per run that a
    // leak keeps (160 MB over the default 40 runs after the warm-up).
    let limit = after_warm_up + after_warm_up / 10 + (4 << 20);
    assert!(
        after <= limit,
        "resident memory grew from {:.1} MiB after {WARM_UP} runs to {:.1} MiB after {total} (limit {:.1} MiB): \
         runs are kept after they end",
        mib(after_warm_up),
        mib(after),
        mib(limit)
    );
}
