//! Node processes of the local backend: started (inside a namespace or not) with their logs
//! appended to a file per node, killed with SIGKILL and reaped, paused with SIGSTOP, resumed
//! with SIGCONT, restarted with the same command line and data directory (or another build's,
//! for a rolling upgrade).

use crate::error::{BackendError, Result};
use crate::spec::{Build, NodeDeploy};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A node process's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Running.
    Running,
    /// Stopped by SIGSTOP.
    Paused,
    /// Killed (or exited).
    Down,
}

/// One node's process.
#[derive(Debug)]
pub struct NodeProcess {
    spec: NodeDeploy,
    program: PathBuf,
    ns: Option<String>,
    log: PathBuf,
    run_id: String,
    /// Extra environment set by faults (clock skew), applied at every (re)start.
    extra_env: BTreeMap<String, String>,
    child: Option<Child>,
    state: ProcState,
    starts: u32,
}

impl NodeProcess {
    /// A node that runs `program` (the node binary's path) as `spec` says, inside `ns` if
    /// given, logging to `log`. Not started yet.
    pub fn new(spec: NodeDeploy, program: PathBuf, ns: Option<String>, log: PathBuf, run_id: &str) -> Self {
        NodeProcess {
            spec,
            program,
            ns,
            log,
            run_id: run_id.to_owned(),
            extra_env: BTreeMap::new(),
            child: None,
            state: ProcState::Down,
            starts: 0,
        }
    }

    /// Its spec.
    pub fn spec(&self) -> &NodeDeploy {
        &self.spec
    }

    /// Its log file.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Its state (a process that exited on its own counts as down).
    pub fn state(&mut self) -> ProcState {
        if let Some(child) = self.child.as_mut() {
            if matches!(child.try_wait(), Ok(Some(_))) {
                self.child = None;
                self.state = ProcState::Down;
            }
        }
        self.state
    }

    /// How many times it was started.
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// Its pid, while it has one.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sets an environment variable for the next starts.
    pub fn set_env(&mut self, key: &str, value: String) {
        self.extra_env.insert(key.to_owned(), value);
    }

    /// Starts it (it must be down).
    pub fn start(&mut self) -> Result<()> {
        debug_assert!(self.child.is_none(), "{} started twice", self.spec.name);
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .map_err(|e| BackendError::io(format!("opening {}", self.log.display()), e))
        };
        let (out, err) = (open()?, open()?);
        let mut cmd = match &self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.program);
                c
            }
            None => Command::new(&self.program),
        };
        cmd.args(&self.spec.args)
            .envs(&self.spec.env)
            .envs(&self.extra_env)
            .env(crate::RUN_ID_ENV, &self.run_id)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Its own process group: a Ctrl-C at the terminal reaches the driver, which tears
        // the cluster down in order, not every node at once.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let child = cmd.spawn().map_err(|e| BackendError::Command {
            command: format!("{} (node {})", self.program.display(), self.spec.name),
            detail: e.to_string(),
        })?;
        self.child = Some(child);
        self.state = ProcState::Running;
        self.starts += 1;
        Ok(())
    }

    /// Kills it with SIGKILL and reaps it (nothing if it is down).
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            child.wait().map_err(|e| BackendError::io(format!("reaping {}", self.spec.name), e))?;
        }
        self.state = ProcState::Down;
        Ok(())
    }

    /// Runs `build` (found at `program`) from its next start on: a rolling upgrade's new
    /// command line, with the same data directory and the environment faults set.
    pub fn switch_build(&mut self, program: PathBuf, build: &Build) {
        self.program = program;
        self.spec.binary = build.binary.clone();
        self.spec.args = build.args.clone();
        self.spec.env = build.env.clone();
    }

    /// Kills it if it runs, and starts it again.
    pub fn restart(&mut self) -> Result<()> {
        self.kill()?;
        self.start()
    }

    fn signal(&mut self, signal: Signal) -> Result<()> {
        let Some(pid) = self.pid() else {
            return Err(BackendError::Invalid(format!("{} is down; cannot send it {signal}", self.spec.name)));
        };
        kill(Pid::from_raw(pid as i32), signal)
            .map_err(|e| BackendError::Invalid(format!("sending {signal} to {} (pid {pid}): {e}", self.spec.name)))
    }

    /// Stops it with SIGSTOP.
    pub fn pause(&mut self) -> Result<()> {
        self.signal(Signal::SIGSTOP)?;
        self.state = ProcState::Paused;
        Ok(())
    }

    /// Continues it with SIGCONT.
    pub fn resume(&mut self) -> Result<()> {
        if self.state == ProcState::Paused {
            self.signal(Signal::SIGCONT)?;
            self.state = ProcState::Running;
        }
        Ok(())
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}
