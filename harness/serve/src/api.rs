//! The HTTP API (`/v1/…`), its errors and limits, and the live event stream (SSE).
//!
//! Every error is a JSON body `{"error": {"code": "...", "message": "..."}}` with a 4xx status
//! that names the problem (a malformed plan, an unknown application, a bad seed range, a body
//! over the limit, a missing or wrong token); a mutating request changes nothing unless it
//! succeeds.

use crate::executor::Executor;
use crate::metrics::{Metrics, StatusLabel};
use crate::queue::Queue;
use crate::store::{EventRecord, NewRun, RunFilter, RunState, Store, StoreError};
use crate::{now_ms, Config};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The routes, for the OpenAPI document's test: (path, methods).
pub const ROUTES: &[(&str, &[&str])] = &[
    ("/v1/test-runs", &["get", "post"]),
    ("/v1/test-runs/{id}", &["get", "delete"]),
    ("/v1/test-runs/{id}/seeds", &["get"]),
    ("/v1/test-runs/{id}/events", &["get"]),
    ("/v1/test-runs/{id}/shrink", &["post"]),
    ("/v1/snapshots/compare", &["post"]),
    ("/v1/incidents", &["get"]),
    ("/v1/determinism", &["get"]),
    ("/v1/openapi.json", &["get"]),
    ("/metrics", &["get"]),
];

/// The OpenAPI document served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    store: Arc<dyn Store>,
    executor: Arc<dyn Executor>,
    queue: Queue,
    metrics: Arc<Metrics>,
    token: String,
    plan_dirs: Vec<PathBuf>,
    data: PathBuf,
    max_seeds: u64,
    jobs: u32,
    time_limit_ms: u64,
    max_body: usize,
    shutdown: tokio::sync::watch::Receiver<bool>,
    /// Event streams open now, bounded.
    streams: Arc<tokio::sync::Semaphore>,
    templates: minijinja::Environment<'static>,
}

/// The most event streams open at once; one more is refused with 429.
pub const MAX_STREAMS: usize = 512;

impl AppState {
    /// The state for [`router`].
    pub fn new(
        store: Arc<dyn Store>,
        executor: Arc<dyn Executor>,
        queue: Queue,
        metrics: Arc<Metrics>,
        token: String,
        config: &Config,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> AppState {
        AppState {
            inner: Arc::new(Shared {
                store,
                executor,
                queue,
                metrics,
                token,
                plan_dirs: config.plan_dirs.clone(),
                data: config.data.clone(),
                max_seeds: config.max_seeds,
                jobs: config.jobs,
                time_limit_ms: config.time_limit_ms,
                max_body: config.max_body,
                shutdown,
                streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
                templates: crate::dashboard::environment(),
            }),
        }
    }

    pub(crate) fn store(&self) -> Arc<dyn Store> {
        self.inner.store.clone()
    }

    pub(crate) fn executor(&self) -> Arc<dyn Executor> {
        self.inner.executor.clone()
    }

    pub(crate) fn templates(&self) -> &minijinja::Environment<'static> {
        &self.inner.templates
    }

    pub(crate) fn build(&self) -> String {
        self.inner.executor.build()
    }
}

/// The API's router.
pub fn router(state: AppState) -> Router {
    let limit = state.inner.max_body;
    let metrics = state.inner.metrics.clone();
    Router::new()
        .route("/v1/test-runs", get(list_runs).post(submit))
        .route("/v1/test-runs/{id}", get(get_run).delete(cancel))
        .route("/v1/test-runs/{id}/seeds", get(get_seeds))
        .route("/v1/test-runs/{id}/events", get(events))
        .route("/v1/openapi.json", get(|| async { ([("content-type", "application/json")], OPENAPI) }))
        .route("/v1/test-runs/{id}/shrink", axum::routing::post(shrink))
        .route("/v1/snapshots/compare", axum::routing::post(compare))
        .route("/v1/incidents", get(list_incidents))
        .route("/v1/determinism", get(determinism))
        .route("/metrics", get(metrics_text))
        .route("/", get(crate::dashboard::runs_page))
        .route("/runs/{id}", get(crate::dashboard::run_page))
        .route("/runs/{id}/seeds/{seed}", get(crate::dashboard::seed_page))
        .route("/runs/{id}/seeds/{seed}/report", get(crate::dashboard::seed_report))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::map_response(move |r: Response| {
            let metrics = metrics.clone();
            async move {
                let class = format!("{}xx", r.status().as_u16() / 100);
                metrics.requests.get_or_create(&StatusLabel { class }).inc();
                r
            }
        }))
        .with_state(state)
}

