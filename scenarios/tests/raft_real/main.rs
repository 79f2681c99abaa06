//! The real `raft-kv-node` binary: three replicas on loopback elect a leader and serve `put`
//! and `get` over HTTP. Run through `cargo real-test -p gauntlet-scenarios --test raft_real`
//! (by `sim/tests/build_modes`).
#![cfg(not(madsim))]
#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "this test starts real processes, talks TCP and waits on wall-clock deadlines"
)]

use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "../common/real.rs"]
mod real;

use real::{eventually, free_port, http, Cluster};

#[test]
fn three_replicas_elect_a_leader_and_serve_put_and_get_over_http() {
    let raft: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let web: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let peers: Vec<String> = raft.iter().enumerate().map(|(i, p)| format!("{i}=127.0.0.1:{p}")).collect();
    let dir = std::env::temp_dir().join(format!("raft-kv-real-{}", std::process::id()));
    let mut cluster = Cluster(Vec::new());
    for i in 0..3 {
        let child = Command::new(env!("CARGO_BIN_EXE_raft-kv-node"))
            .args(["--id", &i.to_string(), "--listen", &format!("127.0.0.1:{}", raft[i])])
            .args(["--http", &format!("127.0.0.1:{}", web[i]), "--peers", &peers.join(",")])
            .arg("--data")
            .arg(dir.join(format!("r{i}")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the raft-kv-node binary starts");
        cluster.0.push(child);
    }
    for &p in &web {
        let health = eventually(Duration::from_secs(10), || http(p, "GET", "/healthz", "").filter(|(s, _)| *s == 200));
        assert!(health.is_some(), "replica on HTTP port {p} became healthy");
    }
    // A leader is elected: some replica reports role Leader.
    let leader = eventually(Duration::from_secs(10), || {
        web.iter()
            .copied()
            .find(|&p| http(p, "GET", "/status", "").is_some_and(|(s, b)| s == 200 && b.contains(r#""role":"Leader""#)))
    })
    .expect("a leader within 10 s");
    let follower = *web.iter().find(|&&p| p != leader).unwrap();
    let (status, body) = http(follower, "PUT", "/kv/color", "blue").unwrap();
    assert_eq!(status, 421, "a follower redirects: {body}");
    assert!(body.contains("not leader"), "{body}");
    let (status, body) = http(leader, "PUT", "/kv/color", "blue").unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"ok":true}"#));
    let (status, body) = http(leader, "GET", "/kv/color", "").unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"value":"blue"}"#));
    let (status, body) = http(leader, "GET", "/kv/missing", "").unwrap();
    assert_eq!((status, body.as_str()), (200, r#"{"value":null}"#));
    drop(cluster);
    let _ = std::fs::remove_dir_all(dir);
}
