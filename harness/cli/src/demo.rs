//! The `demo` command, and seed resolution shared by the commands that run.

use crate::apps::Apps;
use crate::{EXIT_CRASH, EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use gauntlet::bundle::Bundle;
use gauntlet::registry::{RunOptions, RunPlanError};
use gauntlet::Verdict;
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

/// `gauntlet demo`: the command line's demo plan ([`Apps::demo`]) under simulation; writes its
/// bundle and HTML report to `out`.
pub(crate) fn run_demo(apps: &Apps, seed: Option<String>, json: bool, out: &std::path::Path) -> i32 {
    let Some((plan, about)) = apps.demo.clone() else {
        eprintln!(
            "gauntlet: this command line has no demo plan (register one with Apps::demo); run a plan with `run PLAN`"
        );
        return EXIT_USAGE;
    };
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
    let outcome = apps.registry.run_plan(&plan, seeds, RunOptions { keep_events: true, ..RunOptions::default() });
    let wall_ms = started.elapsed().as_millis() as u64;
    let replay = format!("{} {} demo", seeds.env_prefix(), crate::apps::self_command());
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("replay: {replay}");
            eprintln!("gauntlet: the run broke: {e}");
            return match e {
                RunPlanError::Plan(_) | RunPlanError::Run(RunError::Seed(_) | RunError::Invalid(_)) => EXIT_USAGE,
                RunPlanError::Run(_) => EXIT_CRASH,
            };
        }
    };
    let bundle = Bundle::of(&plan, &outcome);
    let bundle_path = out.join(format!("demo-{}.{}", seeds.sim, gauntlet::bundle::EXTENSION));
    let report_path = out.join(format!("demo-{}.html", seeds.sim));
    let written = bundle.write(&bundle_path).map_err(|e| e.to_string()).and_then(|()| {
        let tmp = report_path.with_extension("html.tmp");
        std::fs::write(&tmp, crate::report::render(&bundle))
            .and_then(|()| std::fs::rename(&tmp, &report_path))
            .map_err(|e| format!("{}: {e}", report_path.display()))
    });
    if let Err(e) = written {
        eprintln!("gauntlet: {e}");
        return EXIT_CRASH;
    }
    let pass = outcome.verdict.passed();
    if !pass {
        eprintln!("replay: {replay}");
        eprintln!("bundle: {}", bundle_path.display());
    }
    if json {
        let v = serde_json::json!({
            "scenario": "demo",
            "plan": plan.name,
            "seed": seeds.sim,
            "chaos_seed": seeds.chaos,
            "verdict": if pass { "pass" } else { "fail" },
            "failures": match &outcome.verdict { Verdict::Pass => vec![], Verdict::Fail(f) => vec![f.to_string()] },
            "trace_hash": format!("{:016x}", outcome.trace_hash),
            "events": outcome.events,
            "sim_time_ms": outcome.sim_time.as_millis() as u64,
            "wall_ms": wall_ms,
            "final_states": outcome.final_states,
            "bundle": bundle_path.display().to_string(),
            "report": report_path.display().to_string(),
        });
        println!("{v}");
    } else {
        println!("scenario   demo: {} ({about})", plan.name);
        println!("seed       {}  (chaos {})", seeds.sim, seeds.chaos);
        println!("faults");
        for e in &outcome.schedule.entries {
            println!("  {:>8.3}s  {}", e.at.as_secs_f64(), e.fault);
        }
        let counts: Vec<String> = outcome.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("events     {} ({})", outcome.events, counts.join(" "));
        let values: Vec<String> = outcome.final_states.iter().map(|(n, v)| format!("{n}={v}")).collect();
        println!("values     {}", values.join(" "));
        println!("sim time   {:.3}s in {} ms wall", outcome.sim_time.as_secs_f64(), wall_ms);
        println!("trace hash {:016x}", outcome.trace_hash);
        match &outcome.verdict {
            Verdict::Pass => println!("verdict    PASS: every node converged after the faults"),
            Verdict::Fail(f) => println!("verdict    FAIL: {f}"),
        }
        println!("bundle     {}", bundle_path.display());
        println!("report     {}", report_path.display());
    }
    if pass {
        EXIT_PASS
    } else {
        outcome.verdict.class().map_or(EXIT_FAIL, |c| c.exit_code())
    }
}
