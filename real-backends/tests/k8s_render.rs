//! Kubernetes manifests for a 5-replica raft-kv run: rendered (insta snapshots), and every
//! object validated offline against the Kubernetes 1.31 schema with `kubernetes-validate
//! --strict` (installed into a private virtualenv by `tools/kubernetes-validate.sh` on first
//! use: needs python3 and PyPI; if it cannot be installed the test fails saying so).
#![allow(clippy::disallowed_types, clippy::disallowed_methods, reason = "runs the validator")]

use gauntlet_backends::k8s::{self, K8sOptions, Kubectl, Manifest, RenderError};
use gauntlet_backends::spec::{Deployment, NodeDeploy};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// raft-kv's five replicas as its `launch` places them on kubernetes: bind 0.0.0.0, peers by
/// pod DNS name `<node>.raft-kv`, raft on 7000, HTTP on 7001, data in /data.
fn raft_kv() -> Deployment {
    let peers: Vec<String> = (0..5).map(|i| format!("{i}=replica-{i}.raft-kv:7000")).collect();
    let nodes = (0..5u32)
        .map(|i| NodeDeploy {
            name: format!("replica-{i}"),
            role: "replica".into(),
            index: i,
            id: i,
            binary: "raft-kv-node".into(),
            args: vec![],
            env: BTreeMap::from([
                ("RAFT_KV_ID".to_owned(), i.to_string()),
                ("RAFT_KV_LISTEN".to_owned(), "0.0.0.0:7000".to_owned()),
                ("RAFT_KV_HTTP".to_owned(), "0.0.0.0:7001".to_owned()),
                ("RAFT_KV_DATA".to_owned(), "/data".to_owned()),
                ("RAFT_KV_PEERS".to_owned(), peers.join(",")),
                ("RAFT_KV_BUGS".to_owned(), String::new()),
            ]),
            ports: vec![7000, 7001],
            http_port: 7001,
            data_dir: "/data".into(),
            health_path: "/healthz".into(),
            install_hint: String::new(),
            readiness: gauntlet::HttpCall::new("GET", "/healthz"),
            files: BTreeMap::new(),
            builds: BTreeMap::new(),
            host: format!("replica-{i}.raft-kv"),
        })
        .collect();
    Deployment { run_id: "gnt-0000test".into(), app: "raft-kv".into(), plan: "kv-partition".into(), nodes }
}

fn groups() -> Vec<Vec<String>> {
    vec![vec!["replica-0".into(), "replica-1".into()], vec!["replica-2".into(), "replica-3".into(), "replica-4".into()]]
}

#[test]
fn raft_kv_manifests() {
    let m = k8s::render(&raft_kv(), &K8sOptions::default()).expect("renders");
    let kinds: Vec<&str> = m.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["Namespace", "Service", "ConfigMap", "StatefulSet"]);
    let sts = &m[3].value;
    assert_eq!(sts["spec"]["replicas"], 5);
    // The one variable that differs per pod is its ordinal, from the downward API.
    assert_eq!(sts["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"], "RAFT_KV_ID");
    insta::assert_snapshot!("raft_kv_manifests", k8s::to_yaml(&m));
}

#[test]
fn partition_policies() {
    let p = k8s::partition_policies(&raft_kv(), &K8sOptions::default(), &groups()).expect("renders");
    assert_eq!(p.len(), 5, "one policy per pod");
    insta::assert_snapshot!("raft_kv_partition", k8s::to_yaml(&p));
}

#[test]
fn what_a_statefulset_cannot_express_is_an_error_naming_it() {
    let mut d = raft_kv();
    d.nodes[2].args = vec!["--verbose".into()];
    let e = k8s::render(&d, &K8sOptions::default()).unwrap_err();
    assert!(matches!(&e, RenderError::Differs { b, .. } if b == "replica-2"), "{e}");
    assert!(e.to_string().contains("the arguments"), "{e}");

    let mut d = raft_kv();
    d.nodes[3].env.insert("RAFT_KV_ID".into(), "7".into());
    let e = k8s::render(&d, &K8sOptions::default()).unwrap_err();
    assert!(e.to_string().contains("variable RAFT_KV_ID (not the pod's ordinal)"), "{e}");

    let mut d = raft_kv();
    d.nodes[1].name = "db-1".into();
    assert!(matches!(k8s::render(&d, &K8sOptions::default()), Err(RenderError::Name { .. })));

    let bad = vec![vec!["replica-9".to_owned()]];
    assert_eq!(
        k8s::partition_policies(&raft_kv(), &K8sOptions::default(), &bad).unwrap_err(),
        RenderError::UnknownNode("replica-9".into())
    );
}

#[test]
fn kubectl_commands_name_the_run_namespace() {
    let k = Kubectl { ns: "gauntlet-gnt-0000test".into() };
    assert_eq!(
        k.kill("replica-1").join(" "),
        "kubectl delete pod replica-1 -n gauntlet-gnt-0000test --grace-period=0 --force"
    );
    assert_eq!(
        k.heal().join(" "),
        "kubectl delete networkpolicy -l gauntlet.dev/fault=partition -n gauntlet-gnt-0000test"
    );
    assert_eq!(Kubectl::clean_all().join(" "), "kubectl delete namespace -l gauntlet.dev/run-id");
    assert_eq!(k.teardown().join(" "), "kubectl delete namespace gauntlet-gnt-0000test --wait=false");
    assert_eq!(k.apply().join(" "), "kubectl apply -f -");
    let e = k.pause("replica-1").unwrap_err();
    assert!(e.to_string().contains("pause of node replica-1 is not supported on kubernetes"), "{e}");
}

