//! # gauntlet-serve: the run service
//!
//! `gauntlet serve` is this crate under a command line: a versioned JSON API (`/v1/…`) where
//! runs are submitted, queued, executed (every seed in its own process, as `gauntlet sweep`
//! does), stored, followed live over server-sent events and cancelled; Prometheus metrics at
//! `/metrics`. It knows no application and no plan format beyond what an [`Executor`] tells
//! it: the command line that embeds it checks plans and names the command that runs one seed,
//! so a crate's own `gauntlet` serves its own applications.
//!
//! ```no_run
//! # fn demo(executor: std::sync::Arc<dyn gauntlet_serve::Executor>) -> Result<(), gauntlet_serve::ServeError> {
//! let config = gauntlet_serve::Config::new("gauntlet-data".into(), Some("s3cret".into()));
//! gauntlet_serve::serve_blocking(config, executor) // until Ctrl-C
//! # }
//! ```
#![allow(
    clippy::disallowed_methods,
    clippy::disallowed_types,
    reason = "the run service lives in the real world: wall-clock times, child processes and sockets"
)]

pub mod alerts;
pub mod api;
pub mod dashboard;
pub mod executor;
pub mod metrics;
pub mod queue;
pub mod stall;
pub mod store;
#[doc(hidden)]
pub mod testing;

pub use executor::{Executor, PlanInfo, SeedOutcome};
pub use store::{RunState, SqliteStore, Store};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Why the service could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// A file or socket.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A configuration that cannot work.
    #[error("{0}")]
    Config(String),
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it listens (default 127.0.0.1:7878).
    pub listen: SocketAddr,
    /// The data directory: the store (`runs.sqlite`), plans and bundles.
    pub data: PathBuf,
    /// The token every mutating request must carry (`Authorization: Bearer …`). `None`:
    /// one is generated and written to `<data>/token`.
    pub token: Option<String>,
    /// Runs executing at once.
    pub max_active: usize,
    /// Seeds of one run executing at once, unless the submission says otherwise.
    pub jobs: u32,
    /// Directories a submission may name a plan file in (`plan_path`).
    pub plan_dirs: Vec<PathBuf>,
    /// The largest request body accepted, in bytes.
    pub max_body: usize,
    /// The most seeds one run may have.
    pub max_seeds: u64,
    /// A run's time limit unless the submission gives one, in milliseconds.
    pub time_limit_ms: u64,
    /// The store: `None` (or `sqlite`) for `<data>/runs.sqlite`, or a `postgres://` URL.
    pub store: Option<String>,
    /// Where failed runs' alerts are POSTed (an `http://` URL), if anywhere.
    pub webhook: Option<String>,
    /// How long a write to a client may stay blocked before its connection is closed (a
    /// client that stopped reading its event stream).
    pub stall_limit: std::time::Duration,
}

impl Config {
    /// The defaults, with a data directory and a token.
    pub fn new(data: PathBuf, token: Option<String>) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            data,
            token,
            max_active: 1,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
            plan_dirs: Vec::new(),
            max_body: 1 << 20,
            max_seeds: 100_000,
            time_limit_ms: 3_600_000,
            store: None,
            webhook: None,
            stall_limit: std::time::Duration::from_secs(30),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The token: the configured one, or the one in `<data>/token`, or a new random one written
/// there (mode 0600, temp file then rename).
fn token(config: &Config) -> Result<String, ServeError> {
    if let Some(t) = &config.token {
        if t.len() < 8 {
            return Err(ServeError::Config("the token must be at least 8 characters".into()));
        }
        return Ok(t.clone());
    }
    let path = config.data.join("token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        return Ok(t.trim().to_owned());
    }
    let mut bytes = [0u8; 24];
    getrandom(&mut bytes).map_err(|source| ServeError::Io { what: "drawing a token".into(), source })?;
    let t: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = path.with_extension("tmp");
    let io = |what: &str| {
        let what = format!("{what} {}", path.display());
        move |source| ServeError::Io { what, source }
    };
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io("writing"))?;
        f.write_all(t.as_bytes()).and_then(|()| f.sync_all()).map_err(io("writing"))?;
    }
    std::fs::rename(&tmp, &path).map_err(io("writing"))?;
    Ok(t)
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// A running service: its address and the handle that stops it.
pub struct Running {
    /// Where it listens (the port, when `listen` asked for port 0).
    pub addr: SocketAddr,
    /// The token for mutating requests.
    pub token: String,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish, and waits.
    pub async fn stop(self) -> Result<(), ServeError> {
        let _ = self.shutdown.send(true);
        self.task.await.unwrap_or_else(|e| Err(ServeError::Config(format!("the server task failed: {e}"))))
    }
}

/// Starts the service on the current tokio runtime: opens the store, resumes what a previous
/// server left running, binds, and serves until [`Running::stop`].
pub async fn start(config: Config, executor: Arc<dyn Executor>) -> Result<Running, ServeError> {
    if let Some(url) = &config.webhook {
        if !url.starts_with("http://") && !url.starts_with("https://") {
            return Err(ServeError::Config(format!("--webhook {url:?}: expected an http:// or https:// URL")));
        }
    }
    std::fs::create_dir_all(&config.data)
        .map_err(|source| ServeError::Io { what: format!("creating {}", config.data.display()), source })?;
    let token = token(&config)?;
    let metrics = Arc::new(metrics::Metrics::new());
    // The store's clients block (PostgreSQL's runs a runtime of its own): open it, and resume
    // what a previous server left, off the async threads.
    let (store, queue) = {
        let (config, executor, metrics) = (config.clone(), executor.clone(), metrics.clone());
        tokio::task::spawn_blocking(move || -> Result<_, ServeError> {
            let store = store::open(config.store.as_deref(), &config.data)?;
            let queue = queue::Queue::start(store.clone(), executor, &config, metrics)?;
            if let Some(url) = &config.webhook {
                alerts::start(store.clone(), url.clone())
                    .map_err(|source| ServeError::Io { what: "starting the alert deliverer".into(), source })?;
            }
            Ok((store, queue))
        })
        .await
        .map_err(|e| ServeError::Config(format!("opening the store failed: {e}")))??
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Io { what: format!("listening on {}", config.listen), source })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Io { what: "the bound address".into(), source })?;
    let (shutdown, mut rx) = tokio::sync::watch::channel(false);
    let listener = stall::StallListener::new(listener, config.stall_limit, metrics.stalled.clone());
    let state = api::AppState::new(store, executor, queue, metrics, token.clone(), &config, rx.clone());
    let app = api::router(state);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|stop| *stop).await;
            })
            .await
            .map_err(|source| ServeError::Io { what: "serving".into(), source })
    });
    Ok(Running { addr, token, shutdown, task })
}

/// Runs the service on a runtime of its own until Ctrl-C or SIGTERM; prints where it listens.
pub fn serve_blocking(config: Config, executor: Arc<dyn Executor>) -> Result<(), ServeError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|source| ServeError::Io { what: "starting the runtime".into(), source })?;
    rt.block_on(async move {
        let data = config.data.clone();
        let running = start(config, executor).await?;
        // Status lines; a closed stdout (a supervisor that stopped reading) is not an error.
        let say = |line: String| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        };
        say(format!("gauntlet serve: listening on http://{}/ (data {})", running.addr, data.display()));
        say(format!("gauntlet serve: write token in {} (or as given)", data.join("token").display()));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|source| ServeError::Io { what: "SIGTERM handler".into(), source })?;
        tokio::select! {
            biased;
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        say("gauntlet serve: stopping".into());
        running.stop().await
    })
}
