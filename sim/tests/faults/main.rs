//! Each fault kind, observed from inside the nodes it hits.

#![cfg(madsim)]

use crate::common;

use common::*;
use gauntlet_sim::time::{elapsed, sleep};
use gauntlet_sim::{EventKind, Fault, FaultSchedule, Latency, LinkConfig, NodeId, NodeSpec, RunError, World};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const A: NodeId = NodeId(0);
const B: NodeId = NodeId(1);
const C: NodeId = NodeId(2);

fn three_pingers(link: LinkConfig, log: &Log<Receipt>) -> gauntlet_sim::WorldBuilder {
    let mut b = World::builder().seed(11).default_link(link);
    for name in ["a", "b", "c"] {
        b = b.node(NodeSpec::new(name), pinger(ms(10), None, log.clone()));
    }
    b
}

fn receipts_between(log: &Log<Receipt>, from: NodeId, to: NodeId, lo: Duration, hi: Duration) -> usize {
    log.lock().unwrap().iter().filter(|r| r.from == from && r.to == to && r.at >= lo && r.at < hi).count()
}

#[test]
fn partition_drops_messages_across_the_cut_and_heal_restores_them() {
    let log = log();
    let world = three_pingers(LinkConfig::fixed(ms(5)), &log).build().unwrap();
    let schedule = FaultSchedule::new()
        .at(secs(1), Fault::Partition { groups: vec![vec!["a".into()], vec!["b".into(), "c".into()]] })
        .at(secs(2), Fault::Heal);
    world
        .run(move |sim| {
            let s = schedule.clone();
            async move {
                sim.spawn_schedule(s).unwrap();
                sim.sleep(secs(3)).await
            }
        })
        .unwrap();
    // Before and after: ~100 pings a second each way. During: none across the cut, but b<->c flows.
    assert!(receipts_between(&log, A, B, ms(0), secs(1)) >= 95);
    assert_eq!(receipts_between(&log, A, B, ms(1000), ms(2000)), 0);
    assert_eq!(receipts_between(&log, B, A, ms(1000), ms(2000)), 0);
    assert_eq!(receipts_between(&log, C, A, ms(1000), ms(2000)), 0);
    assert!(receipts_between(&log, B, C, ms(1000), ms(2000)) >= 95, "same side keeps talking");
    assert!(receipts_between(&log, A, B, ms(2010), secs(3)) >= 95, "heal restores a->b");
    assert!(receipts_between(&log, B, A, ms(2010), secs(3)) >= 95, "heal restores b->a");
}

#[test]
fn a_one_way_cut_is_one_way() {
    let log = log();
    let world = three_pingers(LinkConfig::fixed(ms(5)), &log).build().unwrap();
    world
        .run(|sim| async move {
            sim.sleep(secs(1)).await;
            sim.apply(&Fault::CutOneWay { from: "a".into(), to: "b".into() }).unwrap();
            sim.sleep(secs(1)).await;
        })
        .unwrap();
    assert_eq!(receipts_between(&log, A, B, ms(1000), ms(2000)), 0, "a -> b is cut");
    assert!(receipts_between(&log, B, A, ms(1000), ms(2000)) >= 95, "b -> a still flows");
    assert!(receipts_between(&log, A, C, ms(1000), ms(2000)) >= 95, "a -> c still flows");
}

#[test]
fn crash_loses_unsynced_writes_keeps_synced_ones_and_restart_reruns_the_program() {
    let seen: Log<(u32, Vec<u8>)> = log();
    let report = seen.clone();
    let world = World::builder()
        .seed(3)
        .node(NodeSpec::new("disk"), move |ctx| {
            let report = report.clone();
            async move {
                let disk = ctx.disk();
                let before = disk.read("wal").unwrap_or_default();
                report.lock().unwrap().push((ctx.incarnation(), before));
                disk.append("wal", b"synced;").unwrap();
                disk.sync("wal").await.unwrap();
                disk.append("wal", b"unsynced;").unwrap();
                std::future::pending::<()>().await;
            }
        })
        .build()
        .unwrap();
    world
        .run(|sim| async move {
            sim.sleep(secs(1)).await;
            sim.apply(&Fault::Crash { node: "disk".into() }).unwrap();
            assert_eq!(sim.status(NodeId(0)), gauntlet_sim::NodeStatus::Crashed);
            sim.sleep(secs(1)).await;
            sim.apply(&Fault::Restart { node: "disk".into() }).unwrap();
            sim.sleep(secs(1)).await;
            // Restarting a running node crashes it first.
            sim.apply(&Fault::Restart { node: "disk".into() }).unwrap();
            sim.sleep(secs(1)).await;
        })
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![(0, b"".to_vec()), (1, b"synced;".to_vec()), (2, b"synced;synced;".to_vec())],
        "the program ran three times; only synced writes survived each crash"
    );
}

