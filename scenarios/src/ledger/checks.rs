//! The ledger's expectations: what a plan may name in `[[expect]]`.
//!
//! | name | class | what must hold |
//! |---|---|---|
//! | `final_agreement` | safety | no two nodes ever show different final blocks at one height |
//! | `supply_conserved` | safety | the coins after every final block equal the coins at genesis |
//! | `included_once` | safety | no transfer is in two final blocks, none that does not apply is in one, and every transfer a node accepted is in the final chain at the end (unless evicted, superseded by another with its nonce, accepted by a node that left for good, or stuck behind one of those) |
//! | `balances_verified` | safety | every node's balances, and every balance a client read, equal an independent replay of the final blocks |
//! | `rejects_invalid` | safety | no invalid transfer (bad signature, overdraft, bad nonce, garbage) was ever accepted |
//! | `mempool_bounded` | safety | no mempool ever holds more than `max` (default: the `mempool` option) |
//! | `block_timing` | safety | block timestamps lie in their slot, increase along the chain, and no notarized block is from the future by more than `tolerance` (default 700 ms) of true time |
//! | `height_advances` | liveness | after the faults stop, every node has final a block proposed `epochs` (default 5) epochs after the faults stopped (time for what was accepted before to be final, which `included_once` then checks), and is within `lag` (default 4) blocks of the highest |
//! | `mempool_converge` | liveness | after the faults stop, all nodes hold the same pending transfers |
//!
//! The observer sees each node's [`Status`]: checkpoints of its final chain, its last
//! [`super::validator::RECENT_BLOCKS`] final blocks in full, and its last evictions. The
//! checks gather these across observations, so they judge every final block any node showed.

use super::app::{Ledger, Options, INVALID_OPS};
use super::validator::{BlockSummary, Status};
use gauntlet::expect::Status as Judgement;
use gauntlet::expect::{Check, Expectation, ExpectationRegistry, Params, Phase};
use gauntlet::sim::OpPhase;
use gauntlet::FailureClass;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn boxed(e: impl Expectation<Ledger> + 'static) -> Box<dyn Expectation<Ledger>> {
    Box::new(e)
}

/// Registers every ledger expectation.
pub fn register(r: &mut ExpectationRegistry<Ledger>) {
    r.register("final_agreement", |p, _| {
        Params::new("final_agreement", p, &[]).done()?;
        Ok(boxed(FinalAgreement::default()))
    });
    r.register("supply_conserved", |p, _| {
        Params::new("supply_conserved", p, &[]).done()?;
        Ok(boxed(SupplyConserved))
    });
    r.register("included_once", |p, _| {
        Params::new("included_once", p, &[]).done()?;
        Ok(boxed(IncludedOnce::default()))
    });
    r.register("balances_verified", |p, plan| {
        Params::new("balances_verified", p, &[]).done()?;
        Ok(boxed(BalancesVerified { balance: Options::of(&plan.app.options).balance, blocks: Blocks::default() }))
    });
    r.register("rejects_invalid", |p, _| {
        Params::new("rejects_invalid", p, &[]).done()?;
        Ok(boxed(RejectsInvalid))
    });
    r.register("mempool_bounded", |p, plan| {
        let default = Options::of(&plan.app.options).cfg.mempool as u64;
        let max = Params::new("mempool_bounded", p, &["max"]).u64("max", default)?;
        Ok(boxed(MempoolBounded { max: max as usize }))
    });
    r.register("block_timing", |p, plan| {
        let tolerance =
            Params::new("block_timing", p, &["tolerance"]).duration("tolerance", Duration::from_millis(700))?;
        let slot = Options::of(&plan.app.options).cfg.epoch_ms;
        Ok(boxed(BlockTiming { slot, tolerance: tolerance.as_millis() as u64, ..BlockTiming::default() }))
    });
    r.register("height_advances", |p, _| {
        const KEYS: [&str; 2] = ["lag", "epochs"];
        let lag = Params::new("height_advances", p, &KEYS).u64("lag", 4)?;
        let epochs = Params::new("height_advances", p, &KEYS).u64("epochs", 5)?;
        Ok(boxed(HeightAdvances { lag, epochs, start_epoch: None }))
    });
    r.register("mempool_converge", |p, _| {
        Params::new("mempool_converge", p, &[]).done()?;
        Ok(boxed(MempoolConverge))
    });
}

