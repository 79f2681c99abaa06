//! The real build's transport, disk and clock, on loopback. Runs under `cargo real-test`; in a
//! simulation build this file compiles to nothing (the build-modes test runs it for real).
#![cfg(not(madsim))]
#![allow(clippy::disallowed_methods, clippy::disallowed_types, reason = "real-world test")]

use gauntlet_sim::{Clock, Disk, NodeId, Transport};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpListener;

async fn cluster(n: u32) -> Vec<Transport> {
    let mut listeners = Vec::new();
    for _ in 0..n {
        listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let addrs: BTreeMap<NodeId, _> =
        listeners.iter().enumerate().map(|(i, l)| (NodeId(i as u32), l.local_addr().unwrap())).collect();
    listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let me = NodeId(i as u32);
            let peers = addrs.iter().filter(|(id, _)| **id != me).map(|(id, a)| (*id, *a)).collect();
            Transport::with_listener(me, l, peers)
        })
        .collect()
}

#[tokio::test]
async fn one_way_messages_and_requests_cross_real_tcp() {
    let nodes = cluster(3).await;
    nodes[0].send(NodeId(1), &b"hello"[..]);
    let m = tokio::time::timeout(Duration::from_secs(5), nodes[1].recv()).await.expect("delivered");
    assert_eq!((m.from, &m.body[..], m.reply_to), (NodeId(0), &b"hello"[..], None));

    let server = nodes[2].clone();
    tokio::spawn(async move {
        loop {
            let m = server.recv().await;
            let mut body = m.body.to_vec();
            body.reverse();
            server.reply(m.reply_to.expect("request"), body);
        }
    });
    for _ in 0..10 {
        let r = nodes[0].request(NodeId(2), &b"abc"[..], Duration::from_secs(5)).await.unwrap();
        assert_eq!(&r[..], b"cba");
    }
}

#[tokio::test]
async fn requests_to_a_dead_peer_time_out_and_unknown_peers_are_errors() {
    // Node 1's address is a port nobody listens on any more: connections are refused.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let me = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = Transport::with_listener(NodeId(0), me, BTreeMap::from([(NodeId(1), dead_addr)]));
    let err = node.request(NodeId(1), &b"x"[..], Duration::from_millis(200)).await.unwrap_err();
    assert_eq!(err.to_string(), "request to n1 timed out after 200ms");
    let nodes = cluster(2).await;
    let err = nodes[0].request(NodeId(9), &b"x"[..], Duration::from_millis(200)).await.unwrap_err();
    assert_eq!(err.to_string(), "unknown peer n9");
}

#[tokio::test]
async fn a_reply_from_the_wrong_peer_does_not_answer_a_request() {
    let nodes = cluster(3).await;
    // Node 2 answers each request with id i, but first sends a forged reply for id i - 1: the
    // id of the request node 0 sent just before, to silent node 1.
    let imposter = nodes[2].clone();
    tokio::spawn(async move {
        loop {
            let m = imposter.recv().await;
            let to = m.reply_to.expect("request");
            imposter.reply(gauntlet_sim::ReplyTo { to: to.to, id: to.id.wrapping_sub(1) }, &b"forged"[..]);
            imposter.reply(to, &b"ok"[..]);
        }
    });
    assert_eq!(&nodes[0].request(NodeId(2), &b""[..], Duration::from_secs(5)).await.unwrap()[..], b"ok");
    // join! polls in order: the silent request takes id k, the request to node 2 takes k + 1,
    // and node 2 forges a reply to id k. It must not complete the request to node 1.
    let silent = nodes[0].request(NodeId(1), &b""[..], Duration::from_millis(300));
    let noise = nodes[0].request(NodeId(2), &b""[..], Duration::from_secs(5));
    let (silent, noise) = tokio::join!(silent, noise);
    assert_eq!(&noise.unwrap()[..], b"ok");
    assert_eq!(silent.unwrap_err().to_string(), "request to n1 timed out after 300ms");
}

#[tokio::test]
async fn the_real_disk_keeps_synced_data_in_files() {
    let dir = std::env::temp_dir().join(format!("gauntlet-disk-test-{}", std::process::id()));
    let disk = Disk::open(&dir).unwrap();
    disk.append("wal", b"one;").unwrap();
    disk.append("wal", b"two;").unwrap();
    disk.sync("wal").await.unwrap();
    disk.write("wal", 0, b"ONE").unwrap();
    assert_eq!(disk.read("wal").unwrap(), b"ONE;two;");
    assert_eq!(disk.list(), vec!["wal".to_string()]);
    assert!(matches!(disk.read("missing"), Err(gauntlet_sim::DiskError::NotFound(_))));
    assert!(matches!(disk.write("../escape", 0, b"x"), Err(gauntlet_sim::DiskError::InvalidName(_))));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_real_clock_carries_the_configured_skew() {
    let skewed = Clock::new(5_000, 0);
    let plain = Clock::new(0, 0);
    let diff = skewed.now().duration_since(plain.now()).unwrap();
    assert!(diff > Duration::from_millis(4_900) && diff < Duration::from_millis(5_100), "{diff:?}");
}

#[test]
fn buggify_is_off_in_real_builds() {
    assert!((0..1000).all(|_| !gauntlet_sim::buggify!()));
}
