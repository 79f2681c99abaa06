//! Simulated TCP (`gauntlet_sim::net::{TcpListener, TcpStream}`) under the fault model: what a
//! node's program sees through tokio's `AsyncRead`/`AsyncWrite` when links are slow, lossy,
//! cut or when the other side crashes.

#![cfg(madsim)]

use crate::common;

use common::*;
use gauntlet_sim::net::{TcpListener, TcpStream};
use gauntlet_sim::time::{elapsed, sleep};
use gauntlet_sim::{Fault, LinkConfig, NodeSpec, TcpConfig, World, WorldBuilder};
use std::io::ErrorKind;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An echo server on port 7000: every connection gets back what it sends, until its FIN.
fn echo_server(
) -> impl Fn(gauntlet_sim::NodeContext) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> + Send + Sync + 'static
{
    |_ctx| {
        Box::pin(async move {
            let listener = TcpListener::bind("0.0.0.0:7000").await.expect("bind");
            loop {
                let (mut s, _) = listener.accept().await.expect("accept");
                gauntlet_sim::time::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        })
    }
}

/// A world with the echo server and a client running `client`; the client's findings go to
/// the log.
fn world<F, Fut>(link: LinkConfig, client: F) -> WorldBuilder
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    World::builder()
        .seed(5)
        .default_link(link)
        .node(NodeSpec::new("server"), echo_server())
        .node(NodeSpec::new("client"), move |_ctx| client())
}

#[test]
fn echo_over_a_slow_link_takes_one_round_trip_and_ends_with_eof() {
    let seen: Log<(Duration, Vec<u8>, usize)> = log();
    let out = seen.clone();
    let w = world(LinkConfig::fixed(ms(5)), move || {
        let out = out.clone();
        async move {
            sleep(ms(1)).await;
            let mut s = TcpStream::connect("server:7000").await.expect("connect");
            let connected = elapsed();
            s.write_all(b"hello").await.unwrap();
            let mut got = vec![0u8; 5];
            s.read_exact(&mut got).await.unwrap();
            let rtt = elapsed() - connected;
            s.shutdown().await.unwrap();
            let mut rest = Vec::new();
            let n = s.read_to_end(&mut rest).await.unwrap();
            out.lock().unwrap().push((rtt, got, n));
        }
    });
    let report = w.build().unwrap().run(|sim| async move { sim.sleep(secs(1)).await }).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "the client finished");
    let (rtt, got, rest) = &seen[0];
    assert_eq!(got, b"hello");
    // One round trip of a 5 ms link (and the scheduler's microseconds).
    assert!(*rtt >= ms(10) && *rtt < ms(11), "{rtt:?}");
    assert_eq!(*rest, 0, "the server closes after our FIN: EOF");
    assert!(report.trace.counts_by_kind()["tcp"] >= 6, "{:?}", report.trace.counts_by_kind());
}

#[test]
fn a_port_nobody_listens_on_refuses_and_an_unknown_name_is_named() {
    let seen: Log<String> = log();
    let out = seen.clone();
    let w = world(LinkConfig::fixed(ms(1)), move || {
        let out = out.clone();
        async move {
            let refused = TcpStream::connect("server:7999").await.unwrap_err();
            out.lock().unwrap().push(format!("{:?}", refused.kind()));
            let unknown = TcpStream::connect("nobody:7000").await.unwrap_err();
            out.lock().unwrap().push(unknown.to_string());
        }
    });
    w.build().unwrap().run(|sim| async move { sim.sleep(secs(1)).await }).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0], "ConnectionRefused");
    assert!(seen[1].contains("no node named \"nobody\""), "{}", seen[1]);
}

#[test]
fn a_partition_stalls_a_connection_without_losing_bytes_and_heal_resumes_it() {
    let seen: Log<(Duration, Vec<u8>)> = log();
    let out = seen.clone();
    let w = world(LinkConfig::fixed(ms(2)), move || {
        let out = out.clone();
        async move {
            let mut s = TcpStream::connect("server:7000").await.expect("connect");
            sleep(ms(500)).await;
            // Cut at 400 ms, healed at 1.4 s: the write is held, retransmitted, and echoed.
            s.write_all(b"through the cut").await.unwrap();
            let mut got = vec![0u8; 15];
            s.read_exact(&mut got).await.unwrap();
            out.lock().unwrap().push((elapsed(), got));
        }
    });
    w.build()
        .unwrap()
        .run(|sim| async move {
            sim.sleep(ms(400)).await;
            sim.apply(&Fault::Partition { groups: vec![vec!["server".into()], vec!["client".into()]] }).unwrap();
            sim.sleep(secs(1)).await;
            sim.apply(&Fault::Heal).unwrap();
            sim.sleep(secs(5)).await;
        })
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "the echo came back after the heal");
    assert_eq!(seen[0].1, b"through the cut");
    assert!(seen[0].0 > ms(1400), "not before the heal: {:?}", seen[0].0);
    assert!(seen[0].0 < ms(3000), "soon after it (retransmission backs off): {:?}", seen[0].0);
}

#[test]
fn a_partition_that_outlasts_the_user_timeout_fails_the_writer_with_timed_out() {
    let seen: Log<(Duration, ErrorKind)> = log();
    let out = seen.clone();
    let config = TcpConfig { user_timeout: secs(3), ..TcpConfig::default() };
    let w = world(LinkConfig::fixed(ms(2)), move || {
        let out = out.clone();
        async move {
            let mut s = TcpStream::connect("server:7000").await.expect("connect");
            sleep(ms(500)).await;
            s.write_all(b"ping").await.unwrap();
            let mut got = [0u8; 4];
            let e = s.read_exact(&mut got).await.unwrap_err();
            out.lock().unwrap().push((elapsed(), e.kind()));
        }
    })
    .tcp(config);
    w.build()
        .unwrap()
        .run(|sim| async move {
            sim.sleep(ms(100)).await;
            sim.apply(&Fault::Partition { groups: vec![vec!["server".into()], vec!["client".into()]] }).unwrap();
            sim.sleep(secs(10)).await;
        })
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, ErrorKind::TimedOut, "what a real client sees");
    assert!(seen[0].0 >= ms(3500) && seen[0].0 < ms(5000), "after the user timeout: {:?}", seen[0].0);
}