#[test]
fn torn_writes_keep_a_prefix_of_the_first_unsynced_write() {
    let seen: Log<Vec<u8>> = log();
    let report = seen.clone();
    let mut torn_seen = false;
    for seed in 0..20 {
        seen.lock().unwrap().clear();
        let report = report.clone();
        World::builder()
            .seed(seed)
            .torn_writes(true)
            .node(NodeSpec::new("disk"), move |ctx| {
                let report = report.clone();
                async move {
                    let disk = ctx.disk();
                    report.lock().unwrap().push(disk.read("f").unwrap_or_default());
                    if ctx.incarnation() == 0 {
                        disk.write("f", 0, b"base").unwrap();
                        disk.sync("f").await.unwrap();
                        disk.append("f", b"0123456789").unwrap();
                    }
                    std::future::pending::<()>().await;
                }
            })
            .build()
            .unwrap()
            .run(|sim| async move {
                sim.sleep(secs(1)).await;
                sim.restart(NodeId(0));
                sim.sleep(secs(1)).await;
            })
            .unwrap();
        let after = seen.lock().unwrap()[1].clone();
        assert!(after.starts_with(b"base") && b"base0123456789".starts_with(&after[..]), "{after:?}");
        torn_seen |= after.len() > 4;
    }
    assert!(torn_seen, "some seed tore in part of the unsynced write");
}

#[test]
fn messages_in_flight_to_a_crashed_node_are_dropped_even_if_it_restarts_first() {
    let log = log();
    let world = World::builder()
        .seed(5)
        .default_link(LinkConfig::fixed(ms(100)))
        .node(NodeSpec::new("a"), pinger(ms(1000), Some(B), log.clone()))
        .node(NodeSpec::new("b"), pinger(ms(1000), Some(A), log.clone()))
        .build()
        .unwrap();
    let report = world
        .run(|sim| async move {
            // a sends seq 0 at t=0, arriving at t=100ms. b crashes at 50 ms, is back at 60 ms.
            sim.sleep(ms(50)).await;
            sim.crash(B);
            sim.sleep(ms(10)).await;
            sim.restart(B);
            sim.sleep(ms(1500)).await;
        })
        .unwrap();
    let got: Vec<u64> = log.lock().unwrap().iter().filter(|r| r.to == B).map(|r| r.seq).collect();
    assert_eq!(got, vec![1], "seq 0 was in flight to the old incarnation");
    let drops = report
        .trace
        .events()
        .iter()
        .filter(|e| {
            matches!(e.kind, gauntlet_sim::EventKind::Drop { reason: gauntlet_sim::trace::DropReason::NodeDown, .. })
        })
        .count();
    assert_eq!(drops, 1);
}

#[test]
fn pause_delays_timers_and_holds_messages_until_resume() {
    let ticks: Log<Duration> = log();
    let t2 = ticks.clone();
    let log = log();
    let world = World::builder()
        .seed(9)
        .default_link(LinkConfig::fixed(ms(5)))
        .node(NodeSpec::new("ticker"), move |ctx| {
            let ticks = t2.clone();
            async move {
                let t = ctx.transport();
                gauntlet_sim::time::spawn(async move {
                    loop {
                        let _ = t.recv().await;
                    }
                });
                loop {
                    sleep(ms(100)).await;
                    ticks.lock().unwrap().push(elapsed());
                }
            }
        })
        .node(NodeSpec::new("b"), pinger(ms(10), Some(A), log.clone()))
        .build()
        .unwrap();
    let report = world
        .run(|sim| async move {
            sim.sleep(ms(1050)).await;
            sim.apply(&Fault::Pause { node: "ticker".into() }).unwrap();
            sim.sleep(ms(500)).await;
            sim.apply(&Fault::Resume { node: "ticker".into() }).unwrap();
            sim.sleep(ms(500)).await;
        })
        .unwrap();
    let ticks = ticks.lock().unwrap().clone();
    assert!(!ticks.iter().any(|t| *t > ms(1050) && *t < ms(1550)), "no tick while paused: {ticks:?}");
    let first_after = *ticks.iter().find(|t| **t > ms(1050)).unwrap();
    assert!(first_after >= ms(1550) && first_after < ms(1551), "the overdue timer fires at resume: {ticks:?}");
    // Messages that arrived while paused are delivered at the resume instant, not before.
    let delivered_to_ticker: Vec<Duration> = report
        .trace
        .events()
        .iter()
        .filter(|e| e.node == Some(A) && matches!(e.kind, gauntlet_sim::EventKind::Deliver { .. }))
        .map(|e| e.at)
        .collect();
    assert!(!delivered_to_ticker.iter().any(|t| *t > ms(1050) && *t < ms(1550)));
    let released = delivered_to_ticker.iter().filter(|t| **t >= ms(1550) && **t < ms(1551)).count();
    assert!(released >= 45, "held messages released at resume, got {released}");
}

