//! The run service's clients: `gauntlet submit`, `status` and `logs` (the `serve` feature).

use super::ClientFlags;
use crate::{EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use std::io::BufRead;
use std::path::Path;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// Reads a response's JSON, or says what came back instead.
fn answer(
    resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    server: &str,
) -> Result<(u16, serde_json::Value), String> {
    let mut resp = resp.map_err(|e| format!("{server}: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().map_err(|e| format!("{server}: reading the answer: {e}"))?;
    let v = serde_json::from_str(&body)
        .map_err(|_| format!("{server}: HTTP {status}, not JSON: {}", body.chars().take(200).collect::<String>()))?;
    Ok((status, v))
}

fn api_error(status: u16, v: &serde_json::Value) -> String {
    match v["error"]["message"].as_str() {
        Some(m) => format!("HTTP {status}: {m}"),
        None => format!("HTTP {status}: {v}"),
    }
}

/// `gauntlet submit PLAN --seeds S`: submits a run (the plan's text goes with it) and prints
/// its id; `--wait` follows its events and exits 0 if every seed passed, 1 if one failed.
pub fn submit(plan: &Path, seeds: &str, bugs: &[String], jobs: Option<u32>, wait: bool, c: &ClientFlags) -> i32 {
    let text = match std::fs::read_to_string(plan) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("gauntlet: {}: {e}", plan.display());
            return EXIT_USAGE;
        }
    };
    submit_text(&text, seeds, bugs, jobs, wait, c)
}

/// Submits a plan given as its TOML text (`gauntlet script --submit` sends the base plan with
/// its `[script]`); see [`submit`].
pub fn submit_text(text: &str, seeds: &str, bugs: &[String], jobs: Option<u32>, wait: bool, c: &ClientFlags) -> i32 {
    let Some(token) = &c.token else {
        eprintln!("gauntlet: submit needs the server's write token: --token or GAUNTLET_TOKEN");
        return EXIT_USAGE;
    };
    let body = serde_json::json!({"plan": text, "seeds": seeds, "bugs": bugs, "jobs": jobs});
    let url = format!("{}/v1/test-runs", c.server.trim_end_matches('/'));
    let resp = agent()
        .post(&url)
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/json")
        .send(body.to_string());
    let (status, v) = match answer(resp, &c.server) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    if !(200..300).contains(&status) {
        eprintln!("gauntlet: submit: {}", api_error(status, &v));
        return EXIT_USAGE;
    }
    let id = v["id"].as_str().unwrap_or_default().to_owned();
    if c.json && !wait {
        println!("{v}");
    } else if !c.json {
        let again = if status == 200 { " (already submitted: the same run)" } else { "" };
        println!("run {id}: {} seeds of {}{again}", v["seeds_total"], v["plan"].as_str().unwrap_or("?"));
    }
    if wait {
        return logs(&id, c);
    }
    EXIT_PASS
}

/// `gauntlet status [ID]`: one run (state, progress, failing seeds with replay lines), or
/// the latest runs.
pub fn status(id: Option<&str>, c: &ClientFlags) -> i32 {
    let base = c.server.trim_end_matches('/');
    let url = match id {
        Some(id) => format!("{base}/v1/test-runs/{id}"),
        None => format!("{base}/v1/test-runs?limit=20"),
    };
    let (status, v) = match answer(agent().get(&url).call(), &c.server) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    if status != 200 {
        eprintln!("gauntlet: status: {}", api_error(status, &v));
        return EXIT_USAGE;
    }
    if c.json {
        println!("{v}");
        return EXIT_PASS;
    }
    let line = |r: &serde_json::Value| {
        format!(
            "{}  {:<9} {:>6}/{:<6} {:>4} failed  {}",
            r["id"].as_str().unwrap_or("?"),
            r["state"].as_str().unwrap_or("?"),
            r["seeds_done"],
            r["seeds_total"],
            r["failed"],
            r["plan"].as_str().unwrap_or("?")
        )
    };
    match id {
        Some(_) => {
            println!("{}", line(&v));
            if let Some(e) = v["error"].as_str() {
                println!("  error: {e}");
            }
            for f in v["failures"].as_array().into_iter().flatten() {
                println!(
                    "  seed {}  {}  {}",
                    f["seed"],
                    f["class"].as_str().unwrap_or("?"),
                    f["message"].as_str().unwrap_or("")
                );
                if let Some(r) = f["replay"].as_str() {
                    println!("    replay: {r}");
                }
                if let Some(b) = f["bundle"].as_str() {
                    println!("    bundle: {b}");
                }
            }
        }
        None => {
            for r in v["runs"].as_array().into_iter().flatten() {
                println!("{}", line(r));
            }
        }
    }
    EXIT_PASS
}

/// `gauntlet logs ID`: follows a run's event stream to its end (reconnecting with
/// `Last-Event-ID` if the connection drops); exits 0 if the run passed, 1 if it failed.
pub fn logs(id: &str, c: &ClientFlags) -> i32 {
    let url = format!("{}/v1/test-runs/{id}/events", c.server.trim_end_matches('/'));
    let mut last: Option<String> = None;
    let mut final_state = None;
    for attempt in 0..5 {
        let mut req = agent().get(&url).header("accept", "text/event-stream");
        if let Some(l) = &last {
            req = req.header("last-event-id", l);
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("gauntlet: {url}: {e} (attempt {})", attempt + 1);
                std::thread::sleep(std::time::Duration::from_millis(200 << attempt));
                continue;
            }
        };
        if resp.status() != 200 {
            let status = resp.status().as_u16();
            let v = answer(Ok(resp), &c.server).map(|a| a.1).unwrap_or_default();
            eprintln!("gauntlet: logs: {}", api_error(status, &v));
            return EXIT_USAGE;
        }
        let reader = std::io::BufReader::new(resp.into_body().into_reader());
        let (mut ev_id, mut kind, mut data) = (None, String::new(), String::new());
        for line in reader.lines() {
            let Ok(line) = line else { break };
            if line.is_empty() {
                if !kind.is_empty() {
                    if let Some(i) = ev_id.take() {
                        last = Some(i);
                    }
                    print_event(&kind, &data, c.json, last.as_deref());
                    if kind == "finished" {
                        final_state = serde_json::from_str::<serde_json::Value>(&data)
                            .ok()
                            .and_then(|v| v["state"].as_str().map(str::to_owned));
                    }
                }
                kind.clear();
                data.clear();
            } else if let Some(v) = line.strip_prefix("id:") {
                ev_id = Some(v.trim().to_owned());
            } else if let Some(v) = line.strip_prefix("event:") {
                kind = v.trim().to_owned();
            } else if let Some(v) = line.strip_prefix("data:") {
                data.push_str(v.trim_start());
            }
        }
        if final_state.is_some() {
            break;
        }
    }
    match final_state.as_deref() {
        Some("passed") => EXIT_PASS,
        Some(_) => EXIT_FAIL,
        None => {
            eprintln!("gauntlet: logs: the stream of run {id} ended before the run did");
            crate::EXIT_CRASH
        }
    }
}

fn print_event(kind: &str, data: &str, json: bool, id: Option<&str>) {
    if json {
        println!(
            "{}",
            serde_json::json!({"id": id, "event": kind, "data": serde_json::from_str::<serde_json::Value>(data).unwrap_or_default()})
        );
        return;
    }
    let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
    match kind {
        "seed_passed" => {}
        "seed_failed" => println!(
            "seed {} FAILED: {}  ({})",
            v["seed"],
            v["message"].as_str().unwrap_or(""),
            v["bundle"].as_str().unwrap_or("no bundle")
        ),
        "progress" => println!("progress {}/{}", v["done"], v["total"]),
        "finished" => println!(
            "finished: {} ({} passed, {} failed)",
            v["state"].as_str().unwrap_or("?"),
            v["passed"],
            v["failed"]
        ),
        other => println!("{other} {v}"),
    }
}
