//! `gauntlet serve` (the run service of `gauntlet-serve`, executing this command line's
//! applications) and its clients: `submit`, `status`, `logs`.

use crate::apps::Apps;
use crate::{EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use gauntlet::{Plan, Registry};
use gauntlet_serve::{Executor, PlanInfo, SeedOutcome};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The environment variable a seed process reads to end with the server that started it.
pub const DIE_WITH_PARENT: &str = "GAUNTLET_DIE_WITH_PARENT";

/// The service's view of this command line: plans checked against its applications, seeds
/// run by `sweep-one` in processes of this very executable.
struct CliExecutor {
    registry: Registry,
    /// The applications registered with `Apps::with_http` (the ones that can be promoted).
    promotable: Vec<String>,
    exe: PathBuf,
    build: String,
}

impl Executor for CliExecutor {
    fn check(&self, plan_toml: &str, bugs: &[String], backend: &str) -> Result<PlanInfo, String> {
        let mut plan = Plan::from_toml(plan_toml).map_err(|e| e.to_string())?;
        plan.add_bugs(bugs);
        self.registry.check(&plan).map_err(|e| e.to_string())?;
        if backend != "sim" && !self.promotable.contains(&plan.app.name) {
            return Err(format!(
                "application {:?} cannot be promoted to {backend}: it is registered for simulation only (promotable \
                 here: {})",
                plan.app.name,
                if self.promotable.is_empty() { "none".to_owned() } else { self.promotable.join(", ") }
            ));
        }
        Ok(PlanInfo { name: plan.name.clone(), app: plan.app.name.clone() })
    }

    fn backends(&self) -> Vec<String> {
        // k8s promotion renders manifests only (no cluster to drive here): not a run.
        ["sim", "local", "compose"].map(str::to_owned).to_vec()
    }

    fn seeds(&self, spec: &str) -> Result<Vec<u64>, String> {
        let spec = spec.trim();
        if spec.contains("..") || spec.contains('+') {
            crate::sweep::parse_range(spec)
        } else {
            gauntlet_sim::seed::parse_seed("seeds", spec).map(|s| vec![s]).map_err(|e| e.to_string())
        }
    }

    #[allow(clippy::disallowed_types, reason = "the service runs each seed in a process of its own")]
    fn seed_command(
        &self,
        plan: &Path,
        seed: u64,
        bugs: &[String],
        backend: &str,
        out: &Path,
    ) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.exe);
        if backend == "sim" {
            cmd.arg("sweep-one").arg(plan).arg("--seed").arg(seed.to_string()).arg("--out").arg(out);
        } else {
            // The observed bundle and the run directory (node logs) go under `out`.
            cmd.arg("promote").arg(plan).arg("--backend").arg(backend).arg("--seed").arg(seed.to_string());
            cmd.arg("--events").arg("--out").arg(out);
        }
        for b in bugs {
            cmd.arg("--bug").arg(b);
        }
        cmd.env_remove("SIM_SEED").env_remove("CHAOS_SEED").env("RUST_BACKTRACE", "0");
        cmd.env(DIE_WITH_PARENT, std::process::id().to_string());
        cmd
    }

    fn parse_outcome(&self, stdout: &[u8]) -> Option<SeedOutcome> {
        let line = String::from_utf8_lossy(stdout);
        let v: serde_json::Value = serde_json::from_str(line.lines().last()?.trim()).ok()?;
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        let mut outcome = SeedOutcome {
            passed: v["verdict"] == "pass",
            class: text("class"),
            source: text("source"),
            message: v["failures"][0].as_str().map(str::to_owned),
            bundle: text("bundle"),
            replay: text("replay"),
            trace_hash: text("trace_hash"),
            comparison: None,
        };
        if let Some(matches) = v["matches_baseline"].as_bool() {
            // A promotion passes when its expectations held and it matched its baseline.
            let deviations: Vec<&str> =
                v["deviations"].as_array().into_iter().flatten().filter_map(|d| d.as_str()).collect();
            if outcome.passed && !matches {
                outcome.passed = false;
                outcome.class = Some("deviation".into());
                outcome.source = Some("baseline".into());
                outcome.message = Some(format!("does not match the simulated baseline: {}", deviations.join("; ")));
            }
            outcome.comparison = Some(serde_json::json!({
                "backend": v["backend"],
                "matches": matches,
                "verdict": v["verdict"],
                "baseline_verdict": v["baseline_verdict"],
                "baseline": v["baseline"],
                "observed": v["observed"],
                "deviations": v["deviations"],
                "tolerance": v["tolerance"],
                "run_dir": v["run_dir"],
            }));
        }
        Some(outcome)
    }

    fn parse_event(&self, line: &str) -> Option<(String, serde_json::Value)> {
        if !line.starts_with('{') || !line.contains("\"event\":") {
            return None;
        }
        let mut v: serde_json::Value = serde_json::from_str(line).ok()?;
        let kind = v.as_object_mut()?.remove("event")?.as_str()?.to_owned();
        Some((kind, v))
    }

    fn build(&self) -> String {
        self.build.clone()
    }

    fn compare(&self, a: &Path, b: &Path) -> Result<serde_json::Value, String> {
        let read = |p: &Path| gauntlet::Bundle::read(p).map_err(|e| format!("{}: {e}", p.display()));
        Ok(crate::bundle_cmd::diff_value(&read(a)?, &read(b)?, a, b))
    }

    #[allow(clippy::disallowed_types, reason = "the shrinker runs in a process of its own")]
    fn shrink(&self, bundle: &Path, out: &Path) -> Result<(String, serde_json::Value), String> {
        let output = std::process::Command::new(&self.exe)
            .arg("shrink")
            .arg(bundle)
            .arg("-o")
            .arg(out)
            .arg("--json")
            .env(DIE_WITH_PARENT, std::process::id().to_string())
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot start the shrinker: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        let report: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or_default())
            .map_err(|_| format!("the shrinker said: {}", String::from_utf8_lossy(&output.stderr).trim()))?;
        let plan = std::fs::read_to_string(out).map_err(|e| format!("the shrunk plan {}: {e}", out.display()))?;
        Ok((plan, report))
    }

    fn report_html(&self, bundle: &Path) -> Result<String, String> {
        let b = gauntlet::Bundle::read(bundle).map_err(|e| e.to_string())?;
        Ok(crate::report::render(&b))
    }
}