/// An API error: a status and a JSON body naming the problem.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub(crate) fn not_found(id: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no run {id:?}"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "store", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

/// Runs a store call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("a store task failed: {e}"))
    })?
}

/// Checks the write token (`Authorization: Bearer …`), in constant time.
fn authorise(state: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get("authorization") else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorised",
            "this request changes something: send the write token as `Authorization: Bearer <token>`",
        ));
    };
    let given = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).unwrap_or_default().as_bytes();
    let want = state.token.as_bytes();
    let same = given.len() == want.len() && given.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
    if same {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "the write token is wrong"))
    }
}

/// A submission.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Submit {
    /// The plan as TOML text…
    plan: Option<String>,
    /// …or a plan file under one of the served plan directories.
    plan_path: Option<String>,
    /// `42`, `0..200`, `100+50`, or a commit id.
    seeds: String,
    #[serde(default)]
    bugs: Vec<String>,
    jobs: Option<u32>,
    /// `sim` (default) or a real backend to promote to (`local`, `compose`: what the
    /// executor offers).
    backend: Option<String>,
    /// `10m`, `90s`…
    time_limit: Option<String>,
}

async fn submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let s = &state.inner;
    authorise(s, &headers)?;
    let req: Submit = json_body(s, &headers, body).await?;
    let plan_toml = match (&req.plan, &req.plan_path) {
        (Some(t), None) => t.clone(),
        (None, Some(p)) => read_served_plan(s, p)?,
        _ => return Err(ApiError::bad("bad_plan", "give exactly one of `plan` (TOML text) and `plan_path`")),
    };
    let backend = req.backend.clone().unwrap_or_else(|| "sim".into());
    let backends = s.executor.backends();
    if !backends.contains(&backend) {
        return Err(ApiError::bad(
            "bad_backend",
            format!("backend {backend:?}: this server runs on {}", backends.join(", ")),
        ));
    }
    let time_limit_ms = match &req.time_limit {
        None => s.time_limit_ms,
        Some(t) => parse_duration(t).ok_or_else(|| {
            ApiError::bad("bad_time_limit", format!("time_limit {t:?}: expected e.g. \"90s\" or \"10m\""))
        })?,
    };
    let jobs = req.jobs.unwrap_or(s.jobs);
    if !(1..=64).contains(&jobs) {
        return Err(ApiError::bad("bad_jobs", format!("jobs {jobs}: between 1 and 64")));
    }
    let jobs = jobs.min(s.executor.max_jobs(&backend));
    let executor = s.executor.clone();
    let (bugs, spec, max_seeds) = (req.bugs.clone(), req.seeds.clone(), s.max_seeds);
    let checked = {
        let (plan_toml, backend) = (plan_toml.clone(), backend.clone());
        blocking(move || {
            let info = executor.check(&plan_toml, &bugs, &backend).map_err(|e| ApiError::bad("bad_plan", e))?;
            let seeds = executor.seeds(&spec).map_err(|e| ApiError::bad("bad_seeds", e))?;
            if seeds.len() as u64 > max_seeds {
                return Err(ApiError::bad("bad_seeds", format!("{} seeds: at most {max_seeds} per run", seeds.len())));
            }
            Ok((info, seeds.len() as u64, executor.build()))
        })
        .await?
    };
    let (info, total, build) = checked;
    let id = run_id(&plan_toml, &req.seeds, &req.bugs, &backend, &build);
    let run = NewRun {
        id: id.clone(),
        plan_name: info.name,
        app: info.app,
        plan_toml,
        seeds_spec: req.seeds,
        seeds_total: total,
        bugs: req.bugs,
        backend,
        build,
        jobs,
        time_limit_ms,
        parent: None,
        created_ms: now_ms(),
        origin: None,
    };
    let store = s.store.clone();
    let (inserted, record) = blocking(move || {
        let inserted = store.insert_run(&run)?;
        Ok((inserted, store.run(&run.id)?))
    })
    .await?;
    s.queue.wake();
    s.queue.notify_event();
    let record = record.ok_or_else(|| ApiError::not_found(&id))?;
    let status = if inserted { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, [("location", format!("/v1/test-runs/{id}"))], Json(run_json(&record, None))).into_response())
}

