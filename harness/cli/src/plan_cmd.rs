//! `gauntlet check`, `list`, `run` and `check-determinism`: plan files from the command line.

use crate::apps::Apps;
use crate::cli::RunFlags;
use crate::{EXIT_CRASH, EXIT_PASS, EXIT_USAGE};
use gauntlet::bundle::{Bundle, BundleWriter, Meta, Summary, EXTENSION};
use gauntlet::registry::RunOptions;
use gauntlet::{Plan, RunOutcome, Verdict};
use gauntlet_sim::Seeds;
use std::path::{Path, PathBuf};

/// Validates every file; prints each problem. Exit 0 when all are valid, 2 otherwise.
pub fn check(apps: &Apps, files: &[PathBuf], json: bool) -> i32 {
    let mut bad = 0;
    let mut report = Vec::new();
    for file in files {
        match Plan::load(file).and_then(|p| apps.registry.check(&p).map(|_| p)) {
            Ok(plan) => {
                if !json {
                    println!("ok    {} ({})", file.display(), plan.name);
                }
                report.push(serde_json::json!({"file": file.display().to_string(), "ok": true, "plan": plan.name}));
            }
            Err(e) => {
                bad += 1;
                if !json {
                    println!("error {}: {e}", file.display());
                }
                let problems: Vec<serde_json::Value> =
                    e.problems().iter().map(|p| serde_json::json!({"path": p.path, "message": p.message})).collect();
                report.push(serde_json::json!({"file": file.display().to_string(), "ok": false, "error": e.to_string(), "problems": problems}));
            }
        }
    }
    if json {
        println!("{}", serde_json::json!({"plans": report, "invalid": bad}));
    }
    if bad == 0 {
        EXIT_PASS
    } else {
        eprintln!("gauntlet: {bad} of {} plans have problems", files.len());
        EXIT_USAGE
    }
}

/// Loads `file`, switches on `bugs`, and validates it against its application.
pub fn load_plan(apps: &Apps, file: &Path, bugs: &[String]) -> Result<Plan, String> {
    let mut plan = Plan::load(file).map_err(|e| e.to_string())?;
    plan.add_bugs(bugs);
    apps.registry.check(&plan).map_err(|e| e.to_string())?;
    Ok(plan)
}

/// The seeds for a run of `plan`: `--seed`, else `SIM_SEED`, else the plan's `run.seed`, else
/// a fresh one; `CHAOS_SEED` overrides the chaos seed.
pub fn seeds_for(plan: &Plan, flag: Option<String>) -> Result<Seeds, String> {
    let seeds = match (flag, plan.run.seed) {
        (None, Some(s)) if std::env::var_os(gauntlet_sim::seed::SIM_SEED_ENV).is_none() => {
            crate::demo::seeds(Some(s.to_string()))
        }
        (flag, _) => crate::demo::seeds(flag),
    };
    seeds.map_err(|e| e.to_string())
}

/// Where a run's bundle goes: `<dir>/<plan>-<seed>[-chaos<seed>].gbundle`.
pub fn bundle_path(dir: &Path, plan: &Plan, seeds: Seeds) -> PathBuf {
    let chaos = if seeds.chaos == seeds.sim { String::new() } else { format!("-chaos{}", seeds.chaos) };
    dir.join(format!("{}-{}{chaos}.{EXTENSION}", plan.name, seeds.sim))
}

/// The line that replays a run of `file` with `seeds` and the `--bug` flags it was given.
pub fn replay_line(file: &Path, bugs: &[String], seeds: Seeds) -> String {
    let flags: String = bugs.iter().map(|b| format!(" --bug {b}")).collect();
    format!("{} {} run {}{flags}", seeds.env_prefix(), crate::apps::self_command(), file.display())
}

