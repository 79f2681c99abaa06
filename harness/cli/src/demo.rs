//! The `demo` command, and seed resolution shared by the commands that run.

use crate::{EXIT_CRASH, EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use gauntlet_scenarios::gossip::demo::{self, Verdict};
use gauntlet_sim::seed::{parse_seed, seed_from_env, CHAOS_SEED_ENV, SIM_SEED_ENV};
use gauntlet_sim::{RunError, Seeds};

pub(crate) fn seeds(flag: Option<String>) -> Result<Seeds, gauntlet_sim::SeedError> {
    let sim = match flag {
        Some(v) => parse_seed("--seed", &v)?,
        None => seed_from_env(SIM_SEED_ENV)?.unwrap_or_else(gauntlet_sim::seed::draw_seed),
    };
    let chaos = seed_from_env(CHAOS_SEED_ENV)?.unwrap_or(sim);
    Ok(Seeds { sim, chaos })
}

/// `gauntlet demo`.
pub(crate) fn run_demo(seed: Option<String>, json: bool) -> i32 {
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
