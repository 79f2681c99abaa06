//! `gauntlet serve`: the run service of `gauntlet-serve`, executing this command line's
//! applications (the `serve` feature).

use super::ServeFlags;
use crate::apps::Apps;
use crate::process::DIE_WITH_PARENT;
use crate::{EXIT_PASS, EXIT_USAGE};
use gauntlet::{Plan, Registry};
use gauntlet_serve::{Executor, PlanInfo, SeedOutcome};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The service's view of this command line: plans checked against its applications, seeds
/// run by `sweep-one` in processes of this very executable.
struct CliExecutor {
    registry: Registry,
    /// The applications registered with `Apps::with_http` (the ones that can be promoted).
    promotable: Vec<String>,
    exe: PathBuf,
    build: String,
}

impl Executor for CliExecutor {
    fn check(&self, plan_toml: &str, bugs: &[String], backend: &str) -> Result<PlanInfo, String> {
        let mut plan = Plan::from_toml(plan_toml).map_err(|e| e.to_string())?;
        plan.add_bugs(bugs);
        self.registry.check(&plan).map_err(|e| e.to_string())?;
        if backend != "sim" && !self.promotable.contains(&plan.app.name) {
            return Err(format!(
                "application {:?} cannot be promoted to {backend}: it is registered for simulation only (promotable \
                 here: {})",
                plan.app.name,
                if self.promotable.is_empty() { "none".to_owned() } else { self.promotable.join(", ") }
            ));
        }
        Ok(PlanInfo { name: plan.name.clone(), app: plan.app.name.clone() })
    }

    fn backends(&self) -> Vec<String> {
        // k8s promotion renders manifests only (no cluster to drive here): not a run.
        ["sim", "local", "compose"].map(str::to_owned).to_vec()
    }

    fn seeds(&self, spec: &str) -> Result<Vec<u64>, String> {
        let spec = spec.trim();
        if spec.contains("..") || spec.contains('+') {
            crate::sweep::parse_range(spec)
        } else {
            gauntlet_sim::seed::parse_seed("seeds", spec).map(|s| vec![s]).map_err(|e| e.to_string())
        }
    }