/// The `run` JSON object for one seed (also what `sweep` collects).
pub fn run_json(
    plan: &Plan,
    outcome: &RunOutcome,
    wall_ms: u64,
    bundle: Option<&Path>,
    replay: &str,
) -> serde_json::Value {
    let failures: Vec<String> = match &outcome.verdict {
        Verdict::Pass => Vec::new(),
        Verdict::Fail(f) => vec![f.to_string()],
    };
    let failure = match &outcome.verdict {
        Verdict::Pass => None,
        Verdict::Fail(f) => Some(f),
    };
    let ops: serde_json::Map<String, serde_json::Value> = outcome
        .ops
        .iter()
        .map(|(w, c)| {
            let v =
                serde_json::json!({"invoked": c.invoked, "ok": c.ok, "fail": c.fail, "info": c.info, "shed": c.shed});
            (w.clone(), v)
        })
        .collect();
    serde_json::json!({
        "scenario": plan.name,
        "plan": plan.name,
        "app": plan.app.name,
        "seed": outcome.seeds.sim,
        "chaos_seed": outcome.seeds.chaos,
        "bugs": gauntlet::bundle::bugs_of(plan),
        "verdict": if failure.is_none() { "pass" } else { "fail" },
        "class": failure.map(|f| f.class.to_string()),
        "source": failure.map(|f| f.source.clone()),
        "failures": failures,
        "chaos_kinds": outcome.chaos_kinds,
        "faults": outcome.schedule.len(),
        "ops": ops,
        "trace_hash": format!("{:016x}", outcome.trace_hash),
        "events": outcome.events,
        "sim_time_ms": outcome.sim_time.as_millis() as u64,
        "wall_ms": wall_ms,
        "bundle": bundle.map(|b| b.display().to_string()),
        "replay": replay,
        "findings": outcome.findings.iter().map(|f| serde_json::json!({
            "expectation": f.expectation, "kind": format!("{:?}", f.kind).to_lowercase(), "text": f.text,
        })).collect::<Vec<_>>(),
    })
}

/// The plan (with `flags.bugs`) and seeds for a command that runs `file`; on error, prints it
/// and gives the usage exit code.
fn prepare(apps: &Apps, file: &Path, flags: &RunFlags) -> Result<(Plan, Seeds), i32> {
    let usage = |e: String| {
        eprintln!("gauntlet: {e}");
        EXIT_USAGE
    };
    let plan = load_plan(apps, file, &flags.bugs).map_err(usage)?;
    let seeds = seeds_for(&plan, flags.seed.clone()).map_err(usage)?;
    Ok((plan, seeds))
}

/// Runs one plan file once, writes its bundle, and reports; the exit code follows the verdict.
pub fn run(apps: &Apps, file: &Path, flags: &RunFlags, out: Option<&Path>, json: bool) -> i32 {
    let (plan, seeds) = match prepare(apps, file, flags) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let replay = replay_line(file, &flags.bugs, seeds);
    run_prepared(apps, &plan, seeds, &replay, out, json)
}

/// Runs a checked plan once with `seeds`, writes its bundle into `out`, and reports (with
/// `replay`, the line that runs it again, on a failure); the exit code follows the verdict.
pub fn run_prepared(apps: &Apps, plan: &Plan, seeds: Seeds, replay: &str, out: Option<&Path>, json: bool) -> i32 {
    let (plan, replay) = (plan.clone(), replay.to_owned());
    eprintln!("gauntlet: {} with {seeds}", plan.name);
    // The bundle's file is started before the run: its plan and seeds survive a run that
    // never returns (in `<bundle>.tmp`).
    let path = out.map(|dir| bundle_path(dir, &plan, seeds));
    let writer = match path.as_ref().map(|p| BundleWriter::create(p, &Meta::new(&plan, seeds))).transpose() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    let started = std::time::Instant::now();
    let outcome =
        apps.registry.run_plan(&plan, seeds, RunOptions { keep_events: out.is_some(), ..RunOptions::default() });
    let wall_ms = started.elapsed().as_millis() as u64;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            eprintln!("replay: {replay}");
            eprintln!("gauntlet: the run broke: {e}");
            return EXIT_CRASH;
        }
    };
    let bundle = match (writer, path) {
        (Some(w), Some(path)) => match w.finish_with(&Bundle::of(&plan, &outcome)) {
            Ok(()) => Some(path),
            Err(e) => {
                eprintln!("gauntlet: {e}");
                return EXIT_CRASH;
            }
        },
        _ => None,
    };
    if let Verdict::Fail(_) = &outcome.verdict {
        // The replay line and the bundle come first, before anything else is printed.
        eprintln!("replay: {replay}");
        if let Some(b) = &bundle {
            eprintln!("bundle: {}", b.display());
        }
    }
    if json {
        println!("{}", run_json(&plan, &outcome, wall_ms, bundle.as_deref(), &replay));
    } else {
        print!("{}", Summary::of(&plan, &outcome).render());
        // The faults, and what a script printed, in time order.
        let mut lines: Vec<(std::time::Duration, String)> =
            outcome.schedule.entries.iter().map(|e| (e.at, e.fault.to_string())).collect();
        if plan.script.is_some() {
            let printed = outcome.observations.iter().filter(|o| o.node == gauntlet::runner::SCRIPT_WORKLOAD);
            lines.extend(printed.map(|o| (o.at, format!("print: {}", o.state))));
            lines.sort_by_key(|(at, _)| *at);
        }
        for (at, line) in &lines {
            println!("  {:>8.3}s  {line}", at.as_secs_f64());
        }
        for f in &outcome.findings {
            // The whole text is in the bundle and the report; a line or two here.
            println!("finding     {}", gauntlet::lincheck::expectation::cap(&f.to_string(), 600));
        }
        println!("wall time   {wall_ms} ms");
        if let Some(b) = &bundle {
            println!("bundle      {}", b.display());
        }
    }
    match &outcome.verdict {
        Verdict::Pass => EXIT_PASS,
        Verdict::Fail(f) => f.class.exit_code(),
    }
}

