//! `test_run!()` knows where it is: package, test target, test name, profile; the replay line
//! it prints runs exactly this test, and bundles go under this build's target directory.
#![cfg(madsim)]

use gauntlet::sim::Seeds;

#[test]
fn test_run_infers_package_target_name_and_profile() {
    let t = gauntlet::test_run!();
    assert_eq!(t.package, "gauntlet");
    assert_eq!(t.test, "harness", "an integration test's target (tests/harness.rs, this module in it)");
    assert_eq!(t.name, "test_run::test_run_infers_package_target_name_and_profile", "the running test's path");
    let line = t.replay_line(Seeds { sim: 4, chaos: 5 });
    assert!(
        line.starts_with("SIM_SEED=4 CHAOS_SEED=5 cargo test")
            && line.ends_with("-p gauntlet --test harness test_run::test_run_infers_package_target_name_and_profile"),
        "{line}"
    );
    // The profile this binary was built with: `debug` is the dev profile (no flag).
    let exe = std::env::current_exe().unwrap();
    let profile =
        exe.parent().and_then(|d| d.parent()).and_then(|d| d.file_name()).unwrap().to_string_lossy().into_owned();
    match profile.as_str() {
        "debug" => assert!(!line.contains("--release") && !line.contains("--profile"), "{line}"),
        "release" => assert!(line.contains("cargo test --release -p"), "{line}"),
        other => assert!(line.contains(&format!("--profile {other}")), "{line}"),
    }
    // Bundles go under the target directory this test binary was built in, never elsewhere.
    let target = gauntlet::testing::target_dir();
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        assert!(exe.starts_with(&target), "{} is under the target directory {}", exe.display(), target.display());
    }
    assert!(t.bundle_dir.starts_with(&target), "{} is under {}", t.bundle_dir.display(), target.display());
}

#[test]
#[ignore = "run by the test below, as an ignored test is"]
fn an_ignored_test() {
    let line = gauntlet::test_run!().replay_line(Seeds::new(1));
    assert!(line.ends_with("an_ignored_test -- --ignored --exact"), "{line}");
}

#[test]
#[allow(clippy::disallowed_types, reason = "runs this test binary again")]
fn the_replay_line_of_an_ignored_test_runs_it() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "test_run::an_ignored_test"])
        .output()
        .expect("the test binary runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("1 passed"), "{text}{}", String::from_utf8_lossy(&out.stderr));
}
