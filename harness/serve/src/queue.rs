//! The queue and its runners: runs wait in the store as `pending`; at most `max_active`
//! execute, each seed in its own process (the [`Executor`]'s seed command), `jobs` at a time.
//! A seed's result is recorded (with its event) the moment its process ends, so a server
//! killed mid-run loses at most the seeds in flight; at startup, runs a previous server left
//! `running` go back to the queue and resume with the seeds not yet recorded.

use crate::executor::Executor;
use crate::metrics::Metrics;
use crate::store::{RunState, SeedRecord, Store, StoreError};
use crate::{now_ms, Config, ServeError};
use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long one seed's process may take before it is killed (a hang is that seed's failure).
const SEED_TIMEOUT: Duration = Duration::from_secs(300);

/// The queue: wakes runners when runs are submitted, cancels them on request.
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    executor: Arc<dyn Executor>,
    metrics: Arc<Metrics>,
    data: PathBuf,
    max_active: usize,
    active: AtomicUsize,
    /// Cancellation flags of the runs executing now.
    cancels: Mutex<BTreeMap<String, Arc<AtomicBool>>>,
    wake: (Mutex<u64>, Condvar),
    /// Bumped on every event appended, so event streams wake.
    events: tokio::sync::watch::Sender<u64>,
}

impl Queue {
    /// Resumes the runs a previous server left `running`, and starts the dispatcher.
    pub fn start(
        store: Arc<dyn Store>,
        executor: Arc<dyn Executor>,
        config: &Config,
        metrics: Arc<Metrics>,
    ) -> Result<Queue, ServeError> {
        for id in store.running()? {
            let done = store.seeds_done(&id)?.len();
            store.transition(
                &id,
                RunState::Pending,
                None,
                "interrupted",
                serde_json::json!({"reason": "the server stopped while the run executed; it resumes", "seeds_done": done}),
                now_ms(),
            )?;
        }
        for dir in ["plans", "bundles"] {
            let d = config.data.join(dir);
            std::fs::create_dir_all(&d)
                .map_err(|source| ServeError::Io { what: format!("creating {}", d.display()), source })?;
        }
        let inner = Arc::new(Inner {
            store,
            executor,
            metrics,
            data: config.data.clone(),
            max_active: config.max_active.max(1),
            active: AtomicUsize::new(0),
            cancels: Mutex::new(BTreeMap::new()),
            wake: (Mutex::new(0), Condvar::new()),
            events: tokio::sync::watch::channel(0).0,
        });
        let dispatcher = inner.clone();
        std::thread::Builder::new()
            .name("gauntlet-queue".into())
            .spawn(move || dispatcher.dispatch())
            .map_err(|source| ServeError::Io { what: "starting the queue".into(), source })?;
        Ok(Queue { inner })
    }

    /// Wakes the dispatcher (a run was submitted).
    pub fn wake(&self) {
        self.inner.wake_up();
    }

    /// Notes that an event was appended outside the queue (event streams wake).
    pub fn notify_event(&self) {
        self.inner.events.send_modify(|n| *n += 1);
    }

    /// A receiver that changes whenever any run gets an event.
    pub fn events(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.events.subscribe()
    }

    /// Runs executing now.
    pub fn active(&self) -> usize {
        self.inner.active.load(Ordering::SeqCst)
    }

    /// Cancels a run: a pending one at once; an executing one's seed processes are killed and
    /// it ends `cancelled`. Returns `false` if the run had already ended.
    pub fn cancel(&self, id: &str) -> Result<bool, StoreError> {
        let flag = self.inner.cancels.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned();
        let changed = self.inner.store.transition(
            id,
            RunState::Cancelled,
            None,
            "finished",
            serde_json::json!({"state": "cancelled", "reason": "cancelled by request"}),
            now_ms(),
        )?;
        if let Some(flag) = flag {
            flag.store(true, Ordering::SeqCst);
        }
        self.notify_event();
        Ok(changed)
    }
}

impl Inner {
    fn wake_up(&self) {
        let (lock, cv) = &self.wake;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        cv.notify_all();
    }

    fn notify(&self) {
        self.events.send_modify(|n| *n += 1);
    }

