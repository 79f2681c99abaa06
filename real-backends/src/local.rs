//! The local backend: one process per node on this machine. As root (and where `ip netns`
//! works) each node gets its own network namespace on a private bridge ([`Fabric`]), so
//! partitions, one-way cuts, loss and delay are real packet rules; without root the nodes
//! share loopback, and plans that need network faults are refused with the list of what
//! cannot be injected. Crash, restart, pause and clock skew work in both modes.

use crate::clean::Cleaned;
use crate::error::{BackendError, Result};
use crate::live::Cluster;
use crate::netns::Fabric;
use crate::process::{NodeProcess, ProcState};
use crate::rules::bounds_ms;
use crate::spec::Deployment;
use crate::sys::Features;
use gauntlet::chaos::{self, AimedFault};
use gauntlet::{ClockControl, HttpApplication, HttpCall, Placed, Scenario};
use gauntlet_sim::{Fault, LinkConfig, Seeds};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the local backend runs.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Where the node binaries are (`target/real/release` after `cargo real-build --release`).
    pub bin_dir: PathBuf,
    /// Where run directories go (`<out>/<run-id>/`: node logs and data).
    pub out_dir: PathBuf,
    /// Namespaces: `Some(false)` forces loopback; `None` uses them where the machine can.
    pub namespaces: Option<bool>,
    /// The program that serves delay queues (`<program> delay-queue …`): the `gauntlet` binary.
    pub delay_program: PathBuf,
    /// How long every node has to answer `/healthz` after start.
    pub ready_timeout: Duration,
}

/// A node cluster running on this machine.
pub struct LocalCluster {
    run_id: String,
    run_dir: PathBuf,
    deployment: Deployment,
    fabric: Option<Fabric>,
    procs: BTreeMap<String, NodeProcess>,
    endpoints: BTreeMap<String, SocketAddr>,
    torn_down: bool,
    /// For nodes run under libfaketime: the directory of their clock files (`<node>.faketime`).
    faketime: Option<PathBuf>,
    /// Whether teardown removes the data directories (a system nobody here wrote: its data is
    /// not evidence Gauntlet reads; Gauntlet's own nodes' data is kept for inspection).
    remove_data: bool,
    /// Where the node binaries are (another build's too, for an upgrade).
    bin_dir: PathBuf,
}

/// A fresh run id: `gnt-` and 8 hex digits (from the clock and pid: unique per machine, not
/// part of any simulated run).
pub fn new_run_id() -> String {
    #[allow(clippy::disallowed_methods, reason = "a run id for real resources, outside any simulation")]
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("gnt-{:08x}", nanos ^ std::process::id().rotate_left(16))
}

/// What `plan` needs that this mode cannot inject (empty: it can run).
pub fn unsupported<A: HttpApplication>(
    scenario: &Scenario<A>,
    seeds: Seeds,
    namespaces: bool,
    features: &Features,
) -> Vec<String> {
    let plan = scenario.plan();
    let timeline = chaos::compile(plan, seeds.chaos);
    let mut missing = Vec::new();
    let mut need = |what: String| {
        if !missing.contains(&what) {
            missing.push(what);
        }
    };
    let why =
        if namespaces { String::new() } else { format!(" (needs network namespaces: {})", features.notes.join("; ")) };
    let mut links: Vec<LinkConfig> = timeline
        .faults
        .entries
        .iter()
        .filter_map(|e| match &e.fault {
            Fault::SetLink { link, .. } => Some(link.clone()),
            _ => None,
        })
        .collect();
    for e in &timeline.faults.entries {
        match &e.fault {
            Fault::Partition { .. } | Fault::CutOneWay { .. } | Fault::Heal if !namespaces => {
                need(format!("partitions{why}"));
            }
            _ => {}
        }
    }
    if timeline.aimed.iter().any(|(_, a)| *a == AimedFault::Isolate) && !namespaces {
        need(format!("isolating the leader{why}"));
    }
    if namespaces {
        links.push(plan.topology.link.clone());
        for f in chaos::topology_links(plan) {
            if let Fault::SetLink { link, .. } = f {
                links.push(link);
            }
        }
    }
    let skews =
        timeline.faults.entries.iter().any(
            |e| matches!(e.fault, Fault::ClockSkew { offset_ms, drift_ppm, .. } if offset_ms != 0 || drift_ppm != 0),
        );
    if skews {
        if let Some(problem) = clock_skew_problem(&plan.app.name, &scenario.app().clock_control(), libfaketime()) {
            need(problem);
        }
    }
    for link in &links {
        if link.loss > 0.0 && !namespaces {
            need(format!("message loss{why}"));
        }
        if bounds_ms(link).1 > 0 && namespaces && !features.nfqueue && !features.netem {
            need("latency (needs iptables NFQUEUE or tc netem; neither works here)".into());
        }
        if bounds_ms(link).1 > 0 && !namespaces {
            need(format!("latency{why}"));
        }
        if link.duplicate > 0.0 {
            need("message duplication (needs tc netem, which this kernel lacks)".into());
        }
        if link.reorder > 0.0 {
            need("reordering (needs tc netem, which this kernel lacks)".into());
        }
    }
    missing
}

