//! Time and tasks for node code: madsim's simulated versions in a simulation build, tokio's in
//! a real build. Same names, same signatures.

#[cfg(madsim)]
pub use madsim::time::{error::Elapsed, sleep, sleep_until, timeout, Instant};
#[cfg(not(madsim))]
pub use tokio::time::{error::Elapsed, sleep, sleep_until, timeout, Instant};

/// Spawns a task on the current node (simulated) or the tokio runtime (real).
#[cfg(madsim)]
pub use madsim::task::spawn;
/// Spawns a task on the current node (simulated) or the tokio runtime (real).
#[cfg(not(madsim))]
pub use tokio::task::spawn;

/// Spawns a task that need not be `Send` on the current node (simulated) or the current
/// `tokio::task::LocalSet` (real).
#[cfg(madsim)]
pub use madsim::task::spawn_local;
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
