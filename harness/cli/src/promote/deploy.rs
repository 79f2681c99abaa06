//! Deploying a promoted plan: the local and compose backends' runs, the k8s manifests, the
//! bundle and baseline comparison, and `gauntlet clean` (the `real` feature).

use super::{backend_name, Backend, PromoteFlags};
use crate::apps::Apps;
use crate::{EXIT_CRASH, EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use gauntlet::bundle::{Bundle, BundleWriter, Meta};
use gauntlet::{FailureClass, HttpApplication, Plan, RunOutcome, Scenario};
use gauntlet_backends::baseline::{Comparison, Observables, Tolerance};
use gauntlet_backends::compose::{self, ComposeCluster, ComposeOptions};
use gauntlet_backends::live::{self, Cluster};
use gauntlet_backends::local::{self, LocalCluster, LocalOptions};
use gauntlet_backends::sys::Features;
use gauntlet_backends::BackendError;
use gauntlet_sim::Seeds;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Promotes `scenario` with `seeds` as `p` says (what [`Apps::with_http`] registers).
pub fn promote<A: HttpApplication>(apps: &Apps, scenario: &Scenario<A>, seeds: Seeds, p: &PromoteFlags) -> i32 {
    let plan = scenario.plan();
    let first = first_binary(scenario);
    if first.is_empty() {
        eprintln!(
            "gauntlet: application {:?} cannot be promoted: its `Application::launch` gives no binary (the default); \
             say how a node is started as a real process",
            plan.app.name
        );
        return EXIT_USAGE;
    }
    if p.backend == Backend::K8s {
        return render_k8s(scenario, p);
    }
    let say = |line: String| {
        if !p.json {
            eprintln!("{line}");
        }
    };
    // A real-only application has no simulated node, so no baseline.
    let real_only = p.no_baseline || !scenario.app().simulated();
    let verb = if real_only { "test" } else { "promote" };
    say(format!("{verb} {} on {:?} with {}", plan.name, p.backend, seeds.env_prefix()));
    // The baseline first: the simulation runs in this process, outside the real runtime.
    let baseline = match (&p.baseline, real_only) {
        (_, true) => None,
        (Some(path), false) => match Bundle::read(path) {
            Ok(b) => Some(b),
            Err(e) => {
                eprintln!("gauntlet: baseline {}: {e}", path.display());
                return EXIT_USAGE;
            }
        },
        (None, false) => match apps.registry.run_plan(plan, seeds, Default::default()) {
            // A script that cannot run under simulation (it calls `client.http`, say) has no
            // baseline to compare with; the real run goes on without one.
            Ok(outcome) if plan.script.is_some() && outcome.verdict.class() == Some(FailureClass::Script) => {
                say(format!("no simulated baseline: the script cannot run under simulation: {}", outcome.verdict));
                None
            }
            Ok(outcome) => Some(Bundle::of(plan, &outcome)),
            Err(e) => {
                eprintln!("gauntlet: simulating the baseline: {e}");
                return EXIT_CRASH;
            }
        },
    };
    if let Some(b) = &baseline {
        say(format!("baseline (simulated): {}", b.summary.verdict));
    }
    let result = match p.backend {
        Backend::Local => run_local(scenario, seeds, p),
        Backend::Compose => run_compose(scenario, seeds, p),
        Backend::K8s => unreachable!("handled by render_k8s"),
    };
    let (outcome, run_dir) = match result {
        Ok(r) => r,
        Err(
            e @ (BackendError::Unsupported { .. }
            | BackendError::MissingBinary { .. }
            | BackendError::NotInstalled { .. }
            | BackendError::Invalid(_)),
        ) => {
            eprintln!("gauntlet: {e}");
            return EXIT_USAGE;
        }
        Err(e) => {
            eprintln!("gauntlet: {e}");
            return EXIT_CRASH;
        }
    };
    let mut observed = Bundle::of(plan, &outcome);
    observed.meta.backend = backend_name(p.backend).to_owned();
    let bundle_path = p.out.join(format!("{}-{}-{}.gbundle", plan.name, seeds.sim, backend_name(p.backend)));
    if let Err(e) = write_bundle(plan, seeds, backend_name(p.backend), &observed, &bundle_path) {
        eprintln!("gauntlet: writing {}: {e}", bundle_path.display());
    }
    let cmp = baseline.as_ref().map(|b| Comparison::new(b, &observed, Tolerance::default()));
    let observables = cmp.as_ref().map_or_else(|| Observables::of(&observed), |c| c.observed.clone());
    let matches = cmp.as_ref().is_none_or(Comparison::matches);
    if p.json {
        let failure = match &outcome.verdict {
            gauntlet::Verdict::Pass => None,
            gauntlet::Verdict::Fail(f) => Some(f),
        };
        let json = serde_json::json!({
            "plan": plan.name,
            "class": failure.map(|f| f.class.to_string()),
            "source": failure.map(|f| f.source.clone()),
            "failures": failure.map(|f| vec![f.to_string()]).unwrap_or_default(),
            "replay": p.replay,
            "backend": backend_name(p.backend),
            "seed": seeds.sim,
            "verdict": observed.summary.verdict,
            "baseline_verdict": baseline.as_ref().map(|b| b.summary.verdict.clone()),
            "matches_baseline": cmp.as_ref().map(Comparison::matches),
            "deviations": cmp.as_ref().map(|c| c.deviations.clone()),
            "observed": observables,
            "baseline": cmp.as_ref().map(|c| c.baseline.clone()),
            "tolerance": cmp.as_ref().map(|c| c.tolerance),
            "history_ops": outcome.history.len(),
            "run_dir": run_dir.display().to_string(),
            "bundle": bundle_path.display().to_string(),
            "wall_ms": outcome.sim_time.as_millis() as u64,
        });
        println!("{json}");
    } else {
        println!("verdict ({}): {}", backend_name(p.backend), observed.summary.verdict);
        match &cmp {
            Some(cmp) => {
                println!("baseline diff (- simulated, + observed):\n{}", cmp.diff());
                if cmp.matches() {
                    println!("matches the baseline");
                } else {
                    println!("does NOT match the baseline:");
                    for d in &cmp.deviations {
                        println!("  - {d}");
                    }
                }
            }
            None => println!(
                "observed: {} (no simulated baseline; {} operations recorded)",
                observables.render().trim_end(),
                outcome.history.len()
            ),
        }
        println!("run directory: {} (node logs in logs/)", run_dir.display());
        println!("bundle: {}", bundle_path.display());
    }
    if outcome.verdict.class() == Some(FailureClass::Script) {
        // The script went wrong, not the system: as under simulation.
        FailureClass::Script.exit_code()
    } else if !outcome.verdict.passed() || !matches {
        EXIT_FAIL
    } else {
        EXIT_PASS
    }
}

fn write_bundle(plan: &Plan, seeds: Seeds, backend: &str, bundle: &Bundle, path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    }
    let writer = BundleWriter::create(path, &Meta::new(plan, seeds).on(backend)).map_err(|e| e.to_string())?;
    writer.finish_with(bundle).map_err(|e| e.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime, BackendError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| BackendError::io("starting the real runtime", e))
}