/// Why the clocks of `app`'s nodes, controlled so, cannot be skewed here (`lib`: where
/// libfaketime is, if anywhere); `None` if they can.
pub fn clock_skew_problem(app: &str, control: &ClockControl, lib: Option<PathBuf>) -> Option<String> {
    match control {
        ClockControl::Api => None,
        ClockControl::Faketime if lib.is_some() => None,
        ClockControl::Faketime => Some(format!(
            "clock skew ({app} runs under libfaketime, which is not installed: apt-get install libfaketime)"
        )),
        ClockControl::Unsupported(why) => Some(format!("clock skew ({why})")),
    }
}

/// Whether `plan`'s chaos ever skews a clock.
fn skews_clocks(plan: &gauntlet::Plan) -> bool {
    plan.chaos.clock_skew.is_some()
}

/// Writes `text` to `path` through a temporary file and a rename (a reader never sees half).
fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let io = |e| BackendError::io(format!("writing {}", path.display()), e);
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The environment variable naming the libfaketime library to preload instead of Debian's.
pub const LIBFAKETIME_ENV: &str = "GAUNTLET_LIBFAKETIME";

/// Where libfaketime is: `$GAUNTLET_LIBFAKETIME` if set (and a file), else Debian's
/// (`/usr/lib/<arch>/faketime/libfaketime.so.1`); `None` if it is not installed.
pub fn libfaketime() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(LIBFAKETIME_ENV) {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let lib = std::fs::read_dir("/usr/lib").ok()?.flatten().map(|e| e.path().join("faketime/libfaketime.so.1"));
    lib.into_iter().find(|p| p.is_file())
}

/// The libfaketime specification of a clock `offset_ms` ahead running `drift_ppm` fast.
pub fn faketime_spec(offset_ms: i64, drift_ppm: i64) -> String {
    format!("{:+.3} x{:.6}\n", offset_ms as f64 / 1000.0, 1.0 + drift_ppm as f64 / 1e6)
}

/// Finds a free loopback port `p` with `p + 1` free too.
fn free_port_pair() -> Result<u16> {
    for _ in 0..100 {
        let a = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| BackendError::io("finding a free port", e))?;
        let p = a.local_addr().map_err(|e| BackendError::io("finding a free port", e))?.port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return Ok(p);
        }
    }
    Err(BackendError::Invalid("no two consecutive free ports on loopback".into()))
}

