//! The warroom: a run that fails a gate (a failing seed, or an error) opens an incident in the
//! store; when a webhook is configured, a deliverer thread POSTs each incident's JSON payload to
//! it, retrying a failed delivery with exponential backoff and recording every attempt. The run
//! never waits for it.

use crate::now_ms;
use crate::store::{RunRecord, SeedRecord, Store};
use std::sync::Arc;
use std::time::Duration;

/// Attempts before an alert is given up (recorded as such: its last error stays).
pub const MAX_ATTEMPTS: u64 = 8;

/// The first retry waits this long; each further one twice as long.
pub const FIRST_BACKOFF_MS: u64 = 500;

/// The payload of a run's alert.
pub fn payload(run: &RunRecord, failures: &[SeedRecord]) -> serde_json::Value {
    serde_json::json!({
        "kind": "gauntlet.run_failed",
        "run": {
            "id": run.id, "plan": run.plan, "app": run.app, "state": run.state.as_str(),
            "seeds": run.seeds, "passed": run.passed, "failed": run.failed, "error": run.error,
            "bugs": run.bugs, "link": format!("/runs/{}", run.id),
        },
        "build": run.build,
        "failures": failures.iter().take(5).map(|f| serde_json::json!({
            "seed": f.seed, "class": f.class, "source": f.source, "message": f.message, "replay": f.replay,
        })).collect::<Vec<_>>(),
    })
}

/// Starts the deliverer for `webhook` (an `http://` URL).
pub fn start(store: Arc<dyn Store>, webhook: String) -> std::io::Result<()> {
    std::thread::Builder::new().name("gauntlet-alerts".into()).spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        loop {
            match store.due_alerts(now_ms()) {
                Ok(due) => {
                    for incident in due {
                        let sent = agent
                            .post(&webhook)
                            .header("content-type", "application/json")
                            .send(incident.payload.to_string());
                        let result = match sent {
                            Ok(r) if r.status().is_success() => Ok(()),
                            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
                            Err(e) => Err(e.to_string()),
                        };
                        let attempts = incident.attempts + 1;
                        let next = (attempts < MAX_ATTEMPTS)
                            .then(|| now_ms() + FIRST_BACKOFF_MS * (1 << (attempts - 1).min(16)));
                        let recorded = store.record_delivery(
                            incident.id,
                            result.as_ref().map(|_| ()).map_err(String::as_str),
                            now_ms(),
                            next,
                        );
                        if let Err(e) = recorded {
                            eprintln!("gauntlet serve: recording alert {}: {e}", incident.id);
                        }
                    }
                }
                Err(e) => eprintln!("gauntlet serve: reading due alerts: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })?;
    Ok(())
}
