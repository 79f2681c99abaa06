//! Workloads: open-loop clients. Arrivals follow the plan's rate (sustained, or a load
//! progression of steps) plus bursts, whether or not earlier operations have completed; each
//! operation is drawn from the seeded workload stream (its name from the mix, its user, its
//! argument) and handed to the application's [`execute`](crate::Application::execute).
//! Every invocation and completion is recorded in the trace as an `op` event.

use crate::app::{Application, NodeRef, OpOutcome, Operation};
use crate::expect::OpCounts;
use crate::plan::{Arrival, WorkloadPlan};
use futures::FutureExt;
use gauntlet_sim::seed::{stream, Purpose};
use gauntlet_sim::time::{self, Instant};
use gauntlet_sim::{NodeContext, OpPhase};
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One operation as a client saw it: what it asked, when, and what came back. The history of
/// a run is what linearizability checkers read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryEntry {
    /// The workload that issued it.
    pub workload: String,
    /// The logical user (the client, in checker terms).
    pub user: u32,
    /// Sequence number within the workload.
    pub id: u64,
    /// Operation name.
    pub op: String,
    /// The operation's random argument (the app derives keys and values from it).
    pub arg: u64,
    /// When it was invoked, since the run started.
    pub invoke: Duration,
    /// When it completed (`None`: it never did, or timed out — its outcome is unknown).
    pub complete: Option<Duration>,
    /// `Ok`, `Fail` or `Info` (unknown); `Invoke` while it is in flight.
    pub outcome: OpPhase,
    /// The application's result text (a read's value, a failure's reason).
    pub result: String,
}

/// What the workloads of a run have done, shared with the runner.
#[derive(Debug, Default)]
pub struct OpLog {
    /// Counts per workload.
    pub counts: BTreeMap<String, OpCounts>,
    /// Every operation, in invocation order.
    pub history: Vec<HistoryEntry>,
    /// Panics raised while executing an operation: `(at, workload, message)`.
    pub panics: Vec<(Duration, String, String)>,
}

/// A shared [`OpLog`].
pub type SharedOpLog = Arc<Mutex<OpLog>>;

/// The current members, shared between the runner, workloads and the observer.
pub type Membership = Arc<Mutex<Vec<NodeRef>>>;

impl OpLog {
    /// Records that `op` was invoked at `at` (since the run started); returns its slot in the
    /// history, for [`OpLog::complete`].
    pub fn invoke(&mut self, op: &Operation, at: Duration) -> usize {
        self.counts.entry(op.workload.clone()).or_default().invoked += 1;
        self.history.push(HistoryEntry {
            workload: op.workload.clone(),
            user: op.user,
            id: op.id,
            op: op.op.clone(),
            arg: op.arg,
            invoke: at,
            complete: None,
            outcome: OpPhase::Invoke,
            result: String::new(),
        });
        self.history.len() - 1
    }

    /// Records how the operation in `slot` ended, at `at`: `phase` is `Ok`, `Fail` or `Info`.
    pub fn complete(&mut self, slot: usize, op: &Operation, phase: OpPhase, result: String, at: Duration) {
        debug_assert!(phase != OpPhase::Invoke, "an operation completes with an outcome");
        let entry = &mut self.history[slot];
        entry.outcome = phase;
        entry.result = result;
        // An unknown outcome has no completion: it may take effect at any later time.
        entry.complete = (phase != OpPhase::Info).then_some(at);
        let c = self.counts.entry(op.workload.clone()).or_default();
        match phase {
            OpPhase::Ok => c.ok += 1,
            OpPhase::Fail => c.fail += 1,
            _ => c.info += 1,
        }
    }

    /// Counts of all workloads together.
    pub fn total(&self) -> OpCounts {
        self.counts.values().fold(OpCounts::default(), |a, c| OpCounts {
            invoked: a.invoked + c.invoked,
            ok: a.ok + c.ok,
            fail: a.fail + c.fail,
            info: a.info + c.info,
            shed: a.shed + c.shed,
        })
    }
}

/// Arrival times of the rate-driven part of `w` (bursts excluded) in `[w.start, end)`,
/// relative to the run's start, drawn from `rng`. At most `limit` are produced.
pub fn arrivals(w: &WorkloadPlan, end: Duration, rng: &mut impl Rng, limit: usize) -> Vec<Duration> {
    let mut out = Vec::new();
    let mut t = w.start;
    // Step boundaries, so a gap drawn at one rate never jumps over a step.
    let mut boundaries = Vec::new();
    let mut b = w.start;
    for s in &w.steps {
        b += s.duration;
        boundaries.push(b);
    }
    while t < end && out.len() < limit {
        let rate = w.rate_at(t);
        let next_boundary = boundaries.iter().copied().find(|&b| b > t).unwrap_or(end).min(end);
        if rate <= 0.0 {
            if next_boundary >= end {
                break;
            }
            t = next_boundary;
            continue;
        }
        let gap = match w.arrival {
            Arrival::Uniform => 1.0 / rate,
            Arrival::Poisson => -(1.0 - rng.random::<f64>()).ln() / rate,
        };
        let next = t.saturating_add(Duration::try_from_secs_f64(gap).unwrap_or(Duration::MAX));
        if next >= next_boundary && next_boundary < end && boundaries.contains(&next_boundary) {
            // Memoryless restart at the boundary with the next step's rate.
            t = next_boundary;
            continue;
        }
        if next >= end {
            break;
        }
        out.push(next);
        t = next;
    }
    out
}

