//! Synthetic histories: a sequential reference (a plain map, independent of the models' code)
//! executed under random concurrency. Each client issues one operation at a time; each
//! operation takes effect at a random instant inside its interval, and the outputs are what the
//! reference returned in the order of those instants — so, with `stale_reads` at 0, every
//! history is linearizable by construction.
//!
//! ```
//! use gauntlet::lincheck::{check, synth, KvModel};
//!
//! let history = synth::kv(&synth::SynthConfig { ops: 2_000, keys: 20, unknown: 0.05, ..Default::default() });
//! assert!(check(&KvModel, &history).unwrap().is_linearizable());
//! ```
//!
//! Operations with an unknown outcome took effect (inside their interval or up to four
//! latencies after it, as a request still in flight would) or did not, half the time each.
//! Clients act like Jepsen's processes: after an unknown outcome the client continues under a
//! new id. A stale read observes the value as of well before its call, as a deposed leader
//! would; it makes the history non-linearizable when a write came in between.

use super::models::{KvInput, KvOp, RegisterOp, Reply, Value};
use super::Operation;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// Relative weights of the operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mix {
    /// `read` / `get`.
    pub read: u32,
    /// `write` / `put`.
    pub write: u32,
    /// `append` (kv only; counts as `write` for the register).
    pub append: u32,
    /// `cas`.
    pub cas: u32,
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Seed of the generator (histories are a pure function of the configuration).
    pub seed: u64,
    /// Concurrent clients.
    pub clients: u64,
    /// Operations in all.
    pub ops: usize,
    /// Keys (kv only), chosen uniformly.
    pub keys: usize,
    /// The operation mix.
    pub mix: Mix,
    /// Written values are drawn from `0..values` (as text); 0 makes every value unique.
    pub values: u64,
    /// Probability that an operation's outcome is unknown.
    pub unknown: f64,
    /// Probability that a completed read is stale.
    pub stale_reads: f64,
    /// Operation latency, uniform in this range (ns, inclusive).
    pub latency: (u64, u64),
    /// A client's pause between operations, uniform in this range (ns, inclusive).
    pub think: (u64, u64),
}

impl Default for SynthConfig {
    /// 5 clients, 1,000 operations on one key, reads, writes and cas in equal parts over 5
    /// values, 1–10 ms latency, up to 1 ms between a client's operations, nothing unknown.
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            clients: 5,
            ops: 1_000,
            keys: 1,
            mix: Mix { read: 1, write: 1, append: 0, cas: 1 },
            values: 5,
            unknown: 0.0,
            stale_reads: 0.0,
            latency: (1_000_000, 10_000_000),
            think: (0, 1_000_000),
        }
    }
}

enum Kind {
    Read,
    Write,
    Append,
    Cas,
}

struct Gen {
    client: u64,
    key: usize,
    kind: Kind,
    value: Value,
    expected: Option<Value>,
    call: u64,
    ret: Option<u64>,
    /// When it takes effect (for a read: which instant it observes); `None`: never.
    effect: Option<u64>,
    output: Option<Reply>,
}

