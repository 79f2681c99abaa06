//! The local backend's network: one namespace per node, joined by veth links to a bridge in a
//! "switch" namespace of its own, so the root namespace is untouched but for one host link
//! the driver reaches the nodes through. Faults are rules in the nodes' namespaces:
//!
//! * cuts (partitions, one-way cuts): `iptables` DROP rules in the sender's `GNT_CUT` chain,
//!   one per cut direction, rebuilt from the set of cuts on every change;
//! * link models: in the sender's `GNT_LINK` chain, loss with `-m statistic --mode random`,
//!   delay with an `NFQUEUE` rule served by a `gauntlet delay-queue` process per distinct
//!   latency range (the kernel here may lack `tc netem`).
//!
//! Every namespace is named `<run-id>-…`, the host link `g<8 hex>h`, and the guard route has
//! protocol [`ROUTE_PROTO`], so `gauntlet clean` finds what a killed run left.

use crate::error::{BackendError, Result};
use crate::sys::{in_ns, run};
use gauntlet_sim::LinkConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The route protocol number tagging the blackhole guard routes Gauntlet adds in the root
/// namespace (so `ip route flush proto 213` finds them).
pub const ROUTE_PROTO: &str = "213";
/// Namespaces of Gauntlet runs start with this.
pub const NS_PREFIX: &str = "gnt-";

/// One node's place on the fabric.
#[derive(Debug, Clone)]
pub struct Port {
    /// Its namespace.
    pub ns: String,
    /// Its address.
    pub ip: String,
}

/// A run's network: the switch, the host link, every node's namespace, the cuts and links.
#[derive(Debug)]
pub struct Fabric {
    run_id: String,
    subnet: String,
    switch: String,
    ports: BTreeMap<String, Port>,
    cuts: BTreeSet<(String, String)>,
    default_link: LinkConfig,
    links: BTreeMap<(Option<String>, Option<String>), LinkConfig>,
    /// Running delay queues: `(node, (min_ms, max_ms))` → queue number and process.
    delayers: BTreeMap<(String, (u64, u64)), (u16, Child)>,
    /// Rules currently installed per node (to rebuild only what changed).
    installed: BTreeMap<String, Vec<Vec<String>>>,
    delay_program: PathBuf,
    log_dir: PathBuf,
    torn_down: bool,
}

/// The host side of the run's link, `g<8 hex>h`.
fn host_link(run_id: &str) -> String {
    format!("g{}h", &run_id[NS_PREFIX.len()..])
}

/// Picks a /24 in 10.213.0.0/16 that no route uses yet.
fn free_subnet() -> Result<String> {
    let routes = run("ip", &["-4", "route", "show"])?;
    (1..=254u32)
        .map(|n| format!("10.213.{n}"))
        .find(|s| !routes.contains(&format!("{s}.0/24")))
        .ok_or_else(|| BackendError::Invalid("no free /24 left in 10.213.0.0/16 (run gauntlet clean)".into()))
}

