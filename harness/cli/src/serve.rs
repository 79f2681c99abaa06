//! `gauntlet serve` (the run service of `gauntlet-serve`, executing this command line's
//! applications) and its clients: `submit`, `status`, `logs`. They are built with the `serve`
//! feature ([`service`], [`client`]); without it each names the feature to turn on.

use std::path::PathBuf;

#[cfg(feature = "serve")]
mod client;
#[cfg(feature = "serve")]
mod service;
#[cfg(feature = "serve")]
pub use client::{logs, status, submit, submit_text};
#[cfg(feature = "serve")]
pub use service::serve;

/// `gauntlet serve`'s flags.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeFlags {
    /// Where to listen (loopback by default).
    #[arg(long, default_value = "127.0.0.1:7878")]
    pub listen: std::net::SocketAddr,
    /// The data directory: the run store (runs.sqlite), plans, bundles, the token.
    #[arg(long, default_value = "gauntlet-data")]
    pub data: PathBuf,
    /// The write token for mutating requests. Default: GAUNTLET_TOKEN, else one generated
    /// into <data>/token.
    #[arg(long, env = "GAUNTLET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Runs executing at once.
    #[arg(long, default_value_t = 1)]
    pub max_active: usize,
    /// Seeds of one run at once, unless a submission says. Default: the number of cores.
    #[arg(long)]
    pub jobs: Option<u32>,
    /// Directories submissions may name plan files in (`plan_path`; repeatable). Default: the
    /// command line's plan directory.
    #[arg(long = "plans", value_name = "DIR")]
    pub plans: Vec<PathBuf>,
    /// Serve on an address that is not loopback (the API then reaches other machines).
    #[arg(long)]
    pub allow_remote: bool,
    /// The run store: `sqlite` (default: <data>/runs.sqlite) or a `postgres://user:pw@host/db`
    /// URL (GAUNTLET_STORE).
    #[arg(long, env = "GAUNTLET_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// POST each failed run's alert (JSON: the run, its failures, the build) here; failed
    /// deliveries are retried with backoff and recorded (`/v1/incidents`).
    #[arg(long)]
    pub webhook: Option<String>,
    /// Close a client's connection when a write to it has been blocked this long (a client
    /// that stopped reading its event stream).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub stall_limit: std::time::Duration,
}

/// Where the client commands find the server and its token.
#[derive(clap::Args, Clone, Debug)]
pub struct ClientFlags {
    /// The server's URL.
    #[arg(long, env = "GAUNTLET_SERVER", default_value = "http://127.0.0.1:7878")]
    pub server: String,
    /// The write token (for `submit`).
    #[arg(long, env = "GAUNTLET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[cfg(not(feature = "serve"))]
mod off {
    use super::{ClientFlags, ServeFlags};
    use crate::apps::Apps;
    use crate::features::missing;
    use std::path::Path;

    /// `gauntlet serve` without the `serve` feature.
    pub fn serve(_apps: &Apps, _flags: ServeFlags) -> i32 {
        missing("serve", "serve")
    }
    /// `gauntlet submit` without the `serve` feature.
    pub fn submit(
        _plan: &Path,
        _seeds: &str,
        _bugs: &[String],
        _jobs: Option<u32>,
        _wait: bool,
        _c: &ClientFlags,
    ) -> i32 {
        missing("submit", "serve")
    }
    /// `gauntlet script --submit` without the `serve` feature.
    pub fn submit_text(
        _text: &str,
        _seeds: &str,
        _bugs: &[String],
        _jobs: Option<u32>,
        _wait: bool,
        _c: &ClientFlags,
    ) -> i32 {
        missing("script --submit", "serve")
    }
    /// `gauntlet status` without the `serve` feature.
    pub fn status(_id: Option<&str>, _c: &ClientFlags) -> i32 {
        missing("status", "serve")
    }
    /// `gauntlet logs` without the `serve` feature.
    pub fn logs(_id: &str, _c: &ClientFlags) -> i32 {
        missing("logs", "serve")
    }
}
#[cfg(not(feature = "serve"))]
pub use off::{logs, serve, status, submit, submit_text};