fn validate(files: &[PathBuf]) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/kubernetes-validate.sh");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kubernetes-validate-venv");
    Command::new(script).arg(venv).args(files).output().expect("run tools/kubernetes-validate.sh")
}

fn write_all(dir: &Path, manifests: &[Manifest]) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).expect("dir");
    manifests
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let f = dir.join(format!("{i:02}-{}-{}.yaml", m.kind.to_lowercase(), m.name));
            std::fs::write(&f, gauntlet_backends::yaml::to_yaml(&m.value)).expect("write");
            f
        })
        .collect()
}

#[test]
fn every_manifest_passes_strict_schema_validation_and_a_broken_one_does_not() {
    let d = raft_kv();
    let mut all = k8s::render(&d, &K8sOptions::default()).expect("renders");
    all.extend(k8s::partition_policies(&d, &K8sOptions::default(), &groups()).expect("renders"));
    all.extend(gauntlet_backends::sweep_job::k8s_manifests(&sweep_job()));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("k8s-manifests-{}", std::process::id()));
    let files = write_all(&dir.join("good"), &all);
    let out = validate(&files);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubernetes-validate rejected the manifests (or could not be installed):\n{text}");
    assert_eq!(text.matches(" passed for resource ").count(), files.len(), "every file validated:\n{text}");

    // The validator has teeth: a mistyped field fails.
    let mut sts = all.iter().find(|m| m.kind == "StatefulSet").expect("a StatefulSet").clone();
    sts.value["spec"]["replicas"] = serde_json::json!("three");
    let bad = write_all(&dir.join("bad"), &[sts]);
    let out = validate(&bad);
    assert!(!out.status.success(), "replicas: \"three\" must be rejected: {}", String::from_utf8_lossy(&out.stdout));
}

/// A 100,000-seed sweep of kv-partition in 50 shards, 10 at once.
fn sweep_job() -> gauntlet_backends::sweep_job::SweepJob {
    gauntlet_backends::sweep_job::SweepJob {
        name: "gauntlet-sweep-kv-partition".into(),
        plan_file: "kv-partition.toml".into(),
        plan_toml: "name = \"kv-partition\"\n[app]\nname = \"raft-kv\"\n".into(),
        seeds: "0..100000".into(),
        shards: 50,
        parallelism: 10,
        bugs: vec!["commit-old-term".into()],
        timeout: "2m".into(),
        jobs: 2,
        image: "gauntlet/gauntlet:dev".into(),
        pull_policy: "Never".into(),
        namespace: "gauntlet-sweeps".into(),
        backoff_limit_per_index: 2,
    }
}

/// The sharded sweep as an Indexed Job: the shard index from the completion index, a seed
/// that failed its expectations not retried (exit 1 fails the index), a bad plan failing the
/// Job (exit 2), an evicted pod retried without counting.
#[test]
fn a_sharded_sweep_is_an_indexed_job_that_retries_evictions_but_not_verdicts() {
    let m = gauntlet_backends::sweep_job::k8s_manifests(&sweep_job());
    let kinds: Vec<&str> = m.iter().map(|m| m.kind.as_str()).collect();
    assert_eq!(kinds, ["Namespace", "ConfigMap", "PersistentVolumeClaim", "Job"]);
    let spec = &m[3].value["spec"];
    assert_eq!((spec["completionMode"].as_str(), spec["completions"].as_u64()), (Some("Indexed"), Some(50)));
    assert_eq!((spec["parallelism"].as_u64(), spec["backoffLimitPerIndex"].as_u64()), (Some(10), Some(2)));
    let rules = spec["podFailurePolicy"]["rules"].as_array().unwrap();
    let action = |code: u64| {
        rules
            .iter()
            .find(|r| r["onExitCodes"]["values"].as_array().is_some_and(|v| v.contains(&code.into())))
            .map(|r| r["action"].as_str().unwrap())
    };
    assert_eq!((action(1), action(2), action(137)), (Some("FailIndex"), Some("FailJob"), None));
    assert!(rules.iter().any(|r| r["action"] == "Ignore" && r["onPodConditions"][0]["type"] == "DisruptionTarget"));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never", "a pod failure policy needs restartPolicy Never");
    let args: Vec<&str> =
        pod["containers"][0]["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let after = |flag: &str| args[args.iter().position(|a| *a == flag).unwrap() + 1];
    assert_eq!(after("--shard"), "$(JOB_COMPLETION_INDEX)/50");
    assert_eq!(after("--results"), "/results/shard-$(JOB_COMPLETION_INDEX)");
    assert_eq!(after("--bug"), "commit-old-term");
    insta::assert_snapshot!("sweep_job_manifests", k8s::to_yaml(&m));
}
