//! The backends' error type: every failure names what was being done and to what.

use std::path::PathBuf;

/// Why a real deployment could not be made, driven or torn down.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// A system command failed.
    #[error("`{command}` failed: {detail}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status and stderr, or the spawn error.
        detail: String,
    },
    /// A node binary is not where it should be.
    #[error("node binary {binary} not found at {}; build it with `cargo real-build --release --bins` in the crate that has it (for the systems Gauntlet ships: `-p gauntlet-scenarios`), or pass --bin-dir", path.display())]
    MissingBinary {
        /// The binary's name.
        binary: String,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A binary of a system installed on the machine (not built here) is missing.
    #[error("{binary} is not installed: install {install}")]
    NotInstalled {
        /// The binary's path.
        binary: String,
        /// What to install.
        install: String,
    },
    /// The plan needs faults this backend cannot inject here.
    #[error("backend {backend} cannot run plan {plan}: {}", missing.join("; "))]
    Unsupported {
        /// The backend.
        backend: String,
        /// The plan.
        plan: String,
        /// Each fault it cannot inject, with why.
        missing: Vec<String>,
    },
    /// A node did not become healthy.
    #[error("node {node} did not answer /healthz within {waited_ms} ms (log: {})", log.display())]
    NotReady {
        /// The node.
        node: String,
        /// How long we waited.
        waited_ms: u64,
        /// Its log file.
        log: PathBuf,
    },
    /// A plan that does not fit a real backend, or an unknown node.
    #[error("{0}")]
    Invalid(String),
    /// File system trouble.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The run was interrupted (SIGINT, SIGTERM, SIGHUP); everything was torn down.
    #[error("interrupted; the deployment was torn down")]
    Interrupted,
}

impl BackendError {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        BackendError::Io { what: what.into(), source }
    }
}

/// The backends' result.
pub type Result<T, E = BackendError> = std::result::Result<T, E>;