#[test]
fn clock_skew_and_drift_shift_only_the_skewed_nodes_clock() {
    let readings: Log<(NodeId, Duration, i128, Duration)> = log();
    let r2 = readings.clone();
    let program = move |ctx: gauntlet_sim::NodeContext| {
        let readings = r2.clone();
        async move {
            loop {
                sleep(secs(1)).await;
                let wall = ctx.clock().now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i128;
                readings.lock().unwrap().push((ctx.id(), elapsed(), wall, ctx.clock().monotonic()));
            }
        }
    };
    World::builder()
        .seed(1)
        .node(NodeSpec::new("a"), program.clone())
        .node(NodeSpec::new("b"), program)
        .build()
        .unwrap()
        .run(|sim| async move {
            sim.sleep(ms(1500)).await;
            sim.apply(&Fault::ClockSkew { node: "a".into(), offset_ms: 1000, drift_ppm: 1000 }).unwrap();
            sim.sleep(ms(10_000)).await;
        })
        .unwrap();
    let r = readings.lock().unwrap().clone();
    // Each reading is (node, true time, wall nanos, monotonic); compare each node's clock with
    // true time, so the tiny scheduling jitter between the two nodes' reads cancels out.
    let skew = |n: NodeId, second: u64| {
        let x = r.iter().filter(|x| x.0 == n).nth(second as usize - 1).unwrap();
        let wall_minus_true = x.2 - gauntlet_sim::clock::SIM_EPOCH_UNIX_NANOS - x.1.as_nanos() as i128;
        let mono_minus_true = x.3.as_nanos() as i128 - x.1.as_nanos() as i128;
        (wall_minus_true, mono_minus_true)
    };
    assert_eq!(skew(A, 1), (0, 0), "no skew before the fault");
    assert_eq!(skew(B, 1), (0, 0));
    // At ~11 s: 1 s offset plus ~9.5 s of drift at 1000 ppm = ~9.5 ms; b is untouched.
    let (wall, mono) = skew(A, 11);
    assert!((1_009_490_000..1_009_510_000).contains(&wall), "wall skew {wall}");
    assert!((9_490_000..9_510_000).contains(&mono), "monotonic drift without the offset: {mono}");
    assert_eq!(skew(B, 11), (0, 0));
}

/// The sequence numbers node `rx` receives, in arrival order, when `tx` sends it `n`
/// messages 1 ms apart.
fn stream(link: LinkConfig, n: u64, seed: u64) -> Vec<u64> {
    let got: Log<u64> = log();
    let g2 = got.clone();
    World::builder()
        .seed(seed)
        .default_link(link)
        .node(NodeSpec::new("tx"), move |ctx| async move {
            for seq in 0..n {
                ctx.transport().send(B, seq.to_le_bytes().to_vec());
                sleep(ms(1)).await;
            }
        })
        .node(NodeSpec::new("rx"), move |ctx| {
            let got = g2.clone();
            async move {
                loop {
                    let m = ctx.transport().recv().await;
                    got.lock().unwrap().push(u64::from_le_bytes(m.body[..8].try_into().unwrap()));
                }
            }
        })
        .build()
        .unwrap()
        .run(move |sim| async move { sim.sleep(ms(2) * n as u32 + secs(1)).await })
        .unwrap();
    let got = got.lock().unwrap().clone();
    got
}

