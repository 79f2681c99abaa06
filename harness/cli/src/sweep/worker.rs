//! How `gauntlet sweep` runs its seeds in processes of its own executable.
//!
//! * **Batched** (the default): each job keeps one worker process (`gauntlet sweep-worker`)
//!   that loads the plan once and then runs the seeds it is handed on its standard input, one
//!   at a time, each in a fresh world, answering each with one JSON line. A watchdog gives
//!   every seed the time limit: a worker that does not answer in time is killed and its seed
//!   reported as a `timeout`; a worker that dies (a panic that aborts, a signal, the OOM
//!   killer) has its seed reported as a `crash` of source `process`. Either way the job
//!   starts a new worker for its next seed, so a broken seed never hides another.
//! * **Process per seed** (`--mode process`): one `gauntlet sweep-one` process per seed, with
//!   the same time limit; what the sweep did before workers were batched, kept to compare.
//!
//! Both ends speak the `run` JSON line of `gauntlet run --json`, with the run's probes.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "runs worker processes and measures wall time, outside any simulation"
)]

use super::shard::SeedLine;
use crate::apps::Apps;
use crate::plan_cmd::{bundle_path, replay_line, run_json};
use gauntlet::bundle::Bundle;
use gauntlet::registry::RunOptions;
use gauntlet::{Plan, Verdict};
use gauntlet_sim::{ProbeHits, ProbeKind, Probes, Seeds};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest answer line a worker may send (a run's line with its probes is a few KB).
const MAX_LINE: u64 = 4 << 20;
/// How long a new worker may take to load its plan.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// How much of a worker's standard error is kept to explain its death.
const STDERR_TAIL: usize = 16 << 10;

/// How seeds are isolated from each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// One worker process per job runs many seeds, each in a fresh world.
    Batch,
    /// One process per seed.
    Process,
}

/// What every seed's process needs to know.
#[derive(Debug, Clone)]
pub struct Job {
    /// This executable.
    pub exe: PathBuf,
    /// The plan file.
    pub plan: PathBuf,
    /// Planted bugs.
    pub bugs: Vec<String>,
    /// Where failing seeds' bundles go.
    pub out: PathBuf,
    /// The per-seed wall-clock limit.
    pub timeout: Duration,
}

/// One seed's result, as the sweep saw it: its line and its probes (none when its process
/// failed).
#[derive(Debug, Clone)]
pub struct SeedResult {
    /// The line recorded.
    pub line: SeedLine,
    /// The run's sometimes-assertions.
    pub probes: Option<Probes>,
}

impl SeedResult {
    fn process_failed(seed: u64, class: &str, message: String, wall: Duration) -> SeedResult {
        SeedResult {
            line: SeedLine {
                seed,
                verdict: "fail".into(),
                class: Some(class.into()),
                source: Some("process".into()),
                message: Some(message),
                trace_hash: None,
                wall_ms: wall.as_millis() as u64,
                bundle: None,
            },
            probes: None,
        }
    }

    /// Reads a worker's (or `sweep-one`'s) answer line.
    fn parse(seed: u64, text: &str, wall: Duration) -> Option<SeedResult> {
        let v: serde_json::Value = serde_json::from_str(text.trim()).ok()?;
        if v["seed"].as_u64() != Some(seed) {
            return None;
        }
        let s = |k: &str| v[k].as_str().map(str::to_owned);
        Some(SeedResult {
            line: SeedLine {
                seed,
                verdict: if v["verdict"] == "pass" { "pass".into() } else { "fail".into() },
                class: s("class"),
                source: s("source"),
                message: v["failures"][0].as_str().map(str::to_owned),
                trace_hash: s("trace_hash"),
                wall_ms: v["wall_ms"].as_u64().unwrap_or(wall.as_millis() as u64),
                bundle: s("bundle"),
            },
            probes: probes_from_json(&v["probes"]),
        })
    }
}