/// A run's id: a hash of what makes it the same run (plan, seeds, bugs, backend, build).
pub fn run_id(plan_toml: &str, seeds: &str, bugs: &[String], backend: &str, build: &str) -> String {
    let mut h = Sha256::new();
    for part in [plan_toml, seeds, &bugs.join(","), backend, build] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Reads `path` if it names a file inside one of the served plan directories.
fn read_served_plan(s: &Shared, path: &str) -> Result<String, ApiError> {
    if s.plan_dirs.is_empty() {
        return Err(ApiError::bad("bad_plan", "this server serves no plan directory: send the plan as TOML in `plan`"));
    }
    for dir in &s.plan_dirs {
        let Ok(dir) = dir.canonicalize() else { continue };
        let Ok(file) = dir.join(path).canonicalize() else { continue };
        if file.starts_with(&dir) && file.is_file() {
            let meta = std::fs::metadata(&file).map_err(|e| ApiError::bad("bad_plan", format!("{path}: {e}")))?;
            if meta.len() > s.max_body as u64 {
                return Err(ApiError::bad("bad_plan", format!("{path}: larger than {} bytes", s.max_body)));
            }
            return std::fs::read_to_string(&file).map_err(|e| ApiError::bad("bad_plan", format!("{path}: {e}")));
        }
    }
    Err(ApiError::bad("bad_plan", format!("plan_path {path:?} is not a file under the served plan directories")))
}

/// `90s`, `10m`, `2h`, `1500ms`.
fn parse_duration(t: &str) -> Option<u64> {
    let t = t.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    (ms > 0).then_some(ms)
}

fn run_json(r: &crate::store::RunRecord, failures: Option<Vec<crate::store::SeedRecord>>) -> serde_json::Value {
    let mut v = serde_json::to_value(r).expect("a run serialises");
    v["progress"] = serde_json::json!({"done": r.seeds_done, "total": r.seeds_total});
    v["links"] = serde_json::json!({
        "self": format!("/v1/test-runs/{}", r.id),
        "events": format!("/v1/test-runs/{}/events", r.id),
        "seeds": format!("/v1/test-runs/{}/seeds", r.id),
    });
    if let Some(f) = failures {
        v["failures"] = serde_json::to_value(f).expect("seeds serialise");
    }
    v
}

/// Query of the run list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    plan: Option<String>,
    state: Option<String>,
    since_ms: Option<u64>,
    until_ms: Option<u64>,
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn list_runs(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let run_state = match &q.state {
        None => None,
        Some(v) => Some(RunState::parse(v).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("state {v:?}: pending, running, passed, failed, error or cancelled"),
            )
        })?),
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let offset = q.offset.unwrap_or(0);
    let filter =
        RunFilter { plan: q.plan, state: run_state, since_ms: q.since_ms, until_ms: q.until_ms, limit, offset };
    let store = state.inner.store.clone();
    let runs = blocking(move || Ok(store.list_runs(&filter)?)).await?;
    let next = (runs.len() as u64 == limit).then_some(offset + limit);
    let runs: Vec<serde_json::Value> = runs.iter().map(|r| run_json(r, None)).collect();
    Ok(Json(serde_json::json!({"runs": runs, "next_offset": next})))
}