fn run_local<A: HttpApplication>(
    scenario: &Scenario<A>,
    seeds: Seeds,
    p: &PromoteFlags,
) -> Result<(RunOutcome, PathBuf), BackendError> {
    let features = if p.no_namespaces {
        Features { notes: vec!["--no-namespaces was given".into()], ..Features::default() }
    } else {
        Features::detect()
    };
    let namespaces = !p.no_namespaces && features.namespaces && features.iptables;
    let missing = local::unsupported(scenario, seeds, namespaces, &features);
    if !missing.is_empty() {
        return Err(BackendError::Unsupported { backend: "local".into(), plan: scenario.plan().name.clone(), missing });
    }
    let first_binary = first_binary(scenario);
    let bin_dir = p.bin_dir.clone().unwrap_or_else(|| local::default_bin_dir(Path::new("target/real"), &first_binary));
    let opts = LocalOptions {
        bin_dir,
        out_dir: p.out.join("runs"),
        namespaces: Some(namespaces),
        delay_program: std::env::current_exe().map_err(|e| BackendError::io("finding the gauntlet binary", e))?,
        ready_timeout: p.ready_timeout,
    };
    let run_id = local::new_run_id();
    let mode = if namespaces { "network namespaces" } else { "loopback (no namespaces)" };
    if !p.json {
        eprintln!("run {run_id}: {} nodes in {mode}", scenario.initial_members().len());
    }
    let rt = runtime()?;
    rt.block_on(async {
        let mut cluster = LocalCluster::deploy(scenario, &run_id, &opts, namespaces)?;
        let run_dir = cluster.run_dir().to_owned();
        let result = watch(scenario, seeds, &mut cluster, opts.ready_timeout, p.json, p.events).await;
        let cleaned = cluster.teardown();
        if let Ok(c) = &cleaned {
            if !c.is_empty() && !p.json {
                eprintln!("teardown also removed: {c:?}");
            }
        }
        result.map(|o| (o, run_dir))
    })
}

