//! The observation runtime in a real build: the same code on tokio and wall-clock time.
//! Run through `cargo real-test -p gauntlet --test observe_real` (by `sim/tests/build_modes`).
#![cfg(not(madsim))]

use gauntlet::observe::{ObservationConfig, ObservationRuntime, ObserveError, ObservedSource, Observer};
use std::time::Duration;

struct Ticks;

impl Observer for Ticks {
    type Source = ();
    type State = u64;
    type Snapshot = u64;
    type Event = u64;
    async fn init(&self, _: &[ObservedSource<()>]) -> Result<u64, ObserveError> {
        Ok(0)
    }
    async fn poll(&self, s: &ObservedSource<()>, state: &mut u64) -> Result<Vec<u64>, ObserveError> {
        if s.name == "down" {
            return Err("connection refused".into());
        }
        *state += 1;
        Ok(vec![*state])
    }
    fn snapshot(&self, state: &u64) -> u64 {
        *state
    }
}

#[test]
fn the_runtime_runs_unchanged_on_tokio_and_wall_clock_time() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async {
        let sources = vec![ObservedSource::new("up", ()), ObservedSource::new("down", ())];
        let runtime =
            ObservationRuntime::new(Ticks, sources, ObservationConfig::default().interval(Duration::from_millis(5)));
        let handle = runtime.handle();
        let mut deltas = handle.subscribe();
        gauntlet::sim::time::spawn_local(runtime.run());
        for _ in 0..5 {
            handle.next_snapshot().await.expect("running");
        }
        let (at, count) = handle.latest_at().unwrap();
        assert!(count >= 5, "five ticks polled the healthy source: {count}");
        assert!(at >= Duration::from_millis(20), "ticks are 5 ms of wall time apart: {at:?}");
        assert_eq!(handle.last_error().unwrap().message, "connection refused");
        for expected in 1..=5 {
            assert_eq!(deltas.next().await.unwrap().unwrap().event, expected);
        }
        handle.stop();
    });
}
