//! One request/response exchange, repeated: a client sends 64 bytes and waits for the server's
//! 64-byte answer, `n` times, over a link of 1 ms each way. On Gauntlet's message transport
//! (`request`/`reply`) and on its simulated TCP streams (`gauntlet_sim::net`); the benchmark
//! (`benches/benches/streams.rs`) runs the same exchange on turmoil's TCP beside them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Bytes in a request and in a response.
pub const SIZE: usize = 64;
/// One-way latency of the link.
pub const LATENCY: Duration = Duration::from_millis(1);

fn world(seed: u64) -> gauntlet_sim::WorldBuilder {
    gauntlet_sim::World::builder().seed(seed).keep_events(false).default_link(gauntlet_sim::LinkConfig::fixed(LATENCY))
}

/// `n` exchanges over the message transport; returns how many completed.
pub fn messages(seed: u64, n: u64) -> u64 {
    use gauntlet_sim::{NodeId, NodeSpec};
    let done = Arc::new(AtomicU64::new(0));
    let counter = done.clone();
    let w = world(seed)
        .node(NodeSpec::new("server"), |ctx| async move {
            let t = ctx.transport();
            loop {
                let m = t.recv().await;
                if let Some(to) = m.reply_to {
                    t.reply(to, m.body);
                }
            }
        })
        .node(NodeSpec::new("client"), move |ctx| {
            let done = counter.clone();
            async move {
                let t = ctx.transport();
                for _ in 0..n {
                    if t.request(NodeId(0), vec![7u8; SIZE], Duration::from_secs(5)).await.is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
    let sim_time = LATENCY * 2 * (n as u32 + 10);
    w.build().expect("world").run(move |sim| async move { sim.sleep(sim_time).await }).expect("run");
    done.load(Ordering::Relaxed)
}

/// `n` exchanges over one simulated TCP connection; returns how many completed.
pub fn streams(seed: u64, n: u64) -> u64 {
    use gauntlet_sim::net::{TcpListener, TcpStream};
    use gauntlet_sim::NodeSpec;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let done = Arc::new(AtomicU64::new(0));
    let counter = done.clone();
    let w = world(seed)
        .node(NodeSpec::new("server"), |_ctx| async move {
            let l = TcpListener::bind("0.0.0.0:7000").await.expect("bind");
            let (mut s, _) = l.accept().await.expect("accept");
            let mut buf = [0u8; SIZE];
            while s.read_exact(&mut buf).await.is_ok() {
                if s.write_all(&buf).await.is_err() {
                    break;
                }
            }
        })
        .node(NodeSpec::new("client"), move |_ctx| {
            let done = counter.clone();
            async move {
                let mut s = TcpStream::connect("server:7000").await.expect("connect");
                let mut buf = [7u8; SIZE];
                for _ in 0..n {
                    s.write_all(&buf).await.expect("write");
                    s.read_exact(&mut buf).await.expect("read");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    let sim_time = LATENCY * 2 * (n as u32 + 10);
    w.build().expect("world").run(move |sim| async move { sim.sleep(sim_time).await }).expect("run");
    done.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exchange_completes_on_both_transports() {
        assert_eq!(streams(3, 200), 200);
        assert_eq!(messages(3, 200), 200);
    }
}