#[test]
fn duplication_happens_at_about_its_configured_rate() {
    let got = stream(LinkConfig::fixed(ms(2)).duplicate(0.1), 10_000, 1);
    let unique: std::collections::BTreeSet<u64> = got.iter().copied().collect();
    assert_eq!(unique.len(), 10_000, "nothing lost");
    let dup_rate = (got.len() - unique.len()) as f64 / unique.len() as f64;
    assert!((0.085..0.115).contains(&dup_rate), "duplication rate {dup_rate}");
}

#[test]
fn reordering_happens_at_about_its_configured_rate() {
    let got = stream(LinkConfig::fixed(ms(2)).reorder(0.2, ms(50)), 10_000, 2);
    assert_eq!(got.len(), 10_000);
    // A message is late if something sent after it arrived first.
    let mut max_seen = None;
    let mut late = 0;
    for &s in &got {
        match max_seen {
            Some(m) if s < m => late += 1,
            _ => max_seen = Some(s),
        }
    }
    let rate = late as f64 / got.len() as f64;
    assert!((0.17..0.23).contains(&rate), "reorder rate {rate}");
    let sorted = {
        let mut g = got.clone();
        g.sort();
        g
    };
    assert_eq!(sorted, (0..10_000).collect::<Vec<_>>(), "reordering neither loses nor duplicates");
}

#[test]
fn loss_happens_at_about_its_configured_rate() {
    let got = stream(LinkConfig::fixed(ms(2)).loss(0.05), 10_000, 3);
    let rate = 1.0 - got.len() as f64 / 10_000.0;
    assert!((0.04..0.06).contains(&rate), "loss rate {rate}");
}

#[test]
fn latency_models_are_respected_and_changeable_at_run_time() {
    let log = log();
    let world = World::builder()
        .seed(4)
        .default_link(LinkConfig::fixed(ms(3)))
        .node(NodeSpec::new("tx"), pinger(ms(10), Some(B), log.clone()))
        .node(NodeSpec::new("rx"), pinger(secs(1_000_000), Some(B), log.clone()))
        .build()
        .unwrap();
    let report = world
        .run(|sim| async move {
            sim.sleep(ms(1000)).await;
            let slow = LinkConfig::default().latency(Latency::long_tail(ms(50), ms(300), 1.5));
            sim.apply(&Fault::SetLink { from: Some("tx".into()), to: Some("rx".into()), link: slow }).unwrap();
            sim.sleep(ms(2000)).await;
        })
        .unwrap();
    // Latency as the trace sees it: deliver time minus send time of the same message. Delivery
    // happens when the network task runs, which madsim charges 50-100 ns of simulated time per
    // task poll: allow 50 us of such slack.
    let slack = Duration::from_micros(50);
    let events = report.trace.events();
    let mut sent_at = std::collections::BTreeMap::new();
    let (mut before, mut after) = (0, 0);
    for e in events {
        match e.kind {
            EventKind::Send { msg, .. } => {
                sent_at.insert(msg, e.at);
            }
            EventKind::Deliver { msg, .. } => {
                let sent = sent_at[&msg];
                let latency = e.at - sent;
                if sent < ms(1000) {
                    assert!(
                        latency >= ms(3) && latency <= ms(3) + slack,
                        "fixed latency before the change: {latency:?}"
                    );
                    before += 1;
                } else if sent > ms(1001) {
                    assert!(
                        latency >= ms(50) && latency <= ms(300) + slack,
                        "long tail within bounds, got {latency:?}"
                    );
                    after += 1;
                }
            }
            _ => {}
        }
    }
    assert!(before > 90 && after > 150, "{before} {after}");
}

