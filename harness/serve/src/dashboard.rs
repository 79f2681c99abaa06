//! The dashboard: server-rendered HTML pages (minijinja templates compiled into the binary; no
//! CDN, works offline), with a little script on the run page for live updates over the same
//! SSE stream the API serves. A failing seed's page embeds the bundle's report, drawn by the
//! command line's own renderer ([`Executor::report_html`](crate::Executor::report_html)).

use crate::api::{ApiError, AppState};
use crate::store::{RunFilter, RunRecord, RunState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The templates, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("runs.html", include_str!("../templates/runs.html")),
    ("run.html", include_str!("../templates/run.html")),
    ("seed.html", include_str!("../templates/seed.html")),
];

/// The template environment (HTML auto-escaping by the `.html` names).
pub fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.add_filter("truncate", |text: String, n: usize| -> String {
        if text.chars().count() <= n {
            text
        } else {
            text.chars().take(n).chain(std::iter::once('…')).collect()
        }
    });
    for (name, text) in TEMPLATES {
        env.add_template(name, text).expect("the shipped templates parse");
    }
    env
}

fn render(state: &AppState, name: &str, ctx: minijinja::Value) -> Result<Response, ApiError> {
    let page = state
        .templates()
        .get_template(name)
        .and_then(|t| t.render(ctx))
        .map_err(|e| ApiError::internal(format!("rendering {name}: {e}")))?;
    Ok(Html(page).into_response())
}

/// Query of the run list page.
#[derive(Debug, Deserialize)]
pub struct ListPage {
    plan: Option<String>,
    state: Option<String>,
}

/// `GET /`: the runs, pass/fail over time per plan, a filter.
pub async fn runs_page(State(state): State<AppState>, Query(q): Query<ListPage>) -> Result<Response, ApiError> {
    let plan = q.plan.filter(|p| !p.is_empty());
    let run_state = q.state.as_deref().filter(|s| !s.is_empty()).and_then(RunState::parse);
    let store = state.store();
    let (runs, recent, repeats) = {
        let filter = RunFilter { plan: plan.clone(), state: run_state, limit: 200, ..Default::default() };
        crate::api::blocking(move || {
            let recent = store.list_runs(&RunFilter { limit: 500, ..Default::default() })?;
            Ok((store.list_runs(&filter)?, recent, store.determinism()?))
        })
        .await?
    };
    // Per plan: its latest 30 runs, oldest first, and the counts.
    let mut plans: BTreeMap<String, (Vec<minijinja::Value>, u64, u64)> = BTreeMap::new();
    for r in recent.iter().rev() {
        let e = plans.entry(r.plan.clone()).or_default();
        e.0.push(minijinja::context! { id => r.id.clone(), state => r.state.as_str() });
        e.1 += (r.state == RunState::Passed) as u64;
        e.2 += (r.state == RunState::Failed) as u64;
    }
    let plans: Vec<minijinja::Value> = plans
        .into_iter()
        .map(|(name, (mut h, passed, failed))| {
            let skip = h.len().saturating_sub(30);
            h.drain(..skip);
            minijinja::context! { name, history => h, passed, failed }
        })
        .collect();
    let runs: Vec<minijinja::Value> = runs.iter().map(run_value).collect();
    let states = ["pending", "running", "passed", "failed", "error", "cancelled"];
    let determinism = minijinja::Value::from(minijinja::value::Serde(crate::api::determinism_json(&repeats)));
    let ctx = minijinja::context! {
        build => state.build(), runs, plans, states, plan, state => run_state.map(RunState::as_str), determinism
    };
    render(&state, "runs.html", ctx)
}

fn run_value(r: &RunRecord) -> minijinja::Value {
    let mut v = serde_json::to_value(r).expect("a run serialises");
    v["created"] = format_time(r.created_ms).into();
    minijinja::Value::from(minijinja::value::Serde(&v))
}

