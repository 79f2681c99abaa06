//! Kubernetes manifests for a [`Deployment`]: a `Namespace` per run, a headless `Service`
//! named after the application (a node is reachable as `<node>.<app>`), one `ConfigMap` per
//! role with the environment its nodes share, and one `StatefulSet` per role (pods
//! `<role>-<ordinal>`, which are the plan's node names). What differs between the nodes of a
//! role must be their ordinal — rendered from the `apps.kubernetes.io/pod-index` label through
//! the downward API — or rendering fails naming the node and the variable. Partitions are
//! `NetworkPolicy` objects ([`partition_policies`]); kills are pod deletions (the StatefulSet
//! starts the pod again, with its persistent volume claim). No cluster is reachable where Gauntlet is built, so
//! the manifests are checked offline against the Kubernetes schema (`tests/k8s_render.rs`);
//! `docs/KUBERNETES.md` says how to run them on a real cluster.

use crate::spec::{Deployment, NodeDeploy};
use gauntlet::{HttpApplication, Placed, Scenario};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// The label every object of a run carries, with the run id.
pub const RUN_LABEL: &str = "gauntlet.dev/run-id";
/// The label partition policies carry (so healing deletes them by label).
pub const FAULT_LABEL: &str = "gauntlet.dev/fault";
/// The per-pod label a StatefulSet sets (`<role>-<ordinal>`).
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// The per-pod label with the ordinal (Kubernetes 1.28 and later).
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";

/// How manifests are rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K8sOptions {
    /// The namespace; default `gauntlet-<run id>`.
    pub namespace: Option<String>,
    /// Image name per binary: `<registry>/<binary>:<tag>`; default registry `gauntlet`, tag `dev`.
    pub registry: String,
    /// The image tag.
    pub tag: String,
    /// `Never` for images loaded into the cluster by hand (kind, minikube), `IfNotPresent` for
    /// a registry.
    pub pull_policy: String,
}

impl Default for K8sOptions {
    fn default() -> Self {
        K8sOptions { namespace: None, registry: "gauntlet".into(), tag: "dev".into(), pull_policy: "Never".into() }
    }
}

impl K8sOptions {
    /// The namespace of `dep`'s run.
    pub fn namespace_of(&self, dep: &Deployment) -> String {
        self.namespace.clone().unwrap_or_else(|| format!("gauntlet-{}", dep.run_id))
    }
}

/// One rendered object.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Its kind (`StatefulSet`, …).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The object.
    pub value: Value,
}

/// Why a deployment cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// Nodes of one role differ in a way a StatefulSet cannot express.
    #[error("role {role}: {what} differs between {a} and {b}; a StatefulSet's pods differ only by ordinal")]
    Differs {
        /// The role.
        role: String,
        /// What differs (an argument, a variable, the binary, the ports, the data directory).
        what: String,
        /// One node.
        a: String,
        /// Another.
        b: String,
    },
    /// A node's name is not `<role>-<ordinal>`.
    #[error(
        "node {node} is not named <role>-<ordinal> (role {role}, index {index}), so no StatefulSet pod has its name"
    )]
    Name {
        /// The node.
        node: String,
        /// Its role.
        role: String,
        /// Its index in the role.
        index: u32,
    },
    /// A partition names a node the deployment does not have.
    #[error("partition names unknown node {0:?}")]
    UnknownNode(String),
    /// A fault Kubernetes cannot inject.
    #[error("{fault} of node {node} is not supported on kubernetes: {why}")]
    Unsupported {
        /// The fault (`pause`).
        fault: String,
        /// The node it was asked for.
        node: String,
        /// Why not.
        why: String,
    },
}

fn labels(dep: &Deployment) -> Value {
    json!({
        RUN_LABEL: dep.run_id,
        "gauntlet.dev/plan": dep.plan,
        "app.kubernetes.io/name": dep.app,
        "app.kubernetes.io/managed-by": "gauntlet",
    })
}

fn with(mut base: Value, extra: &[(&str, &str)]) -> Value {
    for (k, v) in extra {
        base[*k] = Value::String((*v).to_owned());
    }
    base
}

