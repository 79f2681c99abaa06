//! The compose backend (see the module's functions): containers of locally built images.

use crate::sys::run;

/// Removes every container and network labelled with a Gauntlet run id; returns their names.
pub fn clean_all() -> Vec<String> {
    let mut removed = Vec::new();
    if !crate::sys::has("docker") {
        return removed;
    }
    let ids = run("docker", &["ps", "-aq", "--filter", "label=dev.gauntlet.run-id"]).unwrap_or_default();
    for id in ids.split_whitespace() {
        if run("docker", &["rm", "-f", id]).is_ok() {
            removed.push(format!("container {id}"));
        }
    }
    let nets = run("docker", &["network", "ls", "-q", "--filter", "label=dev.gauntlet.run-id"]).unwrap_or_default();
    for id in nets.split_whitespace() {
        if run("docker", &["network", "rm", id]).is_ok() {
            removed.push(format!("network {id}"));
        }
    }
    removed
}
