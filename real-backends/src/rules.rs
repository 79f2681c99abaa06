//! Fault rules inside nodes' network namespaces, the same for every backend that can enter
//! them (the local backend's namespaces, containers' namespaces through `nsenter`):
//!
//! * cuts (partitions, one-way cuts): `iptables` DROP rules in the sender's `GNT_CUT` chain,
//!   one per cut direction, rebuilt from the set of cuts on every change;
//! * link models: in the sender's `GNT_LINK` chain, loss with `-m statistic --mode random`,
//!   delay with an `NFQUEUE` rule served by a `gauntlet delay-queue` process per distinct
//!   latency range (the kernels here may lack `tc netem`).
//!
//! Links resolve as in the simulator: the most specific of `(from, to)`, `(from, any)`,
//! `(any, to)`, `(any, any)`, then the topology's default.

use crate::error::{BackendError, Result};
use crate::sys::{run, run_with_input};
use gauntlet_sim::LinkConfig;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A node as the rules know it: how to run a command in its network namespace, and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleNode {
    /// The command prefix that enters its namespace (`ip netns exec NS`, `nsenter -t PID -n`).
    pub enter: Vec<String>,
    /// Its address.
    pub ip: String,
}

/// Runs `program args…` through the `enter` prefix.
pub fn enter(prefix: &[String], program: &str, args: &[&str]) -> Result<String> {
    let mut all: Vec<&str> = prefix[1..].iter().map(String::as_str).collect();
    all.push(program);
    all.extend_from_slice(args);
    run(&prefix[0], &all)
}

/// The cuts and link models of a run, and the rules and delay queues realising them.
#[derive(Debug)]
pub struct Rules {
    run_id: String,
    nodes: BTreeMap<String, RuleNode>,
    cuts: BTreeSet<(String, String)>,
    default_link: LinkConfig,
    links: BTreeMap<(Option<String>, Option<String>), LinkConfig>,
    /// Running delay queues: `(node, (min_ms, max_ms))` → queue number and process.
    delayers: BTreeMap<(String, (u64, u64)), (u16, Child)>,
    /// Rules currently installed per node (to rebuild only what changed).
    installed: BTreeMap<String, Vec<Vec<String>>>,
    delay_program: PathBuf,
    log_dir: PathBuf,
    /// Nodes whose namespace is gone for now (a stopped container): their rules wait.
    absent: BTreeSet<String>,
    /// Updates wait for [`Rules::release`].
    held: bool,
}

impl Rules {
    /// No nodes yet; `default_link` is the topology's link model, `delay_program` serves
    /// delay queues (`<program> delay-queue …`, run inside a node's namespace), logging to
    /// `log_dir`.
    pub fn new(run_id: &str, default_link: LinkConfig, delay_program: &Path, log_dir: &Path) -> Rules {
        Rules {
            run_id: run_id.to_owned(),
            nodes: BTreeMap::new(),
            cuts: BTreeSet::new(),
            default_link,
            links: BTreeMap::new(),
            delayers: BTreeMap::new(),
            installed: BTreeMap::new(),
            delay_program: delay_program.to_owned(),
            log_dir: log_dir.to_owned(),
            absent: BTreeSet::new(),
            held: false,
        }
    }

    /// Adds a node: creates its chains, hooked into `OUTPUT` on `dev`. Call
    /// [`Rules::install`] once every node is added.
    pub fn add_node(&mut self, name: &str, node: RuleNode, dev: &str) -> Result<()> {
        for chain in ["GNT_CUT", "GNT_LINK"] {
            enter(&node.enter, "iptables", &["-w", "-N", chain])?;
        }
        enter(&node.enter, "iptables", &["-w", "-A", "OUTPUT", "-o", dev, "-j", "GNT_CUT"])?;
        enter(&node.enter, "iptables", &["-w", "-A", "OUTPUT", "-o", dev, "-j", "GNT_LINK"])?;
        self.nodes.insert(name.to_owned(), node);
        self.installed.remove(name);
        Ok(())
    }

