//! What every backend deploys: the plan's initial members, each with the command line its
//! application asked for ([`gauntlet::Application::launch`]) under the backend's placement.
//! Plain data, so renderers (compose files, kubernetes manifests) are pure functions of it.

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
}
