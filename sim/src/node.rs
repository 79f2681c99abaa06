//! Node identity: ids, names, roles, addresses and lifecycle status.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;

/// Index of a node in its world, stable for the whole run (never reused, even after churn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u32);

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}

/// What a node is: its unique name, its role and the address it is reached at.
///
/// The address is informational under simulation (messages are routed by [`NodeId`]) and is the
/// real listening address when the same node is promoted to a real deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// Unique name, used in fault schedules and reports (`"replica-0"`).
    pub name: String,
    /// Free-form role (`"replica"`, `"validator"`, `"client"`). Default: `"node"`.
    pub role: String,
    /// Address the node listens on. Default: assigned by the world (`10.0.0.<index+1>:7000`).
    pub addr: Option<SocketAddr>,
    /// A client node (a workload driver or an observer) rather than a member of the system:
    /// it is left out of [`NodeContext::members`](crate::NodeContext::members), and a partition
    /// leaves it connected to every side unless a group names it. Default: `false`.
    #[serde(default)]
    pub client: bool,
}

impl NodeSpec {
    /// A node with the given name, role `"node"` and an address assigned by the world.
    pub fn new(name: impl Into<String>) -> Self {
        NodeSpec { name: name.into(), role: "node".to_owned(), addr: None, client: false }
    }

    /// Sets the role (default `"node"`).
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = role.into();
        self
    }

    /// Marks this node as a client (default: a member). See [`NodeSpec::client`].
    pub fn as_client(mut self) -> Self {
        self.client = true;
        self
    }

    /// Sets the address (default: assigned by the world).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = Some(addr);
        self
    }
}

/// Lifecycle state of a node as the world sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeStatus {
    /// Running its program.
    Running,
    /// Running nothing; timers fire late and messages wait until it resumes.
    Paused,
    /// Killed: volatile state is gone and messages to it are dropped until it restarts.
    Crashed,
    /// Its program returned; it receives nothing more until restarted.
    Exited,
}
