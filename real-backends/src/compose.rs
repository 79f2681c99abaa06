//! The compose backend: every node a container of a locally built `FROM scratch` image (no
//! registry is needed: the node binary is linked statically), on a private bridge network
//! with a fixed address per node, started with `docker-compose`. Crash is `docker kill`,
//! restart `docker restart`, pause `docker pause` (the cgroup freezer); partitions, loss and
//! delay are the same [`Rules`] as the local backend's, installed in each container's network
//! namespace from the host with `nsenter` (the images hold nothing but the binary); clock
//! skew goes through the node clock's `/clock` endpoint.
//!
//! Every container, network and the project carry the run id (label `dev.gauntlet.run-id`),
//! so `gauntlet clean` finds what a killed run left.

use crate::error::{BackendError, Result};
use crate::live::Cluster;
use crate::rules::{RuleNode, Rules};
use crate::spec::Deployment;
use crate::sys::run;
use gauntlet::{HttpApplication, HttpCall, Placed, Scenario};
use gauntlet_sim::Fault;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The label every Gauntlet container and network carries, with the run id as its value.
pub const RUN_LABEL: &str = "dev.gauntlet.run-id";
/// Where a node's data directory is inside its container.
pub const DATA_DIR: &str = "/data";
/// The target triple static node binaries are built for.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The command that builds static node binaries (run from the workspace root); they land in
/// `target/real/x86_64-unknown-linux-gnu/release`.
pub fn static_build_command() -> Vec<String> {
    [
        "cargo",
        "real-build",
        "--release",
        "-p",
        "gauntlet-scenarios",
        "--bins",
        "--target",
        STATIC_TARGET,
        "--config",
        "target.x86_64-unknown-linux-gnu.rustflags=['--cfg','gauntlet_real','-C','target-feature=+crt-static']",
    ]
    .map(String::from)
    .to_vec()
}

/// Whether a docker daemon answers; `Err` says why not.
pub fn docker_available() -> std::result::Result<(), String> {
    if !crate::sys::has("docker") {
        return Err("the docker client is not installed".into());
    }
    run("docker", &["info", "--format", "{{.ServerVersion}}"])
        .map(|_| ())
        .map_err(|e| format!("no docker daemon: {e}"))?;
    if !crate::sys::has("docker-compose") {
        return Err("docker-compose is not installed (apt install docker-compose)".into());
    }
    Ok(())
}

/// Whether `binary` is statically linked (an ELF without an interpreter).
pub fn is_static(binary: &Path) -> bool {
    std::fs::read(binary).is_ok_and(|b| b.starts_with(b"\x7fELF") && !b.windows(14).any(|w| w == b"/lib64/ld-linu"))
}

/// Builds the image `gauntlet/<binary>:dev` from the binary at `path`: a `FROM scratch` image
/// holding the binary and, for a dynamically linked one (a system installed on the machine,
/// e.g. Debian's etcd), the shared libraries and loader `ldd` names, at their own paths.
/// Returns the image name.
pub fn build_image(path: &Path, work: &Path) -> Result<String> {
    let binary = path.file_name().and_then(|n| n.to_str()).unwrap_or("node").to_owned();
    let ctx = work.join(format!("image-{binary}"));
    image_context(path, &ctx, &binary)?;
    let image = format!("gauntlet/{binary}:dev");
    run("docker", &["build", "-q", "-t", &image, &ctx.display().to_string()])?;
    Ok(image)
}