/// The members clients and checks care about (flooders are not judged), with their states.
fn servers<'a>(cx: &'a Check<'_, Ledger>) -> impl Iterator<Item = (&'a str, &'a Status)> {
    cx.view.iter().filter(|(_, v)| v.role != "flooder").filter_map(|(n, v)| v.state.as_ref().map(|s| (n.as_str(), s)))
}

/// Used by the built-in `converge`: final chains agree and are within two blocks of each other
/// (blocks keep coming, so equal heights at one instant are luck).
pub fn same_final_chain(states: &[(&str, &Status)]) -> Result<(), String> {
    let (Some(lo), Some(hi)) =
        (states.iter().min_by_key(|(_, s)| s.final_height), states.iter().max_by_key(|(_, s)| s.final_height))
    else {
        return Ok(());
    };
    if hi.1.final_height > lo.1.final_height + 2 {
        return Err(format!("{} is final at {} but {} only at {}", hi.0, hi.1.final_height, lo.0, lo.1.final_height));
    }
    let mut seen: BTreeMap<u64, (u64, &str)> = BTreeMap::new();
    for (name, s) in states {
        for &(h, hash) in &s.checkpoints {
            match seen.get(&h) {
                Some((other, who)) if *other != hash => {
                    return Err(format!("{who} and {name} have different final blocks at height {h}"));
                }
                Some(_) => {}
                None => {
                    seen.insert(h, (hash, name));
                }
            }
        }
    }
    Ok(())
}

/// Every final block any node showed, by height (the first seen; a different one is a
/// conflict).
#[derive(Default)]
struct Blocks {
    by_height: BTreeMap<u64, BlockSummary>,
}