/// A run's probes for the answer line: `[{name, kind, evaluated, held, first_held_ms}]`.
fn probes_json(probes: &Probes) -> serde_json::Value {
    (probes.iter())
        .map(|(name, p)| {
            serde_json::json!({
                "name": name, "kind": p.kind.as_str(), "evaluated": p.evaluated, "held": p.held,
                "first_held_ms": p.first_held.map(|t| t.as_secs_f64() * 1e3),
            })
        })
        .collect()
}

/// Reads [`probes_json`] back (`None` if the line has none: a child from another build).
fn probes_from_json(v: &serde_json::Value) -> Option<Probes> {
    let mut probes = Probes::new();
    for p in v.as_array()? {
        let kind = match p["kind"].as_str()? {
            "reachable" => ProbeKind::Reachable,
            _ => ProbeKind::Sometimes,
        };
        let (evaluated, held) = (p["evaluated"].as_u64()?, p["held"].as_u64()?);
        let first_held = p["first_held_ms"].as_f64().map(|ms| Duration::from_secs_f64(ms / 1e3));
        probes.insert(p["name"].as_str()?.to_owned(), ProbeHits { kind, evaluated, held, first_held });
    }
    Some(probes)
}

/// Runs one seed of `plan` in this process (a fresh world; a failing seed is run again
/// keeping its events, for its bundle) and returns its answer line and exit code.
pub fn run_seed(apps: &Apps, plan: &Plan, file: &Path, seed: u64, bugs: &[String], out: &Path) -> (String, i32) {
    let seeds = Seeds::new(seed);
    let replay = replay_line(file, bugs, seeds);
    let started = Instant::now();
    let outcome = match apps.registry.run_plan(plan, seeds, RunOptions::default()) {
        Ok(o) => o,
        Err(e) => {
            let line = serde_json::json!({
                "plan": plan.name, "seed": seed, "verdict": "fail", "class": "crash", "source": "run",
                "failures": [format!("the run broke: {e}")], "replay": replay,
                "wall_ms": started.elapsed().as_millis() as u64,
            });
            return (line.to_string(), crate::EXIT_CRASH);
        }
    };
    let wall_ms = started.elapsed().as_millis() as u64;
    let mut bundle = None;
    if let Verdict::Fail(_) = &outcome.verdict {
        let kept = apps.registry.run_plan(plan, seeds, RunOptions { keep_events: true, ..RunOptions::default() });
        if let Ok(full) = kept {
            let path = bundle_path(out, plan, seeds);
            match Bundle::of(plan, &full).write(&path) {
                Ok(()) => bundle = Some(path),
                Err(e) => eprintln!("gauntlet: {e}"),
            }
        }
    }
    let mut line = run_json(plan, &outcome, wall_ms, bundle.as_deref(), &replay);
    line["probes"] = probes_json(&outcome.probes);
    let code = match &outcome.verdict {
        Verdict::Pass => crate::EXIT_PASS,
        Verdict::Fail(f) => f.class.exit_code(),
    };
    (line.to_string(), code)
}

/// `gauntlet sweep-worker`: loads the plan once, then for every seed read from standard input
/// (one per line) runs it and prints its answer line, flushed. Ends at the end of its input.
pub fn serve_seeds(apps: &Apps, file: &Path, bugs: &[String], out: &Path) -> i32 {
    let plan = match crate::plan_cmd::load_plan(apps, file, bugs) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return crate::EXIT_USAGE;
        }
    };
    let stdin = std::io::stdin();
    // Standard output is locked only to write an answer: a run's own threads may print.
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").and_then(|()| out.flush())
    };
    // The plan is loaded: seeds' time limits start now.
    if say(&serde_json::json!({"ready": plan.name}).to_string()).is_err() {
        return crate::EXIT_PASS;
    }
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let Ok(seed) = line.trim().parse::<u64>() else {
            eprintln!("gauntlet: sweep-worker: {line:?} is not a seed");
            return crate::EXIT_USAGE;
        };
        let (answer, _) = run_seed(apps, &plan, file, seed, bugs, out);
        if say(&answer).is_err() {
            break; // the sweep is gone
        }
    }
    crate::EXIT_PASS
}