/// Writes the build context of a `FROM scratch` image to `ctx`: the binary at `path` as
/// `/<name>` (its entry point), and for a dynamically linked one the shared libraries and
/// loader `ldd` names, at their own paths; a `Dockerfile`. `docker build ctx` builds it.
pub fn image_context(path: &Path, ctx: &Path, name: &str) -> Result<()> {
    if !path.is_file() {
        return Err(BackendError::MissingBinary { binary: name.to_owned(), path: path.to_owned() });
    }
    let root = ctx.join("rootfs");
    std::fs::create_dir_all(&root).map_err(|e| BackendError::io(format!("creating {}", root.display()), e))?;
    std::fs::copy(path, root.join(name)).map_err(|e| BackendError::io(format!("copying {}", path.display()), e))?;
    if !is_static(path) {
        let libs = shared_libraries(path)?;
        if libs.is_empty() {
            return Err(BackendError::Invalid(format!(
                "{} is dynamically linked but `ldd` names no library; build static binaries with `{}`",
                path.display(),
                static_build_command().join(" ")
            )));
        }
        for lib in libs {
            let to = root.join(lib.strip_prefix("/").unwrap_or(&lib));
            if let Some(dir) = to.parent() {
                std::fs::create_dir_all(dir).map_err(|e| BackendError::io(format!("creating {}", dir.display()), e))?;
            }
            std::fs::copy(&lib, &to).map_err(|e| BackendError::io(format!("copying {}", lib.display()), e))?;
        }
    }
    // A writable /tmp: some servers want one.
    std::fs::create_dir_all(root.join("tmp")).map_err(|e| BackendError::io("creating the image's /tmp", e))?;
    let dockerfile = format!("FROM scratch\nCOPY rootfs/ /\nENTRYPOINT [\"/{name}\"]\n");
    std::fs::write(ctx.join("Dockerfile"), dockerfile).map_err(|e| BackendError::io("writing the Dockerfile", e))
}

/// The shared libraries (and the loader) a dynamically linked binary needs, as `ldd` lists
/// them: absolute paths on this machine.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = run("ldd", &[&binary.display().to_string()])?;
    Ok(parse_ldd(&out))
}

/// The absolute paths in `ldd`'s output (`libc.so.6 => /lib/…/libc.so.6 (0x…)`, `/lib64/ld-…`).
fn parse_ldd(out: &str) -> Vec<PathBuf> {
    let mut libs: Vec<PathBuf> = out
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect();
    libs.sort();
    libs.dedup();
    libs
}

/// A free /24 for the run's network in 10.214.0.0/16 (not used by a route or a docker network).
fn free_subnet() -> Result<String> {
    let routes = run("ip", &["-4", "route", "show"]).unwrap_or_default();
    let nets =
        run("docker", &["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", "bridge"])
            .unwrap_or_default();
    let all_nets = run("docker", &["network", "ls", "-q"]).unwrap_or_default();
    let mut used = format!("{routes} {nets}");
    for id in all_nets.split_whitespace() {
        used.push_str(
            &run("docker", &["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", id])
                .unwrap_or_default(),
        );
    }
    (1..=254u32)
        .map(|n| format!("10.214.{n}"))
        .find(|s| !used.contains(&format!("{s}.0/24")))
        .ok_or_else(|| BackendError::Invalid("no free /24 in 10.214.0.0/16 for the compose network".into()))
}

/// Renders the compose file (JSON, which docker-compose reads as YAML) for `dep`, with
/// `images` by binary, on `subnet` (`10.214.N`), data directories under `data_root`.
pub fn render(
    dep: &Deployment,
    images: &BTreeMap<String, String>,
    subnet: &str,
    data_root: &Path,
) -> serde_json::Value {
    let mut services = serde_json::Map::new();
    for n in &dep.nodes {
        let env: serde_json::Map<String, serde_json::Value> =
            n.env.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        services.insert(
            n.name.clone(),
            serde_json::json!({
                "image": images.get(&n.binary).cloned().unwrap_or_else(|| format!("gauntlet/{}:dev", n.binary)),
                "container_name": format!("{}-{}", dep.run_id, n.name),
                "command": n.args,
                "environment": env,
                "labels": { RUN_LABEL: dep.run_id, "dev.gauntlet.node": n.name },
                "networks": { "gauntlet": { "ipv4_address": n.host } },
                "volumes": [format!("{}:{DATA_DIR}", data_root.join(&n.name).display())],
                "stop_grace_period": "0s",
            }),
        );
    }
    serde_json::json!({
        "version": "2.4",
        "services": services,
        "networks": {
            "gauntlet": {
                "driver": "bridge",
                "labels": { RUN_LABEL: dep.run_id },
                "ipam": { "config": [ { "subnet": format!("{subnet}.0/24") } ] },
            }
        }
    })
}

