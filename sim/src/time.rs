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