async fn get_run(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let store = state.inner.store.clone();
    let (run, failures) = blocking(move || {
        let run = store.run(&id)?.ok_or_else(|| ApiError::not_found(&id))?;
        let failures = store.seeds(&id, true, 0, 1000)?;
        Ok((run, failures))
    })
    .await?;
    Ok(Json(run_json(&run, Some(failures))))
}

/// Query of a run's seeds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedsQuery {
    failed: Option<bool>,
    limit: Option<u64>,
    offset: Option<u64>,
}

async fn get_seeds(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<SeedsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let store = state.inner.store.clone();
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let offset = q.offset.unwrap_or(0);
    let seeds = blocking(move || {
        store.run(&id)?.ok_or_else(|| ApiError::not_found(&id))?;
        Ok(store.seeds(&id, q.failed.unwrap_or(false), offset, limit)?)
    })
    .await?;
    let next = (seeds.len() as u64 == limit).then_some(offset + limit);
    Ok(Json(serde_json::json!({"seeds": seeds, "next_offset": next})))
}

async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    authorise(&state.inner, &headers)?;
    let store = state.inner.store.clone();
    let lookup = id.clone();
    blocking(move || store.run(&lookup)?.ok_or_else(|| ApiError::not_found(&lookup))).await?;
    let s = state.clone();
    let cancel_id = id.clone();
    let changed = blocking(move || Ok(s.inner.queue.cancel(&cancel_id)?)).await?;
    let store = state.inner.store.clone();
    let run = blocking(move || store.run(&id)?.ok_or_else(|| ApiError::not_found(&id))).await?;
    let status = if changed { StatusCode::OK } else { StatusCode::CONFLICT };
    let mut body = run_json(&run, None);
    if !changed {
        body["error"] = serde_json::json!({"code": "already_ended", "message": format!("run {} had already ended ({})", run.id, run.state.as_str())});
    }
    Ok((status, Json(body)).into_response())
}

/// Reads a JSON body of at most the limit: 413 over it, 400 if it is not `T`.
async fn json_body<T: serde::de::DeserializeOwned>(
    s: &Shared,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<T, ApiError> {
    let declared = headers.get("content-length").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_body as u64) {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body is {} bytes: the limit is {} bytes", declared.unwrap_or(0), s.max_body),
        ));
    }
    let bytes = axum::body::to_bytes(body, s.max_body).await.map_err(|e| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the request body over {} bytes: {e}", s.max_body),
        )
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", format!("the request body: {e}")))
}

/// One side of a comparison: a seed of a stored run, or an uploaded bundle.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Side {
    run: Option<String>,
    seed: Option<u64>,
    /// A bundle file, base64.
    bundle_base64: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Compare {
    a: Side,
    b: Side,
}

/// The bundle a side names: a recorded one, or the upload written under `<data>/uploads`.
fn side_bundle(s: &Shared, side: Side, name: &str) -> Result<PathBuf, ApiError> {
    match side {
        Side { run: Some(run), seed: Some(seed), bundle_base64: None } => {
            let record = s.store.seeds(&run, false, 0, u64::MAX >> 1)?.into_iter().find(|r| r.seed == seed);
            record.and_then(|r| r.bundle).map(PathBuf::from).ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("{name}: run {run:?} keeps no bundle for seed {seed}"),
                )
            })
        }
        Side { run: None, seed: None, bundle_base64: Some(b64) } => {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| ApiError::bad("bad_bundle", format!("{name}.bundle_base64: {e}")))?;
            let digest: String = Sha256::digest(&bytes).iter().take(8).map(|b| format!("{b:02x}")).collect();
            let dir = s.data.join("uploads");
            std::fs::create_dir_all(&dir).map_err(|e| ApiError::internal(format!("{}: {e}", dir.display())))?;
            let path = dir.join(format!("{digest}.gbundle"));
            crate::queue::write_atomically(&path, &bytes)
                .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
            Ok(path)
        }
        _ => Err(ApiError::bad("bad_side", format!("{name}: give `run` and `seed`, or `bundle_base64`"))),
    }
}

