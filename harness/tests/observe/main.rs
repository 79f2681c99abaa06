//! The observation runtime on simulated time: bounded history, ordered deltas, isolated
//! source errors, dynamic sources.
#![cfg(madsim)]

use gauntlet::observe::*;
use gauntlet::sim::World;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Each source is a counter that yields one event per poll; a source named `bad*` fails.
struct Counting;

impl Observer for Counting {
    type Source = u32;
    type State = BTreeMap<String, u64>;
    type Snapshot = BTreeMap<String, u64>;
    type Event = (String, u64);

    async fn init(&self, _: &[ObservedSource<u32>]) -> Result<Self::State, ObserveError> {
        Ok(BTreeMap::new())
    }

    async fn poll(&self, s: &ObservedSource<u32>, state: &mut Self::State) -> Result<Vec<(String, u64)>, ObserveError> {
        if s.name.starts_with("bad") {
            return Err(ObserveError::from(format!("{} is unreachable", s.name)));
        }
        let n = state.entry(s.name.clone()).or_default();
        *n += u64::from(s.source);
        Ok(vec![(s.name.clone(), *n)])
    }

    fn sources_changed(
        &self,
        _: &[ObservedSource<u32>],
        removed: &[String],
        state: &mut Self::State,
    ) -> Vec<(String, u64)> {
        for r in removed {
            state.remove(r);
        }
        Vec::new()
    }

    fn snapshot(&self, state: &Self::State) -> Self::Snapshot {
        state.clone()
    }
}

fn in_world<F: std::future::Future<Output = ()> + 'static>(f: impl Fn() -> F + Send + Sync + 'static) {
    World::builder().seed(1).build().unwrap().run(move |_sim| f()).unwrap();
}

fn sources(names: &[&str]) -> Vec<ObservedSource<u32>> {
    names.iter().map(|n| ObservedSource::new(*n, 1)).collect()
}

#[test]
fn history_stays_within_its_bound_and_subscribers_see_the_gap() {
    in_world(|| async {
        let rt = ObservationRuntime::new(Counting, sources(&["a", "b"]), ObservationConfig::default().history(16));
        let handle = rt.handle();
        let mut early = handle.subscribe();
        gauntlet::sim::time::spawn_local(rt.run());
        for _ in 0..50 {
            handle.next_snapshot().await;
            assert!(handle.history().len() <= 16, "history over its bound: {}", handle.history().len());
        }
        assert_eq!(handle.history().len(), 16);
        // 50 ticks x 2 sources = 100 deltas; the oldest 84 fell out of the history.
        let first = early.next().await.unwrap();
        assert_eq!(first, Err(Lagged { missed: handle.history()[0].seq }));
        assert_eq!(early.next().await.unwrap().unwrap().seq, handle.history()[0].seq);
        handle.stop();
    });
}

#[test]
fn deltas_arrive_in_order_without_gaps() {
    in_world(|| async {
        let rt = ObservationRuntime::new(Counting, sources(&["a", "b", "c"]), ObservationConfig::default());
        let handle = rt.handle();
        let mut sub = handle.subscribe();
        gauntlet::sim::time::spawn_local(rt.run());
        let mut last_per_source: BTreeMap<String, u64> = BTreeMap::new();
        for expected_seq in 0..90u64 {
            let d = sub.next().await.unwrap().expect("no lag with the default history");
            assert_eq!(d.seq, expected_seq, "deltas are numbered without gaps");
            let (name, n) = d.event;
            let prev = last_per_source.insert(name.clone(), n).unwrap_or(0);
            assert_eq!(n, prev + 1, "{name}'s counts arrive in order");
        }
        handle.stop();
        // After stop, the subscription drains what is left and then ends.
        while let Some(d) = sub.next().await {
            d.unwrap();
        }
    });
}

#[test]
fn a_failing_source_is_reported_without_stopping_the_others() {
    in_world(|| async {
        let rt = ObservationRuntime::new(Counting, sources(&["a", "bad-1", "c"]), ObservationConfig::default());
        let handle = rt.handle();
        gauntlet::sim::time::spawn_local(rt.run());
        for _ in 0..10 {
            handle.next_snapshot().await;
        }
        let err = handle.last_error().expect("the bad source is reported");
        assert_eq!(err.source, "bad-1");
        assert_eq!(err.message, "bad-1 is unreachable");
        assert_eq!(handle.error_count(), 10, "one error per tick");
        let snap = handle.latest().unwrap();
        assert_eq!((snap["a"], snap["c"]), (10, 10), "the healthy sources kept being polled");
        let statuses = handle.sources();
        assert_eq!(statuses[1].error.as_deref(), Some("bad-1 is unreachable"));
        assert!(statuses[0].error.is_none() && statuses[0].last_ok.is_some());
        handle.stop();
    });
}

/// A source that hangs forever.
struct Hanging;

impl Observer for Hanging {
    type Source = bool;
    type State = u32;
    type Snapshot = u32;
    type Event = ();
    async fn init(&self, _: &[ObservedSource<bool>]) -> Result<u32, ObserveError> {
        Ok(0)
    }
    async fn poll(&self, s: &ObservedSource<bool>, state: &mut u32) -> Result<Vec<()>, ObserveError> {
        if s.source {
            std::future::pending::<()>().await;
        }
        *state += 1;
        Ok(Vec::new())
    }
    fn snapshot(&self, state: &u32) -> u32 {
        *state
    }
}

#[test]
fn a_hanging_source_times_out_and_the_rest_keep_going() {
    in_world(|| async {
        let srcs = vec![ObservedSource::new("stuck", true), ObservedSource::new("fine", false)];
        let config = ObservationConfig::default().poll_timeout(Duration::from_millis(50));
        let rt = ObservationRuntime::new(Hanging, srcs, config);
        let handle = rt.handle();
        gauntlet::sim::time::spawn_local(rt.run());
        for _ in 0..5 {
            handle.next_snapshot().await;
        }
        assert_eq!(handle.latest(), Some(5));
        assert!(handle.last_error().unwrap().message.contains("timed out"));
        handle.stop();
    });
}

#[test]
fn refresh_picks_up_new_sources_and_drops_removed_ones() {
    in_world(|| async {
        let current: Arc<Mutex<Vec<&'static str>>> = Arc::new(Mutex::new(vec!["a"]));
        let provider = {
            let current = current.clone();
            FnSources(move || sources(&current.lock().unwrap()))
        };
        let config = ObservationConfig::default().refresh_every(Duration::from_millis(300));
        let rt = ObservationRuntime::new(Counting, provider, config);
        let handle = rt.handle();
        gauntlet::sim::time::spawn_local(rt.run());
        handle.next_snapshot().await;
        assert_eq!(handle.sources().iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["a"]);
        current.lock().unwrap().push("b");
        let ticks_before = handle.ticks();
        let seen_b = Rc::new(Cell::new(None));
        for _ in 0..5 {
            let snap = handle.next_snapshot().await.unwrap();
            if snap.contains_key("b") && seen_b.get().is_none() {
                seen_b.set(Some(handle.ticks() - ticks_before));
            }
        }
        let after = seen_b.get().expect("the new source was polled");
        assert!(after <= 3, "picked up within one refresh interval (3 ticks), took {after}");
        *current.lock().unwrap() = vec!["b"];
        for _ in 0..4 {
            handle.next_snapshot().await;
        }
        let snap = handle.latest().unwrap();
        assert!(!snap.contains_key("a") && snap.contains_key("b"), "{snap:?}");
        assert_eq!(handle.sources().len(), 1);
        handle.stop();
    });
}