/// The nodes by role, in member order.
fn roles(dep: &Deployment) -> BTreeMap<String, Vec<&NodeDeploy>> {
    let mut out: BTreeMap<String, Vec<&NodeDeploy>> = BTreeMap::new();
    for n in &dep.nodes {
        out.entry(n.role.clone()).or_default().push(n);
    }
    out
}

/// Renders every object of `dep`: Namespace, Service, then per role ConfigMap and StatefulSet.
///
/// ```
/// use gauntlet_backends::k8s::{render, K8sOptions};
/// use gauntlet_backends::spec::{Deployment, NodeDeploy};
/// use gauntlet::HttpCall;
/// let node = |i: u32| NodeDeploy {
///     name: format!("replica-{i}"), role: "replica".into(), index: i, id: i,
///     binary: "raft-kv-node".into(), args: vec![],
///     env: [("RAFT_KV_ID".to_owned(), i.to_string())].into(),
///     ports: vec![7000, 7001], http_port: 7001, data_dir: "/data".into(),
///     host: format!("replica-{i}.raft-kv"), health_path: "/healthz".into(), install_hint: String::new(),
///     readiness: HttpCall::new("GET", "/healthz"), files: Default::default(), builds: Default::default(),
/// };
/// let dep = Deployment { run_id: "gnt-00000001".into(), app: "raft-kv".into(), plan: "p".into(), nodes: vec![node(0), node(1)] };
/// let objects = render(&dep, &K8sOptions::default()).unwrap();
/// let kinds: Vec<&str> = objects.iter().map(|m| m.kind.as_str()).collect();
/// assert_eq!(kinds, ["Namespace", "Service", "ConfigMap", "StatefulSet"]);
/// assert_eq!(objects[3].value["spec"]["replicas"], 2);
/// ```
pub fn render(dep: &Deployment, opts: &K8sOptions) -> Result<Vec<Manifest>, RenderError> {
    let ns = opts.namespace_of(dep);
    let meta = |name: &str, extra: &[(&str, &str)]| json!({ "name": name, "namespace": ns, "labels": with(labels(dep), extra) });
    let mut out = vec![Manifest {
        kind: "Namespace".into(),
        name: ns.clone(),
        value: json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": ns, "labels": labels(dep) },
        }),
    }];
    let ports: BTreeSet<u16> = dep.nodes.iter().flat_map(|n| n.ports.iter().copied()).collect();
    out.push(Manifest {
        kind: "Service".into(),
        name: dep.app.clone(),
        value: json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(&dep.app, &[]),
            "spec": {
                "clusterIP": "None",
                "publishNotReadyAddresses": true,
                "selector": { RUN_LABEL: dep.run_id, "app.kubernetes.io/name": dep.app },
                "ports": ports.iter().map(|p| json!({ "name": format!("p{p}"), "port": p, "targetPort": p, "protocol": "TCP" })).collect::<Vec<_>>(),
            },
        }),
    });
    for (role, nodes) in roles(dep) {
        let first = nodes[0];
        for n in &nodes {
            let ordinal = format!("{role}-{}", n.index);
            if n.name != ordinal {
                return Err(RenderError::Name { node: n.name.clone(), role: role.clone(), index: n.index });
            }
            let differs = |what: String| RenderError::Differs {
                role: role.clone(),
                what,
                a: first.name.clone(),
                b: n.name.clone(),
            };
            if n.binary != first.binary {
                return Err(differs("the binary".into()));
            }
            if n.args != first.args {
                return Err(differs(format!("the arguments ({:?} vs {:?})", first.args, n.args)));
            }
            if n.ports != first.ports || n.http_port != first.http_port {
                return Err(differs("the ports".into()));
            }
            if n.data_dir != first.data_dir {
                return Err(differs("the data directory".into()));
            }
        }
        // Variables the same everywhere go into the ConfigMap; those equal to each node's
        // index come from the pod-index label; anything else cannot be a StatefulSet.
        let keys: BTreeSet<&String> = nodes.iter().flat_map(|n| n.env.keys()).collect();
        let mut common = Map::new();
        let mut by_index = Vec::new();
        for k in keys {
            let values: Vec<Option<&String>> = nodes.iter().map(|n| n.env.get(k)).collect();
            if values.iter().all(|v| *v == values[0]) {
                if let Some(v) = values[0] {
                    common.insert(k.clone(), Value::String(v.clone()));
                }
                continue;
            }
            for (n, v) in nodes.iter().zip(&values) {
                if v.map(String::as_str) != Some(n.index.to_string().as_str()) {
                    return Err(RenderError::Differs {
                        role: role.clone(),
                        what: format!("variable {k} (not the pod's ordinal)"),
                        a: first.name.clone(),
                        b: n.name.clone(),
                    });
                }
            }
            by_index.push(k.clone());
        }
        let config_name = format!("{role}-env");
        out.push(Manifest {
            kind: "ConfigMap".into(),
            name: config_name.clone(),
            value: json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(&config_name, &[("gauntlet.dev/role", &role)]), "data": common }),
        });
        let env: Vec<Value> = by_index
            .iter()
            .map(|k| {
                json!({ "name": k, "valueFrom": { "fieldRef": { "fieldPath": format!("metadata.labels['{POD_INDEX_LABEL}']") } } })
            })
            .collect();
        let selector = json!({ RUN_LABEL: dep.run_id, "app.kubernetes.io/name": dep.app, "gauntlet.dev/role": role });
        let container = json!({
            "name": first.binary,
            "image": format!("{}/{}:{}", opts.registry, first.binary, opts.tag),
            "imagePullPolicy": opts.pull_policy,
            "command": [format!("/{}", first.binary)],
            "args": first.args,
            "envFrom": [ { "configMapRef": { "name": config_name } } ],
            "env": env,
            "ports": first.ports.iter().map(|p| json!({ "name": format!("p{p}"), "containerPort": p, "protocol": "TCP" })).collect::<Vec<_>>(),
            // A server without HTTP (RESP) is ready when its port accepts connections.
            "readinessProbe": if first.readiness.is_resp() {
                json!({ "tcpSocket": { "port": first.http_port }, "periodSeconds": 1, "failureThreshold": 3 })
            } else {
                json!({
                    "httpGet": { "path": first.health_path, "port": first.http_port },
                    "periodSeconds": 1,
                    "failureThreshold": 3,
                })
            },
            "volumeMounts": [ { "name": "data", "mountPath": first.data_dir } ],
        });
        out.push(Manifest {
            kind: "StatefulSet".into(),
            name: role.clone(),
            value: json!({
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "metadata": meta(&role, &[("gauntlet.dev/role", &role)]),
                "spec": {
                    "serviceName": dep.app,
                    "replicas": nodes.len(),
                    "podManagementPolicy": "Parallel",
                    "selector": { "matchLabels": selector },
                    "template": {
                        "metadata": { "labels": with(labels(dep), &[("gauntlet.dev/role", &role)]) },
                        "spec": {
                            "terminationGracePeriodSeconds": 0,
                            "containers": [container],
                        },
                    },
                    // A killed pod comes back with its volume: a crash, not a new node.
                    "volumeClaimTemplates": [ {
                        "metadata": { "name": "data", "labels": with(labels(dep), &[("gauntlet.dev/role", &role)]) },
                        "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } },
                    } ],
                },
            }),
        });
    }
    Ok(out)
}

