//! Finding and removing what runs left behind: processes carrying a run id in their
//! environment ([`RUN_ID_ENV`](crate::RUN_ID_ENV)), network namespaces named `gnt-…` (their
//! veth links go with them), the root namespace's host links and guard routes, and docker
//! containers and networks labelled with a run id. `gauntlet clean` calls [`clean_all`]; a
//! deployment's own teardown calls [`clean_run`].

use crate::error::Result;
use crate::netns::{NS_PREFIX, ROUTE_PROTO};
use crate::sys::run;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

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
}

impl Cleaned {
    /// Whether nothing was left.
    pub fn is_empty(&self) -> bool {
        self.processes.is_empty()
            && self.namespaces.is_empty()
            && self.links.is_empty()
            && self.routes.is_empty()
            && self.containers.is_empty()
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
    Ok(cleaned)
}
