//! What every backend deploys: the plan's initial members, each with the command line its
//! application asked for ([`gauntlet::Application::launch`]) under the backend's placement.
//! Plain data, so renderers (compose files, kubernetes manifests) are pure functions of it.

use gauntlet::{HttpApplication, HttpCall, NodeRef, NodeSetup, Placed, Placement, Scenario};
use std::collections::BTreeMap;

/// One run's deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// The run's id (`gnt-` and 8 hex digits): every process, namespace, link, container and
    /// kubernetes object of the run carries it, so `gauntlet clean` finds leftovers.
    pub run_id: String,
    /// The application's name, as plans write it (`raft-kv`).
    pub app: String,
    /// The plan's name.
    pub plan: String,
    /// The initial members, in member order.
    pub nodes: Vec<NodeDeploy>,
}

/// One node of a [`Deployment`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDeploy {
    /// Its unique name (`replica-0`).
    pub name: String,
    /// Its role (`replica`).
    pub role: String,
    /// Its ordinal among the nodes of its role, from 0.
    pub index: u32,
    /// Its id in the cluster (the member index).
    pub id: u32,
    /// The executable (`raft-kv-node`).
    pub binary: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// Every port it listens on.
    pub ports: Vec<u16>,
    /// The port of its HTTP API (`/healthz`, `/status`, operations).
    pub http_port: u16,
    /// Its data directory.
    pub data_dir: String,
    /// The host its peers and clients reach it at.
    pub host: String,
    /// The path that answers 200 once it is ready (`/healthz` unless the launch said).
    pub health_path: String,
    /// What to install when the binary is missing (a system nobody builds here).
    pub install_hint: String,
    /// The request that answers 200 once it is ready (`GET health_path` unless the launch
    /// said otherwise, e.g. a RESP `PING`).
    pub readiness: HttpCall,
    /// Files written into its data directory before its first start (kept if already there).
    pub files: BTreeMap<String, String>,
    /// The command line of each build of its program ([`gauntlet::Application::versions`]),
    /// by version: what a script's `sut.upgrade(node, version)` restarts it on. Empty when
    /// the application has one build.
    pub builds: BTreeMap<String, Build>,
}

/// One build of a node's program: what a rolling upgrade restarts the node on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Build {
    /// The executable.
    pub binary: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
}

impl NodeDeploy {
    /// `Ok` if `program` (this node's binary, where the backend looks for it) is there; else
    /// what is missing: a system installed on the machine names its package
    /// ([`BackendError::NotInstalled`]), a binary built here where it was looked for.
    pub fn check_installed(&self, program: &std::path::Path) -> Result<(), crate::BackendError> {
        if program.is_file() {
            Ok(())
        } else if !self.install_hint.is_empty() {
            Err(crate::BackendError::NotInstalled { binary: self.binary.clone(), install: self.install_hint.clone() })
        } else {
            Err(crate::BackendError::MissingBinary { binary: self.binary.clone(), path: program.to_owned() })
        }
    }

    /// Writes the launch's [`files`](NodeDeploy::files) into `dir` (the node's data directory
    /// as the backend's host sees it), each through a temporary file and a rename; a file
    /// already there is kept (a server may have rewritten it).
    pub fn write_files(&self, dir: &std::path::Path) -> Result<(), crate::BackendError> {
        for (name, contents) in &self.files {
            let path = dir.join(name);
            if path.exists() {
                continue;
            }
            let tmp = dir.join(format!(".{name}.tmp"));
            let io = |e| crate::BackendError::io(format!("writing {}", path.display()), e);
            std::fs::write(&tmp, contents).map_err(io)?;
            std::fs::rename(&tmp, &path).map_err(io)?;
        }
        Ok(())
    }
}

impl Deployment {
    /// The node named `name`.
    pub fn node(&self, name: &str) -> Option<&NodeDeploy> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// `scenario`'s initial members placed by `place` (member index and node → where it
    /// goes), with the command lines the application gives for that placement.
    pub fn of<A: HttpApplication, E>(
        scenario: &Scenario<A>,
        run_id: &str,
        mut place: impl FnMut(usize, &NodeRef) -> Result<Placed, E>,
    ) -> Result<Deployment, E> {
        let plan = scenario.plan();
        let mut placement = Placement::default();
        for (i, m) in scenario.initial_members().iter().enumerate() {
            placement.nodes.push(place(i, m)?);
        }
        let mut per_role: BTreeMap<String, u32> = BTreeMap::new();
        let mut nodes = Vec::new();
        for p in &placement.nodes {
            let setup = NodeSetup::new(p.node.clone(), plan.app.options.clone());
            let launch = scenario.app().launch(&setup, &placement);
            let mut builds = BTreeMap::new();
            for version in scenario.app().versions() {
                let setup = NodeSetup { version: Some(version.clone()), ..setup.clone() };
                let l = scenario.app().launch(&setup, &placement);
                builds.insert(version, Build { binary: l.binary, args: l.args, env: l.env });
            }
            let index = per_role.entry(p.node.role.clone()).or_default();
            nodes.push(NodeDeploy {
                name: p.node.name.clone(),
                role: p.node.role.clone(),
                index: *index,
                id: p.node.id.0,
                binary: launch.binary.clone(),
                args: launch.args.clone(),
                env: launch.env.clone(),
                ports: launch.ports.clone(),
                http_port: launch.http_port,
                data_dir: p.data_dir.clone(),
                host: p.host.clone(),
                health_path: launch.health_path().to_owned(),
                install_hint: launch.install_hint.clone(),
                readiness: launch.readiness(),
                files: launch.files.clone(),
                builds,
            });
            *index += 1;
        }
        Ok(Deployment { run_id: run_id.to_owned(), app: plan.app.name.clone(), plan: plan.name.clone(), nodes })
    }
}
