//! The observation runtime: one loop that keeps watching a changing set of sources, keeps
//! typed state built from what it sees, and serves the latest snapshot, a bounded history of
//! deltas, subscriptions and per-source errors to workloads and expectations.
//!
//! The runtime owns scheduling, source refresh, polling, history, snapshot caching, delta
//! publication and error/freshness tracking. The application owns what a source is, how one is
//! read, what state is built from the readings, and the shape of snapshots and events
//! ([`Observer`]). The same code runs on simulated time inside a world (it uses
//! [`gauntlet_sim::time`]) and on wall-clock time in a real deployment.
//!
//! ```
//! use gauntlet::observe::{ObservationConfig, ObservationRuntime, ObservedSource, Observer, ObserveError};
//! use std::time::Duration;
//!
//! /// Counts how many times each source was read.
//! struct Counter;
//! impl Observer for Counter {
//!     type Source = u32;
//!     type State = std::collections::BTreeMap<String, u32>;
//!     type Snapshot = u32;
//!     type Event = String;
//!     async fn init(&self, _: &[ObservedSource<u32>]) -> Result<Self::State, ObserveError> { Ok(Default::default()) }
//!     async fn poll(&self, s: &ObservedSource<u32>, state: &mut Self::State) -> Result<Vec<String>, ObserveError> {
//!         *state.entry(s.name.clone()).or_default() += s.source;
//!         Ok(vec![format!("read {}", s.name)])
//!     }
//!     fn snapshot(&self, state: &Self::State) -> u32 { state.values().sum() }
//! }
//!
//! gauntlet::sim::World::builder().seed(1).build().unwrap().run(|_sim| async move {
//!     let sources = vec![ObservedSource::new("a", 1), ObservedSource::new("b", 10)];
//!     let runtime = ObservationRuntime::new(Counter, sources, ObservationConfig::default());
//!     let handle = runtime.handle();
//!     gauntlet::sim::time::spawn_local(runtime.run());
//!     gauntlet::sim::time::sleep(Duration::from_millis(450)).await;
//!     assert_eq!(handle.latest(), Some(55)); // five ticks of 1 + 10
//!     assert_eq!(handle.history().len(), 10);
//!     handle.stop();
//! }).unwrap();
//! ```

use gauntlet_sim::time;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

/// What went wrong reading a source or building state: a message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObserveError(pub String);

impl fmt::Display for ObserveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ObserveError {}

impl<T: Into<String>> From<T> for ObserveError {
    fn from(message: T) -> Self {
        ObserveError(message.into())
    }
}

/// A named source instance: a node's client, a public endpoint, anything the app reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedSource<S> {
    /// Unique name; sources are matched across refreshes by name.
    pub name: String,
    /// The app's handle on the source.
    pub source: S,
}

impl<S> ObservedSource<S> {
    /// A source called `name`.
    pub fn new(name: impl Into<String>, source: S) -> Self {
        ObservedSource { name: name.into(), source }
    }
}

/// Returns the current set of sources. Called at start and every
/// [`ObservationConfig::refresh_every`], so sources may come and go (restarts, churn).
pub trait SourceProvider<S>: 'static {
    /// The sources as of now, in a stable order.
    fn sources(&self) -> impl Future<Output = Vec<ObservedSource<S>>>;
}

/// A fixed list of sources.
impl<S: Clone + 'static> SourceProvider<S> for Vec<ObservedSource<S>> {
    async fn sources(&self) -> Vec<ObservedSource<S>> {
        self.clone()
    }
}

/// Sources computed by a closure each refresh.
pub struct FnSources<F>(pub F);

impl<S: 'static, F: Fn() -> Vec<ObservedSource<S>> + 'static> SourceProvider<S> for FnSources<F> {
    async fn sources(&self) -> Vec<ObservedSource<S>> {
        (self.0)()
    }
}

/// App-owned observation logic: how a source is read and what is built from the readings.
///
/// The runtime calls [`Observer::poll`] once per source per tick (so one failing source is
/// reported without stopping the others), then [`Observer::snapshot`].
pub trait Observer: 'static {
    /// What a source is (a node client, an endpoint).
    type Source: Clone + 'static;
    /// Materialised state, owned by the runtime.
    type State: 'static;
    /// The read-side view published after every tick.
    type Snapshot: Clone + 'static;
    /// A delta published to subscribers and kept in the bounded history.
    type Event: Clone + 'static;

    /// Builds the initial state from the first source set.
    fn init(&self, sources: &[ObservedSource<Self::Source>])
        -> impl Future<Output = Result<Self::State, ObserveError>>;

    /// Reads one source and folds the reading into `state`, returning the deltas it caused.
    fn poll(
        &self,
        source: &ObservedSource<Self::Source>,
        state: &mut Self::State,
    ) -> impl Future<Output = Result<Vec<Self::Event>, ObserveError>>;

    /// Called when a refresh adds or removes sources. Default: nothing changes.
    fn sources_changed(
        &self,
        _added: &[ObservedSource<Self::Source>],
        _removed: &[String],
        _state: &mut Self::State,
    ) -> Vec<Self::Event> {
        Vec::new()
    }

    /// The view of `state` to publish.
    fn snapshot(&self, state: &Self::State) -> Self::Snapshot;
}