/// `2026-12-04 18:40:12 UTC`.
fn format_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + (m <= 2) as i64;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `GET /runs/{id}`: a run, updating live while it executes.
pub async fn run_page(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let store = state.store();
    let (run, failures, promoted, faults) = crate::api::blocking(move || {
        let run = store.run(&id)?.ok_or_else(|| ApiError::not_found(&id))?;
        let failures = store.seeds(&id, true, 0, 1000)?;
        // A promotion: every seed with its baseline comparison, and the faults applied.
        let (mut promoted, mut faults) = (Vec::new(), Vec::new());
        if run.backend != "sim" {
            promoted = store.seeds(&id, false, 0, 1000)?;
            let events = store.events_after(&id, 0, 5000)?;
            faults = events.into_iter().filter(|e| e.kind == "fault_applied").map(|e| e.data).collect();
        }
        Ok((run, failures, promoted, faults))
    })
    .await?;
    let percent = (run.seeds_done * 100).checked_div(run.seeds_total).unwrap_or(0);
    let ctx = minijinja::context! {
        build => state.build(),
        terminal => run.state.is_terminal(),
        percent,
        run => minijinja::Value::from(minijinja::value::Serde(&run)),
        failures => minijinja::Value::from(minijinja::value::Serde(&failures)),
        promoted => minijinja::Value::from(minijinja::value::Serde(&promoted)),
        faults => minijinja::Value::from(minijinja::value::Serde(&faults)),
    };
    render(&state, "run.html", ctx)
}

/// `GET /runs/{id}/seeds/{seed}`: one seed: its verdict, replay line and report.
pub async fn seed_page(
    State(state): State<AppState>,
    Path((id, seed)): Path<(String, u64)>,
) -> Result<Response, ApiError> {
    let store = state.store();
    let (run, record) = crate::api::blocking(move || {
        let run = store.run(&id)?.ok_or_else(|| ApiError::not_found(&id))?;
        let record =
            store.seeds(&id, false, 0, u64::MAX >> 1)?.into_iter().find(|s| s.seed == seed).ok_or_else(|| {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("run {id} has no result for seed {seed}"))
            })?;
        Ok((run, record))
    })
    .await?;
    render(
        &state,
        "seed.html",
        minijinja::context! {
            build => state.build(),
            run => minijinja::Value::from(minijinja::value::Serde(&run)),
            seed => minijinja::Value::from(minijinja::value::Serde(&record)),
            comparison => record.comparison.as_ref().map(|c| minijinja::Value::from(minijinja::value::Serde(&comparison_rows(c)))),
        },
    )
}

/// A promotion's comparison as table rows, simulated baseline beside observed: the verdict,
/// each fault kind, each workload's operations (invoked/ok/fail/info) and the latency
/// (p50/p99), with `differs` set where the two sides are not equal.
pub fn comparison_rows(c: &serde_json::Value) -> Vec<serde_json::Value> {
    let side = |s: &str, path: &[&str]| {
        let mut v = &c[s];
        for p in path {
            v = &v[*p];
        }
        match v {
            serde_json::Value::Null => "–".to_owned(),
            serde_json::Value::String(t) => t.lines().next().unwrap_or_default().to_owned(),
            serde_json::Value::Array(a) => a.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(" / "),
            other => other.to_string(),
        }
    };
    let keys = |field: &str| {
        let mut k: Vec<String> = ["baseline", "observed"]
            .iter()
            .flat_map(|s| c[*s][field].as_object().into_iter().flat_map(|m| m.keys().cloned()))
            .collect();
        k.sort();
        k.dedup();
        k
    };
    let mut rows = Vec::new();
    let mut row = |label: String, path: Vec<&str>| {
        let (b, o) = (side("baseline", &path), side("observed", &path));
        rows.push(serde_json::json!({"label": label, "baseline": b, "observed": o, "differs": b != o}));
    };
    row("verdict".into(), vec!["verdict"]);
    for k in keys("faults") {
        row(format!("faults: {k}"), vec!["faults", &k]);
    }
    for k in keys("ops") {
        row(format!("ops {k} (invoked / ok / fail / info)"), vec!["ops", &k]);
    }
    row("latency ms (p50 / p99)".into(), vec!["latency_ms"]);
    rows
}

