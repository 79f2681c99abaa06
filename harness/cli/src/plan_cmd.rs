//! `gauntlet check` and `gauntlet run`: plan files from the command line.

use crate::{EXIT_PASS, EXIT_USAGE};
use gauntlet::{Plan, Verdict};
use gauntlet_scenarios::registry;
use std::path::{Path, PathBuf};

/// Validates every file; prints each problem. Exit 0 when all are valid, 2 otherwise.
pub fn check(files: &[PathBuf]) -> i32 {
    let mut bad = 0;
    for file in files {
        match Plan::load(file).and_then(|p| registry::check(&p).map(|_| p)) {
            Ok(plan) => println!("ok    {} ({})", file.display(), plan.name),
            Err(e) => {
                bad += 1;
                println!("error {}: {e}", file.display());
            }
        }
    }
    if bad == 0 {
        EXIT_PASS
    } else {
        eprintln!("gauntlet: {bad} of {} plans have problems", files.len());
        EXIT_USAGE
    }
}

/// Runs one plan file once and reports; the exit code follows the verdict's class.
pub fn run(file: &Path, seed: Option<String>, json: bool) -> i32 {
    let plan = match Plan::load(file).and_then(|p| registry::check(&p).map(|_| p)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    let seeds = match (seed, plan.run.seed) {
        (None, Some(s)) if std::env::var_os(gauntlet_sim::seed::SIM_SEED_ENV).is_none() => {
            crate::demo::seeds(Some(s.to_string()))
        }
        (flag, _) => crate::demo::seeds(flag),
    };
    let seeds = match seeds {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    eprintln!("gauntlet: {} with {seeds}", plan.name);
    let replay = format!("{} cargo run --release -p gauntlet-cli -- run {}", seeds.env_prefix(), file.display());
    let outcome = match registry::run(&plan, seeds, false) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gauntlet: the run broke: {e}");
            eprintln!("replay: {replay}");
            return crate::EXIT_CRASH;
        }
    };
    let failure = match &outcome.verdict {
        Verdict::Pass => None,
        Verdict::Fail(f) => Some(f),
    };
    if json {
        let ops: serde_json::Map<String, serde_json::Value> = outcome
            .ops
            .iter()
            .map(|(w, c)| {
                (w.clone(), serde_json::json!({"invoked": c.invoked, "ok": c.ok, "fail": c.fail, "info": c.info, "shed": c.shed}))
            })
            .collect();
        let v = serde_json::json!({
            "plan": outcome.plan,
            "seed": seeds.sim,
            "chaos_seed": seeds.chaos,
            "verdict": if failure.is_none() { "pass" } else { "fail" },
            "class": failure.map(|f| f.class.to_string()),
            "failure": failure.map(|f| f.to_string()),
            "chaos_kinds": outcome.chaos_kinds,
            "faults": outcome.schedule.len(),
            "ops": ops,
            "trace_hash": format!("{:016x}", outcome.trace_hash),
            "events": outcome.events,
            "sim_time_ms": outcome.sim_time.as_millis() as u64,
        });
        println!("{v}");
    } else {
        println!("plan       {}", outcome.plan);
        println!("seed       {}  (chaos {})", seeds.sim, seeds.chaos);
        println!(
            "chaos      {}",
            if outcome.chaos_kinds.is_empty() { "none".into() } else { outcome.chaos_kinds.join(", ") }
        );
        for e in &outcome.schedule.entries {
            println!("  {:>8.3}s  {}", e.at.as_secs_f64(), e.fault);
        }
        for c in &outcome.membership_changes {
            println!("  {:>8.3}s  {} {}", c.at.as_secs_f64(), c.node, if c.joined { "joined" } else { "left" });
        }
        for (w, c) in &outcome.ops {
            println!(
                "workload   {w}: {} invoked, {} ok, {} fail, {} info, {} shed",
                c.invoked, c.ok, c.fail, c.info, c.shed
            );
        }
        for (name, at) in &outcome.settled {
            println!("settled    {name} at {:.3}s", at.as_secs_f64());
        }
        println!("events     {}", outcome.events);
        println!("sim time   {:.3}s", outcome.sim_time.as_secs_f64());
        println!("trace hash {:016x}", outcome.trace_hash);
        println!("verdict    {}", outcome.verdict);
    }
    match failure {
        None => EXIT_PASS,
        Some(f) => {
            eprintln!("replay: {replay}");
            f.class.exit_code()
        }
    }
}