/// When the parent that started this seed process is gone (or goes), this process gets
/// `signal` (SIGKILL for a simulated seed; SIGTERM for a promotion, which then tears its
/// cluster down): a server killed with SIGKILL leaves no seed running.
pub fn die_with_parent(signal: nix::sys::signal::Signal) {
    let Some(parent) = std::env::var(DIE_WITH_PARENT).ok().and_then(|p| p.parse::<i32>().ok()) else { return };
    let _ = nix::sys::prctl::set_pdeathsig(signal);
    if nix::unistd::getppid().as_raw() != parent {
        eprintln!("gauntlet: the server that started this seed is gone");
        std::process::exit(crate::EXIT_CRASH);
    }
}

/// `gauntlet serve`'s flags.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeFlags {
    /// Where to listen (loopback by default).
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: std::net::SocketAddr,
    /// The data directory: the run store (runs.sqlite), plans, bundles, the token.
    #[arg(long, default_value = "gauntlet-data")]
    pub data: PathBuf,
    /// The write token for mutating requests. Default: GAUNTLET_TOKEN, else one generated
    /// into <data>/token.
    #[arg(long, env = "GAUNTLET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Runs executing at once.
    #[arg(long, default_value_t = 1)]
    pub max_active: usize,
    /// Seeds of one run at once, unless a submission says. Default: the number of cores.
    #[arg(long)]
    pub jobs: Option<u32>,
    /// Directories submissions may name plan files in (`plan_path`; repeatable). Default: the
    /// command line's plan directory.
    #[arg(long = "plans", value_name = "DIR")]
    pub plans: Vec<PathBuf>,
    /// Serve on an address that is not loopback (the API then reaches other machines).
    #[arg(long)]
    pub allow_remote: bool,
    /// The run store: `sqlite` (default: <data>/runs.sqlite) or a `postgres://user:pw@host/db`
    /// URL (GAUNTLET_STORE).
    #[arg(long, env = "GAUNTLET_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// POST each failed run's alert (JSON: the run, its failures, the build) here; failed
    /// deliveries are retried with backoff and recorded (`/v1/incidents`).
    #[arg(long)]
    pub webhook: Option<String>,
    /// Close a client's connection when a write to it has been blocked this long (a client
    /// that stopped reading its event stream).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub stall_limit: std::time::Duration,
}

/// `gauntlet serve`.
pub fn serve(apps: &Apps, flags: ServeFlags) -> i32 {
    if !flags.listen.ip().is_loopback() && !flags.allow_remote {
        eprintln!(
            "gauntlet: --listen {} is not a loopback address: pass --allow-remote to serve beyond this machine",
            flags.listen
        );
        return EXIT_USAGE;
    }
    let Some(exe) = crate::sweep::own_exe() else { return EXIT_USAGE };
    if let Err(e) = std::fs::create_dir_all(&flags.data) {
        eprintln!("gauntlet: --data {}: {e}", flags.data.display());
        return EXIT_USAGE;
    }
    let data = flags.data.canonicalize().unwrap_or(flags.data.clone());
    let modified = std::fs::metadata(&exe)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let build = format!("{} {}@{modified}", env!("CARGO_PKG_VERSION"), exe.display());
    let promotable = apps.promotable().into_iter().map(str::to_owned).collect();
    let executor = Arc::new(CliExecutor { registry: apps.registry.clone(), promotable, exe, build });
    let mut config = gauntlet_serve::Config::new(data, flags.token);
    config.listen = flags.listen;
    config.store = flags.store;
    config.webhook = flags.webhook;
    config.stall_limit = flags.stall_limit;
    config.max_active = flags.max_active.max(1);
    if let Some(j) = flags.jobs {
        config.jobs = j.max(1);
    }
    config.plan_dirs = if flags.plans.is_empty() { vec![apps.plans_dir.clone()] } else { flags.plans };
    match gauntlet_serve::serve_blocking(config, executor) {
        Ok(()) => EXIT_PASS,
        Err(e) => {
            eprintln!("gauntlet: serve: {e}");
            EXIT_USAGE
        }
    }
}

/// Where the client commands find the server and its token.
#[derive(clap::Args, Clone, Debug)]
pub struct ClientFlags {
    /// The server's URL.
    #[arg(long, env = "GAUNTLET_SERVER", default_value = "http://127.0.0.1:7878")]
    pub server: String,
    /// The write token (for `submit`).
    #[arg(long, env = "GAUNTLET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

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
