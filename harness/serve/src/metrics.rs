//! `/metrics`: the service's Prometheus metrics (names prefixed `gauntlet_`), through the
//! `prometheus-client` crate's registry and text encoder.

use crate::store::{Counts, RunState};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A label set: one run state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    /// `passed`, `failed`, `error`, `cancelled` (finished) or `pending`, `running` (stored).
    pub state: String,
}

/// The service's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Runs executing now.
    pub active: Gauge,
    /// Runs waiting in the queue (refreshed on every scrape).
    pub queue_depth: Gauge,
    /// Runs in the store, by state (refreshed on every scrape).
    pub runs_stored: Family<StateLabel, Gauge>,
    /// Runs this server finished, by final state.
    pub runs_finished: Family<StateLabel, Counter>,
    /// Seeds this server ran.
    pub seeds: Counter,
    /// Wall time of whole runs.
    pub run_seconds: Histogram,
    /// Wall time of one seed's process.
    pub seed_seconds: Histogram,
    /// Seeds finished per second over the last minute.
    pub seeds_per_second: Gauge<f64, AtomicU64>,
    /// HTTP requests answered, by status class.
    pub requests: Family<StatusLabel, Counter>,
    /// Connections closed because the client stopped reading (see [`crate::stall`]).
    pub stalled: Counter,
    window: Mutex<Vec<Instant>>,
}

/// A label set: an HTTP status class (`2xx`, `4xx`, `5xx`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// The class.
    pub class: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("gauntlet");
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            active: Gauge::default(),
            queue_depth: Gauge::default(),
            runs_stored: Family::default(),
            runs_finished: Family::default(),
            seeds: Counter::default(),
            run_seconds: Histogram::new(exponential_buckets(0.1, 2.0, 16)),
            seed_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 16)),
            seeds_per_second: Gauge::default(),
            requests: Family::default(),
            stalled: Counter::default(),
            window: Mutex::new(Vec::new()),
        };
        registry.register("active_runners", "Runs executing now", m.active.clone());
        registry.register("queue_depth", "Runs waiting in the queue", m.queue_depth.clone());
        registry.register("runs", "Runs in the store, by state", m.runs_stored.clone());
        registry.register("runs_finished", "Runs this server finished, by final state", m.runs_finished.clone());
        registry.register("seeds", "Seeds this server ran", m.seeds.clone());
        registry.register(
            "stalled_connections",
            "Connections closed because the client stopped reading",
            m.stalled.clone(),
        );
        registry.register("run_duration_seconds", "Wall time of whole runs", m.run_seconds.clone());
        registry.register("seed_duration_seconds", "Wall time of one seed's process", m.seed_seconds.clone());
        registry.register(
            "seeds_per_second",
            "Seeds finished per second over the last minute",
            m.seeds_per_second.clone(),
        );
        registry.register("http_responses", "HTTP responses, by status class", m.requests.clone());
        *m.registry.lock().expect("fresh") = registry;
        m
    }

    /// Notes a finished run.
    pub fn run_finished(&self, state: RunState, took: Duration) {
        self.runs_finished.get_or_create(&StateLabel { state: state.as_str().into() }).inc();
        self.run_seconds.observe(took.as_secs_f64());
    }

    /// Notes a finished seed.
    pub fn seed_finished(&self, took: Duration) {
        self.seeds.inc();
        self.seed_seconds.observe(took.as_secs_f64());
        let now = Instant::now();
        let mut w = self.window.lock().unwrap_or_else(|p| p.into_inner());
        w.push(now);
        // Bounded: only the last minute, and at most 100,000 entries.
        let cut = w.iter().position(|t| now.duration_since(*t) < Duration::from_secs(60)).unwrap_or(w.len());
        let cut = cut.max(w.len().saturating_sub(100_000));
        w.drain(..cut);
    }

    /// The text exposition, with the store's counts refreshed.
    pub fn encode(&self, counts: &Counts) -> String {
        let pending = counts.by_state.iter().find(|(s, _)| *s == RunState::Pending).map_or(0, |(_, n)| *n);
        self.queue_depth.set(pending as i64);
        for (s, n) in &counts.by_state {
            self.runs_stored.get_or_create(&StateLabel { state: s.as_str().into() }).set(*n as i64);
        }
        {
            let now = Instant::now();
            let w = self.window.lock().unwrap_or_else(|p| p.into_inner());
            let recent = w.iter().filter(|t| now.duration_since(**t) < Duration::from_secs(60)).count();
            let span = w.first().map_or(60.0, |t| now.duration_since(*t).as_secs_f64().clamp(1.0, 60.0));
            self.seeds_per_second.set(recent as f64 / span);
        }
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric_with_the_prefix() {
        let m = Metrics::new();
        m.seed_finished(Duration::from_millis(30));
        m.run_finished(RunState::Failed, Duration::from_secs(2));
        let text = m.encode(&Counts { by_state: vec![(RunState::Pending, 3)] });
        for name in [
            "gauntlet_queue_depth 3",
            "gauntlet_active_runners 0",
            "gauntlet_runs{state=\"pending\"} 3",
            "gauntlet_runs_finished_total{state=\"failed\"} 1",
            "gauntlet_seeds_total 1",
            "gauntlet_run_duration_seconds_count 1",
            "gauntlet_seed_duration_seconds_bucket",
            "gauntlet_seeds_per_second",
        ] {
            assert!(text.contains(name), "{name} in:\n{text}");
        }
    }
}
