//! A 5-node all-to-all exchange with 1% loss and 1–10 ms latency: every node sends 8 bytes to
//! every other node every 10 ms and counts what it receives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Nodes in the exchange.
pub const NODES: u32 = 5;
/// Time between a node's rounds of sends.
pub const PERIOD: Duration = Duration::from_millis(10);
/// Loss probability on every link.
pub const LOSS: f64 = 0.01;

/// What one run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExchangeStats {
    /// Messages sent.
    pub sent: u64,
    /// Messages received.
    pub received: u64,
    /// Trace events recorded (0 for raw madsim, which has no trace).
    pub events: u64,
}

/// The exchange on Gauntlet's world (transport, fault model and trace).
pub fn gauntlet(seed: u64, sim_time: Duration, keep_events: bool) -> ExchangeStats {
    use gauntlet_sim::{Latency, LinkConfig, NodeId, NodeSpec, World};
    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let link =
        LinkConfig::default().latency(Latency::uniform(Duration::from_millis(1), Duration::from_millis(10))).loss(LOSS);
    let mut b = World::builder().seed(seed).default_link(link).keep_events(keep_events);
    for i in 0..NODES {
        let (sent, received) = (sent.clone(), received.clone());
        b = b.node(NodeSpec::new(format!("n{i}")), move |ctx| {
            let (sent, received) = (sent.clone(), received.clone());
            async move {
                let t = ctx.transport();
                let tx = t.clone();
                gauntlet_sim::time::spawn(async move {
                    let mut next = gauntlet_sim::time::now();
                    loop {
                        for p in (0..NODES).filter(|&p| p != i) {
                            tx.send(NodeId(p), &b"8 bytes!"[..]);
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        next += PERIOD;
                        gauntlet_sim::time::sleep_until(next).await;
                    }
                });
                loop {
                    t.recv().await;
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    let report = b
        .build()
        .expect("valid world")
        .run(move |sim| async move { sim.sleep(sim_time).await })
        .expect("run completes");
    ExchangeStats {
        sent: sent.load(Ordering::Relaxed),
        received: received.load(Ordering::Relaxed),
        events: report.trace.len(),
    }
}

/// The same exchange written directly on madsim's runtime and `net::Endpoint`.
pub fn raw_madsim(seed: u64, sim_time: Duration) -> ExchangeStats {
    use madsim::net::Endpoint;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    let sent = Arc::new(AtomicU64::new(0));
    let received = Arc::new(AtomicU64::new(0));
    let (s2, r2) = (sent.clone(), received.clone());
    // One fresh thread per run, as Gauntlet does, so the comparison is like for like.
    std::thread::Builder::new()
        .spawn(move || {
            let mut config = madsim::Config::default();
            config.net.packet_loss_rate = LOSS;
            config.net.send_latency = Duration::from_millis(1)..Duration::from_millis(10);
            let rt = madsim::runtime::Runtime::with_seed_and_config(seed, config);
            let addr = |i: u32| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8 + 1)), 7000);
            rt.block_on(async move {
                for i in 0..NODES {
                    let (sent, received) = (s2.clone(), r2.clone());
                    madsim::runtime::Handle::current()
                        .create_node()
                        .name(format!("n{i}"))
                        .ip(addr(i).ip())
                        .init(move || {
                            let (sent, received) = (sent.clone(), received.clone());
                            async move {
                                let ep = Arc::new(Endpoint::bind(addr(i)).await.expect("bind"));
                                let tx = ep.clone();
                                madsim::task::spawn(async move {
                                    // madsim's send_to takes a little simulated time itself, so
                                    // rounds are paced by absolute deadlines in both versions.
                                    let mut next = gauntlet_sim::time::now();
                                    loop {
                                        for p in (0..NODES).filter(|&p| p != i) {
                                            let _ = tx.send_to(addr(p), 0, b"8 bytes!").await;
                                            sent.fetch_add(1, Ordering::Relaxed);
                                        }
                                        next += PERIOD;
                                        madsim::time::sleep_until(next).await;
                                    }
                                });
                                let mut buf = [0u8; 8];
                                loop {
                                    let _ = ep.recv_from(0, &mut buf).await;
                                    received.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        })
                        .build();
                }
                madsim::time::sleep(sim_time).await;
            });
        })
        .expect("spawn thread")
        .join()
        .expect("raw madsim run");
    ExchangeStats { sent: sent.load(Ordering::Relaxed), received: received.load(Ordering::Relaxed), events: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_exchanges_move_the_same_traffic() {
        let t = Duration::from_secs(5);
        let (g, r) = (gauntlet(1, t, true), raw_madsim(1, t));
        // 5 nodes x 4 peers x 100 rounds/s x 5 s, give or take the scheduling of the last round.
        for s in [g, r] {
            assert!((9_900..=10_100).contains(&s.sent), "{s:?}");
            let loss = 1.0 - s.received as f64 / s.sent as f64;
            assert!((0.002..0.03).contains(&loss), "about 1% loss: {s:?}");
        }
        assert!(g.events >= 2 * g.received, "send and deliver are both traced: {g:?}");
    }
}
