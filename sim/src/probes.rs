//! Sometimes-assertions: [`sometimes!`](crate::sometimes!) and [`reachable!`](crate::reachable!)
//! (Antithesis' `assert_sometimes`/`assert_reachable`, FoundationDB's code probes).
//!
//! An ordinary assertion says what must always hold; a sometimes-assertion says what must hold
//! *at least once* over a sweep, so that a plan is known to drive the system down the paths
//! that matter: a leader elected in a later term, a log suffix truncated by a new leader, a
//! full mempool evicting. A sweep reports, per assertion, in how many seeds it held; one that
//! never held is a finding: the plan does not exercise that path.
//!
//! ```
//! fn on_append(conflict: bool, stale_term: bool) {
//!     gauntlet_sim::sometimes!(conflict, "raft: a follower's conflicting suffix truncated");
//!     if stale_term {
//!         gauntlet_sim::reachable!("raft: an append of a stale term rejected");
//!     }
//! }
//! # on_append(true, false);
//! ```
//!
//! **Catalog.** Every call site registers itself statically (through the `inventory` crate),
//! so an assertion that is never *executed* is still known and can be reported as never
//! reached. [`catalog`] lists them; each site records its `module_path!()`, which is how a
//! harness scopes the catalog to one application when several are linked into one binary
//! ([`in_scope`]). A name is one assertion: sites sharing a name count together.
//!
//! **Recording.** In simulation the record of a run lives on its thread (every run has a fresh
//! one, like the [facts](crate::facts)): per name, how often the assertion was evaluated, how
//! often it held and the simulated time it first held. The world takes it at the end of the
//! run (`RunReport::probes`). Recording draws no random number and adds no trace event, so a
//! run's trace and its hash are the same with or without probes. In the real build the
//! counters are process-wide (no simulated clock: `first_held` is `None`) and the first time
//! an assertion holds is a log line (`gauntlet::probes`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// The two kinds of sometimes-assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// `sometimes!(cond, name)`: `cond` must be true at least once.
    Sometimes,
    /// `reachable!(name)`: the line must be reached at least once.
    Reachable,
}

impl ProbeKind {
    /// `sometimes` or `reachable`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Sometimes => "sometimes",
            ProbeKind::Reachable => "reachable",
        }
    }
}

impl std::fmt::Display for ProbeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One call site of a sometimes-assertion, registered statically by the macros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// The assertion's name (its identity: sites with one name count together).
    pub name: &'static str,
    /// Its kind.
    pub kind: ProbeKind,
    /// `module_path!()` of the call site.
    pub module: &'static str,
    /// `file!()` of the call site.
    pub file: &'static str,
    /// `line!()` of the call site.
    pub line: u32,
}

inventory::collect!(Site);

/// What one run recorded of one assertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeHits {
    /// Its kind.
    pub kind: ProbeKind,
    /// Times it was evaluated (a `reachable!` is evaluated each time it is reached).
    pub evaluated: u64,
    /// Times it held (its condition was true; for `reachable!`, times reached).
    pub held: u64,
    /// True time since the run started when it first held (`None`: it never held, or it held
    /// outside a simulated run).
    pub first_held: Option<Duration>,
}

impl ProbeHits {
    /// An assertion of `kind` that was never evaluated.
    pub fn unreached(kind: ProbeKind) -> ProbeHits {
        ProbeHits { kind, evaluated: 0, held: 0, first_held: None }
    }

    /// Whether it held at least once.
    pub fn hit(&self) -> bool {
        self.held > 0
    }

    fn count(&mut self, held: bool, now: impl FnOnce() -> Option<Duration>) -> bool {
        self.evaluated = self.evaluated.saturating_add(1);
        if !held {
            return false;
        }
        self.held = self.held.saturating_add(1);
        let first = self.held == 1;
        if first {
            self.first_held = now();
        }
        first
    }
}

/// A run's record: every assertion evaluated (or, once a harness fills in the catalog, every
/// assertion known), by name.
pub type Probes = BTreeMap<String, ProbeHits>;

/// One assertion of the catalog: its kind and every call site that carries its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// Its kind (of the first site, in file and line order, when sites disagree).
    pub kind: ProbeKind,
    /// Its call sites, in file and line order.
    pub sites: Vec<Site>,
}

/// Every sometimes-assertion linked into this binary, by name, whether or not it ever ran.
pub fn catalog() -> BTreeMap<&'static str, CatalogEntry> {
    let mut sites: Vec<Site> = inventory::iter::<Site>.into_iter().copied().collect();
    // The linker's order is not stable across builds; sort so the catalog is.
    sites.sort_by_key(|s| (s.name, s.file, s.line, s.module));
    sites.dedup();
    let mut out: BTreeMap<&'static str, CatalogEntry> = BTreeMap::new();
    for s in sites {
        out.entry(s.name).or_insert_with(|| CatalogEntry { kind: s.kind, sites: Vec::new() }).sites.push(s);
    }
    out
}

