//! Plan files: each equals its builder call, round-trips through TOML, and validates; every
//! malformed plan in the corpus yields its specific error and never a panic.

use gauntlet::{Plan, Scenario};
use gauntlet_scenarios::gossip::GossipApp;
use gauntlet_scenarios::plans;
use std::path::Path;

fn plan_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_plan_file_equals_its_builder_call() {
    let builders = plans::all();
    let files = plan_files(&plans::dir());
    let ledger = plans::ledger();
    assert_eq!(ledger.len(), 15, "the ledger's catalogue");
    assert_eq!(files.len(), builders.len() + ledger.len(), "one builder per plan file, besides the ledger's");
    for (name, plan) in &ledger {
        assert_eq!(&plan.name, name, "a ledger plan is named as its file");
        assert_eq!(Plan::from_toml(&plan.to_toml()).unwrap(), *plan, "{name}: file → TOML → plan");
        gauntlet_scenarios::registry::check(plan).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for file in files.into_iter().filter(|f| !f.file_name().unwrap().to_str().unwrap().starts_with("ledger-")) {
        let stem = file.file_stem().unwrap().to_str().unwrap();
        let from_file = Plan::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let (_, built) = builders.iter().find(|(n, _)| *n == stem).unwrap_or_else(|| panic!("no builder for {stem}"));
        assert_eq!(&from_file, built, "{stem}: file and builder differ");
        assert_eq!(Plan::from_toml(&built.to_toml()).unwrap(), *built, "{stem}: builder → TOML → plan");
        gauntlet_scenarios::registry::check(&from_file).unwrap_or_else(|e| panic!("{stem}: {e}"));
    }
}

#[test]
fn every_malformed_plan_yields_its_error_and_never_panics() {
    let files = plan_files(&plans::dir().join("malformed"));
    assert!(files.len() >= 25, "the corpus has {} plans", files.len());
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expected =
            text.lines().next().and_then(|l| l.strip_prefix("# expect: ")).expect("first line: # expect: ...");
        let result = std::panic::catch_unwind(|| {
            let plan = Plan::from_toml(&text)?;
            Scenario::new(GossipApp, plan).map(|_| ())
        });
        let name = file.file_name().unwrap().to_string_lossy();
        match result {
            Err(_) => panic!("{name}: validation panicked"),
            Ok(Ok(())) => panic!("{name}: accepted a malformed plan"),
            Ok(Err(e)) => {
                let msg = e.to_string();
                assert!(msg.contains(expected), "{name}: expected {expected:?} in:\n{msg}");
            }
        }
    }
}

#[test]
fn every_problem_is_listed_not_just_the_first() {
    let plan = Plan::from_toml(
        r#"
        name = ""
        [app]
        name = "gossip"
        [topology.nodes]
        gossip = 0
        [chaos.restart]
        min_delay = "20s"
        max_delay = "10s"
        "#,
    )
    .unwrap();
    let err = Scenario::new(GossipApp, plan).err().unwrap();
    let paths: Vec<String> = err.problems().into_iter().map(|p| p.path).collect();
    assert_eq!(paths, ["name", "topology.nodes.gossip", "chaos.restart"], "{err}");
}
