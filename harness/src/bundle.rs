//! Snapshot bundles: one file holding everything about a run — the plan, its seeds, the
//! concrete fault schedule, the trace, the observations, the client history and the verdict —
//! so that it can be replayed, diffed, shrunk and reported on later.
//!
//! # File format (version 4)
//!
//! ```text
//! offset  size  field
//! 0       8     magic "GNTLBNDL"
//! 8       4     format version, u32 little-endian (this build writes 4, reads 1 to 4)
//! 12      4     flags, u32 (0)
//! 16      8     total file length, u64 LE
//! 24      8     body checksum: FNV-1a 64 over every byte from offset 40 to the end
//! 32      8     header checksum: FNV-1a 64 over bytes 8..32
//! 40      ...   sections, in order: kind u8, length u64 LE, then `length` bytes of one zstd
//!               frame holding the bincode encoding of the section's value
//! ```
//!
//! Sections (each exactly once, in this order): 1 meta (versions, git revision, application,
//! the plan as TOML, the seeds, and from version 2 the backend that ran it: `sim`, `local`,
//! `compose`, `k8s`; a version 1 bundle is a simulated run), 2 the concrete fault schedule, 3 the trace, 4 observations,
//! 5 the client history, 6 the verdict and summary, and from version 3: 7 the findings (the
//! full evidence behind capped failure messages, undecided checks; empty in older bundles),
//! and from version 4: 8 the sometimes-assertions (`RunOutcome::probes`: per name, kind,
//! times evaluated and held, first time held; empty in older bundles).
//!
//! [`BundleWriter`] streams sections into `<path>.tmp` as they are ready (the meta section
//! before the run starts, so even a run that aborts leaves its plan and seeds behind) and
//! only renames the file to its final name once the header is sealed, so a half-written
//! bundle never carries the final name. [`Bundle::decode`] checks, in this order: the magic
//! ([`DecodeError::NotABundle`]), that the header is complete ([`DecodeError::Truncated`]),
//! the header checksum ([`DecodeError::Corrupt`]), the version ([`DecodeError::FutureVersion`]),
//! the length ([`DecodeError::Truncated`] when short), the body checksum, then each section;
//! sizes are bounded ([`DecodeError::TooLarge`]).
//!
//! ```
//! use gauntlet::bundle::{Bundle, DecodeError};
//! // Not a bundle at all:
//! assert!(matches!(Bundle::decode(b"hello, world"), Err(DecodeError::NotABundle)));
//! // The first bytes of one, cut short:
//! assert!(matches!(Bundle::decode(b"GNTLBNDL\x01\x00"), Err(DecodeError::Truncated { .. })));
//! ```

use crate::verdict::{Observation, RunOutcome, Verdict};
use crate::workload::HistoryEntry;
use crate::Plan;
use gauntlet_sim::trace::StableHasher;
use gauntlet_sim::{FaultSchedule, Seeds, Trace};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The first eight bytes of every bundle.
pub const MAGIC: [u8; 8] = *b"GNTLBNDL";
/// The format version this build writes (and the newest it reads).
pub const FORMAT_VERSION: u32 = 4;
/// Size of the fixed header.
pub const HEADER_LEN: usize = 40;
/// The largest bundle file read or written: 1 GiB.
pub const MAX_BUNDLE_BYTES: u64 = 1 << 30;
/// The largest decompressed section: 1 GiB.
pub const MAX_SECTION_BYTES: u64 = 1 << 30;
/// The file name extension of bundles.
pub const EXTENSION: &str = "gbundle";

const SECTIONS: [&str; 8] = ["meta", "schedule", "trace", "observations", "history", "verdict", "findings", "probes"];

/// The sections a bundle of format `version` holds.
fn sections_of(version: u32) -> usize {
    match version {
        4.. => 8,
        3 => 7,
        _ => 6,
    }
}

/// Why bytes are not a readable bundle. Each kind of damage has its own variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The data does not start with [`MAGIC`].
    #[error("not a gauntlet bundle (it does not start with the bundle magic number)")]
    NotABundle,
    /// The data ends early.
    #[error("truncated bundle: {what}")]
    Truncated {
        /// Where it ends and what was expected.
        what: String,
    },
    /// A checksum does not match or a section does not decode.
    #[error("corrupt bundle: {what}")]
    Corrupt {
        /// What does not match.
        what: String,
    },
    /// Written by a newer format than this build reads.
    #[error("bundle format version {found} is newer than this gauntlet reads (up to {supported}); upgrade gauntlet")]
    FutureVersion {
        /// The file's version.
        found: u32,
        /// The newest this build reads.
        supported: u32,
    },
    /// Over a size limit.
    #[error("bundle too large: {what}")]
    TooLarge {
        /// Which limit.
        what: String,
    },
}

