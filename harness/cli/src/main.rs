//! `gauntlet`: the command-line tool.
//!
//! ```text
//! gauntlet demo [--seed N] [--json]             run the demo scenario under simulation
//! gauntlet list [--plans DIR] [--json]           plans, applications, expectations, bugs
//! gauntlet check PLAN...                         validate plan files
//! gauntlet run PLAN [--seed S] [--bug B]... [--out DIR] [--json]
//!                                                run a plan once; write its bundle
//! gauntlet sweep PLAN --seeds A..B [--jobs N] [--bug B]... [--json]
//!                                                many seeds, each in its own process
//! gauntlet replay BUNDLE [--around I | --at T]   re-run a bundle, check its trace hash
//! gauntlet shrink BUNDLE [-o OUT]                minimise a failing run's faults and load
//! gauntlet diff A B                              first divergent event, summary diff
//! gauntlet check-determinism PLAN [--seed S]     run twice, compare event by event
//! gauntlet report BUNDLE -o report.html          a self-contained HTML report
//! gauntlet promote PLAN --backend local|compose|k8s [--baseline BUNDLE] [--json]
//!                                                run a plan for real, diff against the simulation
//! gauntlet clean                                 remove what killed promote runs left behind
//! gauntlet check-history FILE --model register|kv [--json] [--max-steps N]
//!                                                check a recorded history for linearizability
//! ```
//! Seeds: `--seed` or `SIM_SEED` (decimal, 0x hex, or a git commit id); otherwise one is drawn
//! and printed first. Exit codes: 0 pass, 1 a safety failure (or the demo failed, or `diff`
//! found a difference), 2 usage or input error (a bad plan, an unreadable bundle), 3 a crash (a
//! panic, a trace limit, nondeterminism, a replay that diverged), 4 a liveness failure.
//! `check-history`: 0 linearizable, 1 not, 2 a missing or malformed file (each bad line named),
//! 3 undecided within `--max-steps`.
#![allow(clippy::disallowed_methods, reason = "the CLI measures wall time around simulated runs")]

#[cfg(madsim)]
mod bundle_cmd;
#[cfg(madsim)]
mod check_history;
#[cfg(madsim)]
mod cli;
#[cfg(madsim)]
mod demo;
#[cfg(madsim)]
mod plan_cmd;
#[cfg(madsim)]
mod promote;
#[cfg(madsim)]
mod report;
#[cfg(madsim)]
mod shrink;
#[cfg(madsim)]
mod sweep;

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
    std::process::exit(cli::main());
}

#[cfg(not(madsim))]
fn main() {
    eprintln!("gauntlet: this is the real build of the CLI; build it normally (`cargo build -p gauntlet-cli`), which simulates");
    std::process::exit(EXIT_USAGE);
}