async fn compare(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req: Compare = json_body(&state.inner, &headers, body).await?;
    let st = state.clone();
    blocking(move || {
        let a = side_bundle(&st.inner, req.a, "a")?;
        let b = side_bundle(&st.inner, req.b, "b")?;
        st.inner.executor.compare(&a, &b).map(Json).map_err(|e| ApiError::bad("bad_bundle", e))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShrinkRequest {
    seed: u64,
}

/// Shrinks a failing seed of a run (the request waits for the shrinker), then submits the
/// shrunk plan at that seed as a new run linked to this one (`parent`).
async fn shrink(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    authorise(&state.inner, &headers)?;
    let req: ShrinkRequest = json_body(&state.inner, &headers, body).await?;
    let st = state.clone();
    let (status, record) = blocking(move || {
        let s = &st.inner;
        let run = s.store.run(&id)?.ok_or_else(|| ApiError::not_found(&id))?;
        let seed = s.store.seeds(&id, true, 0, u64::MAX >> 1)?.into_iter().find(|r| r.seed == req.seed);
        let Some(bundle) = seed.and_then(|r| r.bundle) else {
            return Err(ApiError::bad(
                "not_failing",
                format!("seed {} of run {id} has no failing bundle to shrink", req.seed),
            ));
        };
        let out = s.data.join("plans").join(format!("{id}-{}-shrunk.toml", req.seed));
        let (plan_toml, report) =
            s.executor.shrink(std::path::Path::new(&bundle), &out).map_err(|e| ApiError::bad("shrink_failed", e))?;
        let info = s.executor.check(&plan_toml, &[], &run.backend).map_err(|e| ApiError::bad("shrink_failed", e))?;
        let build = s.executor.build();
        let seeds = req.seed.to_string();
        let new = NewRun {
            id: run_id(&plan_toml, &seeds, &[], &run.backend, &build),
            plan_name: info.name,
            app: info.app,
            plan_toml,
            seeds_spec: seeds,
            seeds_total: 1,
            bugs: Vec::new(),
            backend: run.backend.clone(),
            build,
            jobs: 1,
            time_limit_ms: run.time_limit_ms,
            parent: Some(id.clone()),
            created_ms: now_ms(),
            // The run's log ends at `finished`: the link lives in the new run (`parent`, and
            // the shrinker's report in its `submitted` event).
            origin: Some(serde_json::json!({"shrunk_from": {"run": id, "seed": req.seed}, "report": report})),
        };
        let inserted = s.store.insert_run(&new)?;
        let record = s.store.run(&new.id)?.ok_or_else(|| ApiError::not_found(&new.id))?;
        Ok((if inserted { StatusCode::CREATED } else { StatusCode::OK }, record))
    })
    .await?;
    state.inner.queue.wake();
    state.inner.queue.notify_event();
    Ok((status, Json(run_json(&record, None))).into_response())
}

async fn list_incidents(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let store = state.inner.store.clone();
    let incidents = blocking(move || Ok(store.incidents(200)?)).await?;
    Ok(Json(serde_json::json!({ "incidents": incidents })))
}

/// The determinism rate over the store: seeds that more than one run of the same plan, bugs
/// and build executed, how many agreed (trace hash and verdict), and those that did not.
pub(crate) fn determinism_json(repeats: &[crate::store::Repeat]) -> serde_json::Value {
    let matched = repeats.iter().filter(|r| !r.flaky()).count();
    let rate = if repeats.is_empty() { None } else { Some(100.0 * matched as f64 / repeats.len() as f64) };
    let flaky: Vec<&crate::store::Repeat> = repeats.iter().filter(|r| r.flaky()).collect();
    serde_json::json!({ "checked": repeats.len(), "matched": matched, "rate_percent": rate, "flaky": flaky })
}

async fn determinism(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let store = state.inner.store.clone();
    let repeats = blocking(move || Ok(store.determinism()?)).await?;
    Ok(Json(determinism_json(&repeats)))
}

async fn metrics_text(State(state): State<AppState>) -> Result<Response, ApiError> {
    let store = state.inner.store.clone();
    let counts = blocking(move || Ok(store.counts()?)).await?;
    state.inner.metrics.active.set(state.inner.queue.active() as i64);
    let text = state.inner.metrics.encode(&counts);
    Ok(([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response())
}

/// The live event stream of a run: every event of its log after `Last-Event-ID` (or from
/// the start), then new ones as they come, until the run's `finished` event. Events are read
/// from the store in batches, so a slow client costs one batch of memory and never slows the
/// run; a reconnect with `Last-Event-ID: N` resumes at event N+1 without loss or repetition.
/// Query of the event stream: `after` (for a first connection, as `Last-Event-ID` is for a
/// reconnection; the header wins).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsQuery {
    after: Option<u64>,
}

async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", e.body_text()))?;
    let after = match headers.get("last-event-id") {
        None => q.after.unwrap_or(0),
        Some(v) => v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()).ok_or_else(|| {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_last_event_id", "Last-Event-ID must be an event id (a number)")
        })?,
    };
    let store = state.inner.store.clone();
    let lookup = id.clone();
    blocking(move || store.run(&lookup)?.ok_or_else(|| ApiError::not_found(&lookup))).await?;
    let permit = state.inner.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!("{MAX_STREAMS} event streams are open: retry later"),
        )
    })?;
    let stream = EventStream {
        state: state.clone(),
        id,
        after,
        buffer: VecDeque::new(),
        done: false,
        wake: state.inner.queue.events(),
        shutdown: state.inner.shutdown.clone(),
        _permit: permit,
    };
    let s = futures::stream::unfold(stream, |mut st| async move {
        let next = st.next().await?;
        Some((Ok::<Event, std::convert::Infallible>(next), st))
    });
    Ok(Sse::new(s).keep_alive(KeepAlive::new().interval(Duration::from_secs(10))).into_response())
}

