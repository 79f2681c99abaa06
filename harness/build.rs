//! Records the workspace's git revision (when built from a git checkout) for bundles.
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "a build script runs git, outside any simulation"
)]

fn main() {
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    println!("cargo:rerun-if-env-changed=GAUNTLET_GIT_REV");
    let rev = std::env::var("GAUNTLET_GIT_REV").ok().filter(|r| !r.is_empty()).or_else(|| {
        let out = std::process::Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    });
    println!("cargo:rustc-env=GAUNTLET_GIT_REV={}", rev.unwrap_or_default());
}
