//! `gauntlet`, as shipped: the [`gauntlet_cli`] command line with the reference systems
//! this repository ships (gossip, raft-kv, the ledger, pb-kv) and etcd (real backends only)
//! registered, the gossip-smoke plan as
//! its demo, `scenarios/plans` as its plans and `snapshots/corpus` as its failing-seed corpus.
//! This is the only place that wires every crate together; a system of your own gets the same
//! command line from its own three-line binary (`gauntlet init`, `docs/YOUR_SYSTEM.md`).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(madsim)]
fn main() {
    use gauntlet_scenarios::foreign::{etcd::Etcd, redis::Redis};
    use gauntlet_scenarios::{gossip::GossipApp, ledger::Ledger, pbkv::PbKv, plans, raft::RaftKv};
    let apps = gauntlet_cli::Apps::new()
        .with(GossipApp)
        .with_http(RaftKv)
        .with(Ledger)
        .with_http(PbKv)
        .with_real(Etcd::default())
        .with_real(Redis)
        .demo(plans::gossip_smoke(), "5 gossip-max nodes; restarts, partitions, 1% loss")
        .plans_dir("scenarios/plans")
        .corpus("snapshots/corpus");
    gauntlet_cli::main(apps)
}

#[cfg(not(madsim))]
fn main() {
    eprintln!("gauntlet: this is the real build of the CLI; build it normally (`cargo build -p gauntlet-tool`), which simulates");
    std::process::exit(gauntlet_cli::EXIT_USAGE);
}