/// Most operations one workload may issue in a run; arrivals beyond it are not generated.
pub const MAX_OPS_PER_WORKLOAD: usize = 10_000_000;

/// Everything a workload driver needs besides the app and its node.
#[derive(Debug, Clone)]
pub struct Drive {
    /// The workload.
    pub plan: WorkloadPlan,
    /// The run's seed (the workload's stream is derived from it and the workload's name).
    pub seed: u64,
    /// When the run started.
    pub run_start: Instant,
    /// No arrival at or after this (time since the run started).
    pub end: Duration,
    /// The current members, for [`Application::execute`].
    pub members: Membership,
    /// Where counts and panics go.
    pub log: SharedOpLog,
}

/// A workload's operations in arrival order: when each arrives (since the run started) and
/// what it is, drawn from the workload's seeded stream. Every backend issues exactly these, so
/// a real run replays the simulated run's operations.
pub struct PlannedOps {
    workload: String,
    users: u32,
    rng: rand_chacha::ChaCha8Rng,
    times: std::vec::IntoIter<Duration>,
    mix: Vec<(String, u32)>,
    total: u64,
    next_id: u64,
}

impl PlannedOps {
    /// The operations of workload `w` in a run with `seed`, arriving before `end`;
    /// `operations` is the application's list (the default mix).
    pub fn new(w: &WorkloadPlan, seed: u64, end: Duration, operations: Vec<String>) -> Self {
        // Arrival times and the operations' choices come from separate streams, so a shorter
        // run (as shrinking makes) keeps the same operations in its shorter window.
        let rng = stream(seed, Purpose::Workload, &w.name, 0);
        let mut times = arrivals(w, end, &mut stream(seed, Purpose::Workload, &w.name, 1), MAX_OPS_PER_WORKLOAD);
        for b in &w.bursts {
            // Validation keeps bursts inside [start, end); clip anyway, so `end` is a hard bound.
            let burst = (0..b.ops).map(|i| b.at + b.over.mul_f64(f64::from(i) / f64::from(b.ops)));
            times.extend(burst.filter(|&t| t >= w.start && t < end));
        }
        times.sort();
        let mix: Vec<(String, u32)> = if w.mix.is_empty() {
            operations.into_iter().map(|o| (o, 1)).collect()
        } else {
            w.mix.iter().filter(|(_, &x)| x > 0).map(|(o, &x)| (o.clone(), x)).collect()
        };
        let total: u64 = mix.iter().map(|(_, x)| u64::from(*x)).sum();
        PlannedOps { workload: w.name.clone(), users: w.users, rng, times: times.into_iter(), mix, total, next_id: 0 }
    }
}

impl Iterator for PlannedOps {
    type Item = (Duration, Operation);

    fn next(&mut self) -> Option<(Duration, Operation)> {
        let at = self.times.next()?;
        let mut pick = self.rng.random_range(0..self.total.max(1));
        let op = (self.mix.iter())
            .find(|(_, x)| {
                let hit = pick < u64::from(*x);
                pick = pick.saturating_sub(u64::from(*x));
                hit
            })
            .map(|(o, _)| o.clone())
            .unwrap_or_default();
        let id = self.next_id;
        self.next_id += 1;
        let user = self.rng.random_range(0..self.users);
        let op = Operation { workload: self.workload.clone(), op, user, id, arg: self.rng.random() };
        Some((at, op))
    }
}

/// Which of a workload's arrivals start now, shared by every backend's driver: open loop
/// (every arrival, up to `max_in_flight` at once) or closed loop (at most one operation per
/// user in flight; a busy user's later arrivals wait in order, and the operations waiting and
/// in flight together stay within `max_in_flight`).
#[derive(Debug, Default)]
pub struct Admission {
    closed: bool,
    max: u32,
    in_flight: u32,
    busy: std::collections::BTreeSet<u32>,
    waiting: BTreeMap<u32, std::collections::VecDeque<Operation>>,
    queued: u32,
}

/// What to do with an arrival.
#[derive(Debug, PartialEq, Eq)]
pub enum Admit {
    /// Start it now.
    Start(Operation),
    /// Its user is busy: it starts when the user's operations before it have ended.
    Wait,
    /// Too many operations in flight (and waiting): count it as shed.
    Shed,
}

impl Admission {
    /// The admission rule of workload `w`.
    pub fn of(w: &WorkloadPlan) -> Admission {
        Admission { closed: w.closed_loop, max: w.max_in_flight, ..Admission::default() }
    }