/// How the compose backend runs.
#[derive(Debug, Clone)]
pub struct ComposeOptions {
    /// Where the static node binaries are.
    pub bin_dir: PathBuf,
    /// Run directories go here.
    pub out_dir: PathBuf,
    /// The program serving delay queues (`gauntlet`).
    pub delay_program: PathBuf,
}

/// A compose project running a plan's nodes.
pub struct ComposeCluster {
    run_id: String,
    run_dir: PathBuf,
    file: PathBuf,
    deployment: Deployment,
    endpoints: BTreeMap<String, SocketAddr>,
    rules: Rules,
    down: BTreeSet<String>,
    paused: BTreeSet<String>,
    skew: BTreeMap<String, (i64, i64)>,
    torn_down: bool,
    /// Whether teardown removes the data directories (a system nobody here wrote).
    remove_data: bool,
}

impl ComposeCluster {
    /// Builds the images, renders the compose file and starts the project (not waiting for
    /// readiness: see [`ComposeCluster::wait_ready`]).
    pub fn deploy<A: HttpApplication>(scenario: &Scenario<A>, run_id: &str, opts: &ComposeOptions) -> Result<Self> {
        docker_available().map_err(BackendError::Invalid)?;
        let plan = scenario.plan();
        let run_dir = opts.out_dir.join(run_id);
        let logs = run_dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| BackendError::io(format!("creating {}", logs.display()), e))?;
        // Bind mounts need absolute paths.
        let run_dir =
            std::fs::canonicalize(&run_dir).map_err(|e| BackendError::io("resolving the run directory", e))?;
        let logs = run_dir.join("logs");
        let subnet = free_subnet()?;
        let deployment = Deployment::of(scenario, run_id, |i, m| {
            Ok::<_, BackendError>(Placed {
                node: m.clone(),
                bind: "0.0.0.0".into(),
                host: format!("{subnet}.{}", 10 + i),
                port_base: 7000,
                data_dir: DATA_DIR.into(),
            })
        })?;
        let mut images = BTreeMap::new();
        for n in &deployment.nodes {
            if !images.contains_key(&n.binary) {
                let program = opts.bin_dir.join(&n.binary);
                n.check_installed(&program)?;
                images.insert(n.binary.clone(), build_image(&program, &run_dir)?);
            }
        }
        let data_root = run_dir.join("data");
        for n in &deployment.nodes {
            let d = data_root.join(&n.name);
            std::fs::create_dir_all(&d).map_err(|e| BackendError::io(format!("creating {}", d.display()), e))?;
            n.write_files(&d)?;
        }
        let file = run_dir.join("docker-compose.yml");
        let text = serde_json::to_string_pretty(&render(&deployment, &images, &subnet, &data_root)).expect("renders");
        std::fs::write(&file, text).map_err(|e| BackendError::io(format!("writing {}", file.display()), e))?;
        let mut endpoints = BTreeMap::new();
        for n in &deployment.nodes {
            let addr: SocketAddr = format!("{}:{}", n.host, n.http_port)
                .parse()
                .map_err(|_| BackendError::Invalid(format!("{} has no usable address", n.name)))?;
            endpoints.insert(n.name.clone(), addr);
        }
        let mut cluster = ComposeCluster {
            run_id: run_id.to_owned(),
            run_dir: run_dir.clone(),
            file,
            deployment,
            endpoints,
            rules: Rules::new(run_id, plan.topology.link.clone(), &opts.delay_program, &logs),
            down: BTreeSet::new(),
            paused: BTreeSet::new(),
            skew: BTreeMap::new(),
            torn_down: false,
            remove_data: !scenario.app().simulated(),
        };
        if cluster.remove_data {
            // Registered so that `gauntlet clean` removes it if this run is killed.
            crate::clean::register_data(run_id, &run_dir.join("data"))?;
        }
        cluster.compose(&["up", "-d", "--no-build"])?;
        let names: Vec<String> = cluster.deployment.nodes.iter().map(|n| n.name.clone()).collect();
        for name in &names {
            let node = cluster.rule_node(name)?;
            cluster.rules.add_node(name, node, "eth0")?;
        }
        cluster.rules.install()?;
        Ok(cluster)
    }

    fn compose(&self, args: &[&str]) -> Result<String> {
        let file = self.file.display().to_string();
        let mut all = vec!["-p", &self.run_id, "-f", &file];
        all.extend_from_slice(args);
        run("docker-compose", &all)
    }

    fn container(&self, node: &str) -> Result<String> {
        if !self.endpoints.contains_key(node) {
            return Err(BackendError::Invalid(format!("unknown node {node:?}")));
        }
        Ok(format!("{}-{node}", self.run_id))
    }

    /// How to enter `node`'s container's network namespace (its current process).
    fn rule_node(&self, node: &str) -> Result<RuleNode> {
        let c = self.container(node)?;
        let pid = run("docker", &["inspect", "--format", "{{.State.Pid}}", &c])?.trim().to_owned();
        if pid == "0" || pid.is_empty() {
            return Err(BackendError::Invalid(format!("container {c} is not running")));
        }
        let ip = self.endpoints[node].ip().to_string();
        Ok(RuleNode { enter: ["nsenter", "-t", &pid, "-n"].map(String::from).to_vec(), ip })
    }

    /// The run directory (the compose file, node data, delay queue logs).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// What was deployed.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// Saves every container's log into the run directory, then removes the project.
    pub fn teardown(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        self.rules.stop();
        for n in &self.deployment.nodes {
            if let Ok(c) = self.container(&n.name) {
                let log = run("docker", &["logs", &c]).unwrap_or_default();
                let _ = std::fs::write(self.run_dir.join("logs").join(format!("{}.log", n.name)), log);
            }
        }
        let result = self.compose(&["down", "-v", "--remove-orphans", "-t", "0"]).map(|_| ());
        clean_run(&self.run_id);
        let data = self.run_dir.join("data");
        if self.remove_data && data.exists() {
            std::fs::remove_dir_all(&data).map_err(|e| BackendError::io(format!("removing {}", data.display()), e))?;
        }
        result
    }

    fn restarted(&mut self, node: &str) -> Result<()> {
        let rn = self.rule_node(node)?;
        self.rules.reenter(node, rn, "eth0")?;
        if let Some(&(offset, drift)) = self.skew.get(node) {
            self.push_clock(node, offset, drift);
        }
        Ok(())
    }

    fn push_clock(&self, node: &str, offset_ms: i64, drift_ppm: i64) {
        let addr = self.endpoints[node];
        let call = HttpCall::new("PUT", "/clock")
            .body(serde_json::json!({ "offset_ms": offset_ms, "drift_ppm": drift_ppm }).to_string());
        // A node that just restarted may not listen yet: retry for a while.
        tokio::spawn(async move {
            for _ in 0..100 {
                if let Ok((200, _)) = crate::http::request(addr, &call, Duration::from_secs(2)).await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
}

impl Cluster for ComposeCluster {
    fn backend(&self) -> String {
        "compose".into()
    }

    fn endpoint(&self, node: &str) -> Option<SocketAddr> {
        self.endpoints.get(node).copied()
    }

    async fn apply(&mut self, fault: &Fault) -> Result<()> {
        match fault {
            Fault::Partition { groups } => self.rules.partition(groups),
            Fault::CutOneWay { from, to } => self.rules.cut_one_way(from, to),
            Fault::Heal => self.rules.heal(),
            Fault::SetLink { from, to, link } => self.rules.set_link(from.clone(), to.clone(), link.clone()),
            Fault::ResetLinks => self.rules.reset_links(),
            Fault::Crash { node } => {
                let c = self.container(node)?;
                if self.down.insert(node.clone()) {
                    // Docker refuses to kill a paused container: thaw it first.
                    if self.paused.remove(node) {
                        run("docker", &["unpause", &c])?;
                    }
                    run("docker", &["kill", &c])?;
                    self.rules.leave(node);
                }
                Ok(())
            }
            Fault::Restart { node } => {
                let c = self.container(node)?;
                if self.paused.remove(node) {
                    run("docker", &["unpause", &c])?;
                }
                self.rules.leave(node);
                run("docker", &["restart", "-t", "0", &c])?;
                self.down.remove(node);
                self.restarted(node)
            }
            Fault::Pause { node } => {
                let c = self.container(node)?;
                if !self.down.contains(node) && self.paused.insert(node.clone()) {
                    run("docker", &["pause", &c])?;
                }
                Ok(())
            }
            Fault::Resume { node } => {
                let c = self.container(node)?;
                if self.paused.remove(node) {
                    run("docker", &["unpause", &c])?;
                }
                Ok(())
            }
            Fault::ClockSkew { node, offset_ms, drift_ppm } => {
                self.container(node)?;
                self.skew.insert(node.clone(), (*offset_ms, *drift_ppm));
                if !self.down.contains(node) {
                    self.push_clock(node, *offset_ms, *drift_ppm);
                }
                Ok(())
            }
        }
    }

    fn begin_batch(&mut self) {
        self.rules.hold();
    }

    async fn end_batch(&mut self) -> Result<()> {
        self.rules.release()
    }

    fn is_running(&mut self, node: &str) -> bool {
        self.endpoints.contains_key(node) && !self.down.contains(node) && !self.paused.contains(node)
    }

    /// Waits until every node answers its readiness check (`GET /healthz` unless its launch
    /// said otherwise) with 200.
    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        for (name, addr) in self.endpoints.clone() {
            let health =
                self.deployment.node(&name).map_or_else(|| HttpCall::new("GET", "/healthz"), |n| n.readiness.clone());
            while !matches!(crate::http::request(addr, &health, Duration::from_millis(500)).await, Ok((200, _))) {
                if tokio::time::Instant::now() > deadline {
                    return Err(BackendError::NotReady {
                        node: name.clone(),
                        waited_ms: timeout.as_millis() as u64,
                        log: PathBuf::from(format!("`docker logs {}`", self.container(&name)?)),
                    });
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    async fn recover(&mut self, node: &str) -> Result<()> {
        if self.paused.contains(node) {
            self.apply(&Fault::Resume { node: node.to_owned() }).await?;
        }
        if self.down.contains(node) {
            let c = self.container(node)?;
            run("docker", &["start", &c])?;
            self.down.remove(node);
            self.restarted(node)?;
        }
        Ok(())
    }
}

impl Drop for ComposeCluster {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("gauntlet: tearing down {}: {e} (run `gauntlet clean`)", self.run_id);
        }
    }
}

/// Removes run `run_id`'s containers and networks; returns what was removed.
pub fn clean_run(run_id: &str) -> Vec<String> {
    clean_filtered(&format!("label={RUN_LABEL}={run_id}"))
}

/// Removes every container and network labelled with a Gauntlet run id; returns what was removed.
pub fn clean_all() -> Vec<String> {
    clean_filtered(&format!("label={RUN_LABEL}"))
}

fn clean_filtered(filter: &str) -> Vec<String> {
    let mut removed = Vec::new();
    if docker_available().is_err() {
        return removed;
    }
    let ids = run("docker", &["ps", "-aq", "--filter", filter]).unwrap_or_default();
    for id in ids.split_whitespace() {
        if run("docker", &["rm", "-f", id]).is_ok() {
            removed.push(format!("container {id}"));
        }
    }
    let nets = run("docker", &["network", "ls", "-q", "--filter", filter]).unwrap_or_default();
    for id in nets.split_whitespace() {
        if run("docker", &["network", "rm", id]).is_ok() {
            removed.push(format!("network {id}"));
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldd_output_reads_as_the_libraries_and_the_loader() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f)\n";
        assert_eq!(
            parse_ldd(out),
            [PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"), PathBuf::from("/lib64/ld-linux-x86-64.so.2")]
        );
    }
}