/// Waits for readiness, then drives the run; SIGINT, SIGTERM or SIGHUP stops it (the caller
/// tears down).
async fn watch<A: HttpApplication, C: Cluster>(
    scenario: &Scenario<A>,
    seeds: Seeds,
    cluster: &mut C,
    ready_timeout: Duration,
    json: bool,
    events: bool,
) -> Result<RunOutcome, BackendError> {
    let progress = move |at: Duration, line: &str| {
        if events {
            let kind = if line.starts_with("fault") { "fault_applied" } else { "note" };
            let at_ms = at.as_millis() as u64;
            println!("{}", serde_json::json!({"event": kind, "at_ms": at_ms, "text": line}));
        } else if !json {
            eprintln!("[{:>7.3}s] {line}", at.as_secs_f64());
        }
    };
    use tokio::signal::unix::{signal, SignalKind};
    let listen = |kind| signal(kind).map_err(|e| BackendError::io("listening for signals", e));
    let (mut term, mut hangup) = (listen(SignalKind::terminate())?, listen(SignalKind::hangup())?);
    // Ctrl-C, `kill` and a closed terminal all stop the run; the caller tears down.
    // Real code, but biased all the same (the architecture test asks every select! in the
    // harness to be): the run is polled before the signals.
    tokio::select! {
        biased;
        r = async {
            cluster.wait_ready(ready_timeout).await?;
            live::drive(scenario, seeds, cluster, &progress).await
        } => r,
        _ = tokio::signal::ctrl_c() => Err(BackendError::Interrupted),
        _ = term.recv() => Err(BackendError::Interrupted),
        _ = hangup.recv() => Err(BackendError::Interrupted),
    }
}

fn run_compose<A: HttpApplication>(
    scenario: &Scenario<A>,
    seeds: Seeds,
    p: &PromoteFlags,
) -> Result<(RunOutcome, PathBuf), BackendError> {
    let mut missing = local::unsupported(scenario, seeds, true, &Features::detect());
    if scenario.plan().chaos.clock_skew.is_some() && scenario.app().clock_control() == gauntlet::ClockControl::Faketime
    {
        missing.push("clock skew through libfaketime (local backend only so far)".into());
    }
    if !missing.is_empty() {
        return Err(BackendError::Unsupported {
            backend: "compose".into(),
            plan: scenario.plan().name.clone(),
            missing,
        });
    }
    let first_binary = first_binary(scenario);
    let under = Path::new("target/real").join(compose::STATIC_TARGET);
    let bin_dir = p.bin_dir.clone().unwrap_or_else(|| local::default_bin_dir(&under, &first_binary));
    let opts = ComposeOptions {
        bin_dir,
        out_dir: p.out.join("runs"),
        delay_program: std::env::current_exe().map_err(|e| BackendError::io("finding the gauntlet binary", e))?,
    };
    let run_id = local::new_run_id();
    if !p.json {
        eprintln!("run {run_id}: {} containers with docker compose", scenario.initial_members().len());
    }
    let rt = runtime()?;
    rt.block_on(async {
        let mut cluster = ComposeCluster::deploy(scenario, &run_id, &opts)?;
        let run_dir = cluster.run_dir().to_owned();
        let result = watch(scenario, seeds, &mut cluster, p.ready_timeout, p.json, p.events).await;
        cluster.teardown()?;
        result.map(|o| (o, run_dir))
    })
}