/// A bundle could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file system error.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a readable bundle.
    #[error("{}: {source}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why.
        source: DecodeError,
    },
    /// A value could not be encoded, or a section is over the size limit.
    #[error("{}: cannot write section {section}: {message}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The section.
        section: &'static str,
        /// Why.
        message: String,
    },
}

/// Versions and provenance of a bundle, and what to replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The Gauntlet version that wrote it.
    pub gauntlet_version: String,
    /// The git revision of the workspace that built Gauntlet, when known.
    pub git_rev: Option<String>,
    /// The plan's application.
    pub app: String,
    /// The plan, as TOML (the canonical form: `Plan::from_toml` reads it back).
    pub plan_toml: String,
    /// The seeds of the run.
    pub seeds: Seeds,
    /// The backend that ran it: `sim`, or a real one (`local`, `compose`, `k8s`).
    pub backend: String,
}

/// The meta section of a format-version-1 bundle (always a simulated run).
#[derive(Debug, Clone, Deserialize)]
struct MetaV1 {
    gauntlet_version: String,
    git_rev: Option<String>,
    app: String,
    plan_toml: String,
    seeds: Seeds,
}

impl From<MetaV1> for Meta {
    fn from(m: MetaV1) -> Meta {
        let MetaV1 { gauntlet_version, git_rev, app, plan_toml, seeds } = m;
        Meta { gauntlet_version, git_rev, app, plan_toml, seeds, backend: "sim".into() }
    }
}

/// Everything about one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Bundle {
    /// Versions, plan and seeds.
    pub meta: Meta,
    /// The faults as they happened (aimed faults with their resolved targets).
    pub schedule: FaultSchedule,
    /// The trace, with its events when the run kept them.
    pub trace: Trace,
    /// Observed state changes.
    pub observations: Vec<Observation>,
    /// The client history.
    pub history: Vec<HistoryEntry>,
    /// The verdict.
    pub verdict: Verdict,
    /// The readable summary.
    pub summary: Summary,
    /// What expectations reported beyond the verdict (empty in bundles before version 3).
    pub findings: Vec<crate::verdict::Finding>,
    /// The run's sometimes-assertions, by name (empty in bundles before version 4).
    pub probes: gauntlet_sim::Probes,
}

/// The readable digest of a run: what `insta` snapshots and `gauntlet diff` compares. It holds
/// no wall-clock value, so the same run always gives the same summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// The plan's name.
    pub plan: String,
    /// The application.
    pub app: String,
    /// The seeds.
    pub seeds: Seeds,
    /// Planted bugs switched on in the plan's app options.
    pub bugs: Vec<String>,
    /// `pass`, or the failure.
    pub verdict: String,
    /// The trace hash.
    pub trace_hash: u64,
    /// Trace events.
    pub events: u64,
    /// Trace events by kind.
    pub counts: BTreeMap<String, u64>,
    /// Simulated time, in milliseconds.
    pub sim_time_ms: u64,
    /// Chaos kinds on.
    pub chaos_kinds: Vec<String>,
    /// Faults applied.
    pub faults: usize,
    /// Operation counts per workload: invoked, ok, fail, info, shed.
    pub ops: BTreeMap<String, [u64; 5]>,
    /// When each liveness expectation came to hold, in milliseconds.
    pub settled: BTreeMap<String, u64>,
    /// Each member's last observed state.
    pub final_states: BTreeMap<String, String>,
    /// Membership changes (`+name` joined, `-name` left).
    pub membership: Vec<String>,
}