/// A live worker process.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stderr: Arc<Mutex<VecDeque<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Worker {
    fn start(job: &Job) -> Result<Worker, String> {
        let mut cmd = Command::new(&job.exe);
        cmd.arg("sweep-worker").arg(&job.plan).arg("--out").arg(&job.out);
        for b in &job.bugs {
            cmd.arg("--bug").arg(b);
        }
        cmd.env_remove("SIM_SEED").env_remove("CHAOS_SEED").env("RUST_BACKTRACE", "0");
        cmd.env(crate::process::DIE_WITH_PARENT, std::process::id().to_string());
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", job.exe.display()))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let (tx, lines) = std::sync::mpsc::channel();
        let out_reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match (&mut r).take(MAX_LINE).read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if tx.send(line).is_err() => break,
                    Ok(_) => {}
                }
            }
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let keep = Arc::clone(&tail);
        let err_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                let mut t = keep.lock().unwrap_or_else(|p| p.into_inner());
                t.extend(&buf[..n]);
                let extra = t.len().saturating_sub(STDERR_TAIL);
                t.drain(..extra);
            }
        });
        let w = Worker { child, stdin, lines, stderr: tail, readers: vec![out_reader, err_reader] };
        // Loading the plan is not any seed's time: wait for the worker to say it is ready.
        let ready = |line: &str| serde_json::from_str::<serde_json::Value>(line).ok()?.get("ready").map(|_| ());
        match w.answer(Instant::now() + job.timeout.max(READY_LIMIT), ready) {
            Ok(()) => Ok(w),
            other => {
                let stderr = Arc::clone(&w.stderr);
                let timed_out = matches!(other, Err(RecvTimeoutError::Timeout));
                let status = w.end(true);
                Err(format!(
                    "the worker process {}: {}",
                    if timed_out {
                        "did not load the plan in time".to_owned()
                    } else {
                        format!("ended ({}) before it was ready", status.map_or("?".into(), |s| s.to_string()))
                    },
                    Worker::tail_of(&stderr)
                ))
            }
        }
    }

    /// The first line the worker writes before `deadline` that `accept` takes. Lines it does
    /// not take are skipped: an application's own output on standard output goes through the
    /// same pipe as the answers.
    fn answer<T>(&self, deadline: Instant, accept: impl Fn(&str) -> Option<T>) -> Result<T, RecvTimeoutError> {
        loop {
            let line = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now()))?;
            if let Some(t) = accept(line.trim()) {
                return Ok(t);
            }
        }
    }

    /// The last lines a worker wrote to its standard error, joined.
    fn tail_of(stderr: &Mutex<VecDeque<u8>>) -> String {
        let t = stderr.lock().unwrap_or_else(|p| p.into_inner());
        let bytes: Vec<u8> = t.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        let mut last: Vec<&str> = text.lines().rev().filter(|l| !l.trim().is_empty()).take(3).collect();
        last.reverse();
        last.join(" | ")
    }

    /// Kills the worker (if it still runs) and reaps it and its reader threads.
    fn end(mut self, kill: bool) -> Option<std::process::ExitStatus> {
        if kill {
            let _ = self.child.kill();
        }
        drop(self.stdin);
        let status = self.child.wait().ok();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        status
    }

    /// Runs `seed`: its result, with the worker while it lives (`None` when it died or was
    /// killed for the time limit; the result then reports the seed as such).
    fn run(mut self, seed: u64, timeout: Duration) -> (Option<Worker>, SeedResult) {
        let started = Instant::now();
        let sent = writeln!(self.stdin, "{seed}").and_then(|()| self.stdin.flush());
        let answer = match sent {
            Ok(()) => self.answer(started + timeout, |line| SeedResult::parse(seed, line, started.elapsed())),
            Err(_) => Err(RecvTimeoutError::Disconnected),
        };
        match answer {
            Ok(r) => (Some(self), r),
            Err(RecvTimeoutError::Timeout) => {
                self.end(true);
                (
                    None,
                    SeedResult::process_failed(
                        seed,
                        "timeout",
                        format!("no verdict within {timeout:?} (the worker was killed)"),
                        started.elapsed(),
                    ),
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                let wall = started.elapsed();
                let stderr = Arc::clone(&self.stderr);
                let status = self.end(false);
                // The reader threads have ended: the tail is whole.
                let tail = Worker::tail_of(&stderr);
                (
                    None,
                    SeedResult::process_failed(
                        seed,
                        "crash",
                        format!(
                            "the worker process ended ({}) while running this seed{}",
                            status.map_or("status unknown".to_owned(), |s| s.to_string()),
                            if tail.is_empty() { String::new() } else { format!(": {tail}") }
                        ),
                        wall,
                    ),
                )
            }
        }
    }
}

