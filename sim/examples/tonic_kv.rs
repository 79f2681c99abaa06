//! An ordinary tonic (gRPC) service under simulation: a key-value service on tonic's server
//! layer over hyper's HTTP/2, a client on tonic's client layer, both on `gauntlet_sim::net`
//! streams (the service is `examples/support/grpc_kv.rs`), with 5 % loss and the server crashed
//! and restarted in the middle. The client reconnects when a call fails. Run twice with the same
//! seed, it prints the same lines and the same trace hash.
//!
//! ```sh
//! cargo run -p gauntlet-sim --example tonic_kv            # seed 1
//! cargo run -p gauntlet-sim --example tonic_kv -- 7       # another seed
//! ```

#[cfg(madsim)]
#[path = "support/grpc_kv.rs"]
mod grpc_kv;

#[cfg(not(madsim))]
fn main() {
    eprintln!("tonic_kv runs under simulation: build it without `cargo real-*`");
}

#[cfg(madsim)]
fn main() {
    use gauntlet_sim::time::{elapsed, sleep};
    use gauntlet_sim::{LinkConfig, NodeSpec, World};
    use grpc_kv::{call, connect, server};
    use std::time::Duration;

    let seed: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1);
    let mut link = LinkConfig::fixed(Duration::from_millis(2));
    link.loss = 0.05;
    let world = World::builder().seed(seed).default_link(link).node(NodeSpec::new("api"), server).node(
        NodeSpec::new("client"),
        |_ctx| async move {
            let mut client = None;
            for round in 0..8u32 {
                if client.is_none() {
                    client = connect().await.ok();
                }
                let line = match client.as_mut() {
                    None => "cannot connect".to_owned(),
                    Some(c) => {
                        let put = call(c, "/kv.Kv/Put", &format!("round={round}")).await;
                        let get = call(c, "/kv.Kv/Get", "round").await;
                        if put.is_err() || get.is_err() {
                            client = None; // a new channel next round
                        }
                        format!("put {put:?}, get {get:?}")
                    }
                };
                println!("{:>8.1?}  round {round}: {line}", elapsed());
                sleep(Duration::from_millis(300)).await;
            }
        },
    );
    let report = world
        .build()
        .expect("world")
        .run(|sim| async move {
            sim.sleep(Duration::from_millis(700)).await;
            println!("  (the server crashes)");
            sim.crash(sim.node_id("api").expect("api"));
            sim.sleep(Duration::from_millis(400)).await;
            println!("  (the server restarts)");
            sim.restart(sim.node_id("api").expect("api"));
            sim.sleep(Duration::from_secs(3)).await;
        })
        .expect("run");
    println!(
        "seed {seed}: trace hash {:016x}, tcp events {}",
        report.trace_hash(),
        report.trace.counts_by_kind()["tcp"]
    );
}