/// `--backend k8s`: renders the manifests; with `--render-only DIR` writes them there, else
/// says that driving a cluster is not built yet and how to apply them by hand.
fn render_k8s<A: HttpApplication>(scenario: &Scenario<A>, p: &PromoteFlags) -> i32 {
    use gauntlet_backends::k8s::{self, K8sOptions, Kubectl};
    let plan = scenario.plan();
    let run_id = local::new_run_id();
    let dep = gauntlet_backends::k8s::deployment(scenario, &run_id);
    let opts = K8sOptions::default();
    let manifests = match k8s::render(&dep, &opts) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("gauntlet: {}: {e}", plan.name);
            return EXIT_USAGE;
        }
    };
    let dir = p.render_only.clone().unwrap_or_else(|| p.out.join("runs").join(&run_id).join("k8s"));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("gauntlet: creating {}: {e}", dir.display());
        return EXIT_USAGE;
    }
    let mut files = Vec::new();
    for (i, m) in manifests.iter().enumerate() {
        let file = dir.join(format!("{i:02}-{}-{}.yaml", m.kind.to_lowercase(), m.name));
        if let Err(e) = std::fs::write(&file, gauntlet_backends::yaml::to_yaml(&m.value)) {
            eprintln!("gauntlet: writing {}: {e}", file.display());
            return EXIT_USAGE;
        }
        files.push(file.display().to_string());
    }
    let ns = opts.namespace_of(&dep);
    let k = Kubectl { ns: ns.clone() };
    if p.json {
        println!(
            "{}",
            serde_json::json!({ "backend": "k8s", "namespace": ns, "manifests": files, "rendered_only": p.render_only.is_some() })
        );
    } else {
        println!("{} manifests for {} in namespace {ns}:", files.len(), plan.name);
        for f in &files {
            println!("  {f}");
        }
        println!("apply:    kubectl apply -f {}", dir.display());
        println!("wait:     {}", k.wait_ready(120).join(" "));
        println!("teardown: {}", k.teardown().join(" "));
    }
    if p.render_only.is_some() {
        EXIT_PASS
    } else {
        eprintln!(
            "gauntlet: driving a kubernetes cluster from promote is not built yet (no cluster to test it against); \
             the manifests are rendered, see docs/KUBERNETES.md to run them; --render-only DIR renders and exits 0"
        );
        EXIT_USAGE
    }
}

/// The binary the first member runs (where to look for the node binaries).
fn first_binary<A: HttpApplication>(scenario: &Scenario<A>) -> String {
    let node = scenario.initial_members()[0].clone();
    scenario.app().launch(&gauntlet::NodeSetup::new(node, Default::default()), &Default::default()).binary
}

/// `gauntlet clean`: removes every leftover of killed runs; prints what it removed.
pub fn clean(json: bool) -> i32 {
    match gauntlet_backends::clean::clean_all() {
        Ok(c) => {
            if json {
                println!("{}", serde_json::to_string(&c).expect("serialises"));
            } else if c.is_empty() {
                println!("nothing to clean");
            } else {
                for (what, list) in [
                    ("process", &c.processes),
                    ("namespace", &c.namespaces),
                    ("link", &c.links),
                    ("route", &c.routes),
                    ("docker", &c.containers),
                    ("data directory", &c.data_dirs),
                ] {
                    for item in list {
                        println!("removed {what} {item}");
                    }
                }
            }
            EXIT_PASS
        }
        Err(e) => {
            eprintln!("gauntlet clean: {e}");
            EXIT_CRASH
        }
    }
}
