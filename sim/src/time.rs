//! Time and tasks for node code: madsim's simulated versions in a simulation build, tokio's in
//! a real build. Same names, same signatures.

#[cfg(madsim)]
pub use madsim::time::{error::Elapsed, sleep, sleep_until, timeout, Instant};
#[cfg(not(madsim))]
pub use tokio::time::{error::Elapsed, sleep, sleep_until, timeout, Instant};

/// Spawns a task on the current node (simulated) or the tokio runtime (real).
///
/// Simulated, this is madsim's `spawn`; a task spawned by the supervisor is also remembered by
/// the world, which aborts it when the run ends, so that it does not outlive the run.
#[cfg(madsim)]
#[track_caller]
pub fn spawn<F>(future: F) -> madsim::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = madsim::task::spawn(future);
    crate::state::track_task(&handle);
    handle
}
/// Spawns a task on the current node (simulated) or the tokio runtime (real).
#[cfg(not(madsim))]
pub use tokio::task::spawn;

/// Spawns a task that need not be `Send` on the current node (simulated) or the current
/// `tokio::task::LocalSet` (real).
///
/// Simulated, this is madsim's `spawn_local`; a task spawned by the supervisor is also
/// remembered by the world, which aborts it when the run ends (see [`spawn`]).
#[cfg(madsim)]
#[track_caller]
pub fn spawn_local<F>(future: F) -> madsim::task::JoinHandle<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let handle = madsim::task::spawn_local(future);
    crate::state::track_task(&handle);
    handle
}
/// Spawns a task that need not be `Send` on the current node (simulated) or the current
/// `tokio::task::LocalSet` (real).
#[cfg(not(madsim))]
pub use tokio::task::spawn_local;

/// True simulated time since the world started, for tests, observers and the supervisor.
/// Node logic should read its own [`Clock`](crate::Clock), which carries its skew.
#[cfg(madsim)]
pub fn elapsed() -> std::time::Duration {
    madsim::time::TimeHandle::current().elapsed()
}

/// The current instant: simulated under madsim, the OS monotonic clock in a real build. Use
/// this instead of `Instant::now()`, which `clippy.toml` bans in simulated code so that a stray
/// wall-clock read outside the simulation is caught.
#[allow(clippy::disallowed_methods, reason = "the one sanctioned Instant::now; madsim intercepts it in simulation")]
pub fn now() -> Instant {
    Instant::now()
}
