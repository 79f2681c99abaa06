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
    cargo(&["real-test", "-p", "gauntlet-sim", "--test", "real_transport"]);
    // The observation runtime, unchanged, on tokio and wall-clock time.
    cargo(&["real-test", "-p", "gauntlet", "--test", "observe_real"]);
    cargo(&["real-build", "-p", "gauntlet-scenarios", "--bin", "gossip-node"]);
    // The raft-kv replica as a real process: three on loopback elect a leader, serve HTTP; the
    // ledger node: four validators on loopback finalize blocks with transfers sent over HTTP.
    cargo(&["real-test", "-p", "gauntlet-scenarios", "--test", "raft_real", "--test", "ledger_real"]);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    assert!(root.join("target/real/debug/gossip-node").exists(), "the real node binary lands in target/real");
}
