//! # gauntlet-cli: the `gauntlet` command line, for any registered application
//!
//! The command line is a library: a crate registers its applications once in an [`Apps`] and
//! gets every command for them — checking plans, runs, sweeps, replays, shrinks, diffs,
//! reports, determinism checks and (for an [`HttpApplication`](gauntlet::HttpApplication))
//! promotion to real deployments. A whole CLI for a system of your own is a three-line
//! `src/bin/gauntlet.rs`:
//!
//! ```no_run
//! // src/bin/gauntlet.rs
//! gauntlet_cli::main(gauntlet_cli::Apps::new() /* .with(my_system::MyApp) */)
//! ```
//!
//! `gauntlet init DIR` writes such a crate, with an example application, a plan and a test.
//!
//! ```text
//! gauntlet demo [--seed N] [--json]             run the registered demo plan
//! gauntlet init DIR [--name NAME]                write a new crate that tests a system of its own
//! gauntlet list [--plans DIR] [--json]           plans, applications, expectations, bugs
//! gauntlet check PLAN...                         validate plan files
//! gauntlet run PLAN [--seed S] [--bug B]... [--out DIR] [--json]
//!                                                run a plan once; write its bundle
//! gauntlet script FILE.lua [--plan BASE] [--seed S] [--backend sim|local|compose] [--submit]
//!                                                run a Lua procedure against a deployment
//! gauntlet sweep PLAN --seeds A..B [--jobs N] [--bug B]... [--json]
//!                                                many seeds, each in its own process
//! gauntlet replay BUNDLE [--around I | --at T]   re-run a bundle, check its trace hash
//! gauntlet shrink BUNDLE [-o OUT]                minimise a failing run's faults and load
//! gauntlet explore PLAN [--budget N] [--seed S]  guided search: mutate the chaos of runs that
//!                                                reached something new, until a failure
//! gauntlet diff A B                              first divergent event, summary diff
//! gauntlet check-determinism PLAN [--seed S]     run twice, compare event by event
//! gauntlet report BUNDLE -o report.html          a self-contained HTML report
//! gauntlet promote PLAN --backend local|compose|k8s [--baseline BUNDLE] [--json]
//!                                                run a plan for real, diff against the simulation
//! gauntlet clean                                 remove what killed promote runs left behind
//! gauntlet serve [--listen ADDR] [--data DIR]   the run service: HTTP API, SSE, store, metrics
//! gauntlet submit PLAN --seeds S [--wait]         submit a run to it; status [ID]; logs ID
//! gauntlet check-history FILE --model register|kv [--json] [--max-steps N] [--first-failure]
//!                                                check a recorded history for linearizability
//! ```
//! The run service, the real backends and the Lua VM are the cargo features `serve`, `real`
//! and `script` (see [`features`]); without them a crate's command line builds only what
//! simulation needs, and a command that needs one says so.
//!
//! Seeds: `--seed` or `SIM_SEED` (decimal, 0x hex, or a git commit id); otherwise one is drawn
//! and printed first. Exit codes: 0 pass, 1 a safety failure (or the demo failed, or `diff`
//! found a difference), 2 usage or input error (a bad plan, an unreadable bundle, an unknown
//! application), 3 a crash (a panic, a trace limit, nondeterminism, a replay that diverged),
//! 4 a liveness failure, 5 a script's own failure (a Lua error, a bad argument such as an
//! unknown node, a limit). `check-history`: 0 linearizable, 1 not, 2 a missing or malformed file
//! (each bad line named), 3 undecided within `--max-steps`.
#![allow(clippy::disallowed_methods, reason = "the CLI measures wall time around simulated runs")]

#[cfg(madsim)]
mod apps;
#[cfg(madsim)]
mod build_id;
#[cfg(madsim)]
mod bundle_cmd;
#[cfg(madsim)]
mod check_history;
#[cfg(madsim)]
mod cli;
#[cfg(madsim)]
mod demo;
#[cfg(madsim)]
mod explore;
#[cfg(madsim)]
pub mod features;
#[cfg(madsim)]
mod init;
#[cfg(madsim)]
mod plan_cmd;
#[cfg(madsim)]
mod process;
#[cfg(madsim)]
mod promote;
#[cfg(madsim)]
mod report;
#[cfg(madsim)]
mod script_cmd;
#[cfg(madsim)]
mod serve;
#[cfg(madsim)]
mod shrink;
#[cfg(madsim)]
mod sweep;

#[cfg(madsim)]
pub use apps::Apps;

/// Exit code: every expectation held.
pub const EXIT_PASS: i32 = 0;
/// Exit code: an expectation failed.
pub const EXIT_FAIL: i32 = 1;
/// Exit code: bad usage or bad input.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the run could not complete (panic, limit, nondeterminism).
pub const EXIT_CRASH: i32 = 3;

/// Runs the command line (`std::env::args`) for `apps` and exits with its code.
#[cfg(madsim)]
pub fn main(apps: Apps) -> ! {
    gauntlet_sim::log::init();
    std::process::exit(run(&apps, std::env::args_os()));
}

/// Runs the command line `args` (the program name first) for `apps`; returns the exit code.
#[cfg(madsim)]
pub fn run<I, T>(apps: &Apps, args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    cli::main(apps, args)
}