#[test]
fn requests_get_responses_and_time_out_across_a_partition() {
    let results: Log<(Duration, bool)> = log();
    let r2 = results.clone();
    World::builder()
        .seed(8)
        .default_link(LinkConfig::fixed(ms(5)))
        .node(NodeSpec::new("server"), |ctx| async move {
            let t = ctx.transport();
            loop {
                let m = t.recv().await;
                let mut body = m.body.to_vec();
                body.reverse();
                t.reply(m.reply_to.expect("a request"), body);
            }
        })
        .node(NodeSpec::new("client"), move |ctx| {
            let results = r2.clone();
            async move {
                let t = ctx.transport();
                loop {
                    let r = t.request(A, &b"abc"[..], ms(100)).await;
                    if let Ok(body) = &r {
                        assert_eq!(&body[..], b"cba");
                    }
                    results.lock().unwrap().push((elapsed(), r.is_ok()));
                    sleep(ms(100)).await;
                }
            }
        })
        .build()
        .unwrap()
        .run(|sim| async move {
            sim.sleep(secs(1)).await;
            sim.apply(&Fault::Partition { groups: vec![vec!["server".into()], vec!["client".into()]] }).unwrap();
            sim.sleep(secs(1)).await;
            sim.apply(&Fault::Heal).unwrap();
            sim.sleep(secs(1)).await;
        })
        .unwrap();
    let r = results.lock().unwrap().clone();
    assert!(r.iter().filter(|(t, _)| *t < secs(1)).all(|(_, ok)| *ok));
    assert!(r.iter().filter(|(t, _)| *t > ms(1010) && *t < secs(2)).all(|(_, ok)| !*ok));
    assert!(r.iter().filter(|(t, _)| *t > ms(2200)).all(|(_, ok)| *ok));
    assert!(r.len() > 20);
}

#[test]
fn churn_adds_a_node_that_joins_the_conversation() {
    let log = log();
    let l2 = log.clone();
    World::builder()
        .seed(2)
        .node(NodeSpec::new("a"), pinger(ms(10), None, log.clone()))
        .node(NodeSpec::new("b"), pinger(ms(10), None, log.clone()))
        .build()
        .unwrap()
        .run(move |sim| {
            let l2 = l2.clone();
            async move {
                sim.sleep(secs(1)).await;
                let c = sim.add_node(NodeSpec::new("c").role("late"), pinger(ms(10), None, l2)).unwrap();
                assert_eq!(c, C);
                assert!(sim.add_node(NodeSpec::new("c"), |_ctx| async {}).is_err(), "names stay unique");
                sim.sleep(secs(1)).await;
                sim.crash(c); // and leaves for good
                sim.sleep(secs(1)).await;
            }
        })
        .unwrap();
    assert!(receipts_between(&log, C, A, secs(1), secs(2)) >= 95);
    assert!(receipts_between(&log, C, B, secs(1), secs(2)) >= 95, "c learns its peers when it starts");
    assert_eq!(receipts_between(&log, C, A, ms(2010), secs(3)), 0);
}

#[test]
fn unknown_nodes_in_faults_are_errors_that_list_the_known_nodes() {
    World::builder()
        .seed(0)
        .node(NodeSpec::new("a"), |_ctx| async {})
        .build()
        .unwrap()
        .run(|sim| async move {
            let err = sim.apply(&Fault::Crash { node: "zed".into() }).unwrap_err().to_string();
            assert_eq!(err, "invalid world: unknown node \"zed\"; the world has: a");
            let bad = FaultSchedule::new().at(secs(1), Fault::CutOneWay { from: "a".into(), to: "q".into() });
            let err = sim.spawn_schedule(bad).unwrap_err().to_string();
            assert!(err.contains("schedule[0]: unknown node \"q\""), "{err}");
        })
        .unwrap();
}

#[test]
fn a_node_panic_is_a_run_error_naming_the_node_and_the_seed() {
    let err = World::builder()
        .seed(77)
        .node(NodeSpec::new("ok"), |_ctx| async {})
        .node(NodeSpec::new("boom"), |_ctx| async move {
            sleep(ms(5)).await;
            panic!("invariant broken: term went backwards");
        })
        .build()
        .unwrap()
        .run(|sim| async move { sim.sleep(secs(1)).await })
        .unwrap_err();
    match &err {
        RunError::Panic { who, message, at, .. } => {
            assert_eq!(who, "node \"boom\"");
            assert_eq!(message, "invariant broken: term went backwards");
            let at = at.expect("a node's panic has a time");
            assert!(at >= ms(5) && at < ms(6), "panicked at {at:?}");
        }
        other => panic!("expected a panic error, got {other}"),
    }
    assert!(err.to_string().starts_with("SIM_SEED=77: node \"boom\" panicked"), "{err}");
}

#[test]
fn the_trace_bound_is_an_error() {
    let log = log();
    let err = World::builder()
        .seed(1)
        .max_trace_events(1000)
        .node(NodeSpec::new("a"), pinger(ms(1), None, log.clone()))
        .node(NodeSpec::new("b"), pinger(ms(1), None, log))
        .build()
        .unwrap()
        .run(|sim| async move { sim.sleep(secs(5)).await })
        .unwrap_err();
    assert!(err.to_string().contains("trace limit exceeded: the run recorded more than 1000 events"), "{err}");
}