impl LocalCluster {
    /// Deploys `scenario`'s initial members for run `run_id`: builds the network (in
    /// namespace mode) and starts every node; [`LocalCluster::wait_ready`] waits for them.
    pub fn deploy<A: HttpApplication>(
        scenario: &Scenario<A>,
        run_id: &str,
        opts: &LocalOptions,
        namespaces: bool,
    ) -> Result<Self> {
        let plan = scenario.plan();
        let members = scenario.initial_members();
        let run_dir = opts.out_dir.join(run_id);
        let logs = run_dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| BackendError::io(format!("creating {}", logs.display()), e))?;
        let names: Vec<String> = members.iter().map(|m| m.name.clone()).collect();
        let fabric = if namespaces {
            Some(Fabric::create(run_id, &names, plan.topology.link.clone(), &opts.delay_program, &logs)?)
        } else {
            None
        };
        let deployment = Deployment::of(scenario, run_id, |_, m| {
            let data = run_dir.join("data").join(&m.name).display().to_string();
            let (bind, host, port_base) = match &fabric {
                Some(f) => ("0.0.0.0".to_owned(), f.port(&m.name)?.ip.clone(), 7000),
                None => ("127.0.0.1".to_owned(), "127.0.0.1".to_owned(), free_port_pair()?),
            };
            Ok::<_, BackendError>(Placed { node: m.clone(), bind, host, port_base, data_dir: data })
        })?;
        let mut cluster = LocalCluster {
            run_id: run_id.to_owned(),
            run_dir: run_dir.clone(),
            deployment: deployment.clone(),
            fabric,
            procs: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            torn_down: false,
            faketime: None,
            remove_data: !scenario.app().simulated(),
            bin_dir: opts.bin_dir.clone(),
        };
        if cluster.remove_data {
            // Registered so that `gauntlet clean` removes it if this run is killed.
            crate::clean::register_data(run_id, &run_dir.join("data"))?;
        }
        // Clock skew for a binary without Gauntlet's clock API: libfaketime, preloaded, rereads
        // the node's clock file at every clock read (`unsupported` refused a plan needing it
        // where it is missing).
        let faketime = match scenario.app().clock_control() {
            ClockControl::Faketime if skews_clocks(plan) => libfaketime(),
            _ => None,
        };
        if faketime.is_some() {
            let dir = run_dir.join("clock");
            std::fs::create_dir_all(&dir).map_err(|e| BackendError::io(format!("creating {}", dir.display()), e))?;
            cluster.faketime = Some(dir);
        }
        for node in &deployment.nodes {
            let program = opts.bin_dir.join(&node.binary);
            node.check_installed(&program)?;
            std::fs::create_dir_all(&node.data_dir)
                .map_err(|e| BackendError::io(format!("creating {}", node.data_dir), e))?;
            node.write_files(Path::new(&node.data_dir))?;
            let ns = cluster.fabric.as_ref().map(|f| f.port(&node.name).map(|p| p.ns.clone())).transpose()?;
            let addr: SocketAddr = format!("{}:{}", node.host, node.http_port)
                .parse()
                .map_err(|_| BackendError::Invalid(format!("{} has no usable address", node.name)))?;
            cluster.endpoints.insert(node.name.clone(), addr);
            let log = logs.join(format!("{}.log", node.name));
            let mut proc = NodeProcess::new(node.clone(), program, ns, log, run_id);
            if let (Some(lib), Some(dir)) = (&faketime, &cluster.faketime) {
                let file = dir.join(format!("{}.faketime", node.name));
                write_atomically(&file, &faketime_spec(0, 0))?;
                proc.set_env("LD_PRELOAD", lib.display().to_string());
                proc.set_env("FAKETIME_TIMESTAMP_FILE", file.display().to_string());
                proc.set_env("FAKETIME_NO_CACHE", "1".into());
                // Timers and timeouts keep real time; the wall clock is what is skewed.
                proc.set_env("FAKETIME_DONT_FAKE_MONOTONIC", "1".into());
            }
            proc.start()?;
            cluster.procs.insert(node.name.clone(), proc);
        }
        Ok(cluster)
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run directory (node logs under `logs/`, data under `data/`).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// What was deployed.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The network, in namespace mode.
    pub fn fabric(&self) -> Option<&Fabric> {
        self.fabric.as_ref()
    }