/// The [`Deployment`] of `scenario`'s initial members on kubernetes: each node binds
/// `0.0.0.0`, is reached as `<node>.<app>` (its pod through the headless Service), ports
/// from 7000, data in `/data`.
pub fn deployment<A: HttpApplication>(scenario: &Scenario<A>, run_id: &str) -> Deployment {
    let app = scenario.plan().app.name.clone();
    let placed = Deployment::of(scenario, run_id, |_, m| {
        Ok::<_, std::convert::Infallible>(Placed {
            node: m.clone(),
            bind: "0.0.0.0".into(),
            host: format!("{}.{app}", m.name),
            port_base: 7000,
            data_dir: "/data".into(),
        })
    });
    match placed {
        Ok(d) => d,
        Err(never) => match never {},
    }
}

/// NetworkPolicies realising a partition into `groups` (nodes in no group form one more
/// group, as in the simulator): each pod may talk only to pods of its own group, receive from
/// the Gauntlet driver (pods labelled `gauntlet.dev/role: driver`) and resolve names.
pub fn partition_policies(
    dep: &Deployment,
    opts: &K8sOptions,
    groups: &[Vec<String>],
) -> Result<Vec<Manifest>, RenderError> {
    let ns = opts.namespace_of(dep);
    let names: BTreeSet<&str> = dep.nodes.iter().map(|n| n.name.as_str()).collect();
    let mut group_of: BTreeMap<&str, usize> = BTreeMap::new();
    for (g, members) in groups.iter().enumerate() {
        for m in members {
            if !names.contains(m.as_str()) {
                return Err(RenderError::UnknownNode(m.clone()));
            }
            group_of.insert(m, g);
        }
    }
    let mut out = Vec::new();
    for n in &dep.nodes {
        let mine = group_of.get(n.name.as_str());
        let peers: Vec<&str> = dep.nodes.iter().map(|m| m.name.as_str()).filter(|m| group_of.get(m) == mine).collect();
        let same_group = json!({ "podSelector": { "matchExpressions": [ { "key": POD_NAME_LABEL, "operator": "In", "values": peers } ] } });
        let driver = json!({ "podSelector": { "matchLabels": { "gauntlet.dev/role": "driver" } } });
        let dns = json!({ "ports": [ { "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 } ] });
        let name = format!("partition-{}", n.name);
        out.push(Manifest {
            kind: "NetworkPolicy".into(),
            name: name.clone(),
            value: json!({
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": { "name": name, "namespace": ns, "labels": with(labels(dep), &[(FAULT_LABEL, "partition")]) },
                "spec": {
                    "podSelector": { "matchLabels": { POD_NAME_LABEL: n.name } },
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": [ { "from": [same_group.clone(), driver.clone()] } ],
                    "egress": [ { "to": [same_group, driver] }, dns ],
                },
            }),
        });
    }
    Ok(out)
}

/// Every manifest as one multi-document YAML stream.
pub fn to_yaml(manifests: &[Manifest]) -> String {
    manifests.iter().map(|m| format!("---\n{}", crate::yaml::to_yaml(&m.value))).collect()
}

/// The `kubectl` command lines for a run in namespace `ns` (each an argv).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubectl {
    /// The namespace.
    pub ns: String,
}

impl Kubectl {
    fn argv(&self, args: &[&str]) -> Vec<String> {
        let mut v = vec!["kubectl".to_owned()];
        v.extend(args.iter().map(|a| (*a).to_owned()));
        v
    }
    /// Applies manifests read from stdin.
    pub fn apply(&self) -> Vec<String> {
        self.argv(&["apply", "-f", "-"])
    }
    /// Waits for every pod of the run to be ready.
    pub fn wait_ready(&self, timeout_s: u64) -> Vec<String> {
        let t = format!("--timeout={timeout_s}s");
        self.argv(&["wait", "--for=condition=Ready", "pod", "--all", "-n", &self.ns, &t])
    }
    /// Kills a node: its pod is deleted at once and its StatefulSet starts it again.
    pub fn kill(&self, node: &str) -> Vec<String> {
        self.argv(&["delete", "pod", node, "-n", &self.ns, "--grace-period=0", "--force"])
    }
    /// Pausing a node: not supported (the API has no SIGSTOP and does not expose the cgroup
    /// freezer), so always an error saying so.
    pub fn pause(&self, node: &str) -> Result<Vec<String>, RenderError> {
        Err(RenderError::Unsupported {
            fault: "pause".into(),
            node: node.into(),
            why: "the API cannot stop a container's processes (no SIGSTOP, no cgroup freezer)".into(),
        })
    }
    /// Heals a partition.
    pub fn heal(&self) -> Vec<String> {
        let l = format!("{FAULT_LABEL}=partition");
        self.argv(&["delete", "networkpolicy", "-l", &l, "-n", &self.ns])
    }
    /// Reaches a node's HTTP API from the driver's machine.
    pub fn port_forward(&self, node: &str, local: u16, port: u16) -> Vec<String> {
        let map = format!("{local}:{port}");
        self.argv(&["port-forward", &format!("pod/{node}"), &map, "-n", &self.ns])
    }
    /// Removes the run.
    pub fn teardown(&self) -> Vec<String> {
        self.argv(&["delete", "namespace", &self.ns, "--wait=false"])
    }
    /// Removes every run's namespace (what `gauntlet clean` would do on a cluster).
    pub fn clean_all() -> Vec<String> {
        ["kubectl", "delete", "namespace", "-l", RUN_LABEL].map(String::from).to_vec()
    }
}
