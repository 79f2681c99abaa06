//! Architecture invariants, checked on every `cargo test` (see docs/ARCHITECTURE.md):
//! the crate graph keeps its layers, and simulated code avoids known determinism traps.
#![allow(clippy::disallowed_types, reason = "this test runs cargo metadata")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `cargo metadata` for the workspace's own packages.
fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Workspace crate -> the workspace crates it depends on (normal and build dependencies).
fn workspace_graph() -> BTreeMap<String, BTreeSet<String>> {
    let meta = metadata();
    let packages = meta["packages"].as_array().unwrap();
    let names: BTreeSet<String> = packages.iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect();
    packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null() || d["kind"] == "build")
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|d| names.contains(d))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), deps)
        })
        .collect()
}

#[test]
fn the_crate_graph_keeps_its_layers() {
    let g = workspace_graph();
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(g["gauntlet-sim"], set(&[]), "Architecture invariant: sim depends on no other workspace crate");
    assert_eq!(g["gauntlet"], set(&["gauntlet-sim"]), "Architecture invariant: the library depends only on sim");
    assert!(
        !g["gauntlet-scenarios"].contains("gauntlet-backends"),
        "Architecture invariant: reference systems never depend on real backends"
    );
    assert!(
        g["gauntlet-backends"].is_subset(&set(&["gauntlet", "gauntlet-sim"])),
        "Architecture invariant: backends know the library, not the applications"
    );
    assert!(
        !g["gauntlet-cli"].contains("gauntlet-scenarios"),
        "Architecture invariant: the command-line library knows no application (apps are registered with it)"
    );
    assert!(
        g["gauntlet-cli"].is_subset(&set(&["gauntlet", "gauntlet-sim", "gauntlet-backends", "gauntlet-serve"])),
        "Architecture invariant: the command-line library sees the library, the backends and the run service only"
    );
    assert_eq!(
        g["gauntlet-serve"],
        set(&[]),
        "Architecture invariant: the run service knows no workspace crate (the CLI plugs in through its Executor)"
    );
    for (krate, deps) in &g {
        if krate != "gauntlet-tool" {
            assert!(!deps.contains("gauntlet-cli"), "{krate} depends on the CLI");
        }
    }
    let everything = set(&["gauntlet", "gauntlet-sim", "gauntlet-scenarios", "gauntlet-backends", "gauntlet-cli"]);
    let mut reach = g["gauntlet-tool"].clone();
    for d in g["gauntlet-tool"].clone() {
        reach.extend(g[&d].iter().cloned());
    }
    assert!(everything.is_subset(&reach), "only the shipped binary sees everything");
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "target") {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `tokio::select!` (and `futures::select!`) poll branches in random order unless told
/// `biased;`; outside madsim's control that is unseeded randomness.
#[test]
fn every_select_in_simulated_code_is_biased() {
    let mut files = Vec::new();
    for dir in ["sim", "harness", "scenarios"] {
        rust_files(&root().join(dir), &mut files);
    }
    let mut offenders = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("select!") && !code.contains("select_biased!") {
                let next: String = text.lines().skip(i).take(3).collect::<Vec<_>>().join(" ");
                if !next.contains("biased;") {
                    offenders.push(format!("{}:{}", f.display(), i + 1));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "unbiased select! in simulated code (add `biased;`): {offenders:?}");
}

/// rand 0.8 draws from getrandom 0.2, which madsim does not intercept: every workspace crate
/// that uses rand must ask for 0.9 or later.
#[test]
fn workspace_crates_use_rand_0_9_or_later() {
    let meta = metadata();
    let mut checked = 0;
    for p in meta["packages"].as_array().unwrap() {
        for d in p["dependencies"].as_array().unwrap() {
            if d["name"] == "rand" {
                let req = d["req"].as_str().unwrap();
                assert!(!req.contains("0.8") && !req.contains("0.7"), "{} asks for rand {req}", p["name"]);
                checked += 1;
            }
        }
    }
    assert!(checked >= 2, "rand users were found ({checked})");
}

/// Architecture invariant: the harness knows no application semantics — no shipped
/// application is named anywhere in its source.
#[test]
fn the_harness_names_no_application() {
    let mut files = Vec::new();
    rust_files(&root().join("harness/src"), &mut files);
    rust_files(&root().join("harness/cli/src"), &mut files);
    assert!(files.len() >= 10, "found the harness sources");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for app in gauntlet_scenarios::registry::registry().names() {
            assert!(!text.contains(app), "{} mentions the application {app:?}", file.display());
        }
    }
}