impl Summary {
    /// The summary of `outcome`, a run of `plan`.
    pub fn of(plan: &Plan, outcome: &RunOutcome) -> Summary {
        Summary {
            plan: plan.name.clone(),
            app: plan.app.name.clone(),
            seeds: outcome.seeds,
            bugs: bugs_of(plan),
            verdict: outcome.verdict.to_string(),
            trace_hash: outcome.trace_hash,
            events: outcome.events,
            counts: outcome.counts.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            sim_time_ms: outcome.sim_time.as_millis() as u64,
            chaos_kinds: outcome.chaos_kinds.iter().map(|k| (*k).to_owned()).collect(),
            faults: outcome.schedule.len(),
            ops: outcome.ops.iter().map(|(w, c)| (w.clone(), [c.invoked, c.ok, c.fail, c.info, c.shed])).collect(),
            settled: outcome.settled.iter().map(|(k, v)| (k.clone(), v.as_millis() as u64)).collect(),
            final_states: outcome.final_states.clone(),
            membership: outcome
                .membership_changes
                .iter()
                .map(|c| format!("{}{} at {:.3}s", if c.joined { "+" } else { "-" }, c.node, c.at.as_secs_f64()))
                .collect(),
        }
    }

    /// Whether the run passed.
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }

    /// The summary as aligned text, one fact per line.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "plan        {}", self.plan);
        let _ = writeln!(o, "app         {}", self.app);
        let _ = writeln!(o, "seeds       sim {} chaos {}", self.seeds.sim, self.seeds.chaos);
        if !self.bugs.is_empty() {
            let _ = writeln!(o, "bugs        {}", self.bugs.join(", "));
        }
        let _ = writeln!(o, "verdict     {}", self.verdict);
        let _ = writeln!(o, "trace hash  {:016x}", self.trace_hash);
        let _ = writeln!(o, "events      {}", self.events);
        for (k, v) in &self.counts {
            let _ = writeln!(o, "  {k:<14}{v}");
        }
        let _ = writeln!(o, "sim time    {:.3}s", self.sim_time_ms as f64 / 1e3);
        let kinds = if self.chaos_kinds.is_empty() { "none".to_owned() } else { self.chaos_kinds.join(", ") };
        let _ = writeln!(o, "chaos       {kinds}");
        let _ = writeln!(o, "faults      {}", self.faults);
        for (w, [invoked, ok, fail, info, shed]) in &self.ops {
            let _ = writeln!(o, "workload    {w}: {invoked} invoked, {ok} ok, {fail} fail, {info} info, {shed} shed");
        }
        for (name, ms) in &self.settled {
            let _ = writeln!(o, "settled     {name} at {:.3}s", *ms as f64 / 1e3);
        }
        for m in &self.membership {
            let _ = writeln!(o, "membership  {m}");
        }
        if !self.final_states.is_empty() {
            let _ = writeln!(o, "final state");
            for (node, state) in &self.final_states {
                let _ = writeln!(o, "  {node:<12}{state}");
            }
        }
        o
    }
}