impl Blocks {
    /// Gathers the nodes' recent final blocks; `Err` names two different blocks at a height.
    fn gather(&mut self, cx: &Check<'_, Ledger>) -> Result<(), String> {
        for (name, s) in servers(cx) {
            for b in &s.recent {
                match self.by_height.get(&b.height) {
                    Some(x) if x.hash != b.hash => {
                        return Err(format!(
                            "{name} has final block {:016x} at height {} where another node had {:016x}",
                            b.hash, b.height, x.hash
                        ));
                    }
                    Some(_) => {}
                    None => {
                        self.by_height.insert(b.height, b.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// The heights from 1 to the highest seen that no observation showed.
    fn gaps(&self) -> Vec<u64> {
        let top = self.by_height.keys().next_back().copied().unwrap_or(0);
        (1..=top).filter(|h| !self.by_height.contains_key(h)).collect()
    }
}

/// Safety: final chains never differ.
#[derive(Default)]
struct FinalAgreement {
    hashes: BTreeMap<u64, (u64, String)>,
}

impl Expectation<Ledger> for FinalAgreement {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, cx: &Check<'_, Ledger>) -> Judgement {
        for (name, s) in servers(cx) {
            if s.conflict {
                return Judgement::Violated(format!("{name} saw two conflicting blocks finalized"));
            }
            let recent = s.recent.iter().map(|b| (b.height, b.hash));
            for (h, hash) in s.checkpoints.iter().copied().chain(recent) {
                match self.hashes.get(&h) {
                    Some((other, who)) if *other != hash => {
                        return Judgement::Violated(format!(
                            "divergent final blocks at height {h}: {who} has {other:016x}, {name} has {hash:016x}"
                        ));
                    }
                    Some(_) => {}
                    None => {
                        self.hashes.insert(h, (hash, name.to_owned()));
                    }
                }
            }
        }
        Judgement::Holds
    }
}

/// Safety: coins are neither made nor lost.
struct SupplyConserved;

impl Expectation<Ledger> for SupplyConserved {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, cx: &Check<'_, Ledger>) -> Judgement {
        for (name, s) in servers(cx) {
            if let Some((h, supply)) = s.supply_break {
                return Judgement::Violated(format!(
                    "{name}: after final block {h} the supply is {supply}, genesis had {}",
                    s.genesis_supply
                ));
            }
            if s.supply != s.genesis_supply {
                return Judgement::Violated(format!("{name}: supply {} != genesis {}", s.supply, s.genesis_supply));
            }
        }
        Judgement::Holds
    }
}

/// An accepted transfer as the history records it: `"<id> w<wallet> n<nonce> by <node>"`.
fn accepted(result: &str) -> Option<(u64, u32, u64, &str)> {
    let mut parts = result.split_whitespace();
    let id = u64::from_str_radix(parts.next()?, 16).ok()?;
    let w = parts.next()?.strip_prefix('w')?.parse().ok()?;
    let n = parts.next()?.strip_prefix('n')?.parse().ok()?;
    let by = parts.nth(1)?;
    Some((id, w, n, by))
}

/// Safety: inclusion exactly once, nothing invalid included, nothing accepted lost.
#[derive(Default)]
struct IncludedOnce {
    blocks: Blocks,
    evicted: BTreeSet<u64>,
    evictions_seen: BTreeMap<String, u64>,
    /// A node evicted more between two observations than its status lists.
    lossy: Option<String>,
}

impl IncludedOnce {
    fn gather(&mut self, cx: &Check<'_, Ledger>) -> Judgement {
        if let Err(e) = self.blocks.gather(cx) {
            return Judgement::Violated(e);
        }
        let mut heights: BTreeMap<u64, u64> = BTreeMap::new();
        for b in self.blocks.by_height.values() {
            for t in &b.txs {
                if let Some(other) = heights.insert(t.id, b.height) {
                    return Judgement::Violated(format!(
                        "transfer {:016x} is in final blocks {other} and {}",
                        t.id, b.height
                    ));
                }
            }
        }
        for (name, s) in servers(cx) {
            if let Some((h, id, why)) = s.invalid.first() {
                return Judgement::Violated(format!("{name}: final block {h} holds transfer {id:016x}, which {why}"));
            }
            let before = self.evictions_seen.get(name).copied().unwrap_or(0);
            // A restart starts the count again.
            let new = if s.evictions >= before { s.evictions - before } else { s.evictions };
            if new as usize > s.evicted.len() && self.lossy.is_none() {
                self.lossy = Some(format!("{name} evicted {new} transfers between two observations"));
            }
            self.evictions_seen.insert(name.to_owned(), s.evictions);
            self.evicted.extend(s.evicted.iter().copied());
        }
        Judgement::Holds
    }
}

impl Expectation<Ledger> for IncludedOnce {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, cx: &Check<'_, Ledger>) -> Judgement {
        self.gather(cx)
    }
    fn at_end(&mut self, cx: &Check<'_, Ledger>) -> Judgement {
        if let v @ Judgement::Violated(_) = self.gather(cx) {
            return v;
        }
        let included: BTreeSet<u64> = self.blocks.by_height.values().flat_map(|b| b.txs.iter().map(|t| t.id)).collect();
        let used: BTreeSet<(u32, u64)> =
            self.blocks.by_height.values().flat_map(|b| b.txs.iter().map(|t| (t.from, t.nonce))).collect();
        let mut dropped: BTreeSet<(u32, u64)> = BTreeSet::new();
        let mut candidates = Vec::new();
        for e in cx.history {
            if !matches!(e.op.as_str(), "transfer" | "broadcast") || e.outcome != OpPhase::Ok {
                continue;
            }
            let Some((id, w, n, by)) = accepted(&e.result) else {
                return Judgement::Violated(format!("unreadable result {:?} of {} #{}", e.result, e.op, e.id));
            };
            if included.contains(&id) {
                continue;
            }
            // Evicted, superseded by another transfer with its nonce, or accepted by a node that
            // has since left for good (with the transfer maybe not yet gossiped): dropped.
            if self.evicted.contains(&id) || used.contains(&(w, n)) || !cx.view.contains_key(by) {
                dropped.insert((w, n));
                continue;
            }
            candidates.push((w, n, id, e.invoke));
        }
        candidates.sort();
        let missing: Vec<_> =
            candidates.into_iter().filter(|(w, n, _, _)| !dropped.range((*w, 0)..(*w, *n)).any(|_| true)).collect();
        let Some((w, n, id, at)) = missing.first() else { return Judgement::Holds };
        let next = used.range((*w, 0)..=(*w, u64::MAX)).next_back().map_or(0, |(_, n)| n + 1);
        let mut why = format!(
            "{} accepted transfers were never included; the first: {id:016x} (wallet {w}, nonce {n}), submitted at {} \
             (the final chain holds wallet {w}'s nonces up to {next})",
            missing.len(),
            gauntlet::plan::fmt_duration(*at)
        );
        let gaps = self.blocks.gaps();
        if !gaps.is_empty() {
            why += &format!(" (final heights never observed: {} of them, from {})", gaps.len(), gaps[0]);
        }
        if let Some(l) = &self.lossy {
            why += &format!(" (evictions may have been missed: {l})");
        }
        Judgement::Violated(why)
    }
}

/// Safety: balances match an independent replay of the final blocks.
struct BalancesVerified {
    balance: u64,
    blocks: Blocks,
}

impl Expectation<Ledger> for BalancesVerified {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, cx: &Check<'_, Ledger>) -> Judgement {
        match self.blocks.gather(cx) {
            Ok(()) => Judgement::Holds,
            Err(e) => Judgement::Violated(e),
        }
    }
    fn at_end(&mut self, cx: &Check<'_, Ledger>) -> Judgement {
        if let Err(e) = self.blocks.gather(cx) {
            return Judgement::Violated(e);
        }
        let Some(wallets) = servers(cx).map(|(_, s)| s.balances.len()).next() else { return Judgement::Holds };
        // The model: balances and nonces after each height, replayed with the rules (nonce in
        // order, funds for amount + fee in wide arithmetic), fees leaving the genesis wallets.
        let mut balances = vec![u128::from(self.balance); wallets];
        let mut nonces = vec![0u64; wallets];
        let mut after: Vec<Vec<u128>> = vec![balances.clone()];
        for h in 1.. {
            let Some(b) = self.blocks.by_height.get(&h) else { break };
            for t in &b.txs {
                let (from, to) = (t.from as usize, t.to as usize);
                if from >= wallets || nonces[from] != t.nonce {
                    continue;
                }
                let needs = u128::from(t.amount) + u128::from(t.fee);
                if balances[from] < needs {
                    continue;
                }
                balances[from] -= needs;
                nonces[from] += 1;
                if to < wallets {
                    balances[to] += u128::from(t.amount);
                }
            }
            after.push(balances.clone());
        }
        let top = after.len() as u64 - 1;
        for (name, s) in servers(cx) {
            if s.final_height > top {
                continue;
            }
            let model = &after[s.final_height as usize];
            if let Some(w) = (0..wallets).find(|&w| u128::from(s.balances[w]) != model[w]) {
                return Judgement::Violated(format!(
                    "{name} says wallet {w} holds {} after final block {}; replaying the final blocks gives {}",
                    s.balances[w], s.final_height, model[w]
                ));
            }
        }
        for e in cx.history.iter().filter(|e| e.op == "balance" && e.outcome == OpPhase::Ok) {
            // "w<wallet> <balance> @<height>"
            let parsed = (|| {
                let mut p = e.result.split_whitespace();
                let w: usize = p.next()?.strip_prefix('w')?.parse().ok()?;
                let b: u128 = p.next()?.parse().ok()?;
                let h: u64 = p.next()?.strip_prefix('@')?.parse().ok()?;
                Some((w, b, h))
            })();
            let Some((w, b, h)) = parsed else {
                return Judgement::Violated(format!("unreadable balance {:?}", e.result));
            };
            if h <= top && w < wallets && after[h as usize][w] != b {
                return Judgement::Violated(format!(
                    "a client read {b} for wallet {w} at final height {h}; the replay gives {}",
                    after[h as usize][w]
                ));
            }
        }
        Judgement::Holds
    }
}

/// Safety: invalid transfers are refused.
struct RejectsInvalid;

impl Expectation<Ledger> for RejectsInvalid {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, _: &Check<'_, Ledger>) -> Judgement {
        Judgement::Holds
    }
    fn at_end(&mut self, cx: &Check<'_, Ledger>) -> Judgement {
        match cx.history.iter().find(|e| INVALID_OPS.contains(&e.op.as_str()) && e.outcome == OpPhase::Ok) {
            Some(e) => Judgement::Violated(format!(
                "{} #{} of {} was accepted ({}) at {}",
                e.op,
                e.id,
                e.workload,
                e.result,
                gauntlet::plan::fmt_duration(e.invoke)
            )),
            None => Judgement::Holds,
        }
    }
}

/// Safety: mempools stay within their bound.
struct MempoolBounded {
    max: usize,
}

impl Expectation<Ledger> for MempoolBounded {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, cx: &Check<'_, Ledger>) -> Judgement {
        // An expectation can say what a plan must reach too: a bound never met proves little.
        gauntlet::sometimes!(
            servers(cx).any(|(_, s)| s.mempool >= self.max),
            "ledger: a mempool observed at its bound (mempool_bounded)"
        );
        match servers(cx).find(|(_, s)| s.mempool > self.max) {
            Some((name, s)) => {
                Judgement::Violated(format!("{name} holds {} pending transfers; the bound is {}", s.mempool, self.max))
            }
            None => Judgement::Holds,
        }
    }
}

