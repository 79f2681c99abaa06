//! Shared test apps: small node programs that report what they see to the test.
#![allow(dead_code)]

use gauntlet_sim::time::{elapsed, sleep, spawn};
use gauntlet_sim::{NodeContext, NodeId};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One message a node received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// True simulated receive time.
    pub at: Duration,
    pub to: NodeId,
    pub from: NodeId,
    pub seq: u64,
}

/// Where node programs report to the test.
pub type Log<T> = Arc<Mutex<Vec<T>>>;

pub fn log<T>() -> Log<T> {
    Arc::new(Mutex::new(Vec::new()))
}

pub type BoxProgram = Box<dyn Fn(NodeContext) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;

/// A program that sends an increasing `seq` to every other node every `period` (to `only`, if
/// given) and logs every receipt.
pub fn pinger(
    period: Duration,
    only: Option<NodeId>,
    receipts: Log<Receipt>,
) -> impl Fn(NodeContext) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync + 'static {
    move |ctx: NodeContext| {
        let receipts = receipts.clone();
        Box::pin(async move {
            let t = ctx.transport();
            let me = ctx.id();
            let peers: Vec<NodeId> = match only {
                Some(p) if p != me => vec![p],
                Some(_) => vec![],
                None => ctx.members().into_iter().map(|(id, _)| id).filter(|&id| id != me).collect(),
            };
            let sender = t.clone();
            spawn(async move {
                let mut seq = 0u64;
                loop {
                    for &p in &peers {
                        sender.send(p, seq.to_le_bytes().to_vec());
                    }
                    seq += 1;
                    sleep(period).await;
                }
            });
            loop {
                let m = t.recv().await;
                let seq = u64::from_le_bytes(m.body[..8].try_into().unwrap());
                receipts.lock().unwrap().push(Receipt { at: elapsed(), to: me, from: m.from, seq });
            }
        })
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Runs `once` twice and asserts the two runs gave one trace hash and the same observations
/// (same seed, same run); returns the observations.
#[track_caller]
pub fn twice<T: PartialEq + std::fmt::Debug>(once: impl Fn() -> (u64, T)) -> T {
    let (a, seen) = once();
    let (b, again) = once();
    assert_eq!((a, &seen), (b, &again), "same seed, same run");
    seen
}

/// A supervisor that crashes `node` at `at`, restarts it `down` later, and lets the run go on
/// for `then` (what the stream, hyper and tonic crash tests do).
pub fn crash_restart(
    node: &'static str,
    at: Duration,
    down: Duration,
    then: Duration,
) -> impl Fn(gauntlet_sim::Sim) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync + 'static {
    move |sim| {
        Box::pin(async move {
            sim.sleep(at).await;
            sim.crash(sim.node_id(node).expect("the node exists"));
            sim.sleep(down).await;
            sim.restart(sim.node_id(node).expect("the node exists"));
            sim.sleep(then).await;
        })
    }
}
