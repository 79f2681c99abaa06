//! The real `ledger-node` binary: four validators on loopback finalize blocks holding the
//! transfers wallets sent them over HTTP, and agree on them. Run through
//! `cargo real-test -p gauntlet-scenarios --test ledger_real` (by `sim/tests/build_modes`).
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

use real::{eventually, free_port, Cluster};

/// One HTTP request; returns (status, JSON body), or `None` if the node is not answering yet.
fn http(port: u16, method: &str, path: &str, body: &str) -> Option<(u16, serde_json::Value)> {
    let (status, body) = real::http(port, method, path, body)?;
    Some((status, serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body))))
}

#[test]
fn four_validators_finalize_blocks_with_transfers_over_http() {
    let net: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let web: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let peers: Vec<String> = net.iter().enumerate().map(|(i, p)| format!("{i}=validator@127.0.0.1:{p}")).collect();
    let dir = std::env::temp_dir().join(format!("ledger-real-{}", std::process::id()));
    let mut cluster = Cluster(Vec::new());
    for i in 0..4 {
        let child = Command::new(env!("CARGO_BIN_EXE_ledger-node"))
            .args(["--id", &i.to_string(), "--listen", &format!("127.0.0.1:{}", net[i])])
            .args(["--http", &format!("127.0.0.1:{}", web[i]), "--peers", &peers.join(",")])
            .args(["--slot", "250ms", "--wallets", "4", "--balance", "1000"])
            .arg("--data")
            .arg(dir.join(format!("v{i}")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the ledger-node binary starts");
        cluster.0.push(child);
    }
    for &p in &web {
        let up = eventually(Duration::from_secs(10), || http(p, "GET", "/healthz", "").filter(|(s, _)| *s == 200));
        assert!(up.is_some(), "node on HTTP port {p} became healthy");
    }
    // Three transfers from wallet 0 to wallet 1, each to a different node; the node picks the
    // nonce, so they are sent one after another.
    let mut ids = Vec::new();
    for (i, amount) in [(0, 10), (1, 20), (2, 30)] {
        let body = format!(r#"{{"from": 0, "to": 1, "amount": {amount}, "fee": 1, "nonce": {}}}"#, ids.len());
        let (status, answer) = http(web[i], "POST", "/tx", &body).expect("the node answers");
        assert_eq!(status, 200, "transfer accepted: {answer}");
        ids.push(answer["id"].as_str().expect("an id").to_owned());
    }
    // An overdraft is refused.
    let (status, answer) = http(web[3], "POST", "/tx", r#"{"from": 2, "to": 1, "amount": 5000, "fee": 1}"#).unwrap();
    assert_eq!(status, 400, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains("insufficient funds"), "{answer}");
    // Every node's balances come to reflect all three, after final blocks.
    for &p in &web {
        let done = eventually(Duration::from_secs(30), || {
            let (_, b) = http(p, "GET", "/balance/1", "")?;
            (b["balance"] == 1060).then_some(b["height"].as_u64()?)
        });
        assert!(done.is_some(), "node {p}: wallet 1 holds 1000 + 60 once final");
    }
    let (_, b) = http(web[0], "GET", "/balance/0", "").unwrap();
    assert_eq!(b["balance"], 1000 - 60 - 3, "wallet 0 paid the amounts and the fees");
    // The blocks holding them are final and the same on every node.
    let (_, status) = http(web[0], "GET", "/status", "").unwrap();
    let height = status["final_height"].as_u64().unwrap();
    assert!(height >= 1, "blocks were finalized: {status}");
    let mut found = Vec::new();
    for h in 1..=height {
        let blocks: Vec<serde_json::Value> =
            web.iter().map(|&p| http(p, "GET", &format!("/block/{h}"), "").unwrap().1).collect();
        for b in &blocks[1..] {
            if b.get("hash").is_some() && blocks[0].get("hash").is_some() {
                assert_eq!(b["hash"], blocks[0]["hash"], "final block {h} is the same everywhere");
            }
        }
        found
            .extend(blocks[0]["tx_ids"].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)));
    }
    found.sort();
    ids.sort();
    assert_eq!(found, ids, "each transfer is in exactly one final block");
    assert_eq!(status["supply"], 20 * 1000, "supply conserved (4 client + 16 flooder wallets)");
    let (s, missing) = http(web[0], "GET", &format!("/block/{}", height + 1000), "").unwrap();
    assert_eq!(s, 404, "{missing}");
    drop(cluster);
    let _ = std::fs::remove_dir_all(dir);
}
