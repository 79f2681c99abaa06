//! Running system commands (`ip`, `iptables`, `docker`, `kubectl`) with errors that carry the
//! command line and its stderr, and detecting what this machine can do.

use crate::error::{BackendError, Result};
use std::process::{Command, Stdio};

/// Runs `program args…` to completion; an error carries the command line and its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    let command = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BackendError::Command { command: command.clone(), detail: e.to_string() })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(BackendError::Command { command, detail: format!("{}: {stderr}", out.status) });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `program args…` with `input` on its stdin; errors as [`run`]'s.
pub fn run_with_input(program: &str, args: &[&str], input: &str) -> Result<String> {
    use std::io::Write;
    let command = format!("{program} {}", args.join(" "));
    let fail = |detail: String| BackendError::Command { command: command.clone(), detail };
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    child.stdin.take().expect("piped stdin").write_all(input.as_bytes()).map_err(|e| fail(e.to_string()))?;
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(fail(format!("{}: {stderr}\ninput:\n{input}", out.status)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a command inside network namespace `ns` (`ip netns exec`).
pub fn in_ns(ns: &str, program: &str, args: &[&str]) -> Result<String> {
    let mut all = vec!["netns", "exec", ns, program];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Whether `program` can be run (found on `PATH` and answers `--version` or `-V`).
pub fn has(program: &str) -> bool {
    ["--version", "-V", "help"].iter().any(|flag| {
        Command::new(program)
            .arg(flag)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Whether this process runs as root (network namespaces need it).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// What the machine offers the local backend, detected rather than assumed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Features {
    /// Root, `ip netns` and veth links work: nodes get namespaces and real faults.
    pub namespaces: bool,
    /// `iptables` works inside a namespace (partitions, one-way cuts, loss, the delay queue).
    pub iptables: bool,
    /// The kernel has `tc netem` (delay, loss, duplication, reordering in the kernel).
    pub netem: bool,
    /// iptables' `NFQUEUE` target works (delay through the project's `gauntlet-delayer`).
    pub nfqueue: bool,
    /// Why each missing feature is missing.
    pub notes: Vec<String>,
}

impl Features {
    /// Probes the machine in a scratch namespace (removed again).
    pub fn detect() -> Features {
        let mut f = Features::default();
        if !is_root() {
            f.notes.push("not root: network namespaces need root (run with sudo)".into());
            return f;
        }
        if !has("ip") {
            f.notes.push("`ip` (iproute2) is not installed".into());
            return f;
        }
        let ns = format!("gnt-probe-{}", std::process::id());
        if let Err(e) = run("ip", &["netns", "add", &ns]) {
            f.notes.push(format!("ip netns does not work: {e}"));
            return f;
        }
        f.namespaces = in_ns(&ns, "ip", &["link", "set", "lo", "up"]).is_ok();
        f.iptables = in_ns(&ns, "iptables", &["-w", "-A", "OUTPUT", "-o", "lo", "-j", "ACCEPT"]).is_ok();
        if !f.iptables {
            f.notes.push("iptables does not work in a namespace (apt install iptables)".into());
        }
        let netem = in_ns(&ns, "tc", &["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]);
        f.netem = netem.is_ok();
        if let Err(e) = netem {
            f.notes.push(format!("no tc netem here ({e}): delay goes through NFQUEUE and gauntlet-delayer"));
        }
        f.nfqueue = f.iptables
            && in_ns(
                &ns,
                "iptables",
                &["-w", "-A", "OUTPUT", "-o", "lo", "-j", "NFQUEUE", "--queue-num", "9", "--queue-bypass"],
            )
            .is_ok();
        if f.iptables && !f.nfqueue {
            f.notes.push("iptables NFQUEUE does not work: no delay without netem".into());
        }
        let _ = run("ip", &["netns", "del", &ns]);
        f
    }
}