/// The planted bugs a plan switches on (`app.options.bugs`), in order.
pub fn bugs_of(plan: &Plan) -> Vec<String> {
    plan.app
        .options
        .get("bugs")
        .and_then(|v| v.as_array())
        .map(|a| a.iter().filter_map(|b| b.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// The git revision this library was built from, when it was built from a git checkout (or
/// `GAUNTLET_GIT_REV` named one).
pub fn git_rev() -> Option<&'static str> {
    option_env!("GAUNTLET_GIT_REV").filter(|r| !r.is_empty())
}

impl Meta {
    /// The meta section for a run of `plan` with `seeds` by this build.
    pub fn new(plan: &Plan, seeds: Seeds) -> Meta {
        Meta {
            gauntlet_version: env!("CARGO_PKG_VERSION").to_owned(),
            git_rev: git_rev().map(str::to_owned),
            app: plan.app.name.clone(),
            plan_toml: plan.to_toml(),
            seeds,
            backend: "sim".into(),
        }
    }

    /// The same, for a run on `backend`.
    pub fn on(mut self, backend: &str) -> Meta {
        self.backend = backend.to_owned();
        self
    }

    /// The plan, parsed back.
    pub fn plan(&self) -> Result<Plan, crate::PlanError> {
        Plan::from_toml(&self.plan_toml)
    }
}

impl Bundle {
    /// The bundle of `outcome`, a run of `plan`. Without a kept trace (sweeps keep only its
    /// hash) the bundle's trace has no events.
    pub fn of(plan: &Plan, outcome: &RunOutcome) -> Bundle {
        Bundle {
            meta: Meta::new(plan, outcome.seeds),
            schedule: outcome.schedule.clone(),
            trace: outcome.trace.clone().unwrap_or_else(|| Trace::new(0, false)),
            observations: outcome.observations.clone(),
            history: outcome.history.clone(),
            verdict: outcome.verdict.clone(),
            summary: Summary::of(plan, outcome),
            findings: outcome.findings.clone(),
            probes: outcome.probes.clone(),
        }
    }

    /// Writes the bundle to `path` (through `<path>.tmp`, renamed when complete).
    pub fn write(&self, path: &Path) -> Result<(), BundleError> {
        BundleWriter::create(path, &self.meta)?.finish_with(self)
    }

    /// Encodes the bundle into bytes (what [`Bundle::write`] puts in the file).
    pub fn encode(&self) -> Result<Vec<u8>, DecodeError> {
        let mut body = Vec::new();
        let mut put = |kind: u8, bytes: Result<Vec<u8>, String>| -> Result<(), DecodeError> {
            let frame = compress(&bytes.map_err(|what| DecodeError::Corrupt { what })?);
            body.push(kind);
            body.extend_from_slice(&(frame.len() as u64).to_le_bytes());
            body.extend_from_slice(&frame);
            Ok(())
        };
        put(1, encode_value(&self.meta))?;
        put(2, encode_value(&self.schedule))?;
        put(3, encode_value(&self.trace))?;
        put(4, encode_value(&self.observations))?;
        put(5, encode_value(&self.history))?;
        put(6, encode_value(&(&self.verdict, &self.summary)))?;
        put(7, encode_value(&self.findings))?;
        put(8, encode_value(&self.probes))?;
        Ok(seal(&body))
    }

    /// Reads and checks the bundle at `path`.
    pub fn read(path: &Path) -> Result<Bundle, BundleError> {
        let io = |source| BundleError::Io { path: path.to_owned(), source };
        let mut f = File::open(path).map_err(io)?;
        let len = f.metadata().map_err(io)?.len();
        if len > MAX_BUNDLE_BYTES {
            let what = format!("{len} bytes, over the {MAX_BUNDLE_BYTES}-byte limit");
            return Err(BundleError::Decode { path: path.to_owned(), source: DecodeError::TooLarge { what } });
        }
        let mut bytes = Vec::with_capacity(len as usize);
        f.read_to_end(&mut bytes).map_err(io)?;
        Bundle::decode(&bytes).map_err(|source| BundleError::Decode { path: path.to_owned(), source })
    }

    /// Decodes and checks a bundle's bytes. Never panics, whatever the input.
    pub fn decode(bytes: &[u8]) -> Result<Bundle, DecodeError> {
        let n = bytes.len();
        if n < MAGIC.len() {
            return if MAGIC.starts_with(bytes) {
                Err(DecodeError::Truncated { what: format!("{n} bytes, inside the magic number") })
            } else {
                Err(DecodeError::NotABundle)
            };
        }
        if bytes[..8] != MAGIC {
            return Err(DecodeError::NotABundle);
        }
        if n < HEADER_LEN {
            return Err(DecodeError::Truncated { what: format!("{n} bytes, inside the {HEADER_LEN}-byte header") });
        }
        let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        if StableHasher::digest(&bytes[8..32]) != u64_at(32) {
            return Err(DecodeError::Corrupt { what: "the header checksum does not match".into() });
        }
        let (version, flags, total, checksum) = (u32_at(8), u32_at(12), u64_at(16), u64_at(24));
        if version > FORMAT_VERSION {
            return Err(DecodeError::FutureVersion { found: version, supported: FORMAT_VERSION });
        }
        if version == 0 || flags != 0 {
            return Err(DecodeError::Corrupt { what: format!("version {version}, flags {flags:#x}") });
        }
        if total > MAX_BUNDLE_BYTES {
            return Err(DecodeError::TooLarge { what: format!("the header says {total} bytes") });
        }
        if (n as u64) < total {
            return Err(DecodeError::Truncated { what: format!("{n} of {total} bytes") });
        }
        if (n as u64) > total {
            return Err(DecodeError::Corrupt { what: format!("{} bytes after the end", n as u64 - total) });
        }
        let body = &bytes[HEADER_LEN..];
        if StableHasher::digest(body) != checksum {
            return Err(DecodeError::Corrupt { what: "the body checksum does not match".into() });
        }
        // The checksums hold: from here on, damage means a bug in the writer or a collision.
        let mut sections: Vec<&[u8]> = Vec::new();
        let mut at = 0usize;
        for (i, name) in SECTIONS.iter().take(sections_of(version)).enumerate() {
            let corrupt = |what: String| DecodeError::Corrupt { what: format!("section {name}: {what}") };
            if body.len() - at < 9 {
                return Err(corrupt("missing".into()));
            }
            if body[at] as usize != i + 1 {
                return Err(corrupt(format!("found kind {} instead", body[at])));
            }
            let len = u64::from_le_bytes(body[at + 1..at + 9].try_into().expect("8 bytes"));
            at += 9;
            if len > (body.len() - at) as u64 {
                return Err(corrupt(format!("{len} bytes claimed, {} left", body.len() - at)));
            }
            sections.push(&body[at..at + len as usize]);
            at += len as usize;
        }
        if at != body.len() {
            return Err(DecodeError::Corrupt { what: format!("{} bytes after the last section", body.len() - at) });
        }
        let meta: Meta = if version == 1 {
            decode_section::<MetaV1>(SECTIONS[0], sections[0])?.into()
        } else {
            decode_section(SECTIONS[0], sections[0])?
        };
        let schedule = decode_section(SECTIONS[1], sections[1])?;
        let trace = decode_section(SECTIONS[2], sections[2])?;
        let observations = decode_section(SECTIONS[3], sections[3])?;
        let history = decode_section(SECTIONS[4], sections[4])?;
        let (verdict, summary) = decode_section(SECTIONS[5], sections[5])?;
        let findings = match sections.get(6) {
            Some(frame) => decode_section(SECTIONS[6], frame)?,
            None => Vec::new(),
        };
        let probes = match sections.get(7) {
            Some(frame) => decode_section(SECTIONS[7], frame)?,
            None => gauntlet_sim::Probes::new(),
        };
        Ok(Bundle { meta, schedule, trace, observations, history, verdict, summary, findings, probes })
    }

    /// The plan, parsed back from the meta section.
    pub fn plan(&self) -> Result<Plan, crate::PlanError> {
        self.meta.plan()
    }

    /// The trace hash recorded for the run.
    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }

    /// The simulated time of the run.
    pub fn sim_time(&self) -> Duration {
        Duration::from_millis(self.summary.sim_time_ms)
    }
}

/// The fixed header for a body of `total - HEADER_LEN` bytes with checksum `checksum`.
fn header(version: u32, total: u64, checksum: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&version.to_le_bytes());
    h[16..24].copy_from_slice(&total.to_le_bytes());
    h[24..32].copy_from_slice(&checksum.to_le_bytes());
    let sealed = StableHasher::digest(&h[8..32]);
    h[32..40].copy_from_slice(&sealed.to_le_bytes());
    h
}