impl Fabric {
    /// Builds the network for `nodes` (names, in member order): a switch namespace with a
    /// bridge, a namespace per node with its veth, the host link with the driver's address
    /// `.1`, and the blackhole guard. `delay_program` is run as `delay_program delay-queue …`
    /// inside a node's namespace to delay its packets; its logs go to `log_dir`.
    pub fn create(
        run_id: &str,
        nodes: &[String],
        default_link: LinkConfig,
        delay_program: &Path,
        log_dir: &Path,
    ) -> Result<Fabric> {
        let subnet = free_subnet()?;
        let mut fabric = Fabric {
            run_id: run_id.to_owned(),
            switch: format!("{run_id}-switch"),
            subnet: subnet.clone(),
            ports: BTreeMap::new(),
            cuts: BTreeSet::new(),
            default_link,
            links: BTreeMap::new(),
            delayers: BTreeMap::new(),
            installed: BTreeMap::new(),
            delay_program: delay_program.to_owned(),
            log_dir: log_dir.to_owned(),
            torn_down: false,
        };
        // From here on, a failure tears down what was built (Drop).
        let sw = fabric.switch.clone();
        run("ip", &["netns", "add", &sw])?;
        in_ns(&sw, "ip", &["link", "set", "lo", "up"])?;
        in_ns(&sw, "ip", &["link", "add", "br0", "type", "bridge"])?;
        in_ns(&sw, "ip", &["link", "set", "br0", "up"])?;
        let host = host_link(run_id);
        let host_peer = format!("{host}s");
        // The guard first: the node subnet never leaves through the default route.
        run("ip", &["route", "add", "blackhole", &format!("{subnet}.0/24"), "metric", "4000", "proto", ROUTE_PROTO])?;
        run("ip", &["link", "add", &host, "type", "veth", "peer", "name", &host_peer])?;
        run("ip", &["link", "set", &host_peer, "netns", &sw])?;
        in_ns(&sw, "ip", &["link", "set", &host_peer, "master", "br0", "up"])?;
        run("ip", &["addr", "add", &format!("{subnet}.1/24"), "dev", &host])?;
        run("ip", &["link", "set", &host, "up"])?;
        for (i, name) in nodes.iter().enumerate() {
            let ns = format!("{run_id}-n{i}");
            let ip = format!("{subnet}.{}", 10 + i);
            let (inner, outer) = (format!("{host}{i}n"), format!("{host}{i}s"));
            run("ip", &["netns", "add", &ns])?;
            fabric.ports.insert(name.clone(), Port { ns: ns.clone(), ip: ip.clone() });
            run("ip", &["link", "add", &inner, "type", "veth", "peer", "name", &outer])?;
            run("ip", &["link", "set", &inner, "netns", &ns])?;
            run("ip", &["link", "set", &outer, "netns", &sw])?;
            in_ns(&sw, "ip", &["link", "set", &outer, "master", "br0", "up"])?;
            in_ns(&ns, "ip", &["link", "set", &inner, "name", "eth0"])?;
            in_ns(&ns, "ip", &["addr", "add", &format!("{ip}/24"), "dev", "eth0"])?;
            in_ns(&ns, "ip", &["link", "set", "eth0", "up"])?;
            in_ns(&ns, "ip", &["link", "set", "lo", "up"])?;
            for chain in ["GNT_CUT", "GNT_LINK"] {
                in_ns(&ns, "iptables", &["-w", "-N", chain])?;
            }
            in_ns(&ns, "iptables", &["-w", "-A", "OUTPUT", "-o", "eth0", "-j", "GNT_CUT"])?;
            in_ns(&ns, "iptables", &["-w", "-A", "OUTPUT", "-o", "eth0", "-j", "GNT_LINK"])?;
        }
        for name in nodes {
            fabric.rebuild(name)?;
        }
        Ok(fabric)
    }

    /// The driver's address on the fabric.
    pub fn driver_ip(&self) -> String {
        format!("{}.1", self.subnet)
    }

    /// Where `node` sits.
    pub fn port(&self, node: &str) -> Result<&Port> {
        self.ports.get(node).ok_or_else(|| BackendError::Invalid(format!("unknown node {node:?}")))
    }

    /// Cuts traffic between groups (nodes in no group form one more group), replacing every
    /// cut in place.
    pub fn partition(&mut self, groups: &[Vec<String>]) -> Result<()> {
        let mut group_of: BTreeMap<&str, usize> = BTreeMap::new();
        for (g, members) in groups.iter().enumerate() {
            for m in members {
                self.port(m)?;
                group_of.insert(m, g);
            }
        }
        let names: Vec<String> = self.ports.keys().cloned().collect();
        let mut cuts = BTreeSet::new();
        for a in &names {
            for b in &names {
                let (ga, gb) = (group_of.get(a.as_str()), group_of.get(b.as_str()));
                if a != b && ga != gb {
                    cuts.insert((a.clone(), b.clone()));
                }
            }
        }
        self.set_cuts(cuts)
    }

    /// Cuts `from` → `to` only.
    pub fn cut_one_way(&mut self, from: &str, to: &str) -> Result<()> {
        self.port(from)?;
        self.port(to)?;
        let mut cuts = self.cuts.clone();
        cuts.insert((from.to_owned(), to.to_owned()));
        self.set_cuts(cuts)
    }

