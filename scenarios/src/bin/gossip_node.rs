//! `gossip-node`: the gossip-max demo system as a real process (built with `cargo real-build`).
//!
//! ```text
//! gossip-node --id 0 --listen 127.0.0.1:7000 --peers 0=127.0.0.1:7000,1=127.0.0.1:7001 --data ./g0
//! ```
//! Optional: `--skew-ms N`, `--drift-ppm N`, `--seed N`. Prints its value once a second.

#[cfg(madsim)]
fn main() {
    gauntlet_sim::assert_real_build();
}

#[cfg(not(madsim))]
fn main() {
    gauntlet_sim::assert_real_build();
    if let Err(e) = real::main() {
        eprintln!("gossip-node: {e}");
        std::process::exit(2);
    }
}

#[cfg(not(madsim))]
mod real {
    use gauntlet_scenarios::gossip::{node, Board, GossipConfig};
    use gauntlet_sim::{Clock, Disk, NodeContext, NodeId, NodeSpec, Transport};
    use std::collections::BTreeMap;
    use std::net::SocketAddr;

    fn arg<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
        args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).map(String::as_str)
    }

    fn required<'a>(args: &'a [String], flag: &str) -> Result<&'a str, String> {
        arg(args, flag).ok_or_else(|| format!("missing {flag} (see the usage in the binary's docs)"))
    }

    fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
        v.parse().map_err(|_| format!("{flag} {v:?} is not a number"))
    }

    pub fn main() -> Result<(), String> {
        let args: Vec<String> = std::env::args().collect();
        let id = NodeId(number("--id", required(&args, "--id")?)?);
        let listen: SocketAddr = number("--listen", required(&args, "--listen")?)?;
        let mut peers = BTreeMap::new();
        let mut members = Vec::new();
        for entry in required(&args, "--peers")?.split(',') {
            let (i, addr) = entry.split_once('=').ok_or_else(|| format!("--peers entry {entry:?} is not ID=ADDR"))?;
            let (i, addr): (u32, SocketAddr) = (number("--peers id", i)?, number("--peers address", addr)?);
            members.push((NodeId(i), NodeSpec::new(format!("g{i}")).role("gossip").addr(addr)));
            if NodeId(i) != id {
                peers.insert(NodeId(i), addr);
            }
        }
        let skew: i64 = arg(&args, "--skew-ms").map(|v| number("--skew-ms", v)).transpose()?.unwrap_or(0);
        let drift: i64 = arg(&args, "--drift-ppm").map(|v| number("--drift-ppm", v)).transpose()?.unwrap_or(0);
        let seed: u64 = arg(&args, "--seed").map(|v| number("--seed", v)).transpose()?.unwrap_or(0);
        let data = required(&args, "--data")?;
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
        rt.block_on(async move {
            let transport =
                Transport::bind(id, listen, peers).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            let disk = Disk::open(data).map_err(|e| e.to_string())?;
            let spec = NodeSpec::new(format!("g{}", id.0)).role("gossip").addr(listen);
            let ctx = NodeContext::new(id, spec, members, transport, disk, Clock::new(skew, drift), seed);
            let board = Board::default();
            let printer = board.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    println!("{:?}", printer.lock().expect("board lock"));
                }
            });
            node(ctx, GossipConfig::default(), board).await;
            Ok(())
        })
    }
}
