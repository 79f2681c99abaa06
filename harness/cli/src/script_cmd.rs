//! `gauntlet script FILE.lua`: a Lua procedure run against a deployment a base plan describes
//! — under simulation (a bundle and a replay line like any run), on a real backend, or queued
//! on the run service (`--submit`). See `docs/SCRIPTING.md`.

use crate::apps::Apps;
use crate::cli::RunFlags;
use crate::promote::{Backend as PromoteBackend, PromoteFlags};
use crate::EXIT_USAGE;
use gauntlet::plan::ScriptPlan;
use gauntlet::Plan;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The line in a script that names its base plan, relative to the script:
/// `-- gauntlet: plan = "../plans/upgrade-base.toml"`.
const PLAN_LINE: &str = "-- gauntlet: plan =";

/// Where `script` runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Under simulation (deterministic, replayable by seed).
    Sim,
    /// Local processes (network namespaces when run as root).
    Local,
    /// Docker compose.
    Compose,
}

/// How `gauntlet script` was called.
#[derive(clap::Args, Clone, Debug)]
pub struct ScriptArgs {
    /// The Lua script.
    pub script: PathBuf,
    /// The base plan (application, topology, links, workloads, expectations). Default: the
    /// plan the script names in a `-- gauntlet: plan = "FILE"` line.
    #[arg(long)]
    pub plan: Option<PathBuf>,
    #[command(flatten)]
    pub flags: RunFlags,
    /// Where to run it.
    #[arg(long, value_enum, default_value = "sim")]
    pub backend: Backend,
    /// Directory for the bundle (and, on a real backend, the run directory with node logs).
    #[arg(long, default_value = "gauntlet-out")]
    pub out: PathBuf,
    /// Real backends: directory of the node binaries (default as for `gauntlet promote`).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Local backend: share loopback instead of namespaces (no root needed; partitions, cuts,
    /// latency and loss are then refused when the script asks for them).
    #[arg(long)]
    pub no_namespaces: bool,
    /// Write no bundle.
    #[arg(long)]
    pub no_bundle: bool,
    /// Most Lua instructions the script may run (default: the plan's, or 100 million).
    #[arg(long)]
    pub max_instructions: Option<u64>,
    /// Longest the script may run, in the deployment's time (default: the plan's, or 10 min).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub time_limit: Option<Duration>,
    /// Print the base plan with the script in it (`[script]`), to run with `gauntlet run`,
    /// sweep or submit, and exit.
    #[arg(long)]
    pub print_plan: bool,
    /// Queue it on the run service instead (`--server`, `--token`), for the seeds `--seeds`.
    #[arg(long)]
    pub submit: bool,
    /// With `--submit`: the seeds (`42`, `0..20`).
    #[arg(long, default_value = "0", requires = "submit")]
    pub seeds: String,
    /// With `--submit`: follow the run until it ends.
    #[arg(long, requires = "submit")]
    pub wait: bool,
    #[command(flatten)]
    pub client: crate::serve::ClientFlags,
}

/// The base plan's path: `--plan`, or the script's `-- gauntlet: plan = "..."` line.
fn plan_path(args: &ScriptArgs, source: &str) -> Result<PathBuf, String> {
    if let Some(p) = &args.plan {
        return Ok(p.clone());
    }
    let named = source.lines().find_map(|l| l.trim().strip_prefix(PLAN_LINE)).map(|v| v.trim().trim_matches('"'));
    match named {
        Some(p) if !p.is_empty() => Ok(args.script.parent().unwrap_or(Path::new(".")).join(p)),
        _ => Err(format!(
            "{}: which deployment? give --plan BASE.toml, or a line `{PLAN_LINE} \"FILE.toml\"` in the script",
            args.script.display()
        )),
    }
}

/// The base plan with the script in place of its chaos, checked; the note to print when the
/// base plan had chaos.
pub fn scripted_plan(apps: &Apps, args: &ScriptArgs) -> Result<(Plan, Option<String>), String> {
    let source =
        std::fs::read_to_string(&args.script).map_err(|e| format!("cannot read {}: {e}", args.script.display()))?;
    let path = plan_path(args, &source)?;
    let mut plan = Plan::load(&path).map_err(|e| e.to_string())?;
    plan.add_bugs(&args.flags.bugs);
    let name = args.script.file_name().map_or("script.lua".into(), |n| n.to_string_lossy().into_owned());
    let mut script = plan.script.take().map(|s| ScriptPlan { name: name.clone(), source: source.clone(), ..s });
    let script = script.get_or_insert_with(|| ScriptPlan::new(name, source));
    if let Some(n) = args.max_instructions {
        script.max_instructions = n;
    }
    if let Some(t) = args.time_limit {
        script.time_limit = t;
    }
    plan.script = Some(script.clone());
    let note = (plan.chaos != Default::default()).then(|| {
        plan.chaos = Default::default();
        format!("the chaos of {} is not used: the script is the run's fault schedule", path.display())
    });
    apps.registry.check(&plan).map_err(|e| e.to_string())?;
    Ok((plan, note))
}

/// The line that runs the same script again.
fn replay_line(args: &ScriptArgs, seeds: gauntlet_sim::Seeds) -> String {
    let plan = args.plan.as_ref().map(|p| format!(" --plan {}", p.display())).unwrap_or_default();
    let bugs: String = args.flags.bugs.iter().map(|b| format!(" --bug {b}")).collect();
    let backend = match args.backend {
        Backend::Sim => "",
        Backend::Local if args.no_namespaces => " --backend local --no-namespaces",
        Backend::Local => " --backend local",
        Backend::Compose => " --backend compose",
    };
    format!(
        "{} {} script {}{plan}{bugs}{backend}",
        seeds.env_prefix(),
        crate::apps::self_command(),
        args.script.display()
    )
}

/// `gauntlet script`.
pub fn run(apps: &Apps, args: &ScriptArgs) -> i32 {
    if !cfg!(feature = "script") {
        return crate::features::missing("script", "script");
    }
    let (plan, note) = match scripted_plan(apps, args) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    if let Some(note) = note {
        eprintln!("gauntlet: note: {note}");
    }
    if args.print_plan {
        print!("{}", plan.to_toml());
        return crate::EXIT_PASS;
    }
    if args.submit {
        return crate::serve::submit_text(&plan.to_toml(), &args.seeds, &[], None, args.wait, &args.client);
    }
    let seeds = match crate::plan_cmd::seeds_for(&plan, args.flags.seed.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
    };
    let out = (!args.no_bundle).then_some(args.out.as_path());
    match args.backend {
        Backend::Sim => {
            crate::plan_cmd::run_prepared(apps, &plan, seeds, &replay_line(args, seeds), out, args.client.json)
        }
        Backend::Local | Backend::Compose => {
            // A real run is a promotion of the scripted plan: the same script under simulation
            // with the same seed is its baseline.
            let p = PromoteFlags {
                backend: if args.backend == Backend::Local { PromoteBackend::Local } else { PromoteBackend::Compose },
                baseline: None,
                bin_dir: args.bin_dir.clone(),
                out: args.out.clone(),
                no_namespaces: args.no_namespaces,
                ready_timeout: Duration::from_secs(30),
                render_only: None,
                json: args.client.json,
                events: false,
                replay: replay_line(args, seeds),
                no_baseline: false,
            };
            crate::promote::promote_plan(apps, &plan, seeds, &p)
        }
    }
}