/// Safety: block times agree with their slots and with true time.
#[derive(Default)]
struct BlockTiming {
    slot: u64,
    tolerance: u64,
    /// Wall-clock milliseconds at the run's start, by the nodes' clocks before any skew.
    start_ms: Option<u64>,
    checked: BTreeSet<u64>,
}

impl Expectation<Ledger> for BlockTiming {
    fn class(&self) -> FailureClass {
        FailureClass::Safety
    }
    fn check(&mut self, cx: &Check<'_, Ledger>) -> Judgement {
        if self.start_ms.is_none() {
            // Calibrate once, from the first observations (before chaos skews any clock).
            let mut starts: Vec<u64> = cx
                .view
                .values()
                .filter_map(|v| Some(v.state.as_ref()?.now_ms.saturating_sub(v.observed_at?.as_millis() as u64)))
                .collect();
            starts.sort_unstable();
            self.start_ms = starts.get(starts.len() / 2).copied();
        }
        let Some(start) = self.start_ms else { return Judgement::Holds };
        let now = start + cx.now.as_millis() as u64;
        for (name, s) in servers(cx) {
            let head = &s.head;
            if head.height > 0 && self.checked.insert(head.hash) && head.timestamp_ms > now + self.tolerance {
                return Judgement::Violated(format!(
                    "{name}'s head, block {} of epoch {} by validator {}, is stamped {} ms ahead of true time \
                     (tolerance {} ms)",
                    head.height,
                    head.epoch,
                    head.proposer,
                    head.timestamp_ms - now,
                    self.tolerance
                ));
            }
            for pair in s.recent.windows(2) {
                let (a, b) = (&pair[0], &pair[1]);
                if b.timestamp_ms <= a.timestamp_ms {
                    return Judgement::Violated(format!(
                        "{name}: final block {} is stamped no later than its parent",
                        b.height
                    ));
                }
            }
            for b in &s.recent {
                let lo = b.epoch * self.slot;
                if !(lo..lo + self.slot).contains(&b.timestamp_ms) {
                    return Judgement::Violated(format!(
                        "{name}: final block {} of epoch {} is stamped outside its slot",
                        b.height, b.epoch
                    ));
                }
            }
        }
        Judgement::Holds
    }
}

