//! `gauntlet serve` as a team uses it: a live server on a free loopback port, a 200-seed sweep
//! of a planted bug submitted through the API and followed over SSE (disconnecting and resuming
//! with `Last-Event-ID`), failing seeds whose bundles replay; bad requests refused with 4xx
//! JSON errors that change nothing; a server killed with SIGKILL mid-sweep leaves no process
//! behind and resumes the run when started again.
#![allow(clippy::disallowed_types, clippy::disallowed_methods, reason = "this test runs the CLI and a server")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../support/server.rs"]
mod server;
use server::{agent, call, follow, Server, Sse, TOKEN};
#[path = "../support/browser.rs"]
mod browser;
use browser::{chromium, Browser};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gauntlet-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("a scratch directory");
    d
}

fn plan_text(name: &str) -> String {
    std::fs::read_to_string(root().join("scenarios/plans").join(name)).expect("a shipped plan")
}

#[test]
fn a_sweep_submitted_over_the_api_streams_its_events_and_its_failing_seeds_replay() {
    sweep_streams_and_replays(None);
}

/// The same against a real PostgreSQL server (`.ci/postgres.sh` starts one under CI).
#[test]
fn the_same_with_a_postgres_store() {
    match gauntlet_serve::testing::postgres_database() {
        Ok(Some(url)) => sweep_streams_and_replays(Some(&url)),
        Ok(None) => {
            eprintln!("skipped: GAUNTLET_TEST_POSTGRES is not set (export GAUNTLET_TEST_POSTGRES=$(.ci/postgres.sh))")
        }
        Err(e) => panic!("{e}"),
    }
}

