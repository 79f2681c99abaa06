//! `gauntlet`: the command-line tool.
//!
//! ```text
//! gauntlet demo [--seed N] [--json]        run the demo scenario under simulation
//! gauntlet check PLAN...                    validate plan files
//! gauntlet run PLAN [--seed N] [--json]     run a plan file under simulation
//! gauntlet check-history FILE --model register|kv [--json] [--max-steps N]
//!                                           check a recorded history for linearizability
//! ```
//! Seeds: `--seed` or `SIM_SEED` (decimal or 0x hex); otherwise one is drawn and printed first.
//! Exit codes: 0 pass, 1 a safety failure (or the demo failed), 2 usage or input error (a bad
//! plan), 3 a crash (a panic, a trace limit, nondeterminism), 4 a liveness failure.
//! `check-history`: 0 linearizable, 1 not, 2 a missing or malformed file (each bad line named),
//! 3 undecided within `--max-steps`.
#![allow(clippy::disallowed_methods, reason = "the CLI measures wall time around simulated runs")]

#[cfg(madsim)]
mod check_history;
#[cfg(madsim)]
mod demo;
#[cfg(madsim)]
mod plan_cmd;

/// Exit code: every expectation held.
pub const EXIT_PASS: i32 = 0;
/// Exit code: an expectation failed.
pub const EXIT_FAIL: i32 = 1;
/// Exit code: bad usage or bad input.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the run could not complete (panic, limit, nondeterminism).
pub const EXIT_CRASH: i32 = 3;

#[cfg(madsim)]
fn main() {
    gauntlet_sim::log::init();
    std::process::exit(demo::main());
}

#[cfg(not(madsim))]
fn main() {
    eprintln!("gauntlet: this is the real build of the CLI; build it normally (`cargo build -p gauntlet-cli`), which simulates");
    std::process::exit(EXIT_USAGE);
}
