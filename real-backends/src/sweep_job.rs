//! A sharded sweep on a cluster engine that exists already: a Kubernetes Indexed Job
//! ([`k8s_manifests`]) or a Docker swarm replicated job ([`swarm_create_args`]). Every task
//! runs `gauntlet sweep PLAN --seeds … --shard I/N --results …/shard-I` in the same image (the
//! `gauntlet` executable in a `FROM scratch` image, [`crate::compose::build_image`]), and
//! `gauntlet merge` combines the shards' results directories.
//!
//! Exit codes decide what the engine retries: a shard exits 0 when every seed passed, 1 when
//! some seed failed its expectations (recorded: running it again finds the same), 2 when the
//! plan or the flags are bad (every shard would fail). On Kubernetes the Job's
//! `podFailurePolicy` fails an index on 1 without retrying it, fails the Job on 2, and ignores
//! an evicted or preempted pod (retried without counting); any other end (the OOM killer, a
//! node lost) is retried up to `backoffLimitPerIndex`, and the retry resumes from the seeds its
//! results directory already holds. Swarm retries any non-zero exit, so its tasks run with
//! `--exit-zero` and never retry a recorded result.

use crate::k8s::Manifest;
use serde_json::{json, Value};

/// A sweep to run as shards on a cluster engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepJob {
    /// The job's name (a DNS label: lowercase letters, digits and `-`).
    pub name: String,
    /// The plan file's name (it is mounted at `/plan/<plan_file>`).
    pub plan_file: String,
    /// The plan (TOML).
    pub plan_toml: String,
    /// The whole seed range (`A..B` or `S+N`).
    pub seeds: String,
    /// How many shards.
    pub shards: u64,
    /// How many shards run at once.
    pub parallelism: u64,
    /// Planted bugs to switch on.
    pub bugs: Vec<String>,
    /// The per-seed time limit (`120s`).
    pub timeout: String,
    /// Seeds a shard runs at once (its CPU request).
    pub jobs: u64,
    /// The image with the `gauntlet` executable at `/gauntlet`.
    pub image: String,
    /// `Never` for images loaded into the cluster by hand, `IfNotPresent` for a registry.
    pub pull_policy: String,
    /// The namespace.
    pub namespace: String,
    /// Retries of one shard that ended otherwise than by its verdicts.
    pub backoff_limit_per_index: u32,
}

impl SweepJob {
    /// The arguments after the executable for shard `index` (a number, or an expression the
    /// engine or `gauntlet` expands) writing to `results`.
    pub fn sweep_args(&self, plan_path: &str, index: &str, results: &str) -> Vec<String> {
        let mut args: Vec<String> = [
            "sweep",
            plan_path,
            "--seeds",
            &self.seeds,
            "--shard",
            &format!("{index}/{}", self.shards),
            "--results",
            results,
            "--jobs",
            &self.jobs.to_string(),
            "--timeout",
            &self.timeout,
            "--no-corpus",
            "--json",
        ]
        .map(str::to_owned)
        .to_vec();
        for b in &self.bugs {
            args.push("--bug".into());
            args.push(b.clone());
        }
        args
    }

    fn labels(&self) -> Value {
        json!({
            "app.kubernetes.io/name": "gauntlet-sweep",
            "app.kubernetes.io/instance": self.name,
            "app.kubernetes.io/managed-by": "gauntlet",
        })
    }
}

/// The claim the shards' results go to (ReadWriteMany: every shard's pod mounts it).
pub const RESULTS_CLAIM: &str = "gauntlet-sweep-results";

