//! Comparing a real run with its simulated baseline on what does not depend on the backend:
//! the verdict (and which expectation failed), the faults applied by kind (exactly, but for
//! faults aimed at the leader, which fire only when a leader is seen), operation counts and
//! outcomes, and client latency, each within a stated tolerance band. Trace hashes, exact
//! timings and final digests are not compared: a real run has no trace, and which operations
//! win races under real scheduling is not deterministic.

use gauntlet::verdict::Verdict;
use gauntlet::workload::HistoryEntry;
use gauntlet::Bundle;
use gauntlet_sim::OpPhase;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// How far a real run may stray from the baseline and still match it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    /// Operations invoked during the active phase, relative: 0.05 allows ±5 % (both runs issue
    /// the same planned operations; only shedding under load differs).
    pub invoked: f64,
    /// Share of invoked operations that succeeded, absolute: 0.25 allows ±25 points.
    pub ok_share: f64,
    /// Median and 99th-percentile latency of successful operations, as a factor either way
    /// (4.0: from a quarter to four times the baseline's)…
    pub latency_factor: f64,
    /// …or within this many milliseconds of the median, whichever is wider (scheduling noise
    /// on small values)…
    pub latency_slack_ms: u64,
    /// …and of the 99th percentile: the tail under faults is made of timeouts and recovery
    /// (TCP backoff, process and container restarts), which real systems stretch.
    pub tail_slack_ms: u64,
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance { invoked: 0.05, ok_share: 0.25, latency_factor: 4.0, latency_slack_ms: 25, tail_slack_ms: 1000 }
    }
}

/// The backend-independent observables of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observables {
    /// `pass`, or `fail <class> <expectation>`.
    pub verdict: String,
    /// Faults applied, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Per workload, over the active phase (operations invoked before the cooldown; the
    /// cooldown lasts until the expectations settle, which real time moves): invoked, ok, fail,
    /// info (still in flight at the end counts as info).
    pub ops: BTreeMap<String, [u64; 4]>,
    /// Latency of successful operations: median and 99th percentile, in milliseconds.
    pub latency_ms: (u64, u64),
}

impl Observables {
    /// Reads them off a bundle.
    pub fn of(bundle: &Bundle) -> Observables {
        let verdict = match &bundle.verdict {
            Verdict::Pass => "pass".to_owned(),
            Verdict::Fail(f) => format!("fail {:?} {}", f.class, f.source).to_lowercase(),
        };
        let mut faults = BTreeMap::new();
        for e in &bundle.schedule.entries {
            *faults.entry(fault_kind(&e.fault)).or_insert(0) += 1;
        }
        // A scripted run's active phase lasts until its script returns, within its time limit.
        let active =
            bundle.plan().map_or(Duration::MAX, |p| p.script.as_ref().map_or(p.run.duration, |s| s.time_limit));
        let mut ops: BTreeMap<String, [u64; 4]> = bundle.summary.ops.keys().map(|w| (w.clone(), [0; 4])).collect();
        for h in bundle.history.iter().filter(|h| h.invoke < active) {
            let c = ops.entry(h.workload.clone()).or_default();
            c[0] += 1;
            match h.outcome {
                OpPhase::Ok => c[1] += 1,
                OpPhase::Fail => c[2] += 1,
                _ => c[3] += 1,
            }
        }
        Observables { verdict, faults, ops, latency_ms: latency(&bundle.history) }
    }

    /// A readable rendering, one observable per line (what the diff shows).
    pub fn render(&self) -> String {
        let mut out = format!("verdict: {}\n", self.verdict);
        for (k, n) in &self.faults {
            out.push_str(&format!("faults {k}: {n}\n"));
        }
        for (w, [invoked, ok, fail, info]) in &self.ops {
            out.push_str(&format!(
                "workload {w} (active phase): invoked {invoked}, ok {ok}, fail {fail}, info {info}\n"
            ));
        }
        out.push_str(&format!("latency ok p50 {} ms, p99 {} ms\n", self.latency_ms.0, self.latency_ms.1));
        out
    }
}

/// The kind of a fault, as a word (`partition`, `crash`, …).
pub fn fault_kind(f: &gauntlet_sim::Fault) -> String {
    let text = serde_json::to_value(f).ok();
    text.as_ref().and_then(|v| v.get("kind")).and_then(|k| k.as_str()).map_or_else(|| format!("{f}"), String::from)
}

fn latency(history: &[HistoryEntry]) -> (u64, u64) {
    let mut l: Vec<Duration> = (history.iter())
        .filter(|h| h.outcome == OpPhase::Ok)
        .filter_map(|h| h.complete.map(|c| c.saturating_sub(h.invoke)))
        .collect();
    if l.is_empty() {
        return (0, 0);
    }
    l.sort();
    let at = |q: f64| l[((l.len() - 1) as f64 * q).round() as usize].as_millis() as u64;
    (at(0.5), at(0.99))
}