/// Whether `module` (a `module_path!()`) lies in one of `scope`'s module-path prefixes: the
/// prefix itself or a module under it (`a::b` covers `a::b` and `a::b::c`, not `a::bc`).
pub fn in_scope(module: &str, scope: &[String]) -> bool {
    scope.iter().any(|prefix| {
        module.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// The catalog's assertions with a call site in `scope` (see [`in_scope`]), as a record of a
/// run that reached none of them: what a harness merges a run's record into, so that an
/// assertion the run never evaluated is still listed.
pub fn unreached_in(scope: &[String]) -> Probes {
    catalog()
        .into_iter()
        .filter(|(_, e)| e.sites.iter().any(|s| in_scope(s.module, scope)))
        .map(|(name, e)| (name.to_owned(), ProbeHits::unreached(e.kind)))
        .collect()
}

/// Adds `run` to `known` (typically [`unreached_in`] of the application's scope): counts are
/// taken from `run`, and an assertion of `run` outside the scope is kept too (it ran).
pub fn merge_into(known: &mut Probes, run: &Probes) {
    for (name, hits) in run {
        known.insert(name.clone(), *hits);
    }
}

/// Records one evaluation of the assertion `name`. Use [`sometimes!`](crate::sometimes!) or
/// [`reachable!`](crate::reachable!), which also register the call site.
pub fn evaluate(name: &'static str, kind: ProbeKind, held: bool) {
    imp::evaluate(name, kind, held);
}

/// A copy of what was recorded so far: this thread's run in simulation, the process in a real
/// build.
pub fn snapshot() -> Probes {
    imp::snapshot()
}

/// Takes what was recorded so far and starts again from nothing (the world calls it when a
/// run ends).
pub fn take() -> Probes {
    imp::take()
}

fn to_probes(map: &BTreeMap<&'static str, ProbeHits>) -> Probes {
    map.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[cfg(madsim)]
mod imp {
    use super::{to_probes, ProbeHits, ProbeKind, Probes};
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    thread_local! {
        /// This thread's run. Bounded by the number of distinct names, which are literals.
        static PROBES: RefCell<BTreeMap<&'static str, ProbeHits>> = const { RefCell::new(BTreeMap::new()) };
    }

    pub(super) fn evaluate(name: &'static str, kind: ProbeKind, held: bool) {
        // Reading madsim's clock draws nothing from its RNG and records nothing.
        let now = || madsim::time::TimeHandle::try_current().map(|h| h.elapsed());
        PROBES.with(|p| {
            p.borrow_mut().entry(name).or_insert_with(|| ProbeHits::unreached(kind)).count(held, now);
        });
    }

    pub(super) fn snapshot() -> Probes {
        PROBES.with(|p| to_probes(&p.borrow()))
    }

    pub(super) fn take() -> Probes {
        PROBES.with(|p| to_probes(&std::mem::take(&mut *p.borrow_mut())))
    }
}

#[cfg(not(madsim))]
mod imp {
    use super::{to_probes, ProbeHits, ProbeKind, Probes};
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    /// The process's counters: a real node runs on several threads.
    static PROBES: Mutex<BTreeMap<&'static str, ProbeHits>> = Mutex::new(BTreeMap::new());

    fn lock() -> std::sync::MutexGuard<'static, BTreeMap<&'static str, ProbeHits>> {
        PROBES.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn evaluate(name: &'static str, kind: ProbeKind, held: bool) {
        let first = lock().entry(name).or_insert_with(|| ProbeHits::unreached(kind)).count(held, || None);
        if first {
            tracing::info!(target: "gauntlet::probes", "{kind} assertion first held: {name}");
        }
    }

    pub(super) fn snapshot() -> Probes {
        to_probes(&lock())
    }

    pub(super) fn take() -> Probes {
        to_probes(&std::mem::take(&mut *lock()))
    }
}

/// Asserts that `cond` is true **at least once** over a sweep; see [the module](crate::probes).
///
/// `sometimes!(cond, "name")` evaluates `cond` once, records whether it held and returns
/// nothing. The name must be a string literal; it identifies the assertion in reports.
/// Usable anywhere (node code, expectations, plain functions) in both builds.
///
/// ```
/// let (term, partitioned) = (3u64, true);
/// gauntlet_sim::sometimes!(term > 1 && partitioned, "a leader elected in a later term while partitioned");
/// ```
#[macro_export]
macro_rules! sometimes {
    ($cond:expr, $name:literal $(,)?) => {
        $crate::__probe!(Sometimes, $name, $cond)
    };
}

/// Asserts that this line is reached **at least once** over a sweep; see
/// [the module](crate::probes). `reachable!("name")` is `sometimes!(true, "name")` with its
/// own kind in reports.
///
/// ```
/// fn on_evict() {
///     gauntlet_sim::reachable!("a full pool evicted its cheapest entry");
/// }
/// # on_evict();
/// ```
#[macro_export]
macro_rules! reachable {
    ($name:literal $(,)?) => {
        $crate::__probe!(Reachable, $name, true)
    };
}

/// What [`sometimes!`] and [`reachable!`] expand to: the call site's catalogue entry, then the
/// evaluation. Not for direct use.
#[doc(hidden)]
#[macro_export]
macro_rules! __probe {
    ($kind:ident, $name:literal, $cond:expr) => {{
        $crate::__private::inventory::submit! {
            $crate::probes::Site {
                name: $name,
                kind: $crate::probes::ProbeKind::$kind,
                module: ::core::module_path!(),
                file: ::core::file!(),
                line: ::core::line!(),
            }
        }
        let held: bool = $cond;
        $crate::probes::evaluate($name, $crate::probes::ProbeKind::$kind, held);
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(prefixes: &[&str]) -> Vec<String> {
        prefixes.iter().map(|p| (*p).to_owned()).collect()
    }

    fn never_called() {
        reachable!("probes test: a path no test takes");
    }

    // Names are unique per test: in the real build the counters are process-wide and tests
    // run in parallel, so no test here takes (clears) the record except in simulation.
    #[test]
    fn a_sometimes_counts_evaluations_and_holds_and_reachable_counts_visits() {
        for i in 0..5 {
            sometimes!(i % 2 == 0, "probes test: even");
        }
        reachable!("probes test: reached");
        let run = snapshot();
        let even = run["probes test: even"];
        assert_eq!((even.kind, even.evaluated, even.held), (ProbeKind::Sometimes, 5, 3));
        let reached = run["probes test: reached"];
        assert_eq!((reached.kind, reached.evaluated, reached.held), (ProbeKind::Reachable, 1, 1));
    }

    #[test]
    fn a_condition_that_never_holds_is_evaluated_but_not_hit() {
        sometimes!(1 + 1 == 3, "probes test: never true");
        let hits = snapshot()["probes test: never true"];
        assert_eq!((hits.evaluated, hits.held, hits.first_held), (1, 0, None));
        assert!(!hits.hit());
    }

    /// In simulation the record is the thread's (each test has its own thread).
    #[cfg(madsim)]
    #[test]
    fn take_returns_this_threads_record_and_starts_again() {
        reachable!("probes test: taken");
        let run = take();
        assert_eq!(run.keys().collect::<Vec<_>>(), ["probes test: taken"], "nothing of other tests' threads");
        assert!(take().is_empty(), "take starts the record again");
    }

    #[test]
    fn the_catalog_knows_sites_that_never_ran() {
        let catalog = catalog();
        let entry = catalog.get("probes test: a path no test takes").expect("registered without running");
        assert_eq!(entry.kind, ProbeKind::Reachable);
        assert_eq!(entry.sites[0].module, module_path!());
        assert!(entry.sites[0].file.ends_with("probes.rs"));
        let _ = never_called;
    }

    #[test]
    fn scopes_match_whole_module_path_segments() {
        assert!(in_scope("app::raft", &scope(&["app::raft"])));
        assert!(in_scope("app::raft::core", &scope(&["app::raft"])));
        assert!(!in_scope("app::raftish", &scope(&["app::raft"])));
        assert!(!in_scope("other::raft", &scope(&["app::raft"])));
        assert!(in_scope("other::x", &scope(&["app", "other"])));
        assert!(!in_scope("app", &scope(&[])));
    }

    #[test]
    fn unreached_in_lists_only_the_scope_and_merge_keeps_what_ran_outside_it() {
        let mut known = unreached_in(&scope(&[module_path!()]));
        assert_eq!(known["probes test: a path no test takes"], ProbeHits::unreached(ProbeKind::Reachable));
        assert!(unreached_in(&scope(&["no_such_crate"])).is_empty());
        let mut run = Probes::new();
        run.insert(
            "elsewhere".into(),
            ProbeHits { kind: ProbeKind::Sometimes, evaluated: 2, held: 1, first_held: None },
        );
        merge_into(&mut known, &run);
        assert_eq!(known["elsewhere"].held, 1);
        assert_eq!(known["probes test: a path no test takes"].evaluated, 0);
    }
}