/// Liveness: after the faults stop, every node's final chain reaches a block proposed
/// `epochs` epochs after the cooldown began (by the median node clock), and every node is
/// within `lag` blocks of the best. Blocks are final in bursts after a disruption, so counting
/// heights would be satisfied too early; counting epochs from the cooldown gives what was
/// accepted before it time to be final, which `included_once` then checks.
struct HeightAdvances {
    lag: u64,
    epochs: u64,
    start_epoch: Option<u64>,
}

impl Expectation<Ledger> for HeightAdvances {
    fn class(&self) -> FailureClass {
        FailureClass::Liveness
    }
    fn check(&mut self, cx: &Check<'_, Ledger>) -> Judgement {
        let Phase::Cooldown { since } = cx.phase else { return Judgement::Pending("faults still active".into()) };
        if self.start_epoch.is_none() {
            // From states read since the cooldown began (a node's last state may be older).
            let fresh = servers(cx).filter(|(n, _)| cx.view[*n].observed_at.is_some_and(|at| at >= since));
            let mut epochs: Vec<u64> = fresh.map(|(_, s)| s.epoch).collect();
            epochs.sort_unstable();
            self.start_epoch = epochs.get(epochs.len() / 2).copied();
        }
        let Some(start) = self.start_epoch else { return Judgement::Pending("no node observed".into()) };
        let target = start + self.epochs;
        let best = servers(cx).map(|(_, s)| s.final_height).max().unwrap_or(0);
        for (name, v) in cx.view.iter().filter(|(_, v)| v.role != "flooder") {
            let (Some(s), Some(at)) = (&v.state, v.observed_at) else {
                return Judgement::Pending(format!("{name} is not answering"));
            };
            if at < since {
                return Judgement::Pending(format!("{name} not read since the faults stopped"));
            }
            let tip = s.recent.last().map_or(0, |b| b.epoch);
            if tip < target {
                return Judgement::Pending(format!(
                    "{name}'s last final block is from epoch {tip}; the faults stopped in epoch {start}, \
                     and a block from epoch {target} must be final"
                ));
            }
            if s.final_height + self.lag < best {
                return Judgement::Pending(format!("{name} is final at {}, the best at {best}", s.final_height));
            }
        }
        Judgement::Holds
    }
}

/// Liveness: all nodes end up holding the same pending transfers.
struct MempoolConverge;

impl Expectation<Ledger> for MempoolConverge {
    fn class(&self) -> FailureClass {
        FailureClass::Liveness
    }
    fn check(&mut self, cx: &Check<'_, Ledger>) -> Judgement {
        let Phase::Cooldown { since } = cx.phase else { return Judgement::Pending("faults still active".into()) };
        let fresh: Vec<(&str, &Status)> = servers(cx)
            .filter(|(n, _)| cx.view.get(*n).and_then(|v| v.observed_at).is_some_and(|at| at >= since))
            .collect();
        let Some((first, s0)) = fresh.first() else { return Judgement::Pending("no node observed".into()) };
        match fresh.iter().find(|(_, s)| s.mempool_digest != s0.mempool_digest) {
            Some((name, s)) => Judgement::Pending(format!(
                "{first} holds {} pending transfers, {name} holds {} (different sets)",
                s0.mempool, s.mempool
            )),
            None => Judgement::Holds,
        }
    }
}