/// How many events one read of the store takes.
const BATCH: u64 = 256;

struct EventStream {
    state: AppState,
    id: String,
    after: u64,
    buffer: VecDeque<EventRecord>,
    done: bool,
    wake: tokio::sync::watch::Receiver<u64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl EventStream {
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.buffer.pop_front() {
                self.after = e.seq;
                if e.kind == "finished" {
                    self.done = true;
                }
                return Some(Event::default().id(e.seq.to_string()).event(e.kind).data(e.data.to_string()));
            }
            if self.done || *self.shutdown.borrow() {
                return None;
            }
            // Mark the wake-up counter seen before reading, so an event appended after the
            // read wakes the wait below.
            self.wake.borrow_and_update();
            let (store, id, after) = (self.state.inner.store.clone(), self.id.clone(), self.after);
            let read = blocking(move || {
                let events = store.events_after(&id, after, BATCH)?;
                let ended = events.is_empty() && store.run(&id)?.is_none_or(|r| r.state.is_terminal());
                Ok((events, ended))
            })
            .await;
            match read {
                Ok((events, _)) if !events.is_empty() => self.buffer.extend(events),
                Ok((_, true)) | Err(_) => return None, // ended with nothing after `after`
                Ok(_) => {
                    tokio::select! {
                        biased;
                        _ = self.wake.changed() => {}
                        _ = self.shutdown.changed() => {}
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_their_unit_and_nothing_else() {
        assert_eq!(parse_duration("90s"), Some(90_000));
        assert_eq!(parse_duration("10m"), Some(600_000));
        assert_eq!(parse_duration("1500ms"), Some(1500));
        for bad in ["", "s", "10", "0s", "10x", "-1s", "99999999999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_openapi_document_lists_every_route_and_only_those() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("the document is JSON");
        let paths = doc["paths"].as_object().expect("paths");
        for (path, methods) in ROUTES {
            let entry = paths.get(*path).unwrap_or_else(|| panic!("{path} is documented"));
            let mut documented: Vec<&str> = entry.as_object().unwrap().keys().map(String::as_str).collect();
            let mut routed = methods.to_vec();
            documented.sort_unstable();
            routed.sort_unstable();
            assert_eq!(documented, routed, "{path}: the documented methods are the routed ones");
        }
        assert_eq!(paths.len(), ROUTES.len(), "no documented path is missing from the router");
    }
}