/// The Kubernetes objects of a sharded sweep: its Namespace, a ConfigMap with the plan, a
/// PersistentVolumeClaim for the results and the Indexed Job.
///
/// ```
/// use gauntlet_backends::sweep_job::{k8s_manifests, SweepJob};
/// let job = SweepJob {
///     name: "sweep-kv-partition".into(), plan_file: "kv-partition.toml".into(), plan_toml: "name = \"p\"".into(),
///     seeds: "0..100000".into(), shards: 50, parallelism: 10, bugs: vec![], timeout: "120s".into(), jobs: 2,
///     image: "gauntlet/gauntlet:dev".into(), pull_policy: "Never".into(), namespace: "gauntlet-sweeps".into(),
///     backoff_limit_per_index: 2,
/// };
/// let objects = k8s_manifests(&job);
/// let job = &objects[3].value;
/// assert_eq!(job["spec"]["completionMode"], "Indexed");
/// assert_eq!(job["spec"]["completions"], 50);
/// ```
pub fn k8s_manifests(job: &SweepJob) -> Vec<Manifest> {
    let meta = |name: &str| json!({ "name": name, "namespace": job.namespace, "labels": job.labels() });
    let index = "$(JOB_COMPLETION_INDEX)";
    let args = job.sweep_args(&format!("/plan/{}", job.plan_file), index, &format!("/results/shard-{index}"));
    let container = json!({
        "name": "sweep",
        "image": job.image,
        "imagePullPolicy": job.pull_policy,
        "command": ["/gauntlet"],
        "args": args,
        "env": [
            { "name": "JOB_COMPLETION_INDEX", "valueFrom": { "fieldRef": {
                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } },
        ],
        "resources": {
            "requests": { "cpu": job.jobs.to_string(), "memory": "512Mi" },
            "limits": { "memory": "2Gi" },
        },
        "volumeMounts": [
            { "name": "plan", "mountPath": "/plan", "readOnly": true },
            { "name": "results", "mountPath": "/results" },
        ],
    });
    vec![
        Manifest {
            kind: "Namespace".into(),
            name: job.namespace.clone(),
            value: json!({ "apiVersion": "v1", "kind": "Namespace",
                "metadata": { "name": job.namespace, "labels": job.labels() } }),
        },
        Manifest {
            kind: "ConfigMap".into(),
            name: format!("{}-plan", job.name),
            value: json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(&format!("{}-plan", job.name)),
                "data": { job.plan_file.clone(): job.plan_toml } }),
        },
        Manifest {
            kind: "PersistentVolumeClaim".into(),
            name: RESULTS_CLAIM.into(),
            value: json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta(RESULTS_CLAIM),
                "spec": { "accessModes": ["ReadWriteMany"], "resources": { "requests": { "storage": "1Gi" } } } }),
        },
        Manifest {
            kind: "Job".into(),
            name: job.name.clone(),
            value: json!({
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": meta(&job.name),
                "spec": {
                    "completionMode": "Indexed",
                    "completions": job.shards,
                    "parallelism": job.parallelism.min(job.shards),
                    "backoffLimitPerIndex": job.backoff_limit_per_index,
                    "podFailurePolicy": { "rules": [
                        // Some seed failed its expectations: the shard's results are recorded,
                        // and running it again would find the same.
                        { "action": "FailIndex", "onExitCodes": { "containerName": "sweep", "operator": "In", "values": [1] } },
                        // A bad plan or flag: every shard would fail the same way.
                        { "action": "FailJob", "onExitCodes": { "containerName": "sweep", "operator": "In", "values": [2] } },
                        // Evicted or preempted: not the sweep's doing; retried without counting.
                        { "action": "Ignore", "onPodConditions": [{ "type": "DisruptionTarget", "status": "True" }] },
                    ] },
                    "template": {
                        "metadata": { "labels": job.labels() },
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [container],
                            "volumes": [
                                { "name": "plan", "configMap": { "name": format!("{}-plan", job.name) } },
                                { "name": "results", "persistentVolumeClaim": { "claimName": RESULTS_CLAIM } },
                            ],
                        },
                    },
                },
            }),
        },
    ]
}

/// The `docker service create` arguments (after `docker`) that run `job` on Docker swarm as a
/// replicated job: `shards` tasks, `parallelism` at once, the task slot as the shard index,
/// the plan directory `plans_dir` mounted read-only at `/plan` and the results under
/// `results_dir/shard-<I>`. Swarm retries any non-zero exit, so shards exit 0 once their
/// results are recorded (`--exit-zero`), and up to `backoff_limit_per_index` retries cover
/// the rest.
pub fn swarm_create_args(job: &SweepJob, plans_dir: &str, results_dir: &str) -> Vec<String> {
    let mut args: Vec<String> = [
        "service",
        "create",
        "--detach",
        "--name",
        &job.name,
        "--mode",
        "replicated-job",
        "--replicas",
        &job.shards.to_string(),
        "--max-concurrent",
        &job.parallelism.min(job.shards).to_string(),
        "--restart-condition",
        "on-failure",
        "--restart-max-attempts",
        &job.backoff_limit_per_index.to_string(),
        "--label",
        "app.kubernetes.io/managed-by=gauntlet",
        // Swarm renders slot 0 as the node's id; the two together name the shard.
        "--env",
        "GAUNTLET_SWARM_SLOT={{.Task.Slot}}",
        "--env",
        "GAUNTLET_SWARM_NODE={{.Node.ID}}",
        "--mount",
        &format!("type=bind,src={plans_dir},dst=/plan,readonly"),
        "--mount",
        &format!("type=bind,src={results_dir},dst=/results"),
        "--entrypoint",
        "/gauntlet",
        &job.image,
    ]
    .map(str::to_owned)
    .to_vec();
    args.extend(job.sweep_args(&format!("/plan/{}", job.plan_file), "swarm", "/results/shard-{shard}"));
    args.push("--exit-zero".into());
    args
}
