//! Scripted runs: a Lua 5.4 procedure in place of a plan's chaos timeline — upgrade one node
//! after another and check the data after each step; seed state, cut a link, check, heal,
//! check again. The same script runs under simulation (deterministic, replayable by seed, with
//! a bundle like any run) and against real deployments; see `docs/SCRIPTING.md`.
//!
//! A plan carries its script in `[script]` ([`crate::plan::ScriptPlan`]); the runner starts it
//! where a plan's timeline would start, and the plan's workloads and expectations go on around
//! it. The modules a script sees:
//!
//! | module | functions |
//! |---|---|
//! | `sut` | `nodes()`, `status(node)`, `leader()`, `kill`, `start`, `restart`, `pause`, `resume`, `upgrade(node, version)`, `wait_ready(node or "all", timeout)` |
//! | `net` | `partition(groups)`, `cut(a, b)`, `cut_one_way(a, b)`, `heal()`, `latency(a, b, d)`, `loss(p [, a, b])`, `reset_links()`, `skew(node, offset [, drift_ppm])` |
//! | `client` | `op(name [, fields [, {user, timeout}]])`, `http(node, method, path, body)` (real backends) |
//! | `check` | `expect(name [, params])`, `eventually(name, timeout [, params])`, `assert(cond, message)`, `history()` |
//! | globals | `sleep(d)`, `now()`, `rand()`, `rand(n)`, `rand(m, n)` (also `math.random`), `print`/`log` |
//!
//! The Lua VM is compiled in with the `script` feature; without it a plan with a script is
//! refused, naming the feature ([`NEEDS_FEATURE`]).
//!
//! A [`Target`] is what the modules drive; the simulated one lives in the runner, the real
//! ones in `gauntlet-backends`.

/// The workload name a script's operations carry in the history (and in a run's summary).
pub const SCRIPT_WORKLOAD: &str = "script";

mod checks;
#[cfg(feature = "script")]
mod lua;
#[cfg(not(feature = "script"))]
mod off;
mod target;

pub use checks::ScriptChecks;
#[cfg(feature = "script")]
pub use lua::{run, syntax_error};
#[cfg(not(feature = "script"))]
pub use off::{run, syntax_error};
pub use target::{Fut, Halt, NodeInfo, OpReply, Target};

/// What a build without the Lua VM says of a plan with a script: the feature to turn on.
pub const NEEDS_FEATURE: &str = "Lua scripts need the `script` feature, which this build was made without: \
     add features = [\"script\"] to the gauntlet-cli (or gauntlet) dependency in Cargo.toml; \
     the shipped `gauntlet` binary has it";