/// A bundle file around `body` (the sections), with a valid header: what the writer would
/// produce for those sections. For fuzzing the section decoders past the checksums.
pub fn seal(body: &[u8]) -> Vec<u8> {
    let mut out = header(FORMAT_VERSION, (HEADER_LEN + body.len()) as u64, StableHasher::digest(body)).to_vec();
    out.extend_from_slice(body);
    out
}

/// Rewrites the header of `bytes` (a bundle) to claim `version`, with checksums that match:
/// how a bundle from another format version looks. For tests of version handling.
pub fn reseal_with_version(bytes: &mut [u8], version: u32) {
    if bytes.len() >= HEADER_LEN {
        let total = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes"));
        let checksum = u64::from_le_bytes(bytes[24..32].try_into().expect("8 bytes"));
        bytes[..HEADER_LEN].copy_from_slice(&header(version, total, checksum));
    }
}

fn encode_value<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    use bincode::Options;
    bincode::options().with_limit(MAX_SECTION_BYTES).serialize(value).map_err(|e| e.to_string())
}

fn compress(bytes: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(bytes, 3).expect("compressing into memory does not fail")
}

fn decode_section<T: DeserializeOwned>(name: &str, frame: &[u8]) -> Result<T, DecodeError> {
    use bincode::Options;
    let mut raw = Vec::new();
    let decoder = zstd::stream::read::Decoder::new(frame)
        .map_err(|e| DecodeError::Corrupt { what: format!("section {name}: {e}") })?;
    decoder
        .take(MAX_SECTION_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| DecodeError::Corrupt { what: format!("section {name}: {e}") })?;
    if raw.len() as u64 > MAX_SECTION_BYTES {
        return Err(DecodeError::TooLarge { what: format!("section {name} is over {MAX_SECTION_BYTES} bytes") });
    }
    bincode::options()
        .with_limit(MAX_SECTION_BYTES)
        .deserialize(&raw)
        .map_err(|e| DecodeError::Corrupt { what: format!("section {name}: {e}") })
}

