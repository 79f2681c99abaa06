//! Finding and removing what runs left behind: processes carrying a run id in their
//! environment ([`RUN_ID_ENV`](crate::RUN_ID_ENV)), network namespaces named `gnt-…` (their
//! veth links go with them), the root namespace's host links and guard routes, and docker
//! containers and networks labelled with a run id, and the data directories of systems nobody
//! here wrote (registered under [`registry_dir`] while their run lasts). `gauntlet clean` calls
//! [`clean_all`]; a deployment's own teardown calls [`clean_run`].

use crate::error::Result;
use crate::netns::{NS_PREFIX, ROUTE_PROTO};
use crate::sys::run;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};

/// The environment variable naming the directory where runs register their data directories
/// (default: `gauntlet-runs` in the system's temporary directory).
pub const REGISTRY_ENV: &str = "GAUNTLET_RUN_REGISTRY";

/// What a clean-up removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cleaned {
    /// Processes killed (pid and command).
    pub processes: Vec<String>,
    /// Namespaces removed.
    pub namespaces: Vec<String>,
    /// Links removed from the root namespace.
    pub links: Vec<String>,
    /// Routes removed.
    pub routes: Vec<String>,
    /// Docker containers and networks removed.
    pub containers: Vec<String>,
    /// Data directories removed (of runs that remove theirs at teardown).
    pub data_dirs: Vec<String>,
}

impl Cleaned {
    /// Whether nothing was left.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
            && self.namespaces.is_empty()
            && self.links.is_empty()
            && self.routes.is_empty()
            && self.containers.is_empty()
            && self.data_dirs.is_empty()
    }
}

/// Where a run whose data directory goes at teardown records it, so that `gauntlet clean` finds
/// it after the run was killed: one file per run id holding the directory's path.
pub fn registry_dir() -> PathBuf {
    std::env::var_os(REGISTRY_ENV).map_or_else(|| std::env::temp_dir().join("gauntlet-runs"), PathBuf::from)
}

/// The runs whose data directories are registered for removal: `(run id, directory)`, sorted.
pub fn registered_data() -> Vec<(String, String)> {
    records(&registry_dir()).into_iter().map(|(id, _, dir)| (id, dir)).collect()
}

/// The records in `registry`: `(run id, record file, recorded directory)`, sorted by run id
/// (a record being written, `.ID.tmp`, is not one yet).
fn records(registry: &Path) -> Vec<(String, PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(registry) else { return Vec::new() };
    let mut out: Vec<(String, PathBuf, String)> = entries
        .flatten()
        .filter_map(|e| {
            let id = e.file_name().to_str()?.to_owned();
            let dir = std::fs::read_to_string(e.path()).unwrap_or_default().trim().to_owned();
            (!id.starts_with('.')).then(|| (id, e.path(), dir))
        })
        .collect();
    out.sort();
    out
}

/// Records that run `run_id`'s data directory `data` (`…/RUN_ID/data`) is to be removed.
pub fn register_data(run_id: &str, data: &Path) -> Result<()> {
    register_data_in(&registry_dir(), run_id, data)
}

fn register_data_in(registry: &Path, run_id: &str, data: &Path) -> Result<()> {
    let io = |what: String| move |e| crate::error::BackendError::io(what, e);
    std::fs::create_dir_all(registry).map_err(io(format!("creating {}", registry.display())))?;
    let data = std::path::absolute(data).map_err(io(format!("resolving {}", data.display())))?;
    let tmp = registry.join(format!(".{run_id}.tmp"));
    std::fs::write(&tmp, data.display().to_string()).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, registry.join(run_id)).map_err(io(format!("registering {}", data.display())))
}

/// Removes the registered data directories of the runs `filter` accepts, and their records. A
/// record is honoured only for a directory named `data` inside one named after its run id, so
/// a damaged record never removes anything else.
fn remove_registered(registry: &Path, filter: impl Fn(&str) -> bool, cleaned: &mut Cleaned) {
    for (run_id, record, dir) in records(registry).into_iter().filter(|(id, ..)| filter(id)) {
        let data = PathBuf::from(dir);
        let ours = data.file_name().is_some_and(|n| n == "data")
            && data.parent().and_then(Path::file_name).is_some_and(|n| n == run_id.as_str());
        if ours && data.exists() && std::fs::remove_dir_all(&data).is_ok() {
            cleaned.data_dirs.push(data.display().to_string());
        }
        let _ = std::fs::remove_file(record);
    }
}

/// Processes whose environment carries a Gauntlet run id: `(pid, run id, command)`, sorted.
pub fn tagged_processes() -> Vec<(i32, String, String)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    let me = std::process::id() as i32;
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(entry.path().join("environ")) else { continue };
        let prefix = format!("{}=", crate::RUN_ID_ENV);
        let Some(id) = env
            .split(|&b| b == 0)
            .filter_map(|kv| std::str::from_utf8(kv).ok())
            .find_map(|kv| kv.strip_prefix(prefix.as_str()))
        else {
            continue;
        };
        let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ").trim().to_owned();
        out.push((pid, id.to_owned(), cmd));
    }
    out.sort();
    out
}