    /// Removes every cut.
    pub fn heal(&mut self) -> Result<()> {
        self.set_cuts(BTreeSet::new())
    }

    /// Sets the link model from `from` to `to` (`None`: any node on that side).
    pub fn set_link(&mut self, from: Option<String>, to: Option<String>, link: LinkConfig) -> Result<()> {
        for n in from.iter().chain(to.iter()) {
            self.port(n)?;
        }
        self.links.insert((from, to), link);
        self.rebuild_all()
    }

    /// Forgets every per-link model.
    pub fn reset_links(&mut self) -> Result<()> {
        self.links.clear();
        self.rebuild_all()
    }

    /// Whether `from` → `to` is cut now.
    pub fn is_cut(&self, from: &str, to: &str) -> bool {
        self.cuts.contains(&(from.to_owned(), to.to_owned()))
    }

    fn set_cuts(&mut self, cuts: BTreeSet<(String, String)>) -> Result<()> {
        self.cuts = cuts;
        self.rebuild_all()
    }

    /// The model of the link from `from` to `to` (`None`: the driver), most specific first,
    /// as the simulator resolves it.
    pub fn link(&self, from: &str, to: Option<&str>) -> &LinkConfig {
        let (f, t) = (Some(from.to_owned()), to.map(str::to_owned));
        self.links
            .get(&(f.clone(), t.clone()))
            .filter(|_| t.is_some())
            .or_else(|| self.links.get(&(f, None)))
            .or_else(|| t.clone().and_then(|t| self.links.get(&(None, Some(t)))))
            .or_else(|| self.links.get(&(None, None)))
            .unwrap_or(&self.default_link)
    }