fn generate(cfg: &SynthConfig, append: bool) -> Vec<Gen> {
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let clients = cfg.clients.max(1);
    let keys = cfg.keys.max(1);
    let mut next_free: Vec<u64> = (0..clients).map(|_| rng.random_range(cfg.think.0..=cfg.think.1)).collect();
    let mut ids: Vec<u64> = (0..clients).collect();
    let mut fresh_id = clients;
    let mut written: Vec<Vec<Value>> = vec![Vec::new(); keys];
    let m = cfg.mix;
    let total = u64::from(m.read) + u64::from(m.write) + u64::from(m.append) + u64::from(m.cas);
    let stale_by = cfg.latency.1.saturating_mul(5).max(1);
    let mut ops = Vec::with_capacity(cfg.ops);
    for n in 0..cfg.ops {
        let c = (0..clients as usize).min_by_key(|&c| (next_free[c], c)).unwrap_or(0);
        let call = next_free[c];
        let latency = rng.random_range(cfg.latency.0..=cfg.latency.1.max(cfg.latency.0));
        let ret = call + latency;
        let key = rng.random_range(0..keys);
        let mut pick = rng.random_range(0..total.max(1));
        let mut kind = Kind::Read;
        for (w, k) in [(m.read, Kind::Read), (m.write, Kind::Write), (m.append, Kind::Append), (m.cas, Kind::Cas)] {
            if pick < u64::from(w) {
                kind = k;
                break;
            }
            pick -= u64::from(w);
        }
        if matches!(kind, Kind::Append) && !append {
            kind = Kind::Write;
        }
        let value: Value = match (&kind, cfg.values) {
            (Kind::Append, _) => format!("{n};").into(),
            (_, 0) => format!("v{n}").into(),
            (_, v) => rng.random_range(0..v).to_string().into(),
        };
        let expected = if matches!(kind, Kind::Cas) {
            let seen = &written[key];
            if seen.is_empty() || rng.random_bool(0.1) {
                None
            } else {
                Some(seen[rng.random_range(0..seen.len())].clone())
            }
        } else {
            None
        };
        if matches!(kind, Kind::Write | Kind::Cas) {
            written[key].push(value.clone());
        }
        let unknown = rng.random_bool(cfg.unknown);
        let effect = if !unknown {
            if matches!(kind, Kind::Read) && rng.random_bool(cfg.stale_reads) {
                Some(call.saturating_sub(stale_by))
            } else {
                Some(rng.random_range(call..=ret))
            }
        } else if rng.random_bool(0.5) {
            Some(rng.random_range(call..=ret + 4 * latency))
        } else {
            None
        };
        ops.push(Gen {
            client: ids[c],
            key,
            kind,
            value,
            expected,
            call,
            ret: (!unknown).then_some(ret),
            effect,
            output: None,
        });
        if unknown {
            ids[c] = fresh_id;
            fresh_id += 1;
        }
        next_free[c] = ret + rng.random_range(cfg.think.0..=cfg.think.1.max(cfg.think.0)) + 1;
    }
    // The sequential reference, in effect order.
    let mut order: Vec<(u64, usize)> = ops.iter().enumerate().filter_map(|(i, o)| o.effect.map(|t| (t, i))).collect();
    order.sort_unstable();
    let mut store: BTreeMap<usize, String> = BTreeMap::new();
    for (_, i) in order {
        let o = &mut ops[i];
        let cur = store.get(&o.key).cloned();
        o.output = Some(match o.kind {
            Kind::Read => Reply::Value(cur.map(Into::into)),
            Kind::Write => {
                store.insert(o.key, o.value.to_string());
                Reply::Ack
            }
            Kind::Append => {
                store.entry(o.key).or_default().push_str(&o.value);
                Reply::Ack
            }
            Kind::Cas => {
                let hit = cur.as_deref() == o.expected.as_deref();
                if hit {
                    store.insert(o.key, o.value.to_string());
                }
                Reply::Cas(hit)
            }
        });
    }
    for o in &mut ops {
        if o.ret.is_none() {
            o.output = None;
        }
    }
    ops
}

/// A key-value history (keys `k0`, `k1`, …).
pub fn kv(cfg: &SynthConfig) -> Vec<Operation<KvInput, Reply>> {
    generate(cfg, true)
        .into_iter()
        .map(|g| {
            let op = match g.kind {
                Kind::Read => KvOp::Get,
                Kind::Write => KvOp::Put(g.value),
                Kind::Append => KvOp::Append(g.value),
                Kind::Cas => KvOp::Cas { expected: g.expected, new: g.value },
            };
            Operation::new(g.client, KvInput { key: format!("k{}", g.key), op }, g.output, g.call, g.ret)
        })
        .collect()
}

/// A single-register history (`keys` is ignored, appends are writes).
pub fn register(cfg: &SynthConfig) -> Vec<Operation<RegisterOp, Reply>> {
    let cfg = SynthConfig { keys: 1, ..cfg.clone() };
    generate(&cfg, false)
        .into_iter()
        .map(|g| {
            let op = match g.kind {
                Kind::Read => RegisterOp::Read,
                Kind::Write | Kind::Append => RegisterOp::Write(g.value),
                Kind::Cas => RegisterOp::Cas { expected: g.expected, new: g.value },
            };
            Operation::new(g.client, op, g.output, g.call, g.ret)
        })
        .collect()
}
