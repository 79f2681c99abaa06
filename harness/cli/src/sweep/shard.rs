//! Shards of a sweep and the directory a sweep's results go to.
//!
//! A sweep is a pure function of (plan, seed range, bugs, build), so it can be cut into `N`
//! disjoint parts run anywhere: `--shard I/N` runs the `I`-th contiguous part (0-based) of the
//! range. With `--results DIR` a sweep writes [`MANIFEST`] (what was swept: the plan and its
//! hash, the whole range, the shard, the build, the probe tally) and [`SEEDS`] (one JSON line
//! per seed, appended and flushed as each seed ends, so a shard killed midway keeps what it
//! did and resumes from there), and failing seeds' bundles under `bundles/`. `gauntlet merge`
//! reads such directories back ([`ShardDir::read`]).

use gauntlet::files::write_atomically;
use gauntlet::sweep::ProbeSummary;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The manifest file of a results directory.
pub const MANIFEST: &str = "shard.json";
/// The per-seed results file of a results directory (JSON lines).
pub const SEEDS: &str = "seeds.jsonl";
/// The plan as the sweep ran it (planted bugs included), for `gauntlet merge`.
pub const PLAN: &str = "plan.toml";
/// The manifest format this build writes and reads.
pub const FORMAT: u32 = 1;

/// The `I`-th of `N` parts of a seed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which part, from 0.
    pub index: u64,
    /// How many parts.
    pub count: u64,
}

impl Shard {
    /// The whole range as one part.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N`. `I` is a number from 0, or `$NAME` (the number in environment variable
    /// `NAME`, as Kubernetes' Indexed Jobs give `JOB_COMPLETION_INDEX`), or `swarm` (Docker
    /// swarm's task slot of a replicated job, from `GAUNTLET_SWARM_SLOT={{.Task.Slot}}`:
    /// Docker renders slot 0 as the node's id, so `GAUNTLET_SWARM_NODE={{.Node.ID}}` says
    /// which value means 0).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = |why: String| format!("--shard {text:?}: {why}; expected I/N with 0 <= I < N (e.g. 0/4)");
        let (i, n) = text.split_once('/').ok_or_else(|| bad("no '/'".into()))?;
        let count: u64 = n.trim().parse().map_err(|_| bad(format!("the count {n:?} is not a number")))?;
        if count == 0 {
            return Err(bad("the count is 0".into()));
        }
        let i = i.trim();
        let index = if let Some(var) = i.strip_prefix('$') {
            let v = std::env::var(var).map_err(|_| bad(format!("environment variable {var} is not set")))?;
            v.trim().parse().map_err(|_| bad(format!("{var}={v:?} is not a number")))?
        } else if i == "swarm" {
            swarm_slot().map_err(bad)?
        } else {
            i.parse().map_err(|_| bad(format!("the index {i:?} is not a number")))?
        };
        if index >= count {
            return Err(bad(format!("index {index} is not below the count {count}")));
        }
        Ok(Shard { index, count })
    }

    /// This shard's part of `seeds`: contiguous, the parts differ in length by at most one,
    /// and the `count` parts together are `seeds` exactly once.
    /// (`0..10` in 3 parts: `0..3`, `3..7`, `7..10`.)
    pub fn part<'a>(&self, seeds: &'a [u64]) -> &'a [u64] {
        let len = seeds.len() as u128;
        let at = |i: u64| (len * i as u128 / self.count as u128) as usize;
        &seeds[at(self.index)..at(self.index + 1)]
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard index of a Docker swarm replicated job's task.
fn swarm_slot() -> Result<u64, String> {
    let slot = std::env::var("GAUNTLET_SWARM_SLOT")
        .map_err(|_| "GAUNTLET_SWARM_SLOT is not set (give the service --env GAUNTLET_SWARM_SLOT={{.Task.Slot}})")?;
    if let Ok(n) = slot.trim().parse() {
        return Ok(n);
    }
    // Swarm renders a task slot of 0 as the node's id (a global service's tasks have no slot).
    match std::env::var("GAUNTLET_SWARM_NODE") {
        Ok(node) if node.trim() == slot.trim() => Ok(0),
        _ => Err(format!(
            "GAUNTLET_SWARM_SLOT={slot:?} is neither a number nor this node's id (give the service --env \
             GAUNTLET_SWARM_NODE={{{{.Node.ID}}}})"
        )),
    }
}