    fn rebuild_all(&mut self) -> Result<()> {
        let names: Vec<String> = self.ports.keys().cloned().collect();
        for n in &names {
            self.rebuild(n)?;
        }
        // Delay queues no rule uses any more.
        let used: BTreeSet<(String, (u64, u64))> = names
            .iter()
            .flat_map(|n| {
                let targets: Vec<Option<&str>> = names.iter().map(|m| Some(m.as_str())).chain([None]).collect();
                targets.into_iter().map(move |t| (n.clone(), t))
            })
            .map(|(n, t)| (n.clone(), bounds_ms(self.link(&n, t))))
            .collect();
        let stale: Vec<_> = self.delayers.keys().filter(|k| !used.contains(k)).cloned().collect();
        for k in stale {
            if let Some((_, mut child)) = self.delayers.remove(&k) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        Ok(())
    }

    /// Rewrites `node`'s chains from the cuts and links, when they changed.
    fn rebuild(&mut self, node: &str) -> Result<()> {
        let port = self.port(node)?.clone();
        let mut cut_rules = Vec::new();
        let mut link_rules = Vec::new();
        let peers: Vec<(String, String)> = self.ports.iter().map(|(n, p)| (n.clone(), p.ip.clone())).collect();
        for (peer, ip) in &peers {
            if peer == node {
                continue;
            }
            if self.is_cut(node, peer) {
                cut_rules.push(vec!["-d".to_owned(), ip.clone(), "-j".into(), "DROP".into()]);
            }
            let link = self.link(node, Some(peer)).clone();
            link_rules.extend(self.link_rules(node, Some(ip), &link)?);
        }
        let rest = self.link(node, None).clone();
        link_rules.extend(self.link_rules(node, None, &rest)?);
        let wanted: Vec<Vec<String>> = [("GNT_CUT", cut_rules), ("GNT_LINK", link_rules)]
            .into_iter()
            .flat_map(|(chain, rules)| rules.into_iter().map(move |mut r| {
                r.insert(0, chain.to_owned());
                r
            }))
            .collect();
        if self.installed.get(node) == Some(&wanted) {
            return Ok(());
        }
        for chain in ["GNT_CUT", "GNT_LINK"] {
            in_ns(&port.ns, "iptables", &["-w", "-F", chain])?;
        }
        for rule in &wanted {
            let mut args = vec!["-w", "-A"];
            args.extend(rule.iter().map(String::as_str));
            in_ns(&port.ns, "iptables", &args)?;
        }
        self.installed.insert(node.to_owned(), wanted);
        Ok(())
    }

    /// The rules realising `link` for packets from `node` to `dest` (`None`: anything else).
    fn link_rules(&mut self, node: &str, dest: Option<&String>, link: &LinkConfig) -> Result<Vec<Vec<String>>> {
        let target: Vec<String> = dest.map_or(Vec::new(), |ip| vec!["-d".into(), ip.clone()]);
        let mut rules = Vec::new();
        if link.loss > 0.0 {
            let mut r = target.clone();
            r.extend(["-m", "statistic", "--mode", "random", "--probability"].map(String::from));
            r.push(format!("{:.6}", link.loss.min(1.0)));
            r.extend(["-j", "DROP"].map(String::from));
            rules.push(r);
        }
        let bounds = bounds_ms(link);
        if bounds.1 > 0 {
            let queue = self.delay_queue(node, bounds)?;
            let mut r = target.clone();
            r.extend(["-j", "NFQUEUE", "--queue-num"].map(String::from));
            r.push(queue.to_string());
            r.push("--queue-bypass".into());
            rules.push(r);
        }
        // Matched packets stop here, so the catch-all rules never see them again.
        if dest.is_some() {
            let mut r = target;
            r.extend(["-j", "RETURN"].map(String::from));
            rules.push(r);
        }
        Ok(rules)
    }

    /// The queue of `node`'s delay process for `bounds`, started if needed.
    fn delay_queue(&mut self, node: &str, bounds: (u64, u64)) -> Result<u16> {
        let key = (node.to_owned(), bounds);
        if let Some((q, _)) = self.delayers.get(&key) {
            return Ok(*q);
        }
        let used: BTreeSet<u16> =
            self.delayers.iter().filter(|((n, _), _)| n == node).map(|(_, (q, _))| *q).collect();
        let queue = (0..u16::MAX).find(|q| !used.contains(q)).expect("a free queue number");
        let ns = self.port(node)?.ns.clone();
        let log_path = self.log_dir.join(format!("{node}.delay-{queue}.log"));
        let log = std::fs::File::create(&log_path).map_err(|e| BackendError::io(format!("creating {}", log_path.display()), e))?;
        let err = log.try_clone().map_err(|e| BackendError::io("cloning a log handle", e))?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns])
            .arg(&self.delay_program)
            .args(["delay-queue", "--queue", &queue.to_string()])
            .args(["--min-ms", &bounds.0.to_string(), "--max-ms", &bounds.1.to_string()])
            .env(crate::RUN_ID_ENV, &self.run_id)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|e| BackendError::Command {
            command: format!("ip netns exec {ns} {} delay-queue", self.delay_program.display()),
            detail: e.to_string(),
        })?;
        self.delayers.insert(key, (queue, child));
        // The queue must be bound before packets are queued to it (else --queue-bypass lets
        // them through undelayed): wait for the process to say so in its log.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !std::fs::read_to_string(&log_path).unwrap_or_default().contains("bound") {
            if std::time::Instant::now() > deadline {
                return Err(BackendError::Invalid(format!(
                    "the delay queue of {node} did not start (log: {})",
                    log_path.display()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Ok(queue)
    }

    /// Stops the delay queues and removes every namespace, link and route of the run.
    pub fn teardown(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        for (_, (_, mut child)) in std::mem::take(&mut self.delayers) {
            let _ = child.kill();
            let _ = child.wait();
        }
        crate::clean::clean_run(&self.run_id).map(|_| ())
    }
}

impl Drop for Fabric {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("gauntlet: tearing down the network of {}: {e} (run `gauntlet clean`)", self.run_id);
        }
    }
}

/// A link's latency range in whole milliseconds (`(0, 0)`: no delay).
pub fn bounds_ms(link: &LinkConfig) -> (u64, u64) {
    let (lo, hi) = link.latency.bounds();
    (lo.as_millis() as u64, hi.as_millis() as u64)
}