/// Runs a plan twice with the same seeds; exit 0 when both runs are identical, 3 on the first
/// divergent event.
pub fn check_determinism(apps: &Apps, file: &Path, flags: &RunFlags, json: bool) -> i32 {
    let (plan, seeds) = match prepare(apps, file, flags) {
        Ok(p) => p,
        Err(code) => return code,
    };
    eprintln!("gauntlet: {} with {seeds}, twice", plan.name);
    let result = apps.registry.run_plan(&plan, seeds, RunOptions { check_determinism: true, ..RunOptions::default() });
    let (ok, message, hash) = match &result {
        Ok(o) => (true, format!("deterministic: both runs gave trace hash {:016x}", o.trace_hash), Some(o.trace_hash)),
        Err(e) => (false, e.to_string(), None),
    };
    if json {
        let v = serde_json::json!({
            "plan": plan.name, "seed": seeds.sim, "chaos_seed": seeds.chaos,
            "deterministic": ok, "trace_hash": hash.map(|h| format!("{h:016x}")), "message": message,
        });
        println!("{v}");
    } else {
        println!("{message}");
    }
    if ok {
        EXIT_PASS
    } else {
        EXIT_CRASH
    }
}

/// Lists plan files and registered applications.
pub fn list(apps: &Apps, dir: &Path, json: bool) -> i32 {
    let mut plans = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for f in files {
            let about = std::fs::read_to_string(&f)
                .ok()
                .and_then(|t| t.lines().next().map(|l| l.trim_start_matches('#').trim().to_owned()))
                .unwrap_or_default();
            match Plan::load(&f) {
                Ok(p) => plans.push((f, p.name.clone(), p.app.name.clone(), about, None)),
                Err(e) => plans.push((f, String::new(), String::new(), about, Some(e.to_string()))),
            }
        }
    } else {
        eprintln!("gauntlet: cannot read plan directory {}", dir.display());
    }
    let promotable = apps.promotable();
    let apps = apps.registry.apps();
    if json {
        let v = serde_json::json!({
            "plans": plans.iter().map(|(f, name, app, about, err)| serde_json::json!({
                "file": f.display().to_string(), "name": name, "app": app, "about": about, "error": err,
            })).collect::<Vec<_>>(),
            "apps": apps.iter().map(|a| serde_json::json!({
                "name": a.name, "roles": a.roles, "operations": a.operations,
                "expectations": a.expectations, "bugs": a.bugs, "elects_leaders": a.elects_leaders,
                "promotable": promotable.contains(&a.name.as_str()),
            })).collect::<Vec<_>>(),
        });
        println!("{v}");
    } else {
        println!("plans in {}", dir.display());
        for (f, name, app, about, err) in &plans {
            match err {
                None => println!("  {name:<26}{app:<10}{about}"),
                Some(e) => println!("  {:<36}error: {e}", f.display()),
            }
        }
        for a in &apps {
            println!("app {}", a.name);
            println!("  roles         {}", a.roles.join(", "));
            println!("  operations    {}", a.operations.join(", "));
            println!("  expectations  {}", a.expectations.join(", "));
            println!("  bugs          {}", a.bugs.join(", "));
        }
    }
    EXIT_PASS
}
