//! A simulation-built node binary refuses to start as a real node (a known determinism trap:
//! it would run madsim's simulated network and clock inside a real deployment).
#![allow(clippy::disallowed_types, reason = "this test runs the node binary")]

#[test]
fn a_simulation_built_node_binary_refuses_to_run() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gossip-node")).output().expect("the binary runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("this binary was built for simulation (--cfg madsim)"), "{err}");
    assert!(err.contains("cargo real-build"), "{err}");
}
