//! The run store: runs, their seeds' results and their event logs, behind [`Store`]; the
//! embedded SQLite implementation is [`SqliteStore`].
//!
//! Every change that belongs together is one transaction (a seed's result, the run's
//! counters and the event that announces it), so a server killed at any moment leaves a store
//! where each seed is either fully recorded or not at all.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::{Arc, Mutex};

mod pg;
pub use pg::{message as pg_message, PgStore};

/// Opens the store `spec` names: `None` or `sqlite` for `<data>/runs.sqlite`, a
/// `postgres://…` URL for a PostgreSQL database.
pub fn open(spec: Option<&str>, data: &Path) -> Result<Arc<dyn Store>, StoreError> {
    match spec {
        None | Some("sqlite") => Ok(Arc::new(SqliteStore::open(&data.join("runs.sqlite"))?)),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(PgStore::connect(url)?))
        }
        Some(other) => Err(StoreError(format!("--store {other:?}: expected `sqlite` or a postgres:// URL"))),
    }
}

/// A store error: what failed, in words.
#[derive(Debug, thiserror::Error)]
#[error("run store: {0}")]
pub struct StoreError(pub String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(e.to_string())
    }
}

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Waiting in the queue.
    Pending,
    /// Executing.
    Running,
    /// Every seed passed.
    Passed,
    /// At least one seed failed.
    Failed,
    /// The run could not complete (a time limit, a broken plan file, a server error).
    Error,
    /// Cancelled by `DELETE`.
    Cancelled,
}

impl RunState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Pending => "pending",
            RunState::Running => "running",
            RunState::Passed => "passed",
            RunState::Failed => "failed",
            RunState::Error => "error",
            RunState::Cancelled => "cancelled",
        }
    }

    /// Parses a stored or requested state name.
    pub fn parse(s: &str) -> Option<RunState> {
        [RunState::Pending, RunState::Running, RunState::Passed, RunState::Failed, RunState::Error, RunState::Cancelled]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Whether the run is over (nothing more will happen to it).
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunState::Pending | RunState::Running)
    }
}

/// A run to insert: everything the submission fixed.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The idempotency key: a hash of plan, seeds, bugs, backend and build.
    pub id: String,
    /// The plan's name.
    pub plan_name: String,
    /// The plan's application.
    pub app: String,
    /// The plan, as TOML.
    pub plan_toml: String,
    /// The seeds as submitted (`0..200`, `42`, a commit id).
    pub seeds_spec: String,
    /// How many seeds that is.
    pub seeds_total: u64,
    /// Planted bugs switched on.
    pub bugs: Vec<String>,
    /// `sim` (the only backend a run service executes so far).
    pub backend: String,
    /// The build that runs it.
    pub build: String,
    /// Seeds run at once.
    pub jobs: u32,
    /// The run's time limit, in milliseconds.
    pub time_limit_ms: u64,
    /// The run this one was made from (a shrink), if any.
    pub parent: Option<String>,
    /// When it was submitted (milliseconds since the Unix epoch).
    pub created_ms: u64,
    /// Where it came from (a shrink: the run, the seed and the shrinker's report), for its
    /// `submitted` event.
    pub origin: Option<serde_json::Value>,
}

/// A stored run.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Its id.
    pub id: String,
    /// The plan's name.
    pub plan: String,
    /// The plan's application.
    pub app: String,
    /// The seeds as submitted.
    pub seeds: String,
    /// How many seeds.
    pub seeds_total: u64,
    /// Seeds with a recorded result.
    pub seeds_done: u64,
    /// Seeds that passed.
    pub passed: u64,
    /// Seeds that failed.
    pub failed: u64,
    /// Planted bugs switched on.
    pub bugs: Vec<String>,
    /// The backend.
    pub backend: String,
    /// The build.
    pub build: String,
    /// Seeds run at once.
    pub jobs: u32,
    /// The time limit, in milliseconds.
    pub time_limit_ms: u64,
    /// The state.
    pub state: RunState,
    /// Why the run is in state `error` (or was interrupted and resumed).
    pub error: Option<String>,
    /// The run it was made from.
    pub parent: Option<String>,
    /// Submitted, started and finished (milliseconds since the Unix epoch).
    pub created_ms: u64,
    /// When it last started executing.
    pub started_ms: Option<u64>,
    /// When it ended.
    pub finished_ms: Option<u64>,
    /// The id of its last event so far.
    pub last_event: u64,
}

