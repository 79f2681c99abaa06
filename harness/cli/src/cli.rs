//! The command line: every command, its flags, and the dispatch.

use crate::apps::Apps;
use crate::{EXIT_PASS, EXIT_USAGE};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "gauntlet", version, about = "Deterministic simulation testing for distributed systems")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Flags shared by the commands that run a plan.
#[derive(clap::Args, Clone, Debug)]
pub struct RunFlags {
    /// Seed: decimal, 0x hex, or a git commit id (hashed). Default: SIM_SEED, the plan's
    /// run.seed, or a fresh seed printed before the run.
    #[arg(long)]
    pub seed: Option<String>,
    /// Switch on an application's planted bug (repeatable), as if the plan listed it.
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the command line's demo plan (`Apps::demo`) and write its bundle and HTML report.
    Demo {
        /// Seed: decimal, 0x hex or a commit id. Default: SIM_SEED, or a fresh seed printed first.
        #[arg(long)]
        seed: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Directory for the bundle and the report.
        #[arg(long, default_value = "gauntlet-out")]
        out: PathBuf,
    },
    /// Check plan files: every problem is listed with its path. Exit 0 if all are valid.
    Check {
        /// Plan files (TOML).
        #[arg(required = true)]
        plans: Vec<PathBuf>,
        /// Print JSON: each file with its problems.
        #[arg(long)]
        json: bool,
    },
    /// Write a new crate that tests a system of its own with Gauntlet: an example application
    /// with a planted bug, a plan, a test, and this command line for it.
    Init {
        /// The directory to create (it must not exist, or be empty).
        dir: PathBuf,
        /// The crate's name. Default: the directory's name.
        #[arg(long)]
        name: Option<String>,
        /// How the crate depends on Gauntlet: `path:DIR` (a checkout; the default is the one
        /// this program was built from, if it is still there) or `git:URL`.
        #[arg(long)]
        gauntlet: Option<String>,
    },
    /// List the plans in a directory and the applications with their expectations and bugs.
    List {
        /// Where the plans are. Default: the command line's plans directory (`plans`).
        #[arg(long)]
        plans: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a plan file once under simulation and write its bundle.
    Run {
        /// The plan file (TOML).
        plan: PathBuf,
        #[command(flatten)]
        flags: RunFlags,
        /// Directory for the bundle (`<plan>-<seed>.gbundle`).
        #[arg(long, default_value = "gauntlet-out")]
        out: PathBuf,
        /// Write no bundle.
        #[arg(long)]
        no_bundle: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a Lua script (upgrades, node control, checks) against the deployment a base plan
    /// describes: under simulation (a bundle, a replay line), for real (`--backend local`), or
    /// queued on the run service (`--submit`). See docs/SCRIPTING.md.
    #[cfg_attr(
        not(feature = "script"),
        command(about = "Run a Lua script against a deployment [not built in: needs gauntlet-cli's `script` feature]")
    )]
    Script(crate::script_cmd::ScriptArgs),
    /// Run a plan over many seeds on all cores, isolated in worker processes with a time limit
    /// per seed; `--shard I/N` runs one part of the range, `--results DIR` keeps it for `merge`.
    Sweep {
        /// The plan file (TOML).
        plan: PathBuf,
        /// Seeds: `A..B` (B excluded), or `S+N` (N seeds from S); A and S may be a commit id.
        #[arg(long, default_value = "0..100")]
        seeds: String,
        /// Parallel runs. Default: the number of cores.
        #[arg(long)]
        jobs: Option<usize>,
        /// Switch on a planted bug (repeatable).
        #[arg(long = "bug", value_name = "NAME")]
        bugs: Vec<String>,
        /// Time limit per seed, wall clock.
        #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// Directory for failing seeds' bundles.
        #[arg(long, default_value = "gauntlet-out")]
        out: PathBuf,
        /// Failing-seed corpus directory (`<plan>.seeds` in it) that failing seeds are added to.
        /// Default: the command line's corpus, if it has one (the shipped `gauntlet`:
        /// snapshots/corpus, which `cargo test` re-runs).
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Do not add failing seeds to the corpus.
        #[arg(long)]
        no_corpus: bool,
        /// Stop at the first failing seed.
        #[arg(long)]
        first: bool,
        /// Print the summary as JSON (no progress bar).
        #[arg(long)]
        json: bool,
        /// How seeds are isolated: `batch` (a worker process per job runs seed after seed, each
        /// in a fresh world; a crashed or hung seed kills only its worker) or `process` (one
        /// process per seed).
        #[arg(long, value_enum, default_value = "batch")]
        mode: crate::sweep::worker::Mode,
        /// Run only the I-th of N disjoint parts of the range (0-based). I may be `$VAR` (read
        /// from the environment, e.g. `$JOB_COMPLETION_INDEX`) or `swarm` (a Docker swarm
        /// job's task slot: see docs/KUBERNETES.md).
        #[arg(long, value_name = "I/N", value_parser = crate::sweep::shard::Shard::parse)]
        shard: Option<crate::sweep::shard::Shard>,
        /// Keep the results here for `gauntlet merge`: shard.json, seeds.jsonl (a line per
        /// seed, as it ends), plan.toml and failing seeds' bundles. A directory an interrupted
        /// attempt at the same shard left is resumed. `{shard}` in it is the shard's index.
        #[arg(long, value_name = "DIR")]
        results: Option<PathBuf>,
        /// Exit 0 once every seed's result is recorded, failing or not (for engines that
        /// retry any task that exits non-zero).
        #[arg(long)]
        exit_zero: bool,
        /// Run nothing: write a Kubernetes Indexed Job that runs the sweep in `--shards`
        /// shards (and the image's build context) to this directory. See docs/KUBERNETES.md.
        #[arg(long, value_name = "DIR")]
        render_k8s: Option<PathBuf>,
        /// Shards of the rendered Job.
        #[arg(long, default_value_t = 4, requires = "render_k8s")]
        shards: u64,
        /// Shards of the rendered Job running at once.
        #[arg(long, default_value_t = 4, requires = "render_k8s")]
        parallelism: u64,
        /// The image of the rendered Job.
        #[arg(long, default_value = "gauntlet/gauntlet:dev", requires = "render_k8s")]
        image: String,
    },
    /// Combine the `--results` directories of a sweep's shards into its summary (and into a
    /// run store); shards of different plans, ranges, bugs or builds are refused.
    Merge {
        /// The shards' results directories.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Write every seed's result line, in seed order, to this file (JSON lines).
        #[arg(long, value_name = "FILE")]
        lines: Option<PathBuf>,
        /// Record the merged sweep as a finished run in this run store: `sqlite`
        /// (<data>/runs.sqlite) or a postgres:// URL.
        #[arg(long, env = "GAUNTLET_STORE", hide_env_values = true)]
        store: Option<String>,
        /// The run service's data directory (the SQLite store; bundles are copied under it).
        #[arg(long, default_value = "gauntlet-data")]
        data: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Re-run a bundle's plan and seeds; check the trace hash and verdict; print trace windows.
    Replay {
        /// The bundle.
        bundle: PathBuf,
        /// Print the trace events around this event index.
        #[arg(long, value_name = "INDEX")]
        around: Option<usize>,
        /// Print the trace events around this simulated time (e.g. 12.5s, 800ms).
        #[arg(long, value_name = "TIME", value_parser = humantime::parse_duration)]
        at: Option<std::time::Duration>,
        /// Events either side of the window's centre.
        #[arg(long, default_value_t = 10)]
        window: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Minimise a failing bundle's fault schedule and workload, keeping its failure.
    Shrink {
        /// The failing bundle.
        bundle: PathBuf,
        /// Where to write the shrunk plan and bundle. Default: next to the input,
        /// `<name>-shrunk.toml` and `.gbundle`.
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Give up after this many trial runs.
        #[arg(long, default_value_t = 2_000)]
        max_runs: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Compare two bundles: the first divergent trace event, and the summaries' diff.
    Diff {
        /// First bundle.
        a: PathBuf,
        /// Second bundle.
        b: PathBuf,
        /// Events of context either side of the divergence.
        #[arg(long, default_value_t = 3)]
        context: usize,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a plan twice with the same seed and fail on the first divergent trace event.
    CheckDeterminism {
        /// The plan file (TOML).
        plan: PathBuf,
        #[command(flatten)]
        flags: RunFlags,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a self-contained HTML report of a bundle.
    Report {
        /// The bundle.
        bundle: PathBuf,
        /// The HTML file to write.
        #[arg(long, short, default_value = "report.html")]
        out: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a recorded history (JSON lines, docs/LINEARIZABILITY.md) for linearizability.
    /// Exit 0 linearizable, 1 not (with a minimal counterexample), 2 missing or malformed file,
    /// 3 undecided within --max-steps.
    CheckHistory {
        /// The history file: one operation per line.
        file: PathBuf,
        /// The sequential specification to check against.
        #[arg(long, value_enum)]
        model: crate::check_history::ModelName,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Give up on a partition (a key, or the register) after this many search steps.
        #[arg(long)]
        max_steps: Option<u64>,
        /// Stop at the first failing partition (smallest first): a verdict with a
        /// counterexample from that partition, without checking the others (Porcupine's way).
        #[arg(long)]
        first_failure: bool,
    },
    /// Run a plan on a real backend (local processes in network namespaces, docker compose,
    /// kubernetes) with the same operations and faults as the simulation with the same seeds,
    /// and compare the observed run with the simulated baseline. Exit 0 when the expectations
    /// pass and the run matches the baseline, 1 when not, 2 for a plan the backend cannot run.
    #[cfg_attr(
        not(feature = "real"),
        command(
            about = "Run a plan on a real backend and compare it with the simulation [not built in: needs gauntlet-cli's `real` feature]"
        )
    )]
    Promote {
        /// The plan file (TOML).
        plan: PathBuf,
        #[command(flatten)]
        flags: RunFlags,
        #[command(flatten)]
        promote: crate::promote::PromoteFlags,
    },
    /// Run a plan on a real backend only, with no simulated baseline: for systems that have
    /// no simulated node (binaries nobody here wrote, registered with `Apps::with_real`) or
    /// when no comparison is wanted. The same faults, operations and expectations; the
    /// bundle holds the recorded history and the verdict. Exit 0 pass, 1 fail, 2 a plan the
    /// backend cannot run (naming what is missing).
    #[cfg_attr(
        not(feature = "real"),
        command(
            about = "Run a plan on a real backend only, with no simulated baseline [not built in: needs gauntlet-cli's `real` feature]"
        )
    )]
    TestReal {
        /// The plan file (TOML).
        plan: PathBuf,
        #[command(flatten)]
        flags: RunFlags,
        #[command(flatten)]
        promote: crate::promote::PromoteFlags,
    },
    /// Remove what killed `promote` runs left behind: processes, network namespaces, links,
    /// routes, containers (found by their run-id tags).
    #[cfg_attr(
        not(feature = "real"),
        command(
            about = "Remove what killed `promote` runs left behind [not built in: needs gauntlet-cli's `real` feature]"
        )
    )]
    Clean {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve an NFQUEUE delay queue (started by the local backend inside a node's namespace).
    #[command(hide = true)]
    DelayQueue {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Guided exploration: choose each next run from what earlier runs reached (new
    /// sometimes-assertions, event counts, fault interleavings), mutating the chaos of runs that
    /// reached something new; a failure is written as a replayable plan and bundle.
    Explore {
        /// The plan file (TOML).
        plan: PathBuf,
        /// Runs to spend.
        #[arg(long, default_value_t = 200)]
        budget: usize,
        /// The explorer's seed (its fresh seeds and mutations come from it).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Parallel runs (the result does not depend on it). Default: the number of cores.
        #[arg(long)]
        jobs: Option<usize>,
        /// Switch on a planted bug (repeatable).
        #[arg(long = "bug", value_name = "NAME")]
        bugs: Vec<String>,
        /// Directory for the found plan and bundle.
        #[arg(long, default_value = "gauntlet-out")]
        out: PathBuf,
        /// Spend the whole budget instead of stopping at the first failure.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve the run service: an HTTP API (/v1/test-runs …), live run events (SSE), a run
    /// store (SQLite under --data) and Prometheus metrics, executing this command line's
    /// applications. Binds loopback; mutating requests need the write token.
    #[cfg_attr(
        not(feature = "serve"),
        command(about = "Serve the run service [not built in: needs gauntlet-cli's `serve` feature]")
    )]
    Serve {
        #[command(flatten)]
        flags: crate::serve::ServeFlags,
    },
    /// Submit a run to a `gauntlet serve` (the plan file's text is sent) and print its id.
    #[cfg_attr(
        not(feature = "serve"),
        command(about = "Submit a run to a `gauntlet serve` [not built in: needs gauntlet-cli's `serve` feature]")
    )]
    Submit {
        /// The plan file (TOML).
        plan: PathBuf,
        /// Seeds: one (`42`, a commit id) or a range (`0..200`, `100+50`).
        #[arg(long)]
        seeds: String,
        /// Switch on a planted bug (repeatable).
        #[arg(long = "bug", value_name = "NAME")]
        bugs: Vec<String>,
        /// Seeds at once (default: the server's).
        #[arg(long)]
        jobs: Option<u32>,
        /// Follow the run's events until it ends; exit 0 if it passed, 1 if not.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        client: crate::serve::ClientFlags,
    },
    /// A run's state, progress and failing seeds (with replay lines), or the latest runs.
    #[cfg_attr(
        not(feature = "serve"),
        command(about = "A run's state on a `gauntlet serve` [not built in: needs gauntlet-cli's `serve` feature]")
    )]
    Status {
        /// The run's id (default: list the latest runs).
        id: Option<String>,
        #[command(flatten)]
        client: crate::serve::ClientFlags,
    },
    /// Follow a run's event stream until it ends; exit 0 if it passed, 1 if not.
    #[cfg_attr(
        not(feature = "serve"),
        command(
            about = "Follow a run's event stream on a `gauntlet serve` [not built in: needs gauntlet-cli's `serve` feature]"
        )
    )]
    Logs {
        /// The run's id.
        id: String,
        #[command(flatten)]
        client: crate::serve::ClientFlags,
    },
    /// Run one seed and print its JSON line (used by `sweep`, one process per seed).
    #[command(hide = true)]
    SweepOne {
        plan: PathBuf,
        #[arg(long)]
        seed: u64,
        #[arg(long = "bug")]
        bugs: Vec<String>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the seeds read from standard input one by one, a JSON line each (used by `sweep`).
    #[command(hide = true)]
    SweepWorker {
        plan: PathBuf,
        #[arg(long = "bug")]
        bugs: Vec<String>,
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs the CLI on `args` and returns the process exit code.
pub fn main<I, T>(apps: &Apps, args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_PASS };
        }
    };
    match cli.command {
        Command::Demo { seed, json, out } => crate::demo::run_demo(apps, seed, json, &out),
        Command::Init { dir, name, gauntlet } => crate::init::run(&dir, name.as_deref(), gauntlet.as_deref()),
        Command::Check { plans, json } => crate::plan_cmd::check(apps, &plans, json),
        Command::List { plans, json } => crate::plan_cmd::list(apps, plans.as_deref().unwrap_or(&apps.plans_dir), json),
        Command::Script(args) => crate::script_cmd::run(apps, &args),
        Command::Run { plan, flags, out, no_bundle, json } => {
            crate::plan_cmd::run(apps, &plan, &flags, (!no_bundle).then_some(out.as_path()), json)
        }
        Command::Sweep {
            plan,
            seeds,
            jobs,
            bugs,
            timeout,
            out,
            corpus,
            no_corpus,
            first,
            json,
            mode,
            shard,
            results,
            exit_zero,
            render_k8s,
            shards,
            parallelism,
            image,
        } => {
            if let Some(dir) = render_k8s {
                let r = crate::sweep::RenderK8s { dir, shards, parallelism, image };
                return crate::sweep::render_k8s(apps, &plan, &seeds, &bugs, jobs, timeout, &r);
            }
            let corpus = if no_corpus { None } else { corpus.or_else(|| apps.corpus.clone()) };
            let shard = shard.unwrap_or(crate::sweep::shard::Shard::WHOLE);
            let s = crate::sweep::Sweep {
                plan,
                seeds,
                jobs,
                bugs,
                timeout,
                out,
                corpus,
                first,
                json,
                mode,
                shard,
                results,
                exit_zero,
            };
            crate::sweep::run(apps, s)
        }
        Command::Merge { dirs, lines, store, data, json } => {
            crate::sweep::merge::run(crate::sweep::merge::Merge { dirs, lines, store, data, json })
        }
        Command::SweepWorker { plan, bugs, out } => {
            crate::process::die_with_parent(nix::sys::signal::Signal::SIGKILL);
            crate::sweep::worker::serve_seeds(apps, &plan, &bugs, &out)
        }
        Command::Promote { plan, flags, promote } => crate::promote::run(apps, &plan, &flags, &promote),
        Command::TestReal { plan, flags, mut promote } => {
            promote.no_baseline = true;
            crate::promote::run(apps, &plan, &flags, &promote)
        }
        Command::Clean { json } => crate::promote::clean(json),
        #[cfg(feature = "real")]
        Command::DelayQueue { args } => gauntlet_backends::delay::main(&args),
        #[cfg(not(feature = "real"))]
        Command::DelayQueue { .. } => crate::features::missing("delay-queue", "real"),
        Command::Explore { plan, budget, seed, jobs, bugs, out, all, json } => {
            crate::explore::run(apps, crate::explore::Explore { plan, budget, seed, jobs, bugs, out, all, json })
        }
        Command::SweepOne { plan, seed, bugs, out } => {
            crate::process::die_with_parent(nix::sys::signal::Signal::SIGKILL);
            crate::sweep::one(apps, &plan, seed, &bugs, &out)
        }
        Command::Serve { flags } => crate::serve::serve(apps, flags),
        Command::Submit { plan, seeds, bugs, jobs, wait, client } => {
            crate::serve::submit(&plan, &seeds, &bugs, jobs, wait, &client)
        }
        Command::Status { id, client } => crate::serve::status(id.as_deref(), &client),
        Command::Logs { id, client } => crate::serve::logs(&id, &client),
        Command::Replay { bundle, around, at, window, json } => {
            crate::bundle_cmd::replay(apps, &bundle, around, at, window, json)
        }
        Command::Shrink { bundle, out, max_runs, json } => {
            crate::process::die_with_parent(nix::sys::signal::Signal::SIGKILL); // when the run service started it
            crate::shrink::run(apps, &bundle, out, max_runs, json)
        }
        Command::Diff { a, b, context, json } => crate::bundle_cmd::diff(&a, &b, context, json),
        Command::CheckDeterminism { plan, flags, json } => {
            crate::plan_cmd::check_determinism(apps, &plan, &flags, json)
        }
        Command::Report { bundle, out, json } => crate::bundle_cmd::report(&bundle, &out, json),
        Command::CheckHistory { file, model, json, max_steps, first_failure } => {
            crate::check_history::run(&file, model, json, max_steps, first_failure)
        }
    }
}