/// Writes a bundle section by section into `<path>.tmp`; [`BundleWriter::finish`] seals the
/// header and renames the file to `path`. Dropped unfinished, it leaves only the `.tmp` file.
#[derive(Debug)]
pub struct BundleWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: File,
    hasher: StableHasher,
    len: u64,
    next: u8,
}

impl BundleWriter {
    /// Creates `<path>.tmp` (and `path`'s directory) and writes the meta section at once.
    pub fn create(path: &Path, meta: &Meta) -> Result<BundleWriter, BundleError> {
        let io = |source| BundleError::Io { path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut name = path.as_os_str().to_owned();
        name.push(".tmp");
        let tmp = PathBuf::from(name);
        let mut file = File::create(&tmp).map_err(io)?;
        file.write_all(&[0u8; HEADER_LEN]).map_err(io)?;
        let mut w = BundleWriter {
            path: path.to_owned(),
            tmp,
            file,
            hasher: StableHasher::default(),
            len: HEADER_LEN as u64,
            next: 1,
        };
        w.section(1, meta)?;
        Ok(w)
    }

    /// Appends section `kind` (they must come in order, 1 to 8).
    pub fn section<T: Serialize + ?Sized>(&mut self, kind: u8, value: &T) -> Result<(), BundleError> {
        let section = SECTIONS.get(usize::from(kind).wrapping_sub(1)).copied().unwrap_or("unknown");
        let fail = |message: String| BundleError::Encode { path: self.path.clone(), section, message };
        if kind != self.next {
            return Err(fail(format!("sections go in order; expected kind {}", self.next)));
        }
        let frame = compress(&encode_value(value).map_err(fail)?);
        if self.len + 9 + frame.len() as u64 > MAX_BUNDLE_BYTES {
            return Err(fail(format!("the bundle would exceed {MAX_BUNDLE_BYTES} bytes")));
        }
        let mut head = [0u8; 9];
        head[0] = kind;
        head[1..].copy_from_slice(&(frame.len() as u64).to_le_bytes());
        for chunk in [&head[..], &frame[..]] {
            self.hasher.bytes(chunk);
            self.file.write_all(chunk).map_err(|source| BundleError::Io { path: self.tmp.clone(), source })?;
        }
        self.len += 9 + frame.len() as u64;
        self.next += 1;
        Ok(())
    }

    /// Writes the sections after the meta one from `bundle` (the run's results), then
    /// [`BundleWriter::finish`]es. Create the writer before the run and call this after it:
    /// a run that never returns leaves `<path>.tmp` with its plan and seeds.
    pub fn finish_with(mut self, bundle: &Bundle) -> Result<(), BundleError> {
        self.section(2, &bundle.schedule)?;
        self.section(3, &bundle.trace)?;
        self.section(4, &bundle.observations)?;
        self.section(5, &bundle.history)?;
        self.section(6, &(&bundle.verdict, &bundle.summary))?;
        self.section(7, &bundle.findings)?;
        self.section(8, &bundle.probes)?;
        self.finish()
    }

    /// Seals the header, syncs, and renames the file to its final name.
    pub fn finish(mut self) -> Result<(), BundleError> {
        if usize::from(self.next) != SECTIONS.len() + 1 {
            let message = format!("only {} of {} sections written", self.next - 1, SECTIONS.len());
            return Err(BundleError::Encode { path: self.path.clone(), section: "verdict", message });
        }
        let io = |source| BundleError::Io { path: self.tmp.clone(), source };
        self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.file.write_all(&header(FORMAT_VERSION, self.len, self.hasher.finish())).map_err(io)?;
        self.file.sync_all().map_err(io)?;
        std::fs::rename(&self.tmp, &self.path).map_err(|source| BundleError::Io { path: self.path.clone(), source })
    }
}