    /// A node's process.
    pub fn process(&mut self, node: &str) -> Result<&mut NodeProcess> {
        self.procs.get_mut(node).ok_or_else(|| BackendError::Invalid(format!("unknown node {node:?}")))
    }

    /// Kills every node and removes the network (idempotent; also run on drop).
    pub fn teardown(&mut self) -> Result<Cleaned> {
        if self.torn_down {
            return Ok(Cleaned::default());
        }
        self.torn_down = true;
        for proc in self.procs.values_mut() {
            proc.kill()?;
        }
        if let Some(mut f) = self.fabric.take() {
            f.teardown()?;
        }
        if self.remove_data {
            let data = self.run_dir.join("data");
            if data.exists() {
                std::fs::remove_dir_all(&data)
                    .map_err(|e| BackendError::io(format!("removing {}", data.display()), e))?;
            }
        }
        crate::clean::clean_run(&self.run_id)
    }

    fn set_clock(&mut self, node: &str, offset_ms: i64, drift_ppm: i64) -> Result<()> {
        if let Some(dir) = &self.faketime {
            return write_atomically(&dir.join(format!("{node}.faketime")), &faketime_spec(offset_ms, drift_ppm));
        }
        let addr = *self.endpoints.get(node).ok_or_else(|| BackendError::Invalid(format!("unknown node {node:?}")))?;
        let proc = self.process(node)?;
        // Applied again at every restart; a running node is told now (a paused one when it
        // resumes: the request waits in its socket).
        proc.set_env(crate::CLOCK_OFFSET_ENV, offset_ms.to_string());
        proc.set_env(crate::CLOCK_DRIFT_ENV, drift_ppm.to_string());
        if proc.state() != ProcState::Down {
            let call = HttpCall::new("PUT", "/clock")
                .body(serde_json::json!({ "offset_ms": offset_ms, "drift_ppm": drift_ppm }).to_string());
            tokio::spawn(async move { crate::http::request(addr, &call, Duration::from_secs(30)).await });
        }
        Ok(())
    }

    fn fabric_mut(&mut self, what: &str) -> Result<&mut Fabric> {
        self.fabric
            .as_mut()
            .ok_or_else(|| BackendError::Invalid(format!("{what} needs network namespaces (run as root)")))
    }
}

impl Cluster for LocalCluster {
    fn backend(&self) -> String {
        "local".into()
    }

    fn endpoint(&self, node: &str) -> Option<SocketAddr> {
        self.endpoints.get(node).copied()
    }

    async fn apply(&mut self, fault: &Fault) -> Result<()> {
        match fault {
            Fault::Partition { groups } => self.fabric_mut("a partition")?.rules().partition(groups),
            Fault::CutOneWay { from, to } => self.fabric_mut("a one-way cut")?.rules().cut_one_way(from, to),
            Fault::Heal => match self.fabric.as_mut() {
                Some(f) => f.rules().heal(),
                None => Ok(()),
            },
            Fault::SetLink { from, to, link } => match self.fabric.as_mut() {
                Some(f) => f.rules().set_link(from.clone(), to.clone(), link.clone()),
                // Loopback: only the topology's own latency comes here (plans with link
                // faults were refused), and loopback has its own.
                None => Ok(()),
            },
            Fault::ResetLinks => match self.fabric.as_mut() {
                Some(f) => f.rules().reset_links(),
                None => Ok(()),
            },
            Fault::Crash { node } => self.process(node)?.kill(),
            Fault::Restart { node } => self.process(node)?.restart(),
            Fault::Pause { node } => {
                let p = self.process(node)?;
                if p.state() == ProcState::Running {
                    p.pause()?;
                }
                Ok(())
            }
            Fault::Resume { node } => self.process(node)?.resume(),
            Fault::ClockSkew { node, offset_ms, drift_ppm } => self.set_clock(node, *offset_ms, *drift_ppm),
        }
    }

    fn begin_batch(&mut self) {
        if let Some(f) = self.fabric.as_mut() {
            f.rules().hold();
        }
    }

