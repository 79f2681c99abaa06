//! Argument parsing and the `demo` command.

use crate::{EXIT_CRASH, EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use clap::{Parser, Subcommand};
use gauntlet_scenarios::gossip::demo::{self, Verdict};
use gauntlet_sim::seed::{parse_seed, seed_from_env, CHAOS_SEED_ENV, SIM_SEED_ENV};
use gauntlet_sim::{RunError, Seeds};

#[derive(Parser)]
#[command(name = "gauntlet", version, about = "Deterministic simulation testing for distributed systems")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the demo scenario (5 gossip nodes under loss, partition, crash/restart and clock skew).
    Demo {
        /// Seed: decimal or 0x hex. Default: SIM_SEED, or a fresh seed printed before the run.
        #[arg(long)]
        seed: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check plan files: every problem is listed with its path. Exit 0 if all are valid.
    Check {
        /// Plan files (TOML).
        #[arg(required = true)]
        plans: Vec<std::path::PathBuf>,
    },
    /// Run a plan file once under simulation.
    Run {
        /// The plan file (TOML).
        plan: std::path::PathBuf,
        /// Seed: decimal or 0x hex. Default: SIM_SEED, the plan's run.seed, or a fresh seed.
        #[arg(long)]
        seed: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check a recorded history (JSON lines, docs/LINEARIZABILITY.md) for linearizability.
    /// Exit 0 linearizable, 1 not (with a minimal counterexample), 2 missing or malformed file,
    /// 3 undecided within --max-steps.
    CheckHistory {
        /// The history file: one operation per line.
        file: std::path::PathBuf,
        /// The sequential specification to check against.
        #[arg(long, value_enum)]
        model: crate::check_history::ModelName,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// Give up on a partition (a key, or the register) after this many search steps.
        #[arg(long)]
        max_steps: Option<u64>,
    },
}

pub(crate) fn seeds(flag: Option<String>) -> Result<Seeds, gauntlet_sim::SeedError> {
    let sim = match flag {
        Some(v) => parse_seed("--seed", &v)?,
        None => seed_from_env(SIM_SEED_ENV)?.unwrap_or_else(gauntlet_sim::seed::draw_seed),
    };
    let chaos = seed_from_env(CHAOS_SEED_ENV)?.unwrap_or(sim);
    Ok(Seeds { sim, chaos })
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_PASS };
        }
    };
    match cli.command {
        Command::Demo { seed, json } => run_demo(seed, json),
        Command::Check { plans } => crate::plan_cmd::check(&plans),
        Command::Run { plan, seed, json } => crate::plan_cmd::run(&plan, seed, json),
        Command::CheckHistory { file, model, json, max_steps } => {
            crate::check_history::run(&file, model, json, max_steps)
        }
    }
}

fn run_demo(seed: Option<String>, json: bool) -> i32 {
    let seeds = match seeds(seed) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    // The seed comes first, before anything can go wrong.
    eprintln!("gauntlet: demo with {seeds}");
    let started = std::time::Instant::now();
    let outcome = demo::run(seeds);
    let wall_ms = started.elapsed().as_millis() as u64;
    let replay = format!("{} cargo run --release -p gauntlet-cli -- demo", seeds.env_prefix());
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gauntlet: the run broke: {e}");
            eprintln!("replay: {replay}");
            return match e {
                RunError::Seed(_) | RunError::Invalid(_) => EXIT_USAGE,
                _ => EXIT_CRASH,
            };
        }
    };
    let pass = outcome.verdict == Verdict::Pass;
    if json {
        let v = serde_json::json!({
            "scenario": "demo",
            "seed": seeds.sim,
            "chaos_seed": seeds.chaos,
            "verdict": if pass { "pass" } else { "fail" },
            "failures": match &outcome.verdict { Verdict::Pass => vec![], Verdict::Diverged { values } => vec![format!("liveness: nodes did not converge: {values:?}")] },
            "trace_hash": format!("{:016x}", outcome.trace_hash),
            "events": outcome.events,
            "sim_time_ms": outcome.sim_time.as_millis() as u64,
            "wall_ms": wall_ms,
            "values": outcome.values,
        });
        println!("{v}");
    } else {
        println!("scenario   demo (5 gossip-max nodes, 1% loss, 1-10 ms latency)");
        println!("seed       {}  (chaos {})", seeds.sim, seeds.chaos);
        println!("faults");
        for e in &outcome.schedule.entries {
            println!("  {:>8.3}s  {}", e.at.as_secs_f64(), e.fault);
        }
        let counts: Vec<String> = outcome.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("events     {} ({})", outcome.events, counts.join(" "));
        println!("values     {:?}", outcome.values);
        println!("sim time   {:.3}s in {} ms wall", outcome.sim_time.as_secs_f64(), wall_ms);
        println!("trace hash {:016x}", outcome.trace_hash);
        match &outcome.verdict {
            Verdict::Pass => println!("verdict    PASS: every node converged after the faults"),
            Verdict::Diverged { .. } => println!("verdict    FAIL (liveness): nodes did not converge"),
        }
    }
    if pass {
        EXIT_PASS
    } else {
        eprintln!("replay: {replay}");
        EXIT_FAIL
    }
}
