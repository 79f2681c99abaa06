//! Both build modes compile from one source: this (simulation) test drives the real build of
//! the transport tests and a real node binary through the documented cargo aliases.

#![cfg(madsim)]
#![allow(clippy::disallowed_types, reason = "this test runs cargo")]

use std::process::Command;

fn cargo(args: &[&str]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(args)
        .current_dir(root)
        // RUSTFLAGS would override the aliases' target rustflags and mix the two modes.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTDOCFLAGS")
        .output()
        .expect("run cargo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo {} failed:\n{stderr}", args.join(" "));
}

#[test]
fn the_real_build_compiles_and_its_transport_and_observation_tests_pass() {
    // One invocation (`cargo real-nodes`, an alias in .cargo/config.toml): the node-facing
    // crates' unit tests and examples, the transport tests, the observation runtime unchanged
    // on tokio and wall-clock time, three raft-kv replicas on loopback electing a leader and
    // serving HTTP, four ledger validators finalizing blocks, and the node binaries the
    // promotion tests run (the same build: nothing compiles twice).
    cargo(&["real-nodes"]);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for bin in ["gossip-node", "raft-kv-node", "pb-kv-node", "ledger-node"] {
        assert!(root.join("target/real/debug").join(bin).exists(), "the real node binary {bin} lands in target/real");
    }
}
