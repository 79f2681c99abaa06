//! The team store: PostgreSQL (`--store postgres://…`), the same schema and transactions as
//! the embedded one, through the `postgres` crate's blocking client.

use super::{
    Counts, EventRecord, Incident, NewRun, Repeat, RunFilter, RunRecord, RunState, SeedRecord, Store, StoreError,
    REPEATS,
};
use std::sync::Mutex;

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError(format!("postgres: {}", message(&e)))
    }
}

/// A PostgreSQL error in words: the server's message when it sent one ("db error" alone
/// says nothing).
pub fn message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.severity(), d.message()),
        None => e.to_string(),
    }
}

/// A PostgreSQL store: one connection, every call one transaction.
pub struct PgStore {
    client: Mutex<postgres::Client>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host/db`) and migrates the schema.
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        let client = postgres::Client::connect(url, postgres::NoTls)
            .map_err(|e| StoreError(format!("connecting to {}: {}", redact(url), message(&e))))?;
        let store = PgStore { client: Mutex::new(client) };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        // One server migrates at a time.
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL); \
             LOCK TABLE schema_version IN EXCLUSIVE MODE",
        )?;
        let applied: Option<i64> = tx.query_one("SELECT max(version) FROM schema_version", &[])?.get(0);
        let applied = applied.unwrap_or(0) as usize;
        let migrations = super::migrations(super::Dialect::Postgres);
        if applied > migrations.len() {
            return Err(StoreError(format!(
                "the store's schema is version {applied}, newer than this build's {}: use a newer gauntlet",
                migrations.len()
            )));
        }
        for (i, m) in migrations.iter().enumerate().skip(applied) {
            tx.batch_execute(m).map_err(|e| StoreError(format!("migration {}: {e}", i + 1)))?;
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&(i as i64 + 1)])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, postgres::Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `url` without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..s + 3], &creds[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

const RUN_COLUMNS: &str = "id, plan_name, app, seeds_spec, seeds_total, bugs, backend, build, jobs, time_limit_ms, \
     parent, state, error, passed, failed, created_ms, started_ms, finished_ms, next_event";

fn run_row(r: &postgres::Row) -> RunRecord {
    let bugs: String = r.get(5);
    let state: String = r.get(11);
    let passed = r.get::<_, i64>(13) as u64;
    let failed = r.get::<_, i64>(14) as u64;
    RunRecord {
        id: r.get(0),
        plan: r.get(1),
        app: r.get(2),
        seeds: r.get(3),
        seeds_total: r.get::<_, i64>(4) as u64,
        seeds_done: passed + failed,
        passed,
        failed,
        bugs: serde_json::from_str(&bugs).unwrap_or_default(),
        backend: r.get(6),
        build: r.get(7),
        jobs: r.get::<_, i64>(8) as u32,
        time_limit_ms: r.get::<_, i64>(9) as u64,
        parent: r.get(10),
        state: RunState::parse(&state).unwrap_or(RunState::Error),
        error: r.get(12),
        created_ms: r.get::<_, i64>(15) as u64,
        started_ms: r.get::<_, Option<i64>>(16).map(|v| v as u64),
        finished_ms: r.get::<_, Option<i64>>(17).map(|v| v as u64),
        last_event: r.get::<_, i64>(18) as u64 - 1,
    }
}

fn append(
    tx: &mut postgres::Transaction<'_>,
    id: &str,
    kind: &str,
    data: &serde_json::Value,
) -> Result<u64, StoreError> {
    let row = tx
        .query_opt("UPDATE runs SET next_event = next_event + 1 WHERE id = $1 RETURNING next_event - 1", &[&id])?
        .ok_or_else(|| StoreError(format!("no run {id}")))?;
    let seq: i64 = row.get(0);
    tx.execute(
        "INSERT INTO events (run_id, seq, kind, data) VALUES ($1, $2, $3, $4)",
        &[&id, &seq, &kind, &data.to_string()],
    )?;
    Ok(seq as u64)
}

impl Store for PgStore {
    fn insert_run(&self, run: &NewRun) -> Result<bool, StoreError> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        let bugs = serde_json::to_string(&run.bugs).expect("strings serialise");
        let inserted = tx.execute(
            "INSERT INTO runs (id, plan_name, app, plan_toml, seeds_spec, seeds_total, bugs, backend, build, \
             jobs, time_limit_ms, parent, state, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13) ON CONFLICT (id) DO NOTHING",
            &[
                &run.id,
                &run.plan_name,
                &run.app,
                &run.plan_toml,
                &run.seeds_spec,
                &(run.seeds_total as i64),
                &bugs,
                &run.backend,
                &run.build,
                &(run.jobs as i64),
                &(run.time_limit_ms as i64),
                &run.parent,
                &(run.created_ms as i64),
            ],
        )? == 1;
        if inserted {
            let mut data =
                serde_json::json!({"plan": run.plan_name, "seeds": run.seeds_spec, "seeds_total": run.seeds_total});
            if let Some(origin) = &run.origin {
                data["origin"] = origin.clone();
            }
            append(&mut tx, &run.id, "submitted", &data)?;
        }
        tx.commit()?;
        Ok(inserted)
    }

    fn run(&self, id: &str) -> Result<Option<RunRecord>, StoreError> {
        let row = self.lock().query_opt(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1"), &[&id])?;
        Ok(row.as_ref().map(run_row))
    }

    fn plan_toml(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().query_opt("SELECT plan_toml FROM runs WHERE id = $1", &[&id])?.map(|r| r.get(0)))
    }

    fn list_runs(&self, f: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        let rows = self.lock().query(
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE ($1::TEXT IS NULL OR plan_name = $1) \
                 AND ($2::TEXT IS NULL OR state = $2) AND ($3::BIGINT IS NULL OR created_ms >= $3) \
                 AND ($4::BIGINT IS NULL OR created_ms < $4) ORDER BY created_ms DESC, id LIMIT $5 OFFSET $6"
            ),
            &[
                &f.plan,
                &f.state.map(RunState::as_str),
                &f.since_ms.map(|v| v as i64),
                &f.until_ms.map(|v| v as i64),
                &(f.limit as i64),
                &(f.offset as i64),
            ],
        )?;
        Ok(rows.iter().map(run_row).collect())
    }

    fn seeds(&self, id: &str, failed_only: bool, offset: u64, limit: u64) -> Result<Vec<SeedRecord>, StoreError> {
        let rows = self.lock().query(
            "SELECT seed, passed, class, source, message, bundle, replay, trace_hash, wall_ms, comparison FROM seeds \
             WHERE run_id = $1 AND (NOT $2 OR NOT passed) ORDER BY seed LIMIT $3 OFFSET $4",
            &[&id, &failed_only, &(limit as i64), &(offset as i64)],
        )?;
        Ok(rows
            .iter()
            .map(|r| SeedRecord {
                seed: r.get::<_, i64>(0) as u64,
                passed: r.get(1),
                class: r.get(2),
                source: r.get(3),
                message: r.get(4),
                bundle: r.get(5),
                replay: r.get(6),
                trace_hash: r.get(7),
                wall_ms: r.get::<_, i64>(8) as u64,
                comparison: r.get::<_, Option<String>>(9).and_then(|c| serde_json::from_str(&c).ok()),
            })
            .collect())
    }

    fn seeds_done(&self, id: &str) -> Result<Vec<u64>, StoreError> {
        let rows = self.lock().query("SELECT seed FROM seeds WHERE run_id = $1 ORDER BY seed", &[&id])?;
        Ok(rows.iter().map(|r| r.get::<_, i64>(0) as u64).collect())
    }

    fn record_seed(&self, id: &str, s: &SeedRecord) -> Result<bool, StoreError> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO seeds (run_id, seed, passed, class, source, message, bundle, replay, trace_hash, wall_ms, \
             comparison) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (run_id, seed) DO NOTHING",
            &[
                &id,
                &(s.seed as i64),
                &s.passed,
                &s.class,
                &s.source,
                &s.message,
                &s.bundle,
                &s.replay,
                &s.trace_hash,
                &(s.wall_ms as i64),
                &s.comparison.as_ref().map(|c| c.to_string()),
            ],
        )? == 1;
        if inserted {
            let column = if s.passed { "passed" } else { "failed" };
            tx.execute(&format!("UPDATE runs SET {column} = {column} + 1 WHERE id = $1"), &[&id])?;
            let kind = if s.passed { "seed_passed" } else { "seed_failed" };
            append(&mut tx, id, kind, &serde_json::to_value(s).expect("a seed serialises"))?;
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
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        let current: Option<String> =
            tx.query_opt("SELECT state FROM runs WHERE id = $1 FOR UPDATE", &[&id])?.map(|r| r.get(0));
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
            "UPDATE runs SET state = $2, error = coalesce($3, error), started_ms = coalesce($4, started_ms), \
             finished_ms = $5 WHERE id = $1",
            &[&id, &state.as_str(), &error, &started, &finished],
        )?;
        append(&mut tx, id, kind, &data)?;
        tx.commit()?;
        Ok(true)
    }

    fn append_event(&self, id: &str, kind: &str, data: &serde_json::Value) -> Result<u64, StoreError> {
        let mut c = self.lock();
        let mut tx = c.transaction()?;
        let seq = append(&mut tx, id, kind, data)?;
        tx.commit()?;
        Ok(seq)
    }

    fn events_after(&self, id: &str, after: u64, limit: u64) -> Result<Vec<EventRecord>, StoreError> {
        let rows = self.lock().query(
            "SELECT seq, kind, data FROM events WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&id, &(after as i64), &(limit as i64)],
        )?;
        Ok(rows
            .iter()
            .map(|r| EventRecord {
                seq: r.get::<_, i64>(0) as u64,
                kind: r.get(1),
                data: serde_json::from_str(r.get::<_, &str>(2)).unwrap_or(serde_json::Value::Null),
            })
            .collect())
    }

    fn next_pending(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .lock()
            .query_opt("SELECT id FROM runs WHERE state = 'pending' ORDER BY created_ms, id LIMIT 1", &[])?
            .map(|r| r.get(0)))
    }

    fn running(&self) -> Result<Vec<String>, StoreError> {
        let rows = self.lock().query("SELECT id FROM runs WHERE state = 'running' ORDER BY created_ms, id", &[])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn counts(&self) -> Result<Counts, StoreError> {
        let rows = self.lock().query("SELECT state, count(*) FROM runs GROUP BY state ORDER BY state", &[])?;
        let by_state = rows
            .iter()
            .filter_map(|r| Some((RunState::parse(r.get::<_, &str>(0))?, r.get::<_, i64>(1) as u64)))
            .collect();
        Ok(Counts { by_state })
    }

    fn open_incident(&self, run_id: &str, payload: &serde_json::Value, now_ms: u64) -> Result<Option<u64>, StoreError> {
        let row = self.lock().query_opt(
            "INSERT INTO incidents (run_id, created_ms, payload, next_attempt_ms) VALUES ($1, $2, $3, $2) \
             ON CONFLICT (run_id) DO NOTHING RETURNING id",
            &[&run_id, &(now_ms as i64), &payload.to_string()],
        )?;
        Ok(row.map(|r| r.get::<_, i64>(0) as u64))
    }

    fn due_alerts(&self, now_ms: u64) -> Result<Vec<Incident>, StoreError> {
        self.select_incidents("WHERE delivered_ms IS NULL AND next_attempt_ms <= $1 ORDER BY id", now_ms as i64)
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
        let next = if delivered.is_some() { None } else { next_ms.map(|v| v as i64) };
        self.lock().execute(
            "UPDATE incidents SET attempts = attempts + 1, delivered_ms = $2, last_error = coalesce($3, last_error), \
             next_attempt_ms = $4 WHERE id = $1",
            &[&(id as i64), &delivered, &error, &next],
        )?;
        Ok(())
    }

    fn incidents(&self, limit: u64) -> Result<Vec<Incident>, StoreError> {
        self.select_incidents("ORDER BY id DESC LIMIT $1", limit as i64)
    }

    fn determinism(&self) -> Result<Vec<Repeat>, StoreError> {
        let rows = self.lock().query(REPEATS, &[])?;
        Ok(rows
            .iter()
            .map(|r| Repeat {
                plan: r.get(0),
                seed: r.get::<_, i64>(1) as u64,
                build: r.get(2),
                runs: r.get::<_, i64>(3) as u64,
                trace_hashes: r.get::<_, i64>(4) as u64,
                verdicts: r.get::<_, i64>(5) as u64,
            })
            .collect())
    }
}

impl PgStore {
    fn select_incidents(&self, tail: &str, param: i64) -> Result<Vec<Incident>, StoreError> {
        let rows = self.lock().query(
            &format!(
                "SELECT id, run_id, created_ms, payload, attempts, delivered_ms, last_error, next_attempt_ms \
                 FROM incidents {tail}"
            ),
            &[&param],
        )?;
        Ok(rows
            .iter()
            .map(|r| Incident {
                id: r.get::<_, i64>(0) as u64,
                run_id: r.get(1),
                created_ms: r.get::<_, i64>(2) as u64,
                payload: serde_json::from_str(r.get::<_, &str>(3)).unwrap_or_default(),
                attempts: r.get::<_, i64>(4) as u64,
                delivered_ms: r.get::<_, Option<i64>>(5).map(|v| v as u64),
                last_error: r.get(6),
                next_attempt_ms: r.get::<_, Option<i64>>(7).map(|v| v as u64),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("host=/tmp"), "host=/tmp");
    }
}