/// Runs seeds on one job until `next` has none: through one batched worker (started again
/// after each one that dies or is killed) or one process per seed. Every seed `next` hands
/// out is given to `done` exactly once.
pub fn run_job(job: &Job, mode: Mode, mut next: impl FnMut() -> Option<u64>, mut done: impl FnMut(SeedResult)) {
    let mut worker: Option<Worker> = None;
    while let Some(seed) = next() {
        let result = match mode {
            Mode::Process => run_child(job, seed),
            Mode::Batch => {
                let w = match worker.take() {
                    Some(w) => w,
                    None => match Worker::start(job) {
                        Ok(w) => w,
                        Err(e) => {
                            done(SeedResult::process_failed(seed, "crash", e, Duration::ZERO));
                            continue;
                        }
                    },
                };
                let (alive, r) = w.run(seed, job.timeout);
                worker = alive;
                r
            }
        };
        done(result);
    }
    if let Some(w) = worker {
        w.end(false); // its input ends: it exits
    }
}

/// Runs one seed in a `gauntlet sweep-one` process of its own, killed at the time limit.
fn run_child(job: &Job, seed: u64) -> SeedResult {
    let mut cmd = Command::new(&job.exe);
    cmd.arg("sweep-one").arg(&job.plan).arg("--seed").arg(seed.to_string()).arg("--out").arg(&job.out);
    for b in &job.bugs {
        cmd.arg("--bug").arg(b);
    }
    cmd.env_remove("SIM_SEED").env_remove("CHAOS_SEED").env("RUST_BACKTRACE", "0");
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return SeedResult::process_failed(
                seed,
                "crash",
                format!("cannot start {}: {e}", job.exe.display()),
                Duration::ZERO,
            )
        }
    };
    // Drain both pipes in their own threads so a chatty child can never block on a full pipe.
    let mut out_pipe = child.stdout.take().expect("piped");
    let mut err_pipe = child.stderr.take().expect("piped");
    let (status, stdout, stderr) = std::thread::scope(|scope| {
        let o = scope.spawn(move || {
            let mut v = Vec::new();
            let _ = (&mut out_pipe).take(MAX_LINE).read_to_end(&mut v);
            v
        });
        let e = scope.spawn(move || {
            let mut v = Vec::new();
            let _ = err_pipe.read_to_end(&mut v);
            v
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if started.elapsed() > job.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(_) => break None,
            }
        };
        (status, o.join().unwrap_or_default(), e.join().unwrap_or_default())
    });
    let wall = started.elapsed();
    let Some(status) = status else {
        return SeedResult::process_failed(
            seed,
            "timeout",
            format!("no verdict within {:?} (killed)", job.timeout),
            wall,
        );
    };
    let text = String::from_utf8_lossy(&stdout);
    SeedResult::parse(seed, text.lines().last().unwrap_or(""), wall).unwrap_or_else(|| {
        let tail: String = String::from_utf8_lossy(&stderr).lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        SeedResult::process_failed(
            seed,
            "crash",
            format!("the run process ended with {status} and no verdict: {tail}"),
            wall,
        )
    })
}