/// What a results directory holds the results of.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The plan's name.
    pub plan: String,
    /// SHA-256 of the plan as run (its TOML, planted bugs included), hex.
    pub plan_sha256: String,
    /// Planted bugs switched on.
    pub bugs: Vec<String>,
    /// The whole range, as given (`A..B`).
    pub seeds: String,
    /// The range's first seed and the seed after its last.
    pub range: (u64, u64),
    /// Which part of it this directory holds.
    pub shard: Shard,
    /// The build that ran it ([`crate::build_id`]).
    pub build: String,
    /// How many seeds this shard has (its part of the range).
    pub seeds_total: u64,
    /// Whether every seed of its part has a line in [`SEEDS`].
    pub complete: bool,
    /// The shard's sometimes-assertions, tallied over the seeds its last execution ran.
    pub probes: BTreeMap<String, ProbeSummary>,
    /// How many seeds `probes` covers (fewer than the shard's when an interrupted attempt
    /// was resumed: the seeds it had recorded kept their lines, not their probes).
    pub probe_seeds: u64,
}

impl Manifest {
    /// Whether `other` is a part of the same sweep (plan, bugs, range, shard count, build).
    pub fn same_sweep(&self, other: &Manifest) -> Result<(), String> {
        let differs = |what: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| {
            Err(format!("they are shards of different sweeps: {what} {a:?} vs {b:?}"))
        };
        if self.plan_sha256 != other.plan_sha256 {
            return differs("plan (sha256)", &self.plan_sha256, &other.plan_sha256);
        }
        if self.bugs != other.bugs {
            return differs("bugs", &self.bugs, &other.bugs);
        }
        if self.range != other.range {
            return differs("seed range", &self.seeds, &other.seeds);
        }
        if self.shard.count != other.shard.count {
            return differs("shard count", &self.shard.count, &other.shard.count);
        }
        if self.build != other.build {
            return differs("build", &self.build, &other.build);
        }
        Ok(())
    }
}

/// One seed's result, as a results directory and `gauntlet sweep` keep it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedLine {
    /// The seed.
    pub seed: u64,
    /// `pass` or `fail`.
    pub verdict: String,
    /// `safety`, `liveness` or `crash`; or `timeout` when its process was killed for the time
    /// limit.
    pub class: Option<String>,
    /// The expectation that failed, or `process` when the process running it failed.
    pub source: Option<String>,
    /// The failure, in words.
    pub message: Option<String>,
    /// The run's trace hash (16 hex digits), when it completed.
    pub trace_hash: Option<String>,
    /// Wall time of the seed, in milliseconds.
    pub wall_ms: u64,
    /// The failing seed's bundle.
    pub bundle: Option<String>,
}

impl SeedLine {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }
}

/// A results directory being written by a sweep.
pub struct ResultsWriter {
    dir: PathBuf,
    manifest: Manifest,
    seeds: std::fs::File,
    /// Seeds recorded by an earlier attempt at this shard (kept, not run again).
    pub done: BTreeMap<u64, SeedLine>,
}