#[test]
fn a_crashed_server_resets_its_clients_and_a_restarted_one_accepts_again() {
    let seen: Log<String> = log();
    let out = seen.clone();
    let w = world(LinkConfig::fixed(ms(2)), move || {
        let out = out.clone();
        async move {
            let mut s = TcpStream::connect("server:7000").await.expect("connect");
            let mut buf = [0u8; 8];
            let e = s.read(&mut buf).await.unwrap_err();
            out.lock().unwrap().push(format!("{:?} at {}ms", e.kind(), elapsed().as_millis()));
            let e = s.write_all(b"x").await.unwrap_err();
            out.lock().unwrap().push(format!("write after reset: {:?}", e.kind()));
            // While it is down: refused. After its restart: served.
            let down = TcpStream::connect("server:7000").await.unwrap_err();
            out.lock().unwrap().push(format!("{:?}", down.kind()));
            sleep(secs(1)).await;
            let mut again = TcpStream::connect("server:7000").await.expect("the restarted server accepts");
            again.write_all(b"ok").await.unwrap();
            let mut got = [0u8; 2];
            again.read_exact(&mut got).await.unwrap();
            out.lock().unwrap().push(String::from_utf8_lossy(&got).into_owned());
        }
    });
    w.build().unwrap().run(crash_restart("server", ms(300), ms(500), secs(3))).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0], "ConnectionReset at 302ms", "the reset takes the link's 2 ms");
    assert_eq!(seen[1], "write after reset: ConnectionReset");
    assert_eq!(seen[2], "ConnectionRefused");
    assert_eq!(seen[3], "ok");
}

#[test]
fn loss_delays_but_never_loses_or_reorders_bytes() {
    let seen: Log<(bool, Duration)> = log();
    let out = seen.clone();
    let mut link = LinkConfig::fixed(ms(3));
    link.loss = 0.2;
    let w = world(link, move || {
        let out = out.clone();
        async move {
            let s = TcpStream::connect("server:7000").await.expect("connect");
            let (mut r, mut wr) = tokio::io::split(s);
            let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
            let expect = data.clone();
            let writer = gauntlet_sim::time::spawn(async move {
                wr.write_all(&data).await.unwrap();
                wr.shutdown().await.unwrap();
            });
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            writer.await.unwrap();
            out.lock().unwrap().push((got == expect, elapsed()));
        }
    });
    let report = w.build().unwrap().run(|sim| async move { sim.sleep(secs(120)).await }).unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "the transfer finished");
    assert!(seen[0].0, "every byte, in order");
    let retransmits = report
        .trace
        .events()
        .iter()
        .filter(|e| {
            matches!(e.kind, gauntlet_sim::EventKind::Tcp { event: gauntlet_sim::TcpEvent::Retransmit { .. }, .. })
        })
        .count();
    assert!(retransmits > 0, "losses were retransmitted");
}

#[test]
fn a_reader_that_does_not_read_stalls_the_writer_at_the_window() {
    let seen: Log<usize> = log();
    let out = seen.clone();
    let w = World::builder()
        .seed(1)
        .default_link(LinkConfig::fixed(ms(1)))
        .node(NodeSpec::new("sink"), |_ctx| async move {
            let l = TcpListener::bind("0.0.0.0:9000").await.unwrap();
            let (_s, _) = l.accept().await.unwrap();
            // Holds the connection and never reads.
            sleep(secs(3600)).await;
        })
        .node(NodeSpec::new("client"), move |_ctx| {
            let out = out.clone();
            async move {
                let mut s = TcpStream::connect("sink:9000").await.unwrap();
                let chunk = [7u8; 1024];
                let mut written = 0;
                while let Ok(Ok(n)) = gauntlet_sim::time::timeout(secs(1), s.write(&chunk)).await {
                    written += n;
                }
                out.lock().unwrap().push(written);
            }
        });
    w.build().unwrap().run(|sim| async move { sim.sleep(secs(5)).await }).unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![TcpConfig::default().window], "exactly one window, then stalled");
}

#[test]
fn the_same_seed_gives_the_same_trace_with_streams() {
    let run = || {
        let mut link = LinkConfig::fixed(ms(2));
        link.loss = 0.1;
        world(link, || async {
            for i in 0..100u8 {
                if let Ok(mut s) = TcpStream::connect("server:7000").await {
                    let _ = s.write_all(&[i; 100]).await;
                    let mut buf = [0u8; 100];
                    let _ = s.read_exact(&mut buf).await;
                }
                sleep(ms(10)).await;
            }
        })
        .build()
        .unwrap()
        .run(crash_restart("server", ms(200), ms(300), secs(5)))
        .unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.trace_hash(), b.trace_hash());
    assert_eq!(a.trace.len(), b.trace.len());
    assert!(a.trace.counts_by_kind()["tcp"] > 300, "{:?}", a.trace.counts_by_kind());
    let refused = (a.trace.events().iter())
        .filter(|e| matches!(e.kind, gauntlet_sim::EventKind::Tcp { event: gauntlet_sim::TcpEvent::Refused, .. }))
        .count();
    assert!(refused > 0, "connects while the server was down were refused");
}
