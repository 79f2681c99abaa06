//! The local backend's network: one namespace per node, joined by veth links to a bridge in a
//! "switch" namespace of its own, so the root namespace is untouched but for one host link
//! the driver reaches the nodes through. Faults are [`Rules`] in the nodes' namespaces.
//!
//! Every namespace is named `<run-id>-…`, the host link `g<8 hex>h`, and the guard route has
//! protocol [`ROUTE_PROTO`], so `gauntlet clean` finds what a killed run left.

use crate::error::{BackendError, Result};
use crate::rules::{RuleNode, Rules};
use crate::sys::{in_ns, run};
use gauntlet_sim::LinkConfig;
use std::collections::BTreeMap;
use std::path::Path;

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
    rules: Rules,
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
            rules: Rules::new(run_id, default_link, delay_program, log_dir),
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
            let enter = ["ip", "netns", "exec", &ns].map(String::from).to_vec();
            fabric.rules.add_node(name, RuleNode { enter, ip }, "eth0")?;
        }
        fabric.rules.install()?;
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

    /// The fault rules (cuts and links) of the fabric's nodes.
    pub fn rules(&mut self) -> &mut Rules {
        &mut self.rules
    }

    /// Stops the delay queues and removes every namespace, link and route of the run.
    pub fn teardown(&mut self) -> Result<()> {
        if self.torn_down {
            return Ok(());
        }
        self.torn_down = true;
        self.rules.stop();
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