/// Gauntlet's network namespaces.
pub fn namespaces() -> Vec<String> {
    let list = run("ip", &["netns", "list"]).unwrap_or_default();
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(NS_PREFIX))
        .map(String::from)
        .collect()
}

/// Root-namespace links named like a Gauntlet host link (`g` + 8 hex digits + `h`).
pub fn host_links() -> Vec<String> {
    let list = run("ip", &["-o", "link", "show"]).unwrap_or_default();
    list.lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_owned())
        .filter(|n| {
            n.len() == 10 && n.starts_with('g') && n.ends_with('h') && n[1..9].chars().all(|c| c.is_ascii_hexdigit())
        })
        .collect()
}

/// Gauntlet's guard routes.
pub fn guard_routes() -> Vec<String> {
    let list = run("ip", &["-4", "route", "show", "proto", ROUTE_PROTO]).unwrap_or_default();
    list.lines().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty()).collect()
}

fn kill_tagged(filter: impl Fn(&str) -> bool, cleaned: &mut Cleaned) {
    for (pid, id, cmd) in tagged_processes() {
        if filter(&id) && kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
            cleaned.processes.push(format!("{pid} {cmd}"));
        }
    }
}

fn remove_namespace(ns: &str, cleaned: &mut Cleaned) {
    // Anything still inside (a process without the tag) dies first, else the namespace lives on.
    for pid in run("ip", &["netns", "pids", ns]).unwrap_or_default().split_whitespace() {
        if let Ok(pid) = pid.parse::<i32>() {
            if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                cleaned.processes.push(format!("{pid} (in {ns})"));
            }
        }
    }
    if run("ip", &["netns", "del", ns]).is_ok() {
        cleaned.namespaces.push(ns.to_owned());
    }
}

fn remove_route(route: &str, cleaned: &mut Cleaned) {
    let mut args = vec!["route", "del"];
    args.extend(route.split_whitespace());
    if run("ip", &args).is_ok() {
        cleaned.routes.push(route.to_owned());
    }
}

/// Removes everything of run `run_id`: its processes, namespaces, host link and guard route.
pub fn clean_run(run_id: &str) -> Result<Cleaned> {
    let mut cleaned = Cleaned::default();
    kill_tagged(|id| id == run_id, &mut cleaned);
    let host = format!("g{}h", run_id.strip_prefix(NS_PREFIX).unwrap_or(run_id));
    // The guard route of this run is the one on the host link's subnet.
    let subnet = run("ip", &["-4", "-o", "addr", "show", "dev", &host])
        .ok()
        .and_then(|a| a.split_whitespace().skip_while(|w| *w != "inet").nth(1).map(String::from))
        .and_then(|cidr| cidr.rsplit_once('.').map(|(net, _)| format!("{net}.0/24")));
    for ns in namespaces().into_iter().filter(|n| n.starts_with(&format!("{run_id}-"))) {
        remove_namespace(&ns, &mut cleaned);
    }
    if host_links().contains(&host) && run("ip", &["link", "del", &host]).is_ok() {
        cleaned.links.push(host);
    }
    if let Some(subnet) = subnet {
        for route in guard_routes().into_iter().filter(|r| r.contains(&subnet)) {
            remove_route(&route, &mut cleaned);
        }
    }
    remove_registered(&registry_dir(), |id| id == run_id, &mut cleaned);
    Ok(cleaned)
}

/// Removes what every Gauntlet run left on this machine (run it when no run is going on).
pub fn clean_all() -> Result<Cleaned> {
    let mut cleaned = Cleaned::default();
    kill_tagged(|_| true, &mut cleaned);
    for ns in namespaces() {
        remove_namespace(&ns, &mut cleaned);
    }
    for link in host_links() {
        if run("ip", &["link", "del", &link]).is_ok() {
            cleaned.links.push(link);
        }
    }
    for route in guard_routes() {
        remove_route(&route, &mut cleaned);
    }
    cleaned.containers.extend(crate::compose::clean_all());
    remove_registered(&registry_dir(), |_| true, &mut cleaned);
    Ok(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_data_directories_are_removed_and_nothing_else() {
        let root = std::env::temp_dir().join(format!("gauntlet-clean-test-{}", std::process::id()));
        let registry = root.join("registry");
        let ours = root.join("gnt-00000001").join("data");
        let other = root.join("gnt-00000002").join("data");
        let stray = root.join("keep");
        for d in [&ours, &other, &stray] {
            std::fs::create_dir_all(d.join("member")).unwrap();
        }
        register_data_in(&registry, "gnt-00000001", &ours).unwrap();
        register_data_in(&registry, "gnt-00000002", &other).unwrap();
        // A damaged record pointing elsewhere is dropped without removing what it names.
        std::fs::write(registry.join("gnt-00000003"), stray.display().to_string()).unwrap();
        let mut cleaned = Cleaned::default();
        remove_registered(&registry, |id| id == "gnt-00000001", &mut cleaned);
        assert_eq!(cleaned.data_dirs, [ours.display().to_string()]);
        assert!(!ours.exists() && other.exists());
        remove_registered(&registry, |_| true, &mut cleaned);
        assert!(!other.exists() && stray.exists(), "only directories named data in their run's directory");
        assert_eq!(std::fs::read_dir(&registry).unwrap().count(), 0, "every record is gone");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