#[test]
fn buggify_is_deterministic_and_off_by_default() {
    let fired = |seed: u64, on: bool| {
        let hits = Arc::new(Mutex::new(0u32));
        let h2 = hits.clone();
        let mut b = World::builder().seed(seed);
        if on {
            b = b.buggify(1.0, 0.1);
        }
        b.node(NodeSpec::new("a"), move |_ctx| {
            let hits = h2.clone();
            async move {
                for _ in 0..1000 {
                    if gauntlet_sim::buggify!() {
                        *hits.lock().unwrap() += 1;
                    }
                    sleep(ms(1)).await;
                }
            }
        })
        .build()
        .unwrap()
        .run(|sim| async move { sim.sleep(secs(2)).await })
        .unwrap();
        let n = *hits.lock().unwrap();
        n
    };
    assert_eq!(fired(1, false), 0);
    let n = fired(1, true);
    assert!((60..140).contains(&n), "fires ~10% of calls: {n}");
    assert_eq!(n, fired(1, true), "same seed, same decisions");
    let others: Vec<u32> = (2..6).map(|s| fired(s, true)).collect();
    assert!(others.iter().any(|&m| m != n), "other seeds decide differently: {n} vs {others:?}");
}

#[test]
fn duplicate_node_names_and_bad_links_are_rejected_at_build() {
    let err = World::builder()
        .seed(0)
        .default_link(LinkConfig::default().loss(2.0))
        .node(NodeSpec::new("a"), |_ctx| async {})
        .node(NodeSpec::new("a"), |_ctx| async {})
        .build()
        .err()
        .expect("invalid")
        .to_string();
    assert_eq!(
        err,
        "invalid world: duplicate node name \"a\"; default_link.loss: probability must be in [0, 1], got 2"
    );
}

#[test]
fn a_rejected_fault_changes_nothing_and_leaves_no_trace() {
    let report = World::builder()
        .seed(0)
        .node(NodeSpec::new("a"), |_ctx| async {})
        .build()
        .unwrap()
        .run(|sim| async move {
            assert!(sim.apply(&Fault::CutOneWay { from: "a".into(), to: "nobody".into() }).is_err());
            assert!(sim.apply(&Fault::Partition { groups: vec![vec!["a".into()], vec!["a".into()]] }).is_err());
            sim.sleep(ms(10)).await;
        })
        .unwrap();
    assert!(!report.trace.events().iter().any(|e| matches!(e.kind, EventKind::Fault { .. })));
}

#[test]
fn a_node_added_during_a_partition_joins_the_rest_group() {
    let log = log();
    let l2 = log.clone();
    World::builder()
        .seed(6)
        .default_link(LinkConfig::fixed(ms(5)))
        .node(NodeSpec::new("a"), pinger(ms(10), None, log.clone()))
        .node(NodeSpec::new("b"), pinger(ms(10), None, log.clone()))
        .build()
        .unwrap()
        .run(move |sim| {
            let l2 = l2.clone();
            async move {
                // a alone; b is in the implicit rest group, and so is c when it joins.
                sim.apply(&Fault::Partition { groups: vec![vec!["a".into()]] }).unwrap();
                sim.add_node(NodeSpec::new("c"), pinger(ms(10), None, l2)).unwrap();
                sim.sleep(secs(1)).await;
            }
        })
        .unwrap();
    assert_eq!(receipts_between(&log, C, A, ms(0), secs(1)), 0, "c is cut from a");
    assert!(receipts_between(&log, C, B, ms(0), secs(1)) >= 95, "c talks to its own group");
}