/// How the runtime runs. Every setter documents its default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObservationConfig {
    /// Time between ticks. Default 100 ms.
    pub interval: Duration,
    /// Time between source refreshes. Default 500 ms.
    pub refresh_every: Duration,
    /// Deltas kept in the history (oldest dropped first). Default 4096.
    pub history: usize,
    /// Longest a single source poll may take before it counts as an error. Default 1 s.
    pub poll_timeout: Duration,
}

impl Default for ObservationConfig {
    fn default() -> Self {
        ObservationConfig {
            interval: Duration::from_millis(100),
            refresh_every: Duration::from_millis(500),
            history: 4096,
            poll_timeout: Duration::from_secs(1),
        }
    }
}

impl ObservationConfig {
    /// Sets the tick interval (default 100 ms).
    pub fn interval(mut self, d: Duration) -> Self {
        self.interval = d;
        self
    }
    /// Sets the source refresh interval (default 500 ms).
    pub fn refresh_every(mut self, d: Duration) -> Self {
        self.refresh_every = d;
        self
    }
    /// Sets the history bound (default 4096 deltas).
    pub fn history(mut self, n: usize) -> Self {
        self.history = n;
        self
    }
    /// Sets the per-source poll timeout (default 1 s).
    pub fn poll_timeout(mut self, d: Duration) -> Self {
        self.poll_timeout = d;
        self
    }
}

/// One published delta.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta<E> {
    /// Position in the stream, from 0, without gaps.
    pub seq: u64,
    /// Time since the runtime started.
    pub at: Duration,
    /// The source that caused it (empty for source-set changes).
    pub source: String,
    /// The app's event.
    pub event: E,
}

/// The most recent failure of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceError {
    /// The source's name.
    pub source: String,
    /// When, since the runtime started.
    pub at: Duration,
    /// What went wrong.
    pub message: String,
}

/// What the runtime knows about one current source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatus {
    /// The source's name.
    pub name: String,
    /// Time of the last successful poll, since the runtime started.
    pub last_ok: Option<Duration>,
    /// The last error, if the last poll failed.
    pub error: Option<String>,
}

/// A subscriber fell behind and missed deltas that left the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lagged {
    /// How many deltas it missed.
    pub missed: u64,
}

struct Shared<Snap, Ev> {
    config: ObservationConfig,
    latest: Option<(Duration, Snap)>,
    history: VecDeque<Delta<Ev>>,
    next_seq: u64,
    sources: Vec<SourceStatus>,
    last_error: Option<SourceError>,
    errors: u64,
    ticks: u64,
    now: Duration,
    stopped: bool,
    wakers: Vec<Waker>,
}

impl<Snap, Ev> Shared<Snap, Ev> {
    fn publish(&mut self, at: Duration, source: &str, event: Ev) {
        assert!(self.history.len() <= self.config.history, "history within its bound");
        if self.history.len() == self.config.history {
            self.history.pop_front();
        }
        self.history.push_back(Delta { seq: self.next_seq, at, source: source.to_owned(), event });
        self.next_seq += 1;
    }

    fn wake_all(&mut self) {
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }
}

/// The read side of a runtime, for workloads, expectations and tests. Cheap to clone.
pub struct ObservationHandle<Snap, Ev> {
    shared: Arc<Mutex<Shared<Snap, Ev>>>,
}

impl<Snap, Ev> Clone for ObservationHandle<Snap, Ev> {
    fn clone(&self) -> Self {
        ObservationHandle { shared: self.shared.clone() }
    }
}