/// One seed's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedRecord {
    /// The seed.
    pub seed: u64,
    /// Whether every expectation held.
    pub passed: bool,
    /// `safety`, `liveness`, `crash`, or `timeout` / `abort` when the seed's process failed.
    pub class: Option<String>,
    /// The expectation (or `process`) that failed.
    pub source: Option<String>,
    /// The failure, in words.
    pub message: Option<String>,
    /// The failing seed's bundle (a file under the data directory).
    pub bundle: Option<String>,
    /// The line that replays the seed.
    pub replay: Option<String>,
    /// The run's trace hash, when it completed.
    pub trace_hash: Option<String>,
    /// A promotion's comparison with its simulated baseline (JSON: `matches`, `baseline`,
    /// `observed`, `deviations`, `tolerance`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub comparison: Option<serde_json::Value>,
    /// Wall time of the seed's run, in milliseconds.
    pub wall_ms: u64,
}

/// One event of a run's log; `seq` counts from 1 within the run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    /// Its position in the run's log (the SSE event id).
    pub seq: u64,
    /// `started`, `seed_passed`, `seed_failed`, `progress`, `finished`, ...
    pub kind: String,
    /// Its data.
    pub data: serde_json::Value,
}

/// Which runs to list.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    /// Only this plan.
    pub plan: Option<String>,
    /// Only runs in this state.
    pub state: Option<RunState>,
    /// Submitted at or after (ms since the epoch).
    pub since_ms: Option<u64>,
    /// Submitted before.
    pub until_ms: Option<u64>,
    /// At most this many (newest first).
    pub limit: u64,
    /// Skipping this many.
    pub offset: u64,
}

/// Counts for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    /// Runs by state.
    pub by_state: Vec<(RunState, u64)>,
}

/// Where runs live. Every method is one transaction.
pub trait Store: Send + Sync {
    /// Inserts a run (state `pending`) with its `submitted` event; `false` if a run with this
    /// id exists already (nothing changes).
    fn insert_run(&self, run: &NewRun) -> Result<bool, StoreError>;
    /// A run.
    fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError>;
    /// A run's plan (TOML).
    fn plan_toml(&self, id: &str) -> Result<Option<String>, StoreError>;
    /// Runs matching `filter`, newest first.
    fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError>;
    /// A run's seed results, by seed, from `offset`.
    fn seeds(&self, id: &str, failed_only: bool, offset: u64, limit: u64) -> Result<Vec<SeedRecord>, StoreError>;
    /// The seeds of a run that have a result.
    fn seeds_done(&self, id: &str) -> Result<Vec<u64>, StoreError>;
    /// Records a seed's result, the run's counters and its event at once; a seed already
    /// recorded is left as it is (returns `false`).
    fn record_seed(&self, id: &str, seed: &SeedRecord) -> Result<bool, StoreError>;
    /// Sets a run's state (with an event `kind` carrying `data`); `started`/`finished` times
    /// follow the state. Returns `false` if the run was already terminal (nothing changes).
    fn transition(
        &self,
        id: &str,
        state: RunState,
        error: Option<&str>,
        kind: &str,
        data: serde_json::Value,
        now_ms: u64,
    ) -> Result<bool, StoreError>;
    /// Appends an event to a run's log; returns its `seq`.
    fn append_event(&self, id: &str, kind: &str, data: &serde_json::Value) -> Result<u64, StoreError>;
    /// A run's events after `after`, at most `limit`.
    fn events_after(&self, id: &str, after: u64, limit: u64) -> Result<Vec<EventRecord>, StoreError>;
    /// The oldest pending run.
    fn next_pending(&self) -> Result<Option<String>, StoreError>;
    /// Runs in state `running` (at startup: those a previous server left).
    fn running(&self) -> Result<Vec<String>, StoreError>;
    /// Runs by state.
    fn counts(&self) -> Result<Counts, StoreError>;
    /// Opens an incident for a run that failed a gate, with the alert's payload; `None` if
    /// the run has one already.
    fn open_incident(&self, run_id: &str, payload: &serde_json::Value, now_ms: u64) -> Result<Option<u64>, StoreError>;
    /// Incidents whose alert is not delivered yet and whose next attempt is due by `now_ms`.
    fn due_alerts(&self, now_ms: u64) -> Result<Vec<Incident>, StoreError>;
    /// Records one delivery attempt: delivered, or the error and when to try next (`None`:
    /// give up).
    fn record_delivery(
        &self,
        id: u64,
        result: Result<(), &str>,
        now_ms: u64,
        next_ms: Option<u64>,
    ) -> Result<(), StoreError>;
    /// The latest incidents, newest first.
    fn incidents(&self, limit: u64) -> Result<Vec<Incident>, StoreError>;
    /// Every seed run more than once by the same build of the same plan and bugs (in
    /// different runs), with how many runs, distinct trace hashes and distinct verdicts it had.
    fn determinism(&self) -> Result<Vec<Repeat>, StoreError>;
}