/// `GET /runs/{id}/seeds/{seed}/report`: the seed's bundle as the command line's HTML report.
/// Only a bundle the store recorded for that seed is read (never a path from the request).
pub async fn seed_report(
    State(state): State<AppState>,
    Path((id, seed)): Path<(String, u64)>,
) -> Result<Response, ApiError> {
    let store = state.store();
    let executor = state.executor();
    crate::api::blocking(move || {
        let record = store.seeds(&id, false, 0, u64::MAX >> 1)?.into_iter().find(|s| s.seed == seed);
        let Some(bundle) = record.and_then(|r| r.bundle) else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("run {id} keeps no bundle for seed {seed}"),
            ));
        };
        let html = executor
            .report_html(std::path::Path::new(&bundle))
            .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "no_report", format!("{bundle}: {e}")))?;
        Ok(Html(html).into_response())
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(super::format_time(1_796_409_612_000), "2026-12-04 18:40:12 UTC");
    }

    #[test]
    fn every_template_parses_and_escapes_html() {
        let env = super::environment();
        let out = env
            .get_template("seed.html")
            .unwrap()
            .render(minijinja::context! {
                build => "b",
                run => minijinja::context! { id => "r", plan => "<p>" },
                seed => minijinja::context! { seed => 1, passed => false, class => "safety", message => "<script>x</script>", bundle => "b.gbundle" },
            })
            .unwrap();
        assert!(out.contains("&lt;script&gt;x") && !out.contains("<script>x"), "{out}");
        assert!(
            out.contains("/v1/test-runs/r/shrink") && out.contains("Shrink seed 1"),
            "a failing seed can be shrunk: {out}"
        );
        let run = minijinja::context! {
            id => "r", plan => "p", app => "a", seeds => "0..2", seeds_total => 2, seeds_done => 1,
            passed => 0, failed => 1, bugs => vec!["b"], jobs => 1, state => "running", last_event => 4,
        };
        let failure = minijinja::context! { seed => 1, class => "safety", source => "e", message => "m".repeat(300), replay => "r" };
        let out = env
            .get_template("run.html")
            .unwrap()
            .render(minijinja::context! { build => "b", terminal => false, percent => 50, run => run.clone(), failures => vec![failure] })
            .unwrap();
        assert!(out.contains("events?after=4") && out.contains(&format!("{}…", "m".repeat(160))), "{out}");
        // Script gets JavaScript values (minijinja prints a bare boolean as Python's `False`).
        assert!(out.contains("if (false) return;"), "{out}");
        let out = env
            .get_template("runs.html")
            .unwrap()
            .render(minijinja::context! { build => "b", runs => vec![run], plans => Vec::<()>::new(), states => vec!["passed"], determinism => minijinja::context! { checked => 2, rate_percent => 50.0, flaky => vec![minijinja::context! { seed => 7, plan => "p", runs => 2, trace_hashes => 2, verdicts => 1, build => "b" }] } })
            .unwrap();
        assert!(out.contains("/runs/r"), "{out}");
        assert!(
            out.contains("<b>50.0%</b> of 2 seeds") && out.contains("<td><b>7</b></td>"),
            "the flaky seed is shown: {out}"
        );
    }

    #[test]
    fn a_promotion_shows_its_baseline_beside_what_was_observed() {
        let cmp = serde_json::json!({
            "backend": "local", "matches": false, "verdict": "pass",
            "baseline": {"verdict": "pass", "faults": {"crash": 2, "cut_one_way": 4}, "ops": {"kv": [10, 9, 0, 1]}, "latency_ms": [3, 9]},
            "observed": {"verdict": "pass", "faults": {"crash": 1, "cut_one_way": 4}, "ops": {"kv": [10, 9, 0, 1]}, "latency_ms": [5, 40]},
            "deviations": ["faults crash: 2 simulated, 1 observed"],
        });
        let rows = super::comparison_rows(&cmp);
        let differs: Vec<&str> =
            rows.iter().filter(|r| r["differs"] == true).map(|r| r["label"].as_str().unwrap()).collect();
        assert_eq!(differs, ["faults: crash", "latency ms (p50 / p99)"]);
        assert_eq!(rows.len(), 5, "verdict, two fault kinds, one workload, latency: {rows:?}");
        let env = super::environment();
        let out = env
            .get_template("seed.html")
            .unwrap()
            .render(minijinja::context! {
                build => "b",
                run => minijinja::context! { id => "r", plan => "p" },
                seed => minijinja::Value::from(minijinja::value::Serde(&serde_json::json!({"seed": 1, "passed": false, "class": "deviation", "comparison": cmp}))),
                comparison => minijinja::Value::from(minijinja::value::Serde(&rows)),
            })
            .unwrap();
        assert!(
            out.contains("observed (local)")
                && out.contains(r#"<tr class="differs"><td>faults: crash</td><td>2</td><td>1</td></tr>"#),
            "{out}"
        );
        assert!(out.contains("<li>faults crash: 2 simulated, 1 observed</li>") && out.contains(">deviates<"), "{out}");
    }
}
