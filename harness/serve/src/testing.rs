//! Test support (not part of the API): a fresh PostgreSQL database for a test.

/// The environment variable naming a PostgreSQL server for tests (`postgres://user:pw@host/db`).
pub const POSTGRES_ENV: &str = "GAUNTLET_TEST_POSTGRES";

/// A URL of a new, empty database on the server `GAUNTLET_TEST_POSTGRES` names; `Ok(None)`
/// when it is unset outside CI; an error when it is unset under CI (`CI` set) or unreachable.
pub fn postgres_database() -> Result<Option<String>, String> {
    let Ok(url) = std::env::var(POSTGRES_ENV) else {
        if std::env::var_os("CI").is_some() {
            return Err(format!("{POSTGRES_ENV} is not set under CI: .ci/run starts PostgreSQL with .ci/postgres.sh"));
        }
        return Ok(None);
    };
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("gauntlet_test_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    let mut admin =
        postgres::Client::connect(&url, postgres::NoTls).map_err(|e| format!("{POSTGRES_ENV}={url}: {e}"))?;
    // One statement each: CREATE DATABASE cannot run inside the transaction a batch makes.
    for sql in [format!("DROP DATABASE IF EXISTS {name}"), format!("CREATE DATABASE {name}")] {
        admin.batch_execute(&sql).map_err(|e| format!("{sql}: {}", crate::store::pg_message(&e)))?;
    }
    // The same server and credentials, the new database.
    let base = match url.rfind('/') {
        Some(i) if i > url.find("://").map_or(0, |s| s + 2) => &url[..i],
        _ => url.as_str(),
    };
    Ok(Some(format!("{base}/{name}")))
}