/// A seed that more than one run of the same plan, bugs and build executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repeat {
    /// The plan's name.
    pub plan: String,
    /// The seed.
    pub seed: u64,
    /// The build.
    pub build: String,
    /// How many runs executed it.
    pub runs: u64,
    /// Distinct trace hashes among them (1: deterministic).
    pub trace_hashes: u64,
    /// Distinct verdicts among them (1: deterministic).
    pub verdicts: u64,
}

impl Repeat {
    /// Whether its runs disagreed: a determinism failure.
    pub fn flaky(&self) -> bool {
        self.trace_hashes > 1 || self.verdicts > 1
    }
}

/// The query behind [`Store::determinism`] (the same SQL on both stores).
const REPEATS: &str = "SELECT r.plan_name, s.seed, r.build, count(*), count(DISTINCT coalesce(s.trace_hash, '')), \
     count(DISTINCT s.passed) FROM seeds s JOIN runs r ON r.id = s.run_id \
     GROUP BY r.plan_toml, r.bugs, r.build, r.plan_name, s.seed HAVING count(*) > 1 ORDER BY r.plan_name, s.seed";

/// An incident: a run failed a gate; its alert and how delivering it went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// Its id.
    pub id: u64,
    /// The run.
    pub run_id: String,
    /// When it was opened (ms since the epoch).
    pub created_ms: u64,
    /// The alert's JSON payload.
    pub payload: serde_json::Value,
    /// Delivery attempts so far.
    pub attempts: u64,
    /// When the alert was delivered, if it was.
    pub delivered_ms: Option<u64>,
    /// The last attempt's error.
    pub last_error: Option<String>,
    /// When the next attempt is due (`None`: delivered or given up).
    pub next_attempt_ms: Option<u64>,
}

/// The schema, one migration per entry; `schema_version` says how many have been applied.
/// Written once for both stores: `{int}` is a 64-bit integer column, `{bool}` a boolean,
/// `{serial}` an auto-increment key (see [`migrations`]).
const SCHEMA: &[&str] = &[
    "CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        plan_name TEXT NOT NULL,
        app TEXT NOT NULL,
        plan_toml TEXT NOT NULL,
        seeds_spec TEXT NOT NULL,
        seeds_total {int} NOT NULL,
        bugs TEXT NOT NULL,
        backend TEXT NOT NULL,
        build TEXT NOT NULL,
        jobs {int} NOT NULL,
        time_limit_ms {int} NOT NULL,
        parent TEXT,
        state TEXT NOT NULL,
        error TEXT,
        passed {int} NOT NULL DEFAULT 0,
        failed {int} NOT NULL DEFAULT 0,
        created_ms {int} NOT NULL,
        started_ms {int},
        finished_ms {int},
        next_event {int} NOT NULL DEFAULT 1
    );
    CREATE INDEX runs_by_created ON runs (created_ms);
    CREATE INDEX runs_by_state ON runs (state, created_ms);
    CREATE TABLE seeds (
        run_id TEXT NOT NULL REFERENCES runs (id),
        seed {int} NOT NULL,
        passed {bool} NOT NULL,
        class TEXT,
        source TEXT,
        message TEXT,
        bundle TEXT,
        replay TEXT,
        trace_hash TEXT,
        wall_ms {int} NOT NULL,
        PRIMARY KEY (run_id, seed)
    );
    CREATE TABLE events (
        run_id TEXT NOT NULL REFERENCES runs (id),
        seq {int} NOT NULL,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    );",
    "CREATE TABLE incidents (
        id {serial},
        run_id TEXT NOT NULL UNIQUE REFERENCES runs (id),
        created_ms {int} NOT NULL,
        payload TEXT NOT NULL,
        attempts {int} NOT NULL DEFAULT 0,
        delivered_ms {int},
        last_error TEXT,
        next_attempt_ms {int}
    );",
    // Promotions: the baseline-vs-real comparison of each seed (JSON text).
    "ALTER TABLE seeds ADD COLUMN comparison TEXT;",
];

