//! tonic's gRPC server and client layers over HTTP/2 on the simulated streams (the service is
//! `examples/support/grpc_kv.rs`, shared with the `tonic_kv` example): deterministic across
//! two runs, under a partition that outlasts the user timeout, and across a server crash.

#![cfg(madsim)]

use crate::common;

#[path = "../../examples/support/grpc_kv.rs"]
mod grpc_kv;

use common::*;
use gauntlet_sim::time::{elapsed, sleep};
use gauntlet_sim::{Fault, LinkConfig, NodeSpec, TcpConfig, World, WorldBuilder};
use grpc_kv::{call, connect, server, Text};
use hyper::http;
use std::future::Future;
use tonic::Request;

fn world<F, Fut>(client: F) -> WorldBuilder
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + 'static,
{
    World::builder()
        .seed(4)
        .default_link(LinkConfig::fixed(ms(3)))
        .node(NodeSpec::new("api"), server)
        .node(NodeSpec::new("client"), move |_ctx| client())
}

#[test]
fn grpc_calls_over_simulated_streams_are_deterministic() {
    let run = || {
        let seen: Log<String> = log();
        let out = seen.clone();
        let report = world(move || {
            let out = out.clone();
            async move {
                let mut c = connect().await.expect("connect");
                for i in 0..10 {
                    let put = call(&mut c, "/kv.Kv/Put", &format!("k{}={i}", i % 3)).await;
                    let get = call(&mut c, "/kv.Kv/Get", &format!("k{}", i % 3)).await;
                    out.lock().unwrap().push(format!("{put:?} {get:?} {:?}", elapsed()));
                }
                let missing = call(&mut c, "/kv.Kv/Get", "nope").await;
                out.lock().unwrap().push(format!("{missing:?}"));
            }
        })
        .build()
        .unwrap()
        .run(|sim| async move { sim.sleep(secs(2)).await })
        .unwrap();
        let seen = seen.lock().unwrap().clone();
        (report.trace_hash(), seen)
    };
    let (a, seen) = run();
    assert_eq!(seen.len(), 11, "{seen:?}");
    assert!(seen[9].starts_with(r#"Ok("ok") Ok("9")"#), "{}", seen[9]);
    assert_eq!(seen[10], r#"Err("NotFound")"#);
    let (b, again) = run();
    assert_eq!((a, &seen), (b, &again), "same seed, same run");
}

#[test]
fn a_partition_past_the_user_timeout_fails_the_call_with_the_timeout_underneath() {
    let (seen, timed_out) = twice(|| {
        let seen: Log<String> = log();
        let out = seen.clone();
        let timed_out: Log<String> = log();
        let messages = timed_out.clone();
        let w = world(move || {
            let (out, messages) = (out.clone(), messages.clone());
            async move {
                let mut c = connect().await.expect("connect");
                let first = call(&mut c, "/kv.Kv/Put", "a=1").await;
                sleep(ms(500)).await;
                c.ready().await.expect("ready");
                let path = http::uri::PathAndQuery::from_static("/kv.Kv/Get");
                let cut = match c.unary(Request::new("a".to_owned()), path, Text).await {
                    Ok(r) => Ok(r.into_inner()),
                    Err(status) => {
                        messages.lock().unwrap().push(format!("{status}"));
                        Err(format!("{:?}", status.code()))
                    }
                };
                out.lock().unwrap().push(format!("{first:?} / {cut:?} at {}s", elapsed().as_secs()));
            }
        })
        .tcp(TcpConfig { user_timeout: secs(4), ..TcpConfig::default() });
        let report = w
            .build()
            .unwrap()
            .run(|sim| async move {
                sim.sleep(ms(300)).await;
                sim.apply(&Fault::Partition { groups: vec![vec!["api".into()], vec!["client".into()]] }).unwrap();
                sim.sleep(secs(10)).await;
            })
            .unwrap();
        let seen = (seen.lock().unwrap().clone(), timed_out.lock().unwrap().clone());
        (report.trace_hash(), seen)
    });
    // tonic's client layer reports a broken connection as Unknown (its transport's Channel
    // would say Unavailable); the IO error underneath is the timeout a real client gets.
    assert_eq!(seen, vec![r#"Ok("ok") / Err("Unknown") at 4s"#.to_owned()]);
    assert!(timed_out.iter().any(|m| m.contains("timed out")), "{timed_out:?}");
}

#[test]
fn a_crashed_server_fails_calls_and_its_restart_serves_a_new_channel() {
    let seen = twice(|| {
        let seen: Log<String> = log();
        let out = seen.clone();
        let w = world(move || {
            let out = out.clone();
            async move {
                let mut c = connect().await.expect("connect");
                let before = call(&mut c, "/kv.Kv/Put", "a=1").await;
                sleep(ms(500)).await;
                let during = call(&mut c, "/kv.Kv/Get", "a").await;
                sleep(secs(1)).await;
                let mut fresh = connect().await.expect("the restarted server accepts");
                let after = call(&mut fresh, "/kv.Kv/Get", "a").await;
                out.lock().unwrap().push(format!("{before:?} / {during:?} / {after:?}"));
            }
        });
        let report = w.build().unwrap().run(crash_restart("api", ms(200), ms(500), secs(3))).unwrap();
        let seen = seen.lock().unwrap().clone();
        (report.trace_hash(), seen)
    });
    assert_eq!(seen.len(), 1);
    // The restarted server's map is empty: what was put before the crash is gone.
    assert!(seen[0].starts_with(r#"Ok("ok") / Err("#), "{}", seen[0]);
    assert!(seen[0].ends_with(r#" / Err("NotFound")"#), "{}", seen[0]);
}