#[test]
fn scheduled_faults_fire_at_their_exact_times_even_under_a_millisecond_apart() {
    let report = World::builder()
        .seed(0)
        .node(NodeSpec::new("a"), |_ctx| std::future::pending::<()>())
        .build()
        .unwrap()
        .run(|sim| async move {
            let us = Duration::from_micros;
            let s = FaultSchedule::new().at(us(1_000_000), Fault::Heal).at(us(1_000_400), Fault::ResetLinks);
            sim.spawn_schedule(s).unwrap();
            sim.sleep(us(1_000_100)).await;
            let t = sim.now();
            assert!(t >= us(1_000_100) && t < us(1_000_110), "the supervisor's sleep is exact: {t:?}");
            // User code in with_chaos_rng may call back into the world.
            sim.with_chaos_rng(|_| sim.annotate("from inside the chaos stream"));
            sim.sleep(secs(1)).await;
        })
        .unwrap();
    let at: Vec<Duration> =
        report.trace.events().iter().filter(|e| matches!(e.kind, EventKind::Fault { .. })).map(|e| e.at).collect();
    assert_eq!(at.len(), 2);
    assert!(at[0] >= Duration::from_micros(1_000_000) && at[0] < Duration::from_micros(1_000_010), "{at:?}");
    assert!(at[1] >= Duration::from_micros(1_000_400) && at[1] < Duration::from_micros(1_000_410), "{at:?}");
}

#[test]
fn a_long_pause_holds_at_most_the_inbox_bound() {
    let log = log();
    let report = World::builder()
        .seed(3)
        .inbox_capacity(50)
        .default_link(LinkConfig::fixed(ms(1)))
        .node(NodeSpec::new("a"), pinger(secs(1000), None, log.clone()))
        .node(NodeSpec::new("b"), pinger(ms(1), Some(A), log.clone()))
        .build()
        .unwrap()
        .run(|sim| async move {
            sim.pause(A);
            sim.sleep(ms(500)).await;
            sim.resume(A);
            sim.sleep(ms(10)).await;
        })
        .unwrap();
    let full = report
        .trace
        .events()
        .iter()
        .filter(|e| matches!(e.kind, EventKind::Drop { reason: gauntlet_sim::trace::DropReason::InboxFull, .. }))
        .count();
    assert!(full > 300, "messages past the bound were dropped and recorded: {full}");
    let events = report.trace.events();
    let resumed_at = events.iter().find(|e| matches!(e.kind, EventKind::NodeResume)).unwrap().at;
    let released = events
        .iter()
        .filter(|e| e.at == resumed_at && e.node == Some(A) && matches!(e.kind, EventKind::Deliver { .. }))
        .count();
    assert_eq!(released, 50, "exactly the bound was held and delivered at resume");
    assert!(log.lock().unwrap().iter().filter(|r| r.to == A).count() >= 50);
}

#[test]
fn client_nodes_are_not_members_and_partitions_leave_them_connected_unless_named() {
    let log = log();
    let cl = NodeId(2);
    let world = World::builder()
        .seed(5)
        .default_link(LinkConfig::fixed(ms(5)))
        .node(NodeSpec::new("a"), pinger(ms(10), None, log.clone()))
        .node(NodeSpec::new("b"), pinger(ms(10), None, log.clone()))
        .node(NodeSpec::new("cl").as_client(), |ctx| async move {
            assert_eq!(ctx.members().len(), 2, "members() leaves clients out");
            let t = ctx.transport();
            for seq in 0u64.. {
                t.send(A, seq.to_le_bytes().to_vec());
                t.send(B, seq.to_le_bytes().to_vec());
                sleep(ms(10)).await;
            }
        })
        .build()
        .unwrap();
    let schedule = FaultSchedule::new()
        .at(secs(1), Fault::Partition { groups: vec![vec!["a".into()], vec!["b".into()]] })
        .at(secs(2), Fault::Partition { groups: vec![vec!["a".into(), "cl".into()], vec!["b".into()]] })
        .at(secs(3), Fault::Heal);
    world
        .run(move |sim| {
            let s = schedule.clone();
            async move {
                sim.spawn_schedule(s).unwrap();
                sim.sleep(secs(4)).await
            }
        })
        .unwrap();
    assert_eq!(receipts_between(&log, A, cl, ms(0), secs(4)), 0, "members never gossip to a client");
    // An unnamed client reaches both sides of a partition that cuts a from b.
    assert_eq!(receipts_between(&log, A, B, ms(1010), ms(2000)), 0);
    assert!(receipts_between(&log, cl, A, ms(1010), ms(2000)) >= 95);
    assert!(receipts_between(&log, cl, B, ms(1010), ms(2000)) >= 95);
    // Named in a's group, it is cut from b like any member.
    assert!(receipts_between(&log, cl, A, ms(2010), ms(3000)) >= 95);
    assert_eq!(receipts_between(&log, cl, B, ms(2010), ms(3000)), 0);
}