    /// Takes pending runs while fewer than `max_active` execute.
    fn dispatch(self: Arc<Self>) {
        let (lock, cv) = &self.wake;
        let mut seen = *lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            while self.active.load(Ordering::SeqCst) < self.max_active {
                let next = match self.store.next_pending() {
                    Ok(Some(id)) => id,
                    Ok(None) => break,
                    Err(e) => {
                        eprintln!("gauntlet serve: the queue cannot read the store: {e}");
                        break;
                    }
                };
                let flag = Arc::new(AtomicBool::new(false));
                self.cancels.lock().unwrap_or_else(|p| p.into_inner()).insert(next.clone(), flag.clone());
                match self.store.transition(&next, RunState::Running, None, "started", serde_json::json!({}), now_ms())
                {
                    Ok(true) => {}
                    Ok(false) => {
                        self.cancels.lock().unwrap_or_else(|p| p.into_inner()).remove(&next);
                        continue;
                    }
                    Err(e) => {
                        eprintln!("gauntlet serve: run {next}: {e}");
                        break;
                    }
                }
                self.notify();
                self.active.fetch_add(1, Ordering::SeqCst);
                self.metrics.active.set(self.active.load(Ordering::SeqCst) as i64);
                let me = self.clone();
                let spawned = std::thread::Builder::new().name(format!("run-{next}")).spawn(move || {
                    let started = Instant::now();
                    let id = next.clone();
                    let end = me.execute(&id, &flag);
                    me.finish(&id, end, started.elapsed());
                });
                if let Err(e) = spawned {
                    eprintln!("gauntlet serve: cannot start a runner thread: {e}");
                    self.active.fetch_sub(1, Ordering::SeqCst);
                    break;
                }
            }
            // Wait for a submission or a runner finishing (both bump the counter); the timeout
            // also picks up runs another process inserted into a shared store.
            let mut n = lock.lock().unwrap_or_else(|p| p.into_inner());
            while *n == seen {
                let (guard, timeout) = cv.wait_timeout(n, Duration::from_secs(2)).unwrap_or_else(|p| p.into_inner());
                n = guard;
                if timeout.timed_out() {
                    break;
                }
            }
            seen = *n;
        }
    }

    /// Records how a run ended and frees its slot.
    fn finish(&self, id: &str, end: Result<End, String>, took: Duration) {
        self.cancels.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        let run = self.store.run(id).ok().flatten();
        let (state, error) = match &end {
            Ok(End::Done) => match &run {
                Some(r) if r.failed > 0 => (RunState::Failed, None),
                _ => (RunState::Passed, None),
            },
            Ok(End::Cancelled) => (RunState::Cancelled, None),
            Ok(End::TimeLimit(limit)) => {
                (RunState::Error, Some(format!("the run exceeded its time limit of {limit:?}")))
            }
            Err(e) => (RunState::Error, Some(e.clone())),
        };
        let data = serde_json::json!({
            "state": state.as_str(),
            "passed": run.as_ref().map_or(0, |r| r.passed),
            "failed": run.as_ref().map_or(0, |r| r.failed),
            "error": error,
            "wall_ms": took.as_millis() as u64,
        });
        match self.store.transition(id, state, error.as_deref(), "finished", data, now_ms()) {
            Ok(true) => {
                self.metrics.run_finished(state, took);
                if matches!(state, RunState::Failed | RunState::Error) {
                    self.open_incident(id);
                }
            }
            Ok(false) => {} // cancelled meanwhile: already recorded
            Err(e) => eprintln!("gauntlet serve: run {id}: {e}"),
        }
        self.active.fetch_sub(1, Ordering::SeqCst);
        self.metrics.active.set(self.active.load(Ordering::SeqCst) as i64);
        self.notify();
        self.wake_up();
    }

    /// Opens the run's incident (its alert goes out from the deliverer, if one runs).
    fn open_incident(&self, id: &str) {
        let opened = self.store.run(id).and_then(|run| {
            let Some(run) = run else { return Ok(None) };
            let failures = self.store.seeds(id, true, 0, 5)?;
            self.store.open_incident(id, &crate::alerts::payload(&run, &failures), now_ms())
        });
        if let Err(e) = opened {
            eprintln!("gauntlet serve: run {id}: opening its incident: {e}");
        }
    }

    /// Runs every seed not yet recorded.
    fn execute(&self, id: &str, cancel: &AtomicBool) -> Result<End, String> {
        let run = self.store.run(id).map_err(|e| e.to_string())?.ok_or_else(|| format!("no run {id}"))?;
        let toml = self.store.plan_toml(id).map_err(|e| e.to_string())?.ok_or_else(|| format!("no run {id}"))?;
        let plan = self.data.join("plans").join(format!("{id}.toml"));
        write_atomically(&plan, toml.as_bytes()).map_err(|e| format!("writing {}: {e}", plan.display()))?;
        let out = self.data.join("bundles").join(id);
        std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
        let done: std::collections::BTreeSet<u64> =
            self.store.seeds_done(id).map_err(|e| e.to_string())?.into_iter().collect();
        let seeds: Vec<u64> = self.executor.seeds(&run.seeds)?.into_iter().filter(|s| !done.contains(s)).collect();
        let deadline = Duration::from_millis(run.time_limit_ms);
        let started = Instant::now();
        let next = AtomicUsize::new(0);
        let completed = AtomicUsize::new(done.len());
        let over = AtomicBool::new(false);
        let progress_every = (run.seeds_total / 20).max(1);
        let failure: Mutex<Option<String>> = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..(run.jobs.max(1) as usize).min(seeds.len()) {
                scope.spawn(|| loop {
                    if cancel.load(Ordering::SeqCst) || over.load(Ordering::SeqCst) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&seed) = seeds.get(i) else { break };
                    let stop = || cancel.load(Ordering::SeqCst) || started.elapsed() > deadline;
                    let Some(record) = self.run_seed(id, &plan, &out, &run.bugs, &run.backend, seed, &stop) else {
                        if started.elapsed() > deadline {
                            over.store(true, Ordering::SeqCst);
                        }
                        break; // stopped: the seed is not recorded, a resumed run runs it again
                    };
                    self.metrics.seed_finished(Duration::from_millis(record.wall_ms));
                    match self.store.record_seed(id, &record) {
                        Ok(_) => {
                            let done = completed.fetch_add(1, Ordering::SeqCst) as u64 + 1;
                            if done.is_multiple_of(progress_every) || done == run.seeds_total {
                                let data = serde_json::json!({"done": done, "total": run.seeds_total});
                                let _ = self.store.append_event(id, "progress", &data);
                            }
                            self.notify();
                        }
                        Err(e) => {
                            *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                            over.store(true, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        if cancel.load(Ordering::SeqCst) {
            Ok(End::Cancelled)
        } else if over.load(Ordering::SeqCst) || started.elapsed() > deadline {
            Ok(End::TimeLimit(deadline))
        } else {
            Ok(End::Done)
        }
    }

    /// Runs one seed's process; `None` if `stop` said to stop before it ended (it is ended:
    /// SIGTERM, then SIGKILL after [`STOP_GRACE`]). Lines the process prints that the
    /// executor reads as events are appended to the run's log as they come.
    #[allow(clippy::too_many_arguments, reason = "one seed of one run: each argument is a different part of it")]
    fn run_seed(
        &self,
        id: &str,
        plan: &Path,
        out: &Path,
        bugs: &[String],
        backend: &str,
        seed: u64,
        stop: &dyn Fn() -> bool,
    ) -> Option<SeedRecord> {
        let mut cmd = self.executor.seed_command(plan, seed, bugs, backend, out);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let failed = |class: &str, message: String| SeedRecord {
            seed,
            passed: false,
            class: Some(class.into()),
            source: Some("process".into()),
            message: Some(message),
            bundle: None,
            replay: None,
            trace_hash: None,
            comparison: None,
            wall_ms: started.elapsed().as_millis() as u64,
        };
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return Some(failed("abort", format!("cannot start the seed's process: {e}"))),
        };
        let out_pipe = child.stdout.take().expect("piped");
        let mut err_pipe = child.stderr.take().expect("piped");
        // Both pipes drain in their own threads (bounded), so a chatty child never blocks on
        // a full pipe; standard output is read by line, for the live events.
        let (status, stdout, stderr) = std::thread::scope(|scope| {
            let o = scope.spawn(move || self.read_lines(id, seed, out_pipe));
            let e = scope.spawn(move || read_bounded(&mut err_pipe));
            let mut terminated: Option<Instant> = None;
            let status = loop {
                match child.try_wait() {
                    Ok(Some(_)) if terminated.is_some() => break Err(true),
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) if terminated.is_some_and(|t| t.elapsed() > STOP_GRACE) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(true);
                    }
                    Ok(None) if terminated.is_none() && stop() => {
                        // SIGTERM first: a promotion tears its cluster down on it.
                        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
                        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
                            let _ = child.kill();
                        }
                        terminated = Some(Instant::now());
                    }
                    Ok(None) if started.elapsed() > SEED_TIMEOUT => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(false);
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                    Err(_) => break Err(false),
                }
            };
            (status, o.join().unwrap_or_default(), e.join().unwrap_or_default())
        });
        let status = match status {
            Ok(s) => s,
            Err(true) => return None,
            Err(false) => return Some(failed("timeout", format!("no verdict within {SEED_TIMEOUT:?} (killed)"))),
        };
        let wall_ms = started.elapsed().as_millis() as u64;
        match self.executor.parse_outcome(&stdout) {
            Some(o) => Some(SeedRecord {
                seed,
                passed: o.passed,
                class: o.class,
                source: o.source,
                message: o.message,
                bundle: o.bundle,
                replay: o.replay,
                trace_hash: o.trace_hash,
                comparison: o.comparison,
                wall_ms,
            }),
            None => {
                let tail: Vec<String> =
                    String::from_utf8_lossy(&stderr).lines().rev().take(3).map(str::to_owned).collect();
                Some(failed(
                    "abort",
                    format!("the seed's process ended with {status} and no verdict: {}", tail.join(" | ")),
                ))
            }
        }
    }

    /// Reads a seed process's standard output by line (at most [`MAX_OUTPUT`] kept), appending
    /// the lines the executor reads as events (at most [`MAX_SEED_EVENTS`] per seed; the rest
    /// are counted in one `events_dropped` event). Returns what it kept.
    fn read_lines(&self, id: &str, seed: u64, pipe: impl Read) -> Vec<u8> {
        let mut reader = std::io::BufReader::new(pipe);
        let mut kept = Vec::new();
        let (mut events, mut dropped) = (0usize, 0u64);
        let mut line = Vec::new();
        loop {
            line.clear();
            // One line is bounded too: a line longer than the whole budget is cut.
            match reader.by_ref().take(MAX_OUTPUT as u64).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if let Some((kind, mut data)) = self.executor.parse_event(String::from_utf8_lossy(&line).trim()) {
                if events < MAX_SEED_EVENTS {
                    if let Some(map) = data.as_object_mut() {
                        map.insert("seed".into(), seed.into());
                    }
                    if self.store.append_event(id, &kind, &data).is_ok() {
                        events += 1;
                        self.notify();
                    }
                } else {
                    dropped += 1;
                }
            }
            if kept.len() + line.len() <= MAX_OUTPUT {
                kept.extend_from_slice(&line);
            }
        }
        if dropped > 0 {
            let data = serde_json::json!({"seed": seed, "dropped": dropped, "kept": MAX_SEED_EVENTS});
            let _ = self.store.append_event(id, "events_dropped", &data);
        }
        kept
    }
}

/// How long a stopped seed's process has between SIGTERM and SIGKILL (a promotion tears its
/// cluster down meanwhile).
const STOP_GRACE: Duration = Duration::from_secs(20);

/// A seed process's standard output kept for its outcome.
const MAX_OUTPUT: usize = 1 << 20;

/// Live events one seed may add to its run's log.
const MAX_SEED_EVENTS: usize = 1000;

/// How a run's execution ended.
enum End {
    Done,
    Cancelled,
    TimeLimit(Duration),
}

/// Reads at most 1 MiB of a pipe, then drains (and drops) the rest.
fn read_bounded(r: &mut impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    let _ = r.by_ref().take(1 << 20).read_to_end(&mut v);
    let _ = std::io::copy(r, &mut std::io::sink());
    v
}

/// Writes `bytes` to `path` through a temp file and a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