    /// A node's namespace is gone (its container stopped): its delay queues stop, and its
    /// rules wait for [`Rules::reenter`].
    pub fn leave(&mut self, name: &str) {
        let stale: Vec<_> = self.delayers.keys().filter(|(n, _)| n == name).cloned().collect();
        for k in stale {
            if let Some((_, mut child)) = self.delayers.remove(&k) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        self.installed.remove(name);
        self.absent.insert(name.to_owned());
    }

    /// A node's namespace was replaced (a container restarted): its chains are created in the
    /// new one, its delay queues restarted there, and its rules installed again.
    pub fn reenter(&mut self, name: &str, node: RuleNode, dev: &str) -> Result<()> {
        self.leave(name);
        self.absent.remove(name);
        self.add_node(name, node, dev)?;
        self.rebuild(name)
    }

    /// Installs every node's rules.
    pub fn install(&mut self) -> Result<()> {
        self.rebuild_all()
    }

    /// The node called `name`.
    pub fn node(&self, name: &str) -> Result<&RuleNode> {
        self.nodes.get(name).ok_or_else(|| BackendError::Invalid(format!("unknown node {name:?}")))
    }

    /// Cuts traffic between groups (nodes in no group form one more group), replacing every
    /// cut in place.
    pub fn partition(&mut self, groups: &[Vec<String>]) -> Result<()> {
        let mut group_of: BTreeMap<&str, usize> = BTreeMap::new();
        for (g, members) in groups.iter().enumerate() {
            for m in members {
                self.node(m)?;
                group_of.insert(m, g);
            }
        }
        let names: Vec<String> = self.nodes.keys().cloned().collect();
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
        self.node(from)?;
        self.node(to)?;
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
            self.node(n)?;
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

    /// Holds rule updates until [`Rules::release`]: faults applied together (a partition
    /// compiles to many one-way cuts at one instant) rewrite each node's rules once.
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// Installs what changed while held.
    pub fn release(&mut self) -> Result<()> {
        self.held = false;
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
        if self.held {
            return Ok(());
        }
        let names: Vec<String> = self.nodes.keys().cloned().collect();
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
        let me = self.node(node)?.clone();
        if self.absent.contains(node) {
            return Ok(());
        }
        let mut cut_rules = Vec::new();
        let mut link_rules = Vec::new();
        let peers: Vec<(String, String)> = self.nodes.iter().map(|(n, p)| (n.clone(), p.ip.clone())).collect();
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
            .flat_map(|(chain, rules)| {
                rules.into_iter().map(move |mut r| {
                    r.insert(0, chain.to_owned());
                    r
                })
            })
            .collect();
        if self.installed.get(node) == Some(&wanted) {
            return Ok(());
        }
        // One atomic table update per node: both chains flushed and refilled together.
        let mut script = String::from("*filter\n-F GNT_CUT\n-F GNT_LINK\n");
        for rule in &wanted {
            script.push_str("-A ");
            script.push_str(&rule.join(" "));
            script.push('\n');
        }
        script.push_str("COMMIT\n");
        let mut all: Vec<&str> = me.enter[1..].iter().map(String::as_str).collect();
        all.extend(["iptables-restore", "-w", "--noflush"]);
        run_with_input(&me.enter[0], &all, &script)?;
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
        let used: BTreeSet<u16> = self.delayers.iter().filter(|((n, _), _)| n == node).map(|(_, (q, _))| *q).collect();
        let queue = (0..u16::MAX).find(|q| !used.contains(q)).expect("a free queue number");
        let me = self.node(node)?.clone();
        let log_path = self.log_dir.join(format!("{node}.delay-{queue}.log"));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| BackendError::io(format!("creating {}", log_path.display()), e))?;
        let err = log.try_clone().map_err(|e| BackendError::io("cloning a log handle", e))?;
        let mut cmd = Command::new(&me.enter[0]);
        cmd.args(&me.enter[1..])
            .arg(&self.delay_program)
            .args(["delay-queue", "--queue", &queue.to_string()])
            .args(["--min-ms", &bounds.0.to_string(), "--max-ms", &bounds.1.to_string()])
            .env(crate::RUN_ID_ENV, &self.run_id)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|e| BackendError::Command {
            command: format!("{} {} delay-queue", me.enter.join(" "), self.delay_program.display()),
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

    /// Stops every delay queue.
    pub fn stop(&mut self) {
        for (_, (_, mut child)) in std::mem::take(&mut self.delayers) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Rules {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A link's latency range in whole milliseconds (`(0, 0)`: no delay).
pub fn bounds_ms(link: &LinkConfig) -> (u64, u64) {
    let (lo, hi) = link.latency.bounds();
    (lo.as_millis() as u64, hi.as_millis() as u64)
}