fn sweep_streams_and_replays(store: Option<&str>) {
    let data = tempdir(if store.is_some() { "sweep-pg" } else { "sweep" });
    let flags = store.map(|s| vec!["--store", s]).unwrap_or_default();
    let server = Server::start_with(&data, &flags);
    let body = serde_json::json!({
        "plan": plan_text("kv-leader-partition.toml"),
        "seeds": "0..200",
        "bugs": ["commit-old-term"],
    })
    .to_string();
    let runs = format!("{}/v1/test-runs", server.url);
    let (status, run) = call("POST", &runs, Some(TOKEN), Some(&body));
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().expect("an id").to_owned();
    assert_eq!(run["seeds_total"], 200);
    // The same submission is the same run.
    let (status, again) = call("POST", &runs, Some(TOKEN), Some(&body));
    assert_eq!((status, again["id"].as_str()), (200, Some(id.as_str())), "{again}");

    // Follow the stream: 30 events, disconnect, resume after the last one seen.
    let events = format!("{runs}/{id}/events");
    let mut seen = follow(&events, None, 30);
    assert_eq!(seen.len(), 30, "{seen:?}");
    let last = seen.last().unwrap().0;
    seen.extend(follow(&events, Some(last), usize::MAX));
    let ids: Vec<u64> = seen.iter().map(|e| e.0).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "every event once, in order, none lost");
    assert_eq!(seen.first().unwrap().1, "submitted");
    assert!(seen.iter().any(|e| e.1 == "started"));
    let finished = seen.last().unwrap();
    assert_eq!(finished.1, "finished");
    assert_eq!(finished.2["state"], "failed", "{:?}", finished.2);
    let seed_events: Vec<&Sse> = seen.iter().filter(|e| e.1.starts_with("seed_")).collect();
    assert_eq!(seed_events.len(), 200, "one event per seed");
    let failed_in_stream: Vec<u64> =
        seed_events.iter().filter(|e| e.1 == "seed_failed").map(|e| e.2["seed"].as_u64().unwrap()).collect();
    assert!(!failed_in_stream.is_empty());

    // The run: failing seeds with replay lines and bundles that replay.
    let (status, run) = call("GET", &format!("{runs}/{id}"), None, None);
    assert_eq!(status, 200);
    assert_eq!((run["state"].as_str(), run["seeds_done"].as_u64()), (Some("failed"), Some(200)), "{run}");
    let failures = run["failures"].as_array().expect("failures");
    let mut failed_seeds: Vec<u64> = failures.iter().map(|f| f["seed"].as_u64().unwrap()).collect();
    failed_seeds.sort_unstable();
    let mut streamed = failed_in_stream.clone();
    streamed.sort_unstable();
    assert_eq!(failed_seeds, streamed, "the stream and the store agree");
    assert!(failed_seeds.contains(&47), "seed 47 fails with commit-old-term: {failed_seeds:?}");
    for f in failures.iter().take(2) {
        assert_eq!(f["source"], "linearizable", "{f}");
        assert!(f["replay"].as_str().unwrap().contains(&format!("SIM_SEED={}", f["seed"])), "{f}");
        let bundle = f["bundle"].as_str().expect("a bundle");
        let out = Command::new(env!("CARGO_BIN_EXE_gauntlet")).args(["replay", bundle, "--json"]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("replay JSON");
        assert_eq!((v["same_trace"].as_bool(), v["same_verdict"].as_bool()), (Some(true), Some(true)), "{v}");
    }
    // Listing and filters; metrics.
    let (_, list) = call("GET", &format!("{runs}?state=failed&plan=kv-leader-partition"), None, None);
    assert_eq!(list["runs"].as_array().unwrap().len(), 1, "{list}");
    let (_, none) = call("GET", &format!("{runs}?state=passed"), None, None);
    assert!(none["runs"].as_array().unwrap().is_empty());
    let metrics = agent().get(&format!("{}/metrics", server.url)).call().unwrap().body_mut().read_to_string().unwrap();
    for line in
        ["gauntlet_seeds_total 200", "gauntlet_runs_finished_total{state=\"failed\"} 1", "gauntlet_queue_depth 0"]
    {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn bad_requests_get_4xx_json_errors_and_change_nothing() {
    let data = tempdir("bad");
    let server = Server::start(&data);
    let runs = format!("{}/v1/test-runs", server.url);
    let good = plan_text("gossip-smoke.toml");
    let sub = |plan: &str, seeds: &str| serde_json::json!({"plan": plan, "seeds": seeds}).to_string();
    let (status, _) = call("POST", &runs, Some(TOKEN), Some(&sub(&good, "1")));
    assert_eq!(status, 201);
    let unknown_app = good.replace("name = \"gossip\"", "name = \"no-such-app\"");
    // (method, url, token, body, the status wanted, the error code wanted)
    type Case<'a> = (&'a str, String, Option<&'a str>, Option<String>, u16, &'a str);
    let cases: Vec<Case> = vec![
        ("POST", runs.clone(), None, Some(sub(&good, "2")), 401, "unauthorised"),
        ("POST", runs.clone(), Some("wrong-token-000"), Some(sub(&good, "2")), 403, "forbidden"),
        ("POST", runs.clone(), Some(TOKEN), Some("{not json".into()), 400, "bad_json"),
        ("POST", runs.clone(), Some(TOKEN), Some("{\"seeds\": \"1\", \"surprise\": 1}".into()), 400, "bad_json"),
        ("POST", runs.clone(), Some(TOKEN), Some(sub("name = [", "1")), 422, "bad_plan"),
        ("POST", runs.clone(), Some(TOKEN), Some(sub(&unknown_app, "1")), 422, "bad_plan"),
        ("POST", runs.clone(), Some(TOKEN), Some(sub(&good, "9..3")), 422, "bad_seeds"),
        ("POST", runs.clone(), Some(TOKEN), Some(sub(&good, "twelve")), 422, "bad_seeds"),
        ("POST", runs.clone(), Some(TOKEN), Some(sub(&good, "0..100000000")), 422, "bad_seeds"),
        (
            "POST",
            runs.clone(),
            Some(TOKEN),
            Some(serde_json::json!({"plan": good, "seeds": "1", "bugs": ["no-such-bug"]}).to_string()),
            422,
            "bad_plan",
        ),
        (
            "POST",
            runs.clone(),
            Some(TOKEN),
            Some(serde_json::json!({"plan_path": "../../etc/passwd", "seeds": "1"}).to_string()),
            422,
            "bad_plan",
        ),
        (
            "POST",
            runs.clone(),
            Some(TOKEN),
            Some(serde_json::json!({"plan": good, "plan_path": "gossip-smoke.toml", "seeds": "1"}).to_string()),
            422,
            "bad_plan",
        ),
        (
            "POST",
            runs.clone(),
            Some(TOKEN),
            Some(serde_json::json!({"plan": good, "seeds": "1", "backend": "k8s"}).to_string()),
            422,
            "bad_backend",
        ),
        (
            "POST",
            runs.clone(),
            Some(TOKEN),
            Some(serde_json::json!({"plan": good, "seeds": "1", "jobs": 0}).to_string()),
            422,
            "bad_jobs",
        ),
        (
            "POST",
            runs.clone(),
            Some(TOKEN),
            Some(serde_json::json!({"plan": good, "seeds": "1", "time_limit": "soon"}).to_string()),
            422,
            "bad_time_limit",
        ),
        ("GET", format!("{runs}/0000000000000000"), None, None, 404, "not_found"),
        ("GET", format!("{runs}?state=maybe"), None, None, 400, "bad_query"),
        ("GET", format!("{runs}?limit=ten"), None, None, 400, "bad_query"),
        ("DELETE", format!("{runs}/0000000000000000"), Some(TOKEN), None, 404, "not_found"),
        ("DELETE", format!("{runs}/0000000000000000"), None, None, 401, "unauthorised"),
        ("GET", format!("{}/v2/nothing", server.url), None, None, 404, "not_found"),
    ];
    assert!(cases.len() + 1 >= 15, "at least 15 bad requests");
    let before = call("GET", &runs, None, None).1;
    for (method, url, token, body, want, code) in &cases {
        let (status, v) = call(method, url, *token, body.as_deref());
        assert_eq!((status, v["error"]["code"].as_str()), (*want, Some(*code)), "{method} {url}: {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }
    // A body over the limit (1 MiB): refused on its declared length, before it is sent.
    {
        use std::io::{Read, Write};
        let addr = server.url.trim_start_matches("http://");
        let mut sock = std::net::TcpStream::connect(addr).expect("connect");
        write!(
            sock,
            "POST /v1/test-runs HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {TOKEN}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            2 << 20
        )
        .unwrap();
        // The server answers without reading the body (and may keep the socket open for it):
        // read until the answer's JSON has arrived, with a timeout as a backstop.
        sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let (mut answer, mut buf) = (String::new(), [0u8; 4096]);
        while !answer.contains("}}") {
            match sock.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        assert!(answer.contains("\"code\":\"too_large\""), "{answer}");
    }
    let after = call("GET", &runs, None, None).1;
    assert_eq!(before["runs"].as_array().unwrap().len(), after["runs"].as_array().unwrap().len(), "nothing was stored");
    let metrics = agent().get(&format!("{}/metrics", server.url)).call().unwrap().body_mut().read_to_string().unwrap();
    assert!(!metrics.contains("class=\"5xx\""), "no 5xx answered:\n{metrics}");
    let _ = std::fs::remove_dir_all(&data);
}

/// The `sweep-one` processes whose command line mentions `data`.
fn seed_processes(data: &Path) -> Vec<u32> {
    let needle = data.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("sweep-one") && cmdline.contains(&needle) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn a_server_killed_mid_sweep_leaves_no_process_and_the_run_resumes() {
    let data = tempdir("kill");
    let mut server = Server::start(&data);
    let body = serde_json::json!({"plan": plan_text("kv-failover.toml"), "seeds": "0..400"}).to_string();
    let runs = format!("{}/v1/test-runs", server.url);
    let (status, run) = call("POST", &runs, Some(TOKEN), Some(&body));
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let events = follow(&format!("{runs}/{id}/events"), None, 12);
    assert!(events.iter().any(|e| e.1 == "seed_passed"), "the sweep is under way: {events:?}");
    server.kill(); // SIGKILL
                   // Seed processes end with the server (PR_SET_PDEATHSIG): none remains for long.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seed_processes(&data).is_empty() {
        assert!(Instant::now() < deadline, "orphan seed processes: {:?}", seed_processes(&data));
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = Server::start(&data);
    let runs = format!("{}/v1/test-runs", server.url);
    let all = follow(&format!("{runs}/{id}/events"), None, usize::MAX);
    let kinds: Vec<&str> = all.iter().map(|e| e.1.as_str()).collect();
    assert!(kinds.contains(&"interrupted"), "the restart says the run was interrupted: {kinds:?}");
    assert_eq!(kinds.last(), Some(&"finished"), "{kinds:?}");
    let mut seeds: Vec<u64> =
        all.iter().filter(|e| e.1.starts_with("seed_")).map(|e| e.2["seed"].as_u64().unwrap()).collect();
    seeds.sort_unstable();
    assert_eq!(seeds, (0..400).collect::<Vec<_>>(), "every seed recorded exactly once across the restart");
    let (_, run) = call("GET", &format!("{runs}/{id}"), None, None);
    assert_eq!((run["seeds_done"].as_u64(), run["state"].as_str()), (Some(400), Some("passed")), "{run}");
    // No half-written file is left where bundles and plans go.
    for dir in ["bundles", "plans"] {
        let mut stack = vec![data.join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    assert!(p.extension().is_none_or(|x| x != "tmp"), "a temp file left: {}", p.display());
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&data);
}

/// The dashboard in a real browser (headless Chromium over the DevTools protocol): a run
/// submitted through the API is watched on its page as it executes (failures appear live,
/// from the SSE stream, without a reload), then the finished page, the run list, a failing
/// seed's page with its report, and its shrink button (token typed, button clicked, the new
/// run opened and watched until it fails).
#[test]
fn a_browser_shows_a_run_submitted_through_the_api() {
    let Some(chromium) = chromium() else { return };
    let mut browser = Browser::launch(&chromium);
    let data = tempdir("browser");
    let server = Server::start(&data);
    let runs = format!("{}/v1/test-runs", server.url);
    // One run at a time (the default): the gossip run first, so the watched run is still
    // pending when its page opens.
    let body =
        serde_json::json!({"plan": plan_text("gossip-smoke.toml"), "seeds": "0..40", "bugs": ["deaf_after_restart"]});
    let (status, gossip) = call("POST", &runs, Some(TOKEN), Some(&body.to_string()));
    assert_eq!(status, 201, "{gossip}");
    let body = serde_json::json!({"plan": plan_text("kv-leader-partition.toml"), "seeds": "0..60", "bugs": ["commit-old-term"]});
    let (status, run) = call("POST", &runs, Some(TOKEN), Some(&body.to_string()));
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();

    browser.goto(&format!("{}/runs/{id}", server.url));
    assert_eq!(browser.text("#state"), "pending", "the page opens before the run starts: all of it is seen live");
    // A reload would clear this mark: failures that appear while it stands came live.
    browser.eval("window.gauntletMark = 1");
    let live = browser.wait_for(
        "window.gauntletMark === 1 && document.querySelectorAll('#failures tr').length > 1 \
         && document.getElementById('state').textContent === 'running' \
         && document.querySelector('#failures a').textContent",
        Duration::from_secs(120),
    );
    assert_eq!(live, "47", "seed 47 is the first failure, shown as it came");
    assert!(browser.eval("+document.getElementById('live').dataset.events").as_u64() > Some(1));
    // At `finished` the page reloads itself and shows the run as the store has it.
    browser.wait_for("document.getElementById('state').textContent === 'failed'", Duration::from_secs(120));
    assert_eq!(browser.text("#progress"), "60/60", "all seeds counted");
    let html = browser.eval("document.body.innerHTML").as_str().unwrap_or_default().to_owned();
    assert!(html.contains(&format!("/runs/{id}/seeds/47\"")) && html.contains("SIM_SEED=47"), "{html}");

    browser.goto(&format!("{}/", server.url));
    let list = browser.eval("document.body.innerText").as_str().unwrap_or_default().to_owned();
    assert!(list.contains(&id) && list.contains("kv-leader-partition") && list.contains("gossip-smoke"), "{list}");

    browser.goto(&format!("{}/runs/{id}/seeds/47", server.url));
    assert!(browser.text("#verdict").contains("linearizable") && browser.text("#replay").contains("SIM_SEED=47"));
    browser.wait_for(
        "document.getElementById('report').contentDocument.querySelector('svg') !== null",
        Duration::from_secs(30),
    );

    // The shrink button on a failing gossip seed: the token typed in, the button clicked.
    let gossip = gossip["id"].as_str().unwrap().to_owned();
    browser.goto(&format!("{}/runs/{gossip}/seeds/0", server.url));
    let token = serde_json::to_string(TOKEN).unwrap();
    browser.eval(&format!("document.getElementById('token').value = {token}"));
    browser.eval("document.querySelector('#shrink button').click()");
    let opened = browser.wait_for(
        &format!(
            "location.pathname.startsWith('/runs/') && !location.pathname.includes('{gossip}') && location.pathname"
        ),
        Duration::from_secs(180),
    );
    let child = opened.as_str().unwrap().trim_start_matches("/runs/").to_owned();
    browser.wait_for("document.getElementById('state').textContent === 'failed'", Duration::from_secs(120));
    let (_, shrunk) = call("GET", &format!("{runs}/{child}"), None, None);
    assert_eq!(shrunk["parent"], gossip.as_str(), "the new run is linked to the one shrunk: {shrunk}");
    let _ = std::fs::remove_dir_all(&data);
}

/// A webhook receiver on loopback: answers each POST with the next of `statuses` (then 200),
/// and hands back every body it received.
fn webhook(statuses: Vec<u16>) -> (String, std::sync::mpsc::Receiver<(u16, serde_json::Value)>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut statuses = statuses.into_iter();
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { continue };
            let mut reader = BufReader::new(sock.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let status = statuses.next().unwrap_or(200);
            let _ = write!(sock, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tx.send((status, serde_json::from_slice(&body).unwrap_or_default()));
        }
    });
    (url, rx)
}

#[test]
fn a_failed_run_opens_an_incident_whose_alert_is_retried_until_delivered() {
    let data = tempdir("alerts");
    let (url, received) = webhook(vec![500]);
    let server = Server::start_with(&data, &["--webhook", &url]);
    let runs = format!("{}/v1/test-runs", server.url);
    let body = serde_json::json!({"plan": plan_text("kv-leader-partition.toml"), "seeds": "45..49", "bugs": ["commit-old-term"]});
    let (status, run) = call("POST", &runs, Some(TOKEN), Some(&body.to_string()));
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    let events = follow(&format!("{runs}/{id}/events"), None, usize::MAX);
    assert_eq!(events.last().unwrap().2["state"], "failed");
    // The first delivery gets a 500, the retry a 200; both carry the same payload.
    let first = received.recv_timeout(Duration::from_secs(30)).expect("a first delivery");
    let second = received.recv_timeout(Duration::from_secs(30)).expect("a retry");
    assert_eq!((first.0, second.0), (500, 200));
    assert_eq!(first.1, second.1);
    let alert = &second.1;
    assert_eq!(
        (alert["kind"].as_str(), alert["run"]["id"].as_str()),
        (Some("gauntlet.run_failed"), Some(id.as_str())),
        "{alert}"
    );
    assert_eq!(alert["failures"][0]["seed"], 47, "{alert}");
    assert!(alert["failures"][0]["replay"].as_str().unwrap().contains("SIM_SEED=47"), "{alert}");
    assert!(alert["build"].as_str().is_some_and(|b| !b.is_empty()), "{alert}");
    // The incident records both attempts (the record follows the delivery closely).
    let deadline = Instant::now() + Duration::from_secs(10);
    let incident = loop {
        let (_, v) = call("GET", &format!("{}/v1/incidents", server.url), None, None);
        let i = v["incidents"][0].clone();
        if i["delivered_ms"].is_u64() {
            break i;
        }
        assert!(Instant::now() < deadline, "the delivery is recorded: {v}");
    };
    assert_eq!(
        (incident["run_id"].as_str(), incident["attempts"].as_u64()),
        (Some(id.as_str()), Some(2)),
        "{incident}"
    );
    assert_eq!(incident["last_error"], "HTTP 500", "{incident}");
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_failing_seed_shrinks_into_a_linked_run_and_two_bundles_compare() {
    let data = tempdir("shrink");
    let server = Server::start(&data);
    let runs = format!("{}/v1/test-runs", server.url);
    let body =
        serde_json::json!({"plan": plan_text("gossip-smoke.toml"), "seeds": "0..3", "bugs": ["deaf_after_restart"]});
    let (status, run) = call("POST", &runs, Some(TOKEN), Some(&body.to_string()));
    assert_eq!(status, 201, "{run}");
    let id = run["id"].as_str().unwrap().to_owned();
    follow(&format!("{runs}/{id}/events"), None, usize::MAX);
    let (_, run) = call("GET", &format!("{runs}/{id}"), None, None);
    assert_eq!(run["failed"], 3, "deaf_after_restart fails every seed: {run}");

    // Shrink seed 0: a new run of the shrunk plan at that seed, linked to this one, that fails.
    let shrink = format!("{runs}/{id}/shrink");
    let (status, v) = call("POST", &shrink, None, Some("{\"seed\": 0}"));
    assert_eq!((status, v["error"]["code"].as_str()), (401, Some("unauthorised")));
    let (status, v) = call("POST", &shrink, Some(TOKEN), Some("{\"seed\": 99}"));
    assert_eq!((status, v["error"]["code"].as_str()), (422, Some("not_failing")), "{v}");
    let (status, shrunk) = call("POST", &shrink, Some(TOKEN), Some("{\"seed\": 0}"));
    assert_eq!(status, 201, "{shrunk}");
    assert_eq!((shrunk["parent"].as_str(), shrunk["seeds"].as_str()), (Some(id.as_str()), Some("0")), "{shrunk}");
    let child = shrunk["id"].as_str().unwrap().to_owned();
    let events = follow(&format!("{runs}/{child}/events"), None, usize::MAX);
    assert_eq!(events.last().unwrap().2["state"], "failed", "the shrunk plan still fails: {events:?}");
    let origin = &events[0].2["origin"];
    assert_eq!(origin["shrunk_from"]["run"], id.as_str(), "{origin}");
    assert!(origin["report"]["faults_after"].as_u64() <= Some(3), "{origin}");

    // Compare: the original seed 0 against the shrunk run's seed 0, and an upload against itself.
    let compare = format!("{}/v1/snapshots/compare", server.url);
    let body = serde_json::json!({"a": {"run": id, "seed": 0}, "b": {"run": child, "seed": 0}});
    let (status, diff) = call("POST", &compare, None, Some(&body.to_string()));
    assert_eq!(status, 200, "{diff}");
    assert_eq!(diff["same"], false, "{diff}");
    assert!(
        diff["first_divergent_event"]["index"].is_u64() && diff["summary_diff"].as_str().unwrap().contains("@@"),
        "{diff}"
    );
    let (_, failing) = call("GET", &format!("{runs}/{id}/seeds?failed=true"), None, None);
    let bytes = std::fs::read(failing["seeds"][0]["bundle"].as_str().unwrap()).unwrap();
    let b64 = base64_encode(&bytes);
    let body = serde_json::json!({"a": {"bundle_base64": b64}, "b": {"run": id, "seed": 0}});
    let (status, same) = call("POST", &compare, None, Some(&body.to_string()));
    assert_eq!((status, same["same"].as_bool()), (200, Some(true)), "{same}");
    let bad = serde_json::json!({"a": {"bundle_base64": "bm90IGEgYnVuZGxl"}, "b": {"run": id, "seed": 0}});
    let (status, v) = call("POST", &compare, None, Some(&bad.to_string()));
    assert_eq!((status, v["error"]["code"].as_str()), (422, Some("bad_bundle")), "{v}");

    // Seeds 1 and 2 again, in another run of the same plan and build: the determinism rate
    // counts them, and they agree.
    let body =
        serde_json::json!({"plan": plan_text("gossip-smoke.toml"), "seeds": "1..4", "bugs": ["deaf_after_restart"]});
    let (status, again) = call("POST", &runs, Some(TOKEN), Some(&body.to_string()));
    assert_eq!(status, 201, "{again}");
    follow(&format!("{runs}/{}/events", again["id"].as_str().unwrap()), None, usize::MAX);
    let (_, det) = call("GET", &format!("{}/v1/determinism", server.url), None, None);
    assert_eq!((det["checked"].as_u64(), det["matched"].as_u64()), (Some(2), Some(2)), "{det}");
    assert_eq!((det["rate_percent"].as_f64(), det["flaky"].as_array().map(Vec::len)), (Some(100.0), Some(0)), "{det}");
    let _ = std::fs::remove_dir_all(&data);
}

/// Standard base64 (the test's own, so the test depends on no encoder it checks).
fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `gauntlet script --submit`: the base plan with the script in it goes to `POST
/// /v1/test-runs`, and the service runs the script seed by seed (with the planted upgrade bug
/// every seed fails; without it every seed passes).
#[test]
fn a_script_submitted_to_the_service_runs_there() {
    let data = tempdir("script");
    let server = Server::start_with(&data, &[]);
    let script = root().join("scenarios/scripts/raft-rolling-upgrade.lua");
    let submit = |bugs: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gauntlet"));
        cmd.args(["script", script.to_str().unwrap(), "--submit", "--seeds", "0..3", "--wait"]).args([
            "--server",
            &server.url,
            "--token",
            TOKEN,
        ]);
        for b in bugs {
            cmd.args(["--bug", b]);
        }
        let out = cmd.output().expect("gauntlet runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
    };
    let (code, text) = submit(&[]);
    assert_eq!(code, Some(0), "{text}");
    let (code, text) = submit(&["upgrade-field-order"]);
    assert_eq!(code, Some(1), "{text}");
    let (_, runs) = call("GET", &format!("{}/v1/test-runs", server.url), None, None);
    assert!(runs.to_string().contains("raft-kv-scripted"), "{runs}");
}