impl ResultsWriter {
    /// Opens `dir` for `manifest`'s shard: a new directory, or one an interrupted attempt at
    /// the same shard of the same sweep left (its recorded seeds are kept in [`Self::done`]
    /// and not run again). A directory holding another sweep's or shard's results is refused.
    pub fn open(dir: &Path, manifest: Manifest, plan_toml: &str) -> Result<ResultsWriter, String> {
        std::fs::create_dir_all(dir.join("bundles")).map_err(|e| format!("--results {}: {e}", dir.display()))?;
        let mut done = BTreeMap::new();
        if dir.join(MANIFEST).exists() {
            let earlier = ShardDir::read(dir)?;
            earlier.manifest.same_sweep(&manifest).map_err(|e| {
                format!("--results {} holds another sweep's results ({e}); give an empty directory", dir.display())
            })?;
            if earlier.manifest.shard != manifest.shard {
                return Err(format!(
                    "--results {} holds shard {}, not {}; give each shard its own directory",
                    dir.display(),
                    earlier.manifest.shard,
                    manifest.shard
                ));
            }
            done = earlier.lines.into_iter().map(|l| (l.seed, l)).collect();
        }
        // Rewrite the seeds file with only the complete lines read back (a torn last line of a
        // killed attempt is dropped), then append.
        let path = dir.join(SEEDS);
        let mut text = String::new();
        for l in done.values() {
            text.push_str(&serde_json::to_string(l).map_err(|e| e.to_string())?);
            text.push('\n');
        }
        write_atomically(&path, text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
        let seeds =
            std::fs::OpenOptions::new().append(true).open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let plan = dir.join(PLAN);
        write_atomically(&plan, plan_toml.as_bytes()).map_err(|e| format!("{}: {e}", plan.display()))?;
        let w = ResultsWriter { dir: dir.to_owned(), manifest, seeds, done };
        w.write_manifest()?;
        Ok(w)
    }

    /// Where failing seeds' bundles go.
    pub fn bundles(&self) -> PathBuf {
        self.dir.join("bundles")
    }

    /// Appends one seed's line (flushed: a killed sweep keeps every line it wrote), its
    /// bundle named relative to the directory (`bundles/<file>`), so the directory can move.
    pub fn record(&mut self, line: &SeedLine) -> Result<(), String> {
        let mut line = line.clone();
        line.bundle = (line.bundle.as_deref().map(Path::new))
            .and_then(Path::file_name)
            .map(|f| format!("bundles/{}", f.to_string_lossy()));
        let mut text = serde_json::to_string(&line).map_err(|e| e.to_string())?;
        text.push('\n');
        self.seeds
            .write_all(text.as_bytes())
            .and_then(|()| self.seeds.flush())
            .map_err(|e| format!("{}: {e}", self.dir.join(SEEDS).display()))
    }

    /// Marks the shard complete (or not) with its probe tally.
    pub fn finish(
        &mut self,
        complete: bool,
        probes: BTreeMap<String, ProbeSummary>,
        probe_seeds: u64,
    ) -> Result<(), String> {
        self.manifest.complete = complete;
        self.manifest.probes = probes;
        self.manifest.probe_seeds = probe_seeds;
        self.write_manifest()
    }

    fn write_manifest(&self) -> Result<(), String> {
        let path = self.dir.join(MANIFEST);
        let text = serde_json::to_string_pretty(&self.manifest).map_err(|e| e.to_string())?;
        write_atomically(&path, (text + "\n").as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// A results directory read back.
#[derive(Debug, Clone)]
pub struct ShardDir {
    /// Where it is.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its seeds' lines, in seed order, one per seed (a torn last line is left out).
    pub lines: Vec<SeedLine>,
}

impl ShardDir {
    /// Reads `dir`: its manifest and its seed lines. A missing or malformed manifest, a
    /// malformed line before the last, or a seed outside the shard's part is an error naming
    /// the file.
    pub fn read(dir: &Path) -> Result<ShardDir, String> {
        let mpath = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&mpath)
            .map_err(|e| format!("{}: {e} (not a sweep's results directory?)", mpath.display()))?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|e| format!("{}: not a shard manifest: {e}", mpath.display()))?;
        if manifest.format != FORMAT {
            return Err(format!("{}: format {} (this build reads format {FORMAT})", mpath.display(), manifest.format));
        }
        let spath = dir.join(SEEDS);
        let text = std::fs::read_to_string(&spath).map_err(|e| format!("{}: {e}", spath.display()))?;
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let mut lines: BTreeMap<u64, SeedLine> = BTreeMap::new();
        let part: BTreeSet<u64> = manifest_part(&manifest).into_iter().collect();
        for (n, l) in all.iter().enumerate() {
            match serde_json::from_str::<SeedLine>(l) {
                Ok(line) => {
                    if !part.contains(&line.seed) {
                        return Err(format!(
                            "{} line {}: seed {} is not in shard {} of {}",
                            spath.display(),
                            n + 1,
                            line.seed,
                            manifest.shard,
                            manifest.seeds
                        ));
                    }
                    lines.insert(line.seed, line);
                }
                // The last line of a killed writer may be torn; anything else is damage.
                Err(_) if n + 1 == all.len() && !text.ends_with('\n') => {}
                Err(e) => return Err(format!("{} line {}: {e}", spath.display(), n + 1)),
            }
        }
        Ok(ShardDir { dir: dir.to_owned(), manifest, lines: lines.into_values().collect() })
    }

    /// The seeds of its part that have no line.
    pub fn missing(&self) -> Vec<u64> {
        let have: BTreeSet<u64> = self.lines.iter().map(|l| l.seed).collect();
        manifest_part(&self.manifest).into_iter().filter(|s| !have.contains(s)).collect()
    }
}

/// The seeds of a manifest's shard.
fn manifest_part(m: &Manifest) -> Vec<u64> {
    let all: Vec<u64> = (m.range.0..m.range.1).collect();
    m.shard.part(&all).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_range_once_in_order_for_any_count() {
        for len in [0u64, 1, 7, 100, 101] {
            let seeds: Vec<u64> = (1000..1000 + len).collect();
            for count in 1..=9 {
                let joined: Vec<u64> =
                    (0..count).flat_map(|index| Shard { index, count }.part(&seeds).to_vec()).collect();
                assert_eq!(joined, seeds, "{count} parts of {len}");
                let sizes: Vec<usize> = (0..count).map(|index| Shard { index, count }.part(&seeds).len()).collect();
                let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
                assert!(hi - lo <= 1, "parts differ by at most one: {sizes:?}");
            }
        }
    }

    #[test]
    fn a_bad_shard_names_what_is_wrong() {
        assert_eq!(Shard::parse("2/4").unwrap(), Shard { index: 2, count: 4 });
        for (text, says) in [
            ("4/4", "not below the count"),
            ("1/0", "the count is 0"),
            ("x/4", "\"x\" is not a number"),
            ("3", "no '/'"),
            ("$GAUNTLET_NO_SUCH_VARIABLE/4", "GAUNTLET_NO_SUCH_VARIABLE is not set"),
        ] {
            let e = Shard::parse(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }
}