/// A SQL dialect's column types for [`SCHEMA`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// The migrations in `dialect`.
pub(crate) fn migrations(dialect: Dialect) -> Vec<String> {
    let (int, boolean, serial) = match dialect {
        Dialect::Sqlite => ("INTEGER", "INTEGER", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Dialect::Postgres => ("BIGINT", "BOOLEAN", "BIGSERIAL PRIMARY KEY"),
    };
    SCHEMA.iter().map(|m| m.replace("{int}", int).replace("{bool}", boolean).replace("{serial}", serial)).collect()
}

/// The embedded store: one SQLite file (WAL journal), migrated on open.
pub struct SqliteStore {
    conn: Mutex<rusqlite::Connection>,
}

impl SqliteStore {
    /// Opens (creating and migrating) the store at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let conn = rusqlite::Connection::open(path).map_err(|e| StoreError(format!("{}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let store = SqliteStore { conn: Mutex::new(conn) };
        store.migrate()?;
        Ok(store)
    }

    /// An in-memory store (tests).
    pub fn memory() -> Result<SqliteStore, StoreError> {
        let store = SqliteStore { conn: Mutex::new(rusqlite::Connection::open_in_memory()?) };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let applied: Option<i64> = tx.query_row("SELECT max(version) FROM schema_version", [], |r| r.get(0))?;
        let applied = applied.unwrap_or(0) as usize;
        let migrations = migrations(Dialect::Sqlite);
        if applied > migrations.len() {
            return Err(StoreError(format!(
                "the store's schema is version {applied}, newer than this build's {}: use a newer gauntlet",
                migrations.len()
            )));
        }
        for (i, m) in migrations.iter().enumerate().skip(applied) {
            tx.execute_batch(m).map_err(|e| StoreError(format!("migration {}: {e}", i + 1)))?;
            tx.execute("INSERT INTO schema_version (version) VALUES (?1)", [i as i64 + 1])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

const RUN_COLUMNS: &str = "id, plan_name, app, seeds_spec, seeds_total, bugs, backend, build, jobs, time_limit_ms, \
     parent, state, error, passed, failed, created_ms, started_ms, finished_ms, next_event";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let bugs: String = r.get(5)?;
    let state: String = r.get(11)?;
    let passed = r.get::<_, i64>(13)? as u64;
    let failed = r.get::<_, i64>(14)? as u64;
    Ok(RunRecord {
        id: r.get(0)?,
        plan: r.get(1)?,
        app: r.get(2)?,
        seeds: r.get(3)?,
        seeds_total: r.get::<_, i64>(4)? as u64,
        seeds_done: passed + failed,
        passed,
        failed,
        bugs: serde_json::from_str(&bugs).unwrap_or_default(),
        backend: r.get(6)?,
        build: r.get(7)?,
        jobs: r.get::<_, i64>(8)? as u32,
        time_limit_ms: r.get::<_, i64>(9)? as u64,
        parent: r.get(10)?,
        state: RunState::parse(&state).unwrap_or(RunState::Error),
        error: r.get(12)?,
        created_ms: r.get::<_, i64>(15)? as u64,
        started_ms: r.get::<_, Option<i64>>(16)?.map(|v| v as u64),
        finished_ms: r.get::<_, Option<i64>>(17)?.map(|v| v as u64),
        last_event: r.get::<_, i64>(18)? as u64 - 1,
    })
}

fn seed_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SeedRecord> {
    Ok(SeedRecord {
        seed: r.get::<_, i64>(0)? as u64,
        passed: r.get::<_, i64>(1)? != 0,
        class: r.get(2)?,
        source: r.get(3)?,
        message: r.get(4)?,
        bundle: r.get(5)?,
        replay: r.get(6)?,
        trace_hash: r.get(7)?,
        wall_ms: r.get::<_, i64>(8)? as u64,
        comparison: r.get::<_, Option<String>>(9)?.and_then(|c| serde_json::from_str(&c).ok()),
    })
}

/// Appends an event inside `tx`.
fn append(tx: &rusqlite::Transaction<'_>, id: &str, kind: &str, data: &serde_json::Value) -> Result<u64, StoreError> {
    let seq: i64 = tx
        .query_row("UPDATE runs SET next_event = next_event + 1 WHERE id = ?1 RETURNING next_event - 1", [id], |r| {
            r.get(0)
        })
        .map_err(|e| StoreError(format!("run {id}: {e}")))?;
    tx.execute(
        "INSERT INTO events (run_id, seq, kind, data) VALUES (?1, ?2, ?3, ?4)",
        rusqlite::params![id, seq, kind, data.to_string()],
    )?;
    Ok(seq as u64)
}

impl Store for SqliteStore {
    fn insert_run(&self, run: &NewRun) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO runs (id, plan_name, app, plan_toml, seeds_spec, seeds_total, bugs, backend, build, \
             jobs, time_limit_ms, parent, state, created_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, 'pending', ?13)",
            rusqlite::params![
                run.id,
                run.plan_name,
                run.app,
                run.plan_toml,
                run.seeds_spec,
                run.seeds_total as i64,
                serde_json::to_string(&run.bugs).expect("strings serialise"),
                run.backend,
                run.build,
                run.jobs as i64,
                run.time_limit_ms as i64,
                run.parent,
                run.created_ms as i64,
            ],
        )? == 1;
        if inserted {
            let mut data =
                serde_json::json!({"plan": run.plan_name, "seeds": run.seeds_spec, "seeds_total": run.seeds_total});
            if let Some(origin) = &run.origin {
                data["origin"] = origin.clone();
            }
            append(&tx, &run.id, "submitted", &data)?;
        }
        tx.commit()?;
        Ok(inserted)
    }

    fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))?;
        let mut rows = stmt.query_map([id], run_row)?;
        Ok(rows.next().transpose()?)
    }

    fn plan_toml(&self, id: &str) -> Result<Option<String>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT plan_toml FROM runs WHERE id = ?1")?;
        let mut rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
        Ok(rows.next().transpose()?)
    }

    fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE (?1 IS NULL OR plan_name = ?1) AND (?2 IS NULL OR state = ?2) \
             AND (?3 IS NULL OR created_ms >= ?3) AND (?4 IS NULL OR created_ms < ?4) \
             ORDER BY created_ms DESC, id LIMIT ?5 OFFSET ?6"
        ))?;
        let rows = stmt.query_map(
            rusqlite::params![
                f.plan,
                f.state.map(RunState::as_str),
                f.since_ms.map(|v| v as i64),
                f.until_ms.map(|v| v as i64),
                f.limit as i64,
                f.offset as i64
            ],
            run_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn seeds(&self, id: &str, failed_only: bool, offset: u64, limit: u64) -> Result<Vec<SeedRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seed, passed, class, source, message, bundle, replay, trace_hash, wall_ms, comparison FROM seeds \
             WHERE run_id = ?1 AND (?2 = 0 OR passed = 0) ORDER BY seed LIMIT ?3 OFFSET ?4",
        )?;
        let rows = stmt.query_map(rusqlite::params![id, failed_only as i64, limit as i64, offset as i64], seed_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn seeds_done(&self, id: &str) -> Result<Vec<u64>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT seed FROM seeds WHERE run_id = ?1 ORDER BY seed")?;
        let rows = stmt.query_map([id], |r| r.get::<_, i64>(0).map(|v| v as u64))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn record_seed(&self, id: &str, s: &SeedRecord) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT OR IGNORE INTO seeds (run_id, seed, passed, class, source, message, bundle, replay, trace_hash, wall_ms, \
             comparison) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            rusqlite::params![
                id,
                s.seed as i64,
                s.passed as i64,
                s.class,
                s.source,
                s.message,
                s.bundle,
                s.replay,
                s.trace_hash,
                s.wall_ms as i64,
                s.comparison.as_ref().map(|c| c.to_string())
            ],
        )? == 1;
        if inserted {
            let column = if s.passed { "passed" } else { "failed" };
            tx.execute(&format!("UPDATE runs SET {column} = {column} + 1 WHERE id = ?1"), [id])?;
            let kind = if s.passed { "seed_passed" } else { "seed_failed" };
            append(&tx, id, kind, &serde_json::to_value(s).expect("a seed serialises"))?;
        }
        tx.commit()?;
        Ok(inserted)
    }

    fn transition(
        &self,
        id: &str,
        state: RunState,
        error: Option<&str>,
        kind: &str,
        data: serde_json::Value,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let current: Option<String> = tx
            .query_row("SELECT state FROM runs WHERE id = ?1", [id], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        let Some(current) = current.and_then(|c| RunState::parse(&c)) else {
            return Err(StoreError(format!("no run {id}")));
        };
        if current.is_terminal() {
            return Ok(false);
        }
        let (started, finished) = match state {
            RunState::Running => (Some(now_ms as i64), None),
            s if s.is_terminal() => (None, Some(now_ms as i64)),
            _ => (None, None),
        };
        tx.execute(
            "UPDATE runs SET state = ?2, error = coalesce(?3, error), started_ms = coalesce(?4, started_ms), \
             finished_ms = ?5 WHERE id = ?1",
            rusqlite::params![id, state.as_str(), error, started, finished],
        )?;
        append(&tx, id, kind, &data)?;
        tx.commit()?;
        Ok(true)
    }

    fn append_event(&self, id: &str, kind: &str, data: &serde_json::Value) -> Result<u64, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let seq = append(&tx, id, kind, data)?;
        tx.commit()?;
        Ok(seq)
    }

    fn events_after(&self, id: &str, after: u64, limit: u64) -> Result<Vec<EventRecord>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, kind, data FROM events WHERE run_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(rusqlite::params![id, after as i64, limit as i64], |r| {
            let data: String = r.get(2)?;
            Ok(EventRecord {
                seq: r.get::<_, i64>(0)? as u64,
                kind: r.get(1)?,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn next_pending(&self) -> Result<Option<String>, StoreError> {
        let conn = self.lock();
        let mut stmt =
            conn.prepare_cached("SELECT id FROM runs WHERE state = 'pending' ORDER BY created_ms, id LIMIT 1")?;
        let mut rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.next().transpose()?)
    }

    fn running(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT id FROM runs WHERE state = 'running' ORDER BY created_ms, id")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM runs GROUP BY state ORDER BY state")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
        let mut by_state = Vec::new();
        for row in rows {
            let (s, n) = row?;
            if let Some(s) = RunState::parse(&s) {
                by_state.push((s, n));
            }
        }
        Ok(Counts { by_state })
    }

    fn open_incident(&self, run_id: &str, payload: &serde_json::Value, now_ms: u64) -> Result<Option<u64>, StoreError> {
        let conn = self.lock();
        let n = conn.execute(
            "INSERT OR IGNORE INTO incidents (run_id, created_ms, payload, next_attempt_ms) VALUES (?1, ?2, ?3, ?2)",
            rusqlite::params![run_id, now_ms as i64, payload.to_string()],
        )?;
        Ok((n == 1).then(|| conn.last_insert_rowid() as u64))
    }

    fn due_alerts(&self, now_ms: u64) -> Result<Vec<Incident>, StoreError> {
        self.select_incidents("WHERE delivered_ms IS NULL AND next_attempt_ms <= ?1 ORDER BY id", now_ms as i64)
    }

    fn record_delivery(
        &self,
        id: u64,
        result: Result<(), &str>,
        now_ms: u64,
        next_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let (delivered, error) = match result {
            Ok(()) => (Some(now_ms as i64), None),
            Err(e) => (None, Some(e)),
        };
        self.lock().execute(
            "UPDATE incidents SET attempts = attempts + 1, delivered_ms = ?2, last_error = coalesce(?3, last_error), \
             next_attempt_ms = ?4 WHERE id = ?1",
            rusqlite::params![
                id as i64,
                delivered,
                error,
                if delivered.is_some() { None } else { next_ms.map(|v| v as i64) }
            ],
        )?;
        Ok(())
    }

    fn incidents(&self, limit: u64) -> Result<Vec<Incident>, StoreError> {
        self.select_incidents("ORDER BY id DESC LIMIT ?1", limit as i64)
    }

    fn determinism(&self) -> Result<Vec<Repeat>, StoreError> {
        self.repeats()
    }
}

impl SqliteStore {
    fn repeats(&self) -> Result<Vec<Repeat>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(REPEATS)?;
        let rows = stmt.query_map([], |r| {
            Ok(Repeat {
                plan: r.get(0)?,
                seed: r.get::<_, i64>(1)? as u64,
                build: r.get(2)?,
                runs: r.get::<_, i64>(3)? as u64,
                trace_hashes: r.get::<_, i64>(4)? as u64,
                verdicts: r.get::<_, i64>(5)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn select_incidents(&self, tail: &str, param: i64) -> Result<Vec<Incident>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id, run_id, created_ms, payload, attempts, delivered_ms, last_error, next_attempt_ms FROM incidents {tail}"
        ))?;
        let rows = stmt.query_map([param], |r| {
            Ok(Incident {
                id: r.get::<_, i64>(0)? as u64,
                run_id: r.get(1)?,
                created_ms: r.get::<_, i64>(2)? as u64,
                payload: serde_json::from_str(&r.get::<_, String>(3)?).unwrap_or_default(),
                attempts: r.get::<_, i64>(4)? as u64,
                delivered_ms: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
                last_error: r.get(6)?,
                next_attempt_ms: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_run(id: &str, created_ms: u64) -> NewRun {
        NewRun {
            id: id.into(),
            plan_name: "p".into(),
            app: "a".into(),
            plan_toml: "name = \"p\"".into(),
            seeds_spec: "0..3".into(),
            seeds_total: 3,
            bugs: vec!["b".into()],
            backend: "sim".into(),
            build: "test".into(),
            jobs: 1,
            time_limit_ms: 1000,
            parent: None,
            created_ms,
            origin: None,
        }
    }

    fn seed(seed: u64, passed: bool) -> SeedRecord {
        SeedRecord {
            seed,
            passed,
            class: (!passed).then(|| "safety".into()),
            source: None,
            message: None,
            bundle: None,
            replay: None,
            trace_hash: None,
            comparison: None,
            wall_ms: 3,
        }
    }

    /// The stores to test: SQLite always; PostgreSQL when `GAUNTLET_TEST_POSTGRES` names a
    /// server (a fresh database per call). Under CI the server must be there.
    fn stores() -> Vec<Box<dyn Store>> {
        let mut out: Vec<Box<dyn Store>> = vec![Box::new(SqliteStore::memory().unwrap())];
        match crate::testing::postgres_database() {
            Ok(Some(url)) => out.push(Box::new(PgStore::connect(&url).unwrap())),
            Ok(None) => eprintln!(
                "skipped the PostgreSQL store: GAUNTLET_TEST_POSTGRES is not set (.ci/postgres.sh starts one)"
            ),
            Err(e) => panic!("{e}"),
        }
        out
    }

    #[test]
    fn a_run_is_inserted_once_and_its_seeds_and_events_accumulate_in_order() {
        for s in stores() {
            inserted_once(&*s);
        }
    }

    fn inserted_once(s: &dyn Store) {
        assert!(s.insert_run(&new_run("r1", 10)).unwrap());
        assert!(!s.insert_run(&new_run("r1", 11)).unwrap(), "the same id is the same run");
        assert!(s.transition("r1", RunState::Running, None, "started", serde_json::json!({}), 20).unwrap());
        assert!(s.record_seed("r1", &seed(0, true)).unwrap());
        assert!(s.record_seed("r1", &seed(2, false)).unwrap());
        assert!(!s.record_seed("r1", &seed(2, true)).unwrap(), "a recorded seed stays as it was");
        let r = s.run("r1").unwrap().unwrap();
        assert_eq!((r.passed, r.failed, r.seeds_done, r.state), (1, 1, 2, RunState::Running));
        assert_eq!(s.seeds_done("r1").unwrap(), [0, 2]);
        assert_eq!(s.seeds("r1", true, 0, 10).unwrap(), [seed(2, false)]);
        let kinds: Vec<(u64, String)> =
            s.events_after("r1", 0, 10).unwrap().into_iter().map(|e| (e.seq, e.kind)).collect();
        let expected = [(1, "submitted"), (2, "started"), (3, "seed_passed"), (4, "seed_failed")];
        assert_eq!(kinds, expected.map(|(n, k)| (n, k.to_owned())));
        assert_eq!(s.events_after("r1", 3, 10).unwrap().len(), 1);
        assert!(s.transition("r1", RunState::Failed, None, "finished", serde_json::json!({}), 30).unwrap());
        assert!(!s.transition("r1", RunState::Cancelled, None, "cancelled", serde_json::json!({}), 40).unwrap());
        assert_eq!(s.run("r1").unwrap().unwrap().finished_ms, Some(30));
        // A promotion's seed keeps its baseline comparison.
        assert!(s.insert_run(&new_run("p1", 50)).unwrap());
        let cmp = serde_json::json!({"matches": false, "deviations": ["crash: 2 simulated, 1 observed"]});
        let promoted = SeedRecord { comparison: Some(cmp.clone()), ..seed(7, false) };
        assert!(s.record_seed("p1", &promoted).unwrap());
        assert_eq!(s.seeds("p1", false, 0, 10).unwrap()[0].comparison, Some(cmp));
    }

    #[test]
    fn runs_list_newest_first_with_filters_and_the_queue_takes_the_oldest() {
        for s in stores() {
            listed(&*s);
        }
    }

    fn listed(s: &dyn Store) {
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            s.insert_run(&new_run(id, i as u64)).unwrap();
        }
        s.transition("b", RunState::Running, None, "started", serde_json::json!({}), 5).unwrap();
        let all: Vec<String> =
            s.list_runs(&RunFilter { limit: 10, ..Default::default() }).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(all, ["c", "b", "a"]);
        let pending = RunFilter { state: Some(RunState::Pending), limit: 10, ..Default::default() };
        assert_eq!(s.list_runs(&pending).unwrap().len(), 2);
        assert_eq!(s.next_pending().unwrap().as_deref(), Some("a"));
        assert_eq!(s.running().unwrap(), ["b"]);
        let counts = s.counts().unwrap().by_state;
        assert_eq!(counts, [(RunState::Pending, 2), (RunState::Running, 1)]);
        // One incident per run; an alert is due until delivered, retried when it fails.
        let payload = serde_json::json!({"run": "a"});
        let id = s.open_incident("a", &payload, 100).unwrap().expect("opened");
        assert_eq!(s.open_incident("a", &payload, 101).unwrap(), None, "one incident per run");
        assert_eq!(s.due_alerts(99).unwrap().len(), 0);
        assert_eq!(s.due_alerts(100).unwrap()[0].payload, payload);
        s.record_delivery(id, Err("HTTP 500"), 100, Some(200)).unwrap();
        assert!(s.due_alerts(150).unwrap().is_empty(), "backing off");
        let due = s.due_alerts(200).unwrap();
        assert_eq!((due[0].attempts, due[0].last_error.as_deref()), (1, Some("HTTP 500")));
        s.record_delivery(id, Ok(()), 210, None).unwrap();
        assert!(s.due_alerts(1000).unwrap().is_empty());
        // Seed 1 of the same plan in two runs: the same trace hash, then a different one.
        let with_hash = |seed: u64, hash: &str| SeedRecord { trace_hash: Some(hash.into()), ..self::seed(seed, true) };
        s.record_seed("a", &with_hash(1, "h1")).unwrap();
        s.record_seed("b", &with_hash(1, "h1")).unwrap();
        s.record_seed("a", &with_hash(2, "h2")).unwrap();
        s.record_seed("b", &with_hash(2, "h3")).unwrap();
        s.record_seed("c", &with_hash(5, "h5")).unwrap();
        let repeats = s.determinism().unwrap();
        let flaky: Vec<(u64, bool)> = repeats.iter().map(|r| (r.seed, r.flaky())).collect();
        assert_eq!(flaky, [(1, false), (2, true)], "{repeats:?}");
        assert_eq!(repeats[1].runs, 2);
        let all = s.incidents(10).unwrap();
        assert_eq!((all[0].attempts, all[0].delivered_ms, all[0].next_attempt_ms), (2, Some(210), None));
    }

    #[test]
    fn a_store_reopened_keeps_its_runs_and_is_not_migrated_twice() {
        let dir = std::env::temp_dir().join(format!("gauntlet-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("runs.sqlite");
        SqliteStore::open(&path).unwrap().insert_run(&new_run("r", 1)).unwrap();
        let again = SqliteStore::open(&path).unwrap();
        assert_eq!(again.run("r").unwrap().unwrap().bugs, ["b"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