    /// An operation arrived.
    pub fn arrive(&mut self, op: Operation) -> Admit {
        if self.in_flight + self.queued >= self.max {
            return Admit::Shed;
        }
        if self.closed && self.busy.contains(&op.user) {
            self.waiting.entry(op.user).or_default().push_back(op);
            self.queued += 1;
            return Admit::Wait;
        }
        self.in_flight += 1;
        if self.closed {
            self.busy.insert(op.user);
        }
        Admit::Start(op)
    }

    /// `user`'s operation ended: the user's next waiting operation, to start now (closed loop).
    pub fn finished(&mut self, user: u32) -> Option<Operation> {
        if let Some(next) = self.waiting.get_mut(&user).and_then(|q| q.pop_front()) {
            self.queued -= 1;
            return Some(next);
        }
        self.in_flight = self.in_flight.saturating_sub(1);
        self.busy.remove(&user);
        None
    }

    /// The workload's arrivals are over: operations still waiting will not start. Returns
    /// how many there were (to be counted as shed).
    pub fn close(&mut self) -> u64 {
        let n = u64::from(self.queued);
        self.waiting.clear();
        self.queued = 0;
        n
    }

    /// Nothing in flight or waiting.
    pub fn idle(&self) -> bool {
        self.in_flight == 0 && self.queued == 0
    }
}

/// Runs a workload on a client node until `drive.end`, then waits for operations in flight.
pub async fn drive<A: Application + Send + Sync>(app: Arc<A>, ctx: NodeContext, drive: Drive) {
    let Drive { plan: w, seed, run_start, end, members, log } = drive;
    let client = app.client(&ctx);
    let admission = Arc::new(Mutex::new(Admission::of(&w)));
    let done: Arc<Mutex<Option<std::task::Waker>>> = Arc::default();
    log.lock().expect("op log").counts.entry(w.name.clone()).or_default();
    for (at, op) in PlannedOps::new(&w, seed, end, app.operations()) {
        time::sleep_until(run_start + at).await;
        let op = match admission.lock().expect("admission").arrive(op) {
            Admit::Start(op) => op,
            Admit::Wait => continue,
            Admit::Shed => {
                log.lock().expect("op log").counts.get_mut(&w.name).expect("entry").shed += 1;
                continue;
            }
        };
        let (app, client, ctx, log, admission, members, done_waker) =
            (app.clone(), client.clone(), ctx.clone(), log.clone(), admission.clone(), members.clone(), done.clone());
        let (timeout, think) = (w.op_timeout, w.think);
        // One task per started operation; in closed loop it goes on with its user's next
        // waiting operation, so a user's operations never overlap.
        time::spawn_local(async move {
            let mut op = op;
            loop {
                ctx.record_op(&op.op, OpPhase::Invoke);
                let invoke = time::now().saturating_duration_since(run_start);
                let slot = log.lock().expect("op log").invoke(&op, invoke);
                let nodes = members.lock().expect("membership").clone();
                let result = std::panic::AssertUnwindSafe(time::timeout(timeout, app.execute(&client, &op, &nodes)))
                    .catch_unwind()
                    .await;
                let at = time::now().saturating_duration_since(run_start);
                let (phase, text) = match result {
                    Ok(Ok(OpOutcome::Ok(r))) => (OpPhase::Ok, r),
                    Ok(Ok(OpOutcome::Fail(r))) => (OpPhase::Fail, r),
                    Ok(Ok(OpOutcome::Info(r))) => (OpPhase::Info, r),
                    Ok(Err(_)) => (OpPhase::Info, format!("no answer within {timeout:?}")),
                    Err(payload) => {
                        let msg = panic_text(&*payload);
                        let why = format!("operation {:?} panicked: {msg}", op.op);
                        log.lock().expect("op log").panics.push((at, op.workload.clone(), why));
                        (OpPhase::Info, "panicked".to_owned())
                    }
                };
                ctx.record_op(&op.op, phase);
                log.lock().expect("op log").complete(slot, &op, phase, text, at);
                if !think.is_zero() {
                    time::sleep(think).await;
                }
                let next = admission.lock().expect("admission").finished(op.user);
                match next {
                    Some(n) => op = n,
                    None => break,
                }
            }
            if let Some(w) = done_waker.lock().expect("waker").take() {
                w.wake();
            }
        });
    }
    let unstarted = admission.lock().expect("admission").close();
    log.lock().expect("op log").counts.get_mut(&w.name).expect("entry").shed += unstarted;
    // Returning would end the client node and cut off operations still in flight: their
    // completions belong in the history, so wait for them (each is bounded by op_timeout).
    std::future::poll_fn(|cx| {
        if admission.lock().expect("admission").idle() {
            return std::task::Poll::Ready(());
        }
        *done.lock().expect("waker") = Some(cx.waker().clone());
        std::task::Poll::Pending
    })
    .await;
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(non-string panic payload)".to_owned())
}