    async fn end_batch(&mut self) -> Result<()> {
        match self.fabric.as_mut() {
            Some(f) => f.rules().release(),
            None => Ok(()),
        }
    }

    fn shapes_links(&self) -> bool {
        self.fabric.is_some()
    }

    fn is_running(&mut self, node: &str) -> bool {
        self.procs.get_mut(node).is_some_and(|p| p.state() == ProcState::Running)
    }

    /// Waits until every node answers its readiness check (`GET /healthz` unless its launch
    /// said otherwise) with 200.
    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let names: Vec<String> = self.procs.keys().cloned().collect();
        for name in names {
            let addr = self.endpoints[&name];
            let health =
                self.deployment.node(&name).map_or_else(|| HttpCall::new("GET", "/healthz"), |n| n.readiness.clone());
            loop {
                if let Ok((200, _)) = crate::http::request(addr, &health, Duration::from_millis(500)).await {
                    break;
                }
                let proc = self.process(&name)?;
                if proc.state() == ProcState::Down || tokio::time::Instant::now() > deadline {
                    return Err(BackendError::NotReady {
                        node: name.clone(),
                        waited_ms: timeout.as_millis() as u64,
                        log: proc.log().to_owned(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    async fn upgrade(&mut self, node: &str, version: &str) -> Result<()> {
        let spec = self.deployment.node(node).ok_or_else(|| BackendError::Invalid(format!("unknown node {node}")))?;
        let build = spec.builds.get(version).cloned().ok_or_else(|| {
            let known: Vec<&str> = spec.builds.keys().map(String::as_str).collect();
            BackendError::Invalid(format!("{node} has no build {version:?}; builds: {}", known.join(", ")))
        })?;
        let program = self.bin_dir.join(&build.binary);
        spec.check_installed(&program)?;
        let p = self.process(node)?;
        p.switch_build(program, &build);
        p.restart()
    }

    async fn recover(&mut self, node: &str) -> Result<()> {
        let p = self.process(node)?;
        match p.state() {
            ProcState::Paused => p.resume(),
            ProcState::Down => p.start(),
            ProcState::Running => Ok(()),
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("gauntlet: tearing down {}: {e} (run `gauntlet clean`)", self.run_id);
        }
    }
}

/// Where the node binaries are by default: `$GAUNTLET_BIN_DIR`, else the first of
/// `<under>/release` and `<under>/debug` (`under`: `target/real` for the local backend, the
/// static build's `target/real/x86_64-unknown-linux-gnu` for images), looked up from the
/// current directory towards the root, that holds `binary`.
pub fn default_bin_dir(under: &Path, binary: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("GAUNTLET_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let mut here = std::env::current_dir().unwrap_or_default();
    loop {
        for profile in ["release", "debug"] {
            let dir = here.join(under).join(profile);
            if dir.join(binary).is_file() {
                return dir;
            }
        }
        if !here.pop() {
            return under.join("release");
        }
    }
}

#[cfg(test)]
mod clock_tests {
    use super::*;

    #[test]
    fn clock_skew_is_refused_naming_what_is_missing() {
        let lib = Some(PathBuf::from("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"));
        assert_eq!(clock_skew_problem("raft-kv", &ClockControl::Api, None), None);
        assert_eq!(clock_skew_problem("mine", &ClockControl::Faketime, lib), None);
        let missing = clock_skew_problem("mine", &ClockControl::Faketime, None).expect("refused");
        assert!(missing.contains("mine runs under libfaketime") && missing.contains("apt-get install libfaketime"));
        let go = clock_skew_problem("etcd", &ClockControl::Unsupported("a Go program".into()), None);
        assert_eq!(go.as_deref(), Some("clock skew (a Go program)"));
    }

    #[test]
    fn faketime_specs_are_an_offset_in_seconds_and_a_rate() {
        assert_eq!(faketime_spec(0, 0), "+0.000 x1.000000\n");
        assert_eq!(faketime_spec(-2_500, 100), "-2.500 x1.000100\n");
    }
}