impl<Snap: Clone, Ev: Clone> ObservationHandle<Snap, Ev> {
    /// A handle with nothing observed yet; give it to [`ObservationRuntime::with_handle`].
    pub fn new(config: ObservationConfig) -> Self {
        assert!(config.history > 0, "an observation history holds at least one delta");
        ObservationHandle {
            shared: Arc::new(Mutex::new(Shared {
                config,
                latest: None,
                history: VecDeque::new(),
                next_seq: 0,
                sources: Vec::new(),
                last_error: None,
                errors: 0,
                ticks: 0,
                now: Duration::ZERO,
                stopped: false,
                wakers: Vec::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Shared<Snap, Ev>> {
        // A panic while holding the lock can only come from our own assertions; the data is
        // still consistent, so keep serving it.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest snapshot (`None` before the first tick).
    pub fn latest(&self) -> Option<Snap> {
        self.lock().latest.as_ref().map(|(_, s)| s.clone())
    }

    /// The latest snapshot and when it was taken (time since the runtime started).
    pub fn latest_at(&self) -> Option<(Duration, Snap)> {
        self.lock().latest.clone()
    }

    /// Age of the latest snapshot as of the last tick's clock (freshness).
    pub fn staleness(&self) -> Option<Duration> {
        let s = self.lock();
        s.latest.as_ref().map(|(at, _)| s.now.saturating_sub(*at))
    }

    /// The deltas still in the bounded history, oldest first.
    pub fn history(&self) -> Vec<Delta<Ev>> {
        self.lock().history.iter().cloned().collect()
    }

    /// The most recent error of any source.
    pub fn last_error(&self) -> Option<SourceError> {
        self.lock().last_error.clone()
    }

    /// How many source polls have failed in all.
    pub fn error_count(&self) -> u64 {
        self.lock().errors
    }

    /// The current sources and their status, in provider order.
    pub fn sources(&self) -> Vec<SourceStatus> {
        self.lock().sources.clone()
    }

    /// Completed ticks.
    pub fn ticks(&self) -> u64 {
        self.lock().ticks
    }

    /// Subscribes to deltas published from now on.
    pub fn subscribe(&self) -> Subscription<Snap, Ev> {
        let next = self.lock().next_seq;
        Subscription { handle: self.clone(), next }
    }

    /// Subscribes from the oldest delta still in the history.
    pub fn subscribe_from_start(&self) -> Subscription<Snap, Ev> {
        let next = self.lock().history.front().map_or(0, |d| d.seq);
        Subscription { handle: self.clone(), next }
    }

    /// Waits for the next completed tick and returns its snapshot (`None` once stopped).
    pub async fn next_snapshot(&self) -> Option<Snap> {
        let target = self.ticks() + 1;
        std::future::poll_fn(|cx| {
            let mut s = self.lock();
            if s.ticks >= target {
                return Poll::Ready(s.latest.as_ref().map(|(_, snap)| snap.clone()));
            }
            if s.stopped {
                return Poll::Ready(None);
            }
            s.wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Asks the runtime to stop after its current tick; subscribers drain and then end.
    pub fn stop(&self) {
        let mut s = self.lock();
        s.stopped = true;
        s.wake_all();
    }

    /// Whether [`ObservationHandle::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }
}

/// A cursor over the delta stream: yields every delta in order, or [`Lagged`] when some fell
/// out of the history before it read them.
pub struct Subscription<Snap, Ev> {
    handle: ObservationHandle<Snap, Ev>,
    next: u64,
}

impl<Snap: Clone, Ev: Clone> Subscription<Snap, Ev> {
    /// The next delta; `None` once the runtime stopped and every delta was read.
    pub async fn next(&mut self) -> Option<Result<Delta<Ev>, Lagged>> {
        std::future::poll_fn(|cx| {
            let mut s = self.handle.lock();
            if let Some(item) = take(&mut self.next, &s) {
                return Poll::Ready(Some(item));
            }
            if s.stopped {
                return Poll::Ready(None);
            }
            s.wakers.push(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Every delta available now, without waiting.
    pub fn drain(&mut self) -> Vec<Result<Delta<Ev>, Lagged>> {
        let s = self.handle.lock();
        let next = &mut self.next;
        std::iter::from_fn(|| take(next, &s)).collect()
    }
}

/// The delta at cursor `next` (advancing it), or how many were missed.
fn take<Snap, Ev: Clone>(next: &mut u64, s: &Shared<Snap, Ev>) -> Option<Result<Delta<Ev>, Lagged>> {
    let oldest = s.history.front()?.seq;
    if *next < oldest {
        let missed = oldest - *next;
        *next = oldest;
        return Some(Err(Lagged { missed }));
    }
    let d = s.history.get((*next - oldest) as usize)?.clone();
    debug_assert_eq!(d.seq, *next, "history is contiguous");
    *next += 1;
    Some(Ok(d))
}

/// The engine: refreshes sources, polls them, keeps history and publishes snapshots.
pub struct ObservationRuntime<O: Observer, P> {
    observer: O,
    provider: P,
    handle: ObservationHandle<O::Snapshot, O::Event>,
}

impl<O: Observer, P: SourceProvider<O::Source>> ObservationRuntime<O, P> {
    /// A runtime with a fresh handle.
    pub fn new(observer: O, provider: P, config: ObservationConfig) -> Self {
        Self::with_handle(observer, provider, ObservationHandle::new(config))
    }

    /// A runtime publishing into `handle` (made earlier with [`ObservationHandle::new`]).
    pub fn with_handle(observer: O, provider: P, handle: ObservationHandle<O::Snapshot, O::Event>) -> Self {
        ObservationRuntime { observer, provider, handle }
    }

    /// A read handle.
    pub fn handle(&self) -> ObservationHandle<O::Snapshot, O::Event> {
        self.handle.clone()
    }

    /// Runs until [`ObservationHandle::stop`]. Spawn it on the node or runtime that may reach
    /// the sources.
    pub async fn run(self) {
        let ObservationRuntime { observer, provider, handle } = self;
        let config = handle.lock().config;
        let start = time::now();
        let since_start = || time::now().saturating_duration_since(start);
        let mut sources: Vec<ObservedSource<O::Source>> = Vec::new();
        let mut state: Option<O::State> = None;
        let mut last_refresh: Option<Duration> = None;
        let mut tick: u64 = 0;
        while !handle.is_stopped() {
            let now = since_start();
            if last_refresh.is_none_or(|t| now.saturating_sub(t) >= config.refresh_every) {
                let fresh = provider.sources().await;
                last_refresh = Some(now);
                let events = match state.as_mut() {
                    Some(st) => apply_refresh(&observer, &handle, &mut sources, fresh, st),
                    None => {
                        sources = fresh;
                        set_statuses(&handle, &sources);
                        Vec::new()
                    }
                };
                let mut s = handle.lock();
                for e in events {
                    s.publish(now, "", e);
                }
            }
            if state.is_none() {
                match observer.init(&sources).await {
                    Ok(st) => state = Some(st),
                    Err(e) => record_error(&handle, "init", now, e.0),
                }
            }
            if let Some(st) = state.as_mut() {
                for source in &sources {
                    let result = time::timeout(config.poll_timeout, observer.poll(source, st)).await;
                    let at = since_start();
                    match result {
                        Ok(Ok(events)) => {
                            let mut s = handle.lock();
                            for e in events {
                                s.publish(at, &source.name, e);
                            }
                            if let Some(status) = s.sources.iter_mut().find(|x| x.name == source.name) {
                                status.last_ok = Some(at);
                                status.error = None;
                            }
                        }
                        Ok(Err(e)) => record_error(&handle, &source.name, at, e.0),
                        Err(_) => record_error(
                            &handle,
                            &source.name,
                            at,
                            format!("poll timed out after {:?}", config.poll_timeout),
                        ),
                    }
                }
                let snapshot = observer.snapshot(st);
                let mut s = handle.lock();
                let at = since_start();
                s.latest = Some((at, snapshot));
                s.now = at;
                s.ticks += 1;
                s.wake_all();
            }
            // Ticks are anchored to the start, so slow polls do not make the schedule drift; a
            // tick that overran skips the slots it missed instead of catching up in a burst.
            let now = since_start();
            let slot = (now.as_nanos() / config.interval.as_nanos().max(1)) as u64;
            tick = (tick + 1).max(slot + 1);
            let next = config.interval.saturating_mul(tick.min(u64::from(u32::MAX)) as u32);
            time::sleep(next.saturating_sub(now)).await;
        }
        handle.lock().wake_all();
    }
}

fn set_statuses<S, Snap, Ev>(handle: &ObservationHandle<Snap, Ev>, sources: &[ObservedSource<S>]) {
    let mut s = handle.shared.lock().unwrap_or_else(|e| e.into_inner());
    let old = std::mem::take(&mut s.sources);
    s.sources = sources
        .iter()
        .map(|src| {
            old.iter().find(|o| o.name == src.name).cloned().unwrap_or(SourceStatus {
                name: src.name.clone(),
                last_ok: None,
                error: None,
            })
        })
        .collect();
}

fn apply_refresh<O: Observer>(
    observer: &O,
    handle: &ObservationHandle<O::Snapshot, O::Event>,
    sources: &mut Vec<ObservedSource<O::Source>>,
    fresh: Vec<ObservedSource<O::Source>>,
    state: &mut O::State,
) -> Vec<O::Event> {
    let added: Vec<ObservedSource<O::Source>> =
        fresh.iter().filter(|f| !sources.iter().any(|s| s.name == f.name)).cloned().collect();
    let removed: Vec<String> =
        sources.iter().filter(|s| !fresh.iter().any(|f| f.name == s.name)).map(|s| s.name.clone()).collect();
    *sources = fresh;
    set_statuses(handle, sources);
    if added.is_empty() && removed.is_empty() {
        Vec::new()
    } else {
        observer.sources_changed(&added, &removed, state)
    }
}

fn record_error<Snap, Ev>(handle: &ObservationHandle<Snap, Ev>, source: &str, at: Duration, message: String) {
    let mut s = handle.shared.lock().unwrap_or_else(|e| e.into_inner());
    s.errors += 1;
    if let Some(status) = s.sources.iter_mut().find(|x| x.name == source) {
        status.error = Some(message.clone());
    }
    s.last_error = Some(SourceError { source: source.to_owned(), at, message });
}