    #[allow(clippy::disallowed_types, reason = "the service runs each seed in a process of its own")]
    fn seed_command(
        &self,
        plan: &Path,
        seed: u64,
        bugs: &[String],
        backend: &str,
        out: &Path,
    ) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.exe);
        if backend == "sim" {
            cmd.arg("sweep-one").arg(plan).arg("--seed").arg(seed.to_string()).arg("--out").arg(out);
        } else {
            // The observed bundle and the run directory (node logs) go under `out`.
            cmd.arg("promote").arg(plan).arg("--backend").arg(backend).arg("--seed").arg(seed.to_string());
            cmd.arg("--events").arg("--out").arg(out);
        }
        for b in bugs {
            cmd.arg("--bug").arg(b);
        }
        cmd.env_remove("SIM_SEED").env_remove("CHAOS_SEED").env("RUST_BACKTRACE", "0");
        cmd.env(DIE_WITH_PARENT, std::process::id().to_string());
        cmd
    }

    fn parse_outcome(&self, stdout: &[u8]) -> Option<SeedOutcome> {
        let line = String::from_utf8_lossy(stdout);
        let v: serde_json::Value = serde_json::from_str(line.lines().last()?.trim()).ok()?;
        let text = |k: &str| v[k].as_str().map(str::to_owned);
        let mut outcome = SeedOutcome {
            passed: v["verdict"] == "pass",
            class: text("class"),
            source: text("source"),
            message: v["failures"][0].as_str().map(str::to_owned),
            bundle: text("bundle"),
            replay: text("replay"),
            trace_hash: text("trace_hash"),
            comparison: None,
        };
        if let Some(matches) = v["matches_baseline"].as_bool() {
            // A promotion passes when its expectations held and it matched its baseline.
            let deviations: Vec<&str> =
                v["deviations"].as_array().into_iter().flatten().filter_map(|d| d.as_str()).collect();
            if outcome.passed && !matches {
                outcome.passed = false;
                outcome.class = Some("deviation".into());
                outcome.source = Some("baseline".into());
                outcome.message = Some(format!("does not match the simulated baseline: {}", deviations.join("; ")));
            }
            outcome.comparison = Some(serde_json::json!({
                "backend": v["backend"],
                "matches": matches,
                "verdict": v["verdict"],
                "baseline_verdict": v["baseline_verdict"],
                "baseline": v["baseline"],
                "observed": v["observed"],
                "deviations": v["deviations"],
                "tolerance": v["tolerance"],
                "run_dir": v["run_dir"],
            }));
        }
        Some(outcome)
    }

    fn parse_event(&self, line: &str) -> Option<(String, serde_json::Value)> {
        if !line.starts_with('{') || !line.contains("\"event\":") {
            return None;
        }
        let mut v: serde_json::Value = serde_json::from_str(line).ok()?;
        let kind = v.as_object_mut()?.remove("event")?.as_str()?.to_owned();
        Some((kind, v))
    }

    fn build(&self) -> String {
        self.build.clone()
    }

    fn compare(&self, a: &Path, b: &Path) -> Result<serde_json::Value, String> {
        let read = |p: &Path| gauntlet::Bundle::read(p).map_err(|e| format!("{}: {e}", p.display()));
        Ok(crate::bundle_cmd::diff_value(&read(a)?, &read(b)?, a, b))
    }

    #[allow(clippy::disallowed_types, reason = "the shrinker runs in a process of its own")]
    fn shrink(&self, bundle: &Path, out: &Path) -> Result<(String, serde_json::Value), String> {
        let output = std::process::Command::new(&self.exe)
            .arg("shrink")
            .arg(bundle)
            .arg("-o")
            .arg(out)
            .arg("--json")
            .env(DIE_WITH_PARENT, std::process::id().to_string())
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("cannot start the shrinker: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        let report: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or_default())
            .map_err(|_| format!("the shrinker said: {}", String::from_utf8_lossy(&output.stderr).trim()))?;
        let plan = std::fs::read_to_string(out).map_err(|e| format!("the shrunk plan {}: {e}", out.display()))?;
        Ok((plan, report))
    }

    fn report_html(&self, bundle: &Path) -> Result<String, String> {
        let b = gauntlet::Bundle::read(bundle).map_err(|e| e.to_string())?;
        Ok(crate::report::render(&b))
    }
}

/// `gauntlet serve`.
pub fn serve(apps: &Apps, flags: ServeFlags) -> i32 {
    if !flags.listen.ip().is_loopback() && !flags.allow_remote {
        eprintln!(
            "gauntlet: --listen {} is not a loopback address: pass --allow-remote to serve beyond this machine",
            flags.listen
        );
        return EXIT_USAGE;
    }
    let Some(exe) = crate::sweep::own_exe() else { return EXIT_USAGE };
    if let Err(e) = std::fs::create_dir_all(&flags.data) {
        eprintln!("gauntlet: --data {}: {e}", flags.data.display());
        return EXIT_USAGE;
    }
    let data = flags.data.canonicalize().unwrap_or(flags.data.clone());
    let modified = std::fs::metadata(&exe)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let build = format!("{} {}@{modified}", env!("CARGO_PKG_VERSION"), exe.display());
    let promotable = apps.promotable().into_iter().map(str::to_owned).collect();
    let executor = Arc::new(CliExecutor { registry: apps.registry.clone(), promotable, exe, build });
    let mut config = gauntlet_serve::Config::new(data, flags.token);
    config.listen = flags.listen;
    config.store = flags.store;
    config.webhook = flags.webhook;
    config.stall_limit = flags.stall_limit;
    config.max_active = flags.max_active.max(1);
    if let Some(j) = flags.jobs {
        config.jobs = j.max(1);
    }
    config.plan_dirs = if flags.plans.is_empty() { vec![apps.plans_dir.clone()] } else { flags.plans };
    match gauntlet_serve::serve_blocking(config, executor) {
        Ok(()) => EXIT_PASS,
        Err(e) => {
            eprintln!("gauntlet: serve: {e}");
            EXIT_USAGE
        }
    }
}