/// A real run against its baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The baseline's observables.
    pub baseline: Observables,
    /// The real run's.
    pub observed: Observables,
    /// Each difference beyond tolerance, in words.
    pub deviations: Vec<String>,
    /// The tolerance used.
    pub tolerance: Tolerance,
}

impl Comparison {
    /// Compares `observed` (a real run) with `baseline` (the simulation of the same plan and seeds).
    pub fn new(baseline: &Bundle, observed: &Bundle, tolerance: Tolerance) -> Comparison {
        let (b, o) = (Observables::of(baseline), Observables::of(observed));
        let mut deviations = Vec::new();
        if b.verdict != o.verdict {
            deviations.push(format!("verdict: baseline {}, observed {}", b.verdict, o.verdict));
        }
        // Faults aimed at the leader fire only when a leader is seen, which real timing moves:
        // each may be skipped in one run and not the other.
        let aimed = baseline
            .plan()
            .map(|p| gauntlet::chaos::compile(&p, baseline.meta.seeds.chaos).aimed.len() as u64)
            .unwrap_or(0);
        let kinds: std::collections::BTreeSet<&String> = b.faults.keys().chain(o.faults.keys()).collect();
        for k in kinds {
            let (x, y) = (b.faults.get(k).copied().unwrap_or(0), o.faults.get(k).copied().unwrap_or(0));
            if x.abs_diff(y) > aimed {
                let slack = if aimed > 0 { format!(" (±{aimed} aimed at the leader allowed)") } else { String::new() };
                deviations.push(format!("faults {k}: baseline applied {x}, observed {y}{slack}"));
            }
        }
        // A script's operations follow its control flow (a read retried until it succeeds, a
        // loop until a leader shows): their number and share of successes depend on the
        // answers, not on a plan, so only the verdict and the faults compare them.
        for (w, [bi, bok, ..]) in b.ops.iter().filter(|(w, _)| w.as_str() != gauntlet::script::SCRIPT_WORKLOAD) {
            let Some([oi, ook, ..]) = o.ops.get(w) else {
                deviations.push(format!("workload {w}: missing from the observed run"));
                continue;
            };
            let rel = (*oi as f64 - *bi as f64).abs() / (*bi).max(1) as f64;
            if rel > tolerance.invoked {
                deviations.push(format!(
                    "workload {w}: invoked {oi}, baseline {bi} ({:+.0} %, tolerance ±{:.0} %)",
                    (*oi as f64 / (*bi).max(1) as f64 - 1.0) * 100.0,
                    tolerance.invoked * 100.0
                ));
            }
            let share = |ok: u64, inv: u64| ok as f64 / inv.max(1) as f64;
            let (bs, os) = (share(*bok, *bi), share(*ook, *oi));
            if (bs - os).abs() > tolerance.ok_share {
                deviations.push(format!(
                    "workload {w}: {:.0} % ok, baseline {:.0} % (tolerance ±{:.0} points)",
                    os * 100.0,
                    bs * 100.0,
                    tolerance.ok_share * 100.0
                ));
            }
        }
        let latencies = [
            ("p50", b.latency_ms.0, o.latency_ms.0, tolerance.latency_slack_ms),
            ("p99", b.latency_ms.1, o.latency_ms.1, tolerance.tail_slack_ms),
        ];
        for (name, x, y, slack) in latencies {
            let within_factor =
                (y as f64) <= x as f64 * tolerance.latency_factor && (y as f64) >= x as f64 / tolerance.latency_factor;
            if !within_factor && x.abs_diff(y) > slack {
                deviations.push(format!(
                    "latency {name}: {y} ms, baseline {x} ms (tolerance ×{} or ±{slack} ms)",
                    tolerance.latency_factor
                ));
            }
        }
        Comparison { baseline: b, observed: o, deviations, tolerance }
    }

    /// Whether the observed run matches the baseline.
    pub fn matches(&self) -> bool {
        self.deviations.is_empty()
    }

    /// The readable diff of the two renderings (`-` baseline, `+` observed).
    pub fn diff(&self) -> String {
        let (a, b) = (self.baseline.render(), self.observed.render());
        let diff = similar::TextDiff::from_lines(&a, &b);
        let mut out = String::new();
        for change in diff.iter_all_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => "- ",
                similar::ChangeTag::Insert => "+ ",
                similar::ChangeTag::Equal => "  ",
            };
            out.push_str(sign);
            out.push_str(change.value());
        }
        out
    }
}
