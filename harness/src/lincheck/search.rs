//! The search: Wing & Gong's, with Lowe's just-in-time linearization and memoisation — the
//! algorithm Porcupine uses — over one partition, with three sound reductions.
//!
//! The history is a doubly linked list of call and return entries in time order (a call sorts
//! before a return at the same instant, so operations that touch are concurrent). The search
//! walks the list from the head: at a call entry it tries to linearize that operation now (the
//! model must accept its output in the current state); at a return entry whose operation is
//! still pending it must backtrack, because that operation had to take effect before it
//! returned. A linearized operation's two entries are unlinked (dancing links) and the walk
//! restarts at the head; backtracking relinks them in reverse order. Every configuration
//! entered — the set of operations already linearized and the model state — is remembered, and
//! a configuration seen before is never explored again.
//!
//! Two kinds of operation take part:
//! * **strong**: it took effect at one instant of its interval, with its recorded output (if
//!   any);
//! * **weak**: it took effect at one instant of its interval with any output, or not at all.
//!   An operation whose outcome is unknown is weak with its interval running to the end of the
//!   partition (taking effect after the last strong return is the same as never). "Not at all"
//!   is taken when the walk reaches its return entry with the operation still pending, which
//!   is the latest moment the choice matters; applying a weak operation that leaves the state
//!   unchanged is never tried, since skipping it is the same configuration with more freedom.
//!
//! The reductions (none changes a verdict):
//! * **reads first**: on entering a configuration, a completed read that fits the state is
//!   linearized at once and nothing else is tried there — any linearization can be rearranged
//!   to take it first, since it changes nothing and nothing pending returned before its call;
//! * **dead states**: a completed read that does not fit, and cannot fit after any of the
//!   operations that may still precede it ([`Model::may_fit_later`]), ends the configuration;
//!   the candidates and the next few reads beyond them are checked;
//! * **subsumption**: a configuration is not explored if one with the same strong operations
//!   done, the same state and a subset of its weak operations done was explored and failed —
//!   that one could have done everything this one can, skipping the rest. When a search must
//!   be exhaustive (proving a shrunk set is still a counterexample) weak operations are tried
//!   after strong ones, so the more permissive configurations fail first and prune more.
//!
//! Linearized sets are stored canonically and small: every operation below `m` (the first
//! pending one of its kind, in call order) is done and nothing at or above `hi` is, so a memo
//! entry keeps `m`, `hi` and only the bitset words between them — usually one or two words
//! however long the history.

use super::Model;
use std::hash::{Hash, Hasher};

/// One operation as the search sees it. Indices are positions in the slice given to [`search`],
/// which should be sorted by call time (the memo's compactness relies on it, not correctness).
pub(crate) struct SearchOp<'h, I, O> {
    pub input: &'h I,
    pub output: Option<&'h O>,
    pub call: u64,
    /// Finite: an unknown outcome is given the partition's last strong return time.
    pub ret: u64,
    /// May also not take effect at all (and its output is ignored).
    pub weak: bool,
    /// Never changes the state ([`Model::is_read_only`]).
    pub read_only: bool,
    /// Tried after the strong candidates of a configuration, not in list order (weak only).
    /// Deferring lets subsumption prune more when the search is exhaustive; list order finds a
    /// linearization sooner when an unknown outcome did take effect.
    pub deferred: bool,
}

/// What a search found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    Linearizable,
    NotLinearizable,
    /// The step budget ran out first.
    GaveUp,
}

/// A search's result and the number of steps it took (operations tried, skipped or checked).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub found: Found,
    pub steps: u64,
}

const NIL: u32 = u32::MAX;
const HEAD: usize = 0;
/// Marks a return entry in `Search::node_op`.
const RET: u32 = 1 << 31;

/// How many completed reads beyond the candidates a sweep checks for fitting later, and how
/// many list entries it looks at in all.
const SWEEP_BEYOND: usize = 4;
const SWEEP_NODES: usize = 256;

/// Searches for a linearization of `ops`, taking at most `max_steps` steps.
///
/// Every operation must have `call <= ret` (checked by the caller) and there must be fewer than
/// 2^30 of them.
pub(crate) fn search<M: Model>(model: &M, ops: &[SearchOp<'_, M::Input, M::Output>], max_steps: u64) -> Outcome {
    assert!(ops.len() < (1 << 30), "a partition holds at most 2^30 operations");
    Search::new(model, ops).run(max_steps)
}

/// What a sweep of a new configuration found.
enum Sweep {
    /// Choose among the candidates.
    Open,
    /// This completed read fits: linearize it, and nothing else from here.
    Read(u32),
    /// A completed read can never fit.
    Dead,
}

struct Frame {
    op: u32,
    /// The state before the operation was applied (or skipped).
    state: u32,
    /// The `m` and `hi` of the operation's kind before.
    m: u32,
    hi: u32,
    /// No other choice was open at this configuration (a skip at a return entry, or a read
    /// linearized as soon as it could be): backtracking goes straight past it.
    forced: bool,
    /// Chosen in the pass over deferred candidates.
    deferred_pass: bool,
    /// The memo entry of the configuration it entered (closed when the frame is popped).
    entry: u32,
}

/// The operations done (linearized or skipped) of one kind, with the canonical bounds.
struct Done {
    bits: Vec<u64>,
    /// The first operation not done.
    m: u32,
    /// One past the last operation done.
    hi: u32,
    len: u32,
}

impl Done {
    fn new(len: usize) -> Self {
        Done { bits: vec![0; len.div_ceil(64) + 1], m: 0, hi: 0, len: len as u32 }
    }

    fn set(&mut self, i: u32) {
        self.bits[(i / 64) as usize] |= 1 << (i % 64);
        if i == self.m {
            let mut m = i + 1;
            while m < self.len && self.bits[(m / 64) as usize] & (1 << (m % 64)) != 0 {
                m += 1;
            }
            self.m = m;
        }
        self.hi = self.hi.max(i + 1);
    }

    fn clear(&mut self, i: u32, m: u32, hi: u32) {
        self.bits[(i / 64) as usize] &= !(1 << (i % 64));
        self.m = m;
        self.hi = hi;
    }

    /// The words between `m` and `hi`: with those two numbers they determine the set.
    fn key(&self) -> (u32, u32, &[u64]) {
        let words = if self.hi <= self.m {
            &[][..]
        } else {
            &self.bits[(self.m / 64) as usize..((self.hi - 1) / 64 + 1) as usize]
        };
        (self.m, self.hi, words)
    }
}

struct Search<'a, 'h, M: Model> {
    model: &'a M,
    ops: &'a [SearchOp<'h, M::Input, M::Output>],
    next: Vec<u32>,
    prev: Vec<u32>,
    /// Per list node (0 is the head): the operation, with [`RET`] set on return entries.
    node_op: Vec<u32>,
    call_node: Vec<u32>,
    ret_node: Vec<u32>,
    /// Each operation's index among the operations of its kind.
    rank: Vec<u32>,
    /// Some operation is deferred (otherwise there is no second pass).
    deferred: bool,
    strong: Done,
    weak: Done,
    states: Interner<M::State>,
    memo: Memo,
    stack: Vec<Frame>,
}

impl<'a, 'h, M: Model> Search<'a, 'h, M> {
    fn new(model: &'a M, ops: &'a [SearchOp<'h, M::Input, M::Output>]) -> Self {
        let n = ops.len();
        let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * n);
        let mut rank = Vec::with_capacity(n);
        let (mut strong, mut weak) = (0u32, 0u32);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.call, false, i as u32));
            events.push((op.ret, true, i as u32));
            let r = if op.weak { &mut weak } else { &mut strong };
            rank.push(*r);
            *r += 1;
        }
        // Calls before returns at the same instant: operations that touch overlap.
        events.sort_unstable();
        let nodes = 2 * n + 1;
        let mut s = Search {
            model,
            ops,
            next: vec![NIL; nodes],
            prev: vec![NIL; nodes],
            node_op: vec![0; nodes],
            call_node: vec![NIL; n],
            ret_node: vec![NIL; n],
            rank,
            deferred: ops.iter().any(|o| o.deferred),
            strong: Done::new(strong as usize),
            weak: Done::new(weak as usize),
            states: Interner::default(),
            memo: Memo::default(),
            stack: Vec::new(),
        };
        for (k, &(_, is_ret, op)) in events.iter().enumerate() {
            let node = k + 1;
            s.prev[node] = k as u32;
            s.next[k] = node as u32;
            if is_ret {
                s.node_op[node] = op | RET;
                s.ret_node[op as usize] = node as u32;
            } else {
                s.node_op[node] = op;
                s.call_node[op as usize] = node as u32;
            }
        }
        s
    }

    fn run(mut self, max_steps: u64) -> Outcome {
        let ops = self.ops;
        let mut state = self.states.intern(self.model.init());
        let mut cur = NIL;
        let mut steps = 0u64;
        // A configuration was just entered: sweep its reads before choosing.
        let mut fresh = true;
        // Walking the weak candidates (after the strong ones).
        let mut deferred_pass = false;
        loop {
            if self.next[HEAD] == NIL {
                return Outcome { found: Found::Linearizable, steps };
            }
            if steps >= max_steps {
                return Outcome { found: Found::GaveUp, steps };
            }
            if fresh {
                fresh = false;
                deferred_pass = false;
                match self.sweep(state, &mut steps) {
                    Sweep::Open => cur = self.next[HEAD],
                    Sweep::Read(op) => {
                        // The only choice to try here; if the configuration after it was
                        // explored before, this one fails too.
                        if self.enter(op, state, state, true, false) {
                            fresh = true;
                            continue;
                        }
                        (cur, deferred_pass) = self.backtrack(&mut state);
                    }
                    Sweep::Dead => (cur, deferred_pass) = self.backtrack(&mut state),
                }
                if cur == NIL {
                    return Outcome { found: Found::NotLinearizable, steps };
                }
            }
            steps += 1;
            // The list's last entry is always a return (it has the latest time), so the walk
            // meets a return entry before running off the end.
            let node = cur as usize;
            let tag = self.node_op[node];
            let op = tag & !RET;
            let o = &ops[op as usize];
            if tag & RET == 0 {
                // Strong candidates first, then weak ones; completed reads were settled by the
                // sweep.
                if o.deferred == deferred_pass && (o.weak || !o.read_only) {
                    let cur_state = self.states.get(state);
                    if let Some(next_state) = self.model.step(cur_state, o.input, o.output) {
                        let id = if next_state == *cur_state { state } else { self.states.intern(next_state) };
                        // A weak no-op is covered by skipping it at its return.
                        if !(o.weak && id == state) && self.enter(op, id, state, false, deferred_pass) {
                            state = id;
                            fresh = true;
                            continue;
                        }
                    } else if let (Some(output), false) = (o.output, o.weak) {
                        // It does not fit now. If it never can, this configuration is dead.
                        let mut pending =
                            Pending { search: &self, at: self.next[HEAD], until: self.ret_node[op as usize] };
                        if !self.model.may_fit_later(self.states.get(state), o.input, output, &mut pending) {
                            (cur, deferred_pass) = self.backtrack(&mut state);
                            if cur == NIL {
                                return Outcome { found: Found::NotLinearizable, steps };
                            }
                            continue;
                        }
                    }
                }
                cur = self.next[node];
            } else if !deferred_pass && self.deferred {
                deferred_pass = true;
                cur = self.next[HEAD];
            } else {
                if o.weak && self.enter(op, state, state, true, true) {
                    fresh = true;
                    continue;
                }
                // `op` had to take effect before this point and cannot.
                (cur, deferred_pass) = self.backtrack(&mut state);
                if cur == NIL {
                    return Outcome { found: Found::NotLinearizable, steps };
                }
            }
        }
    }

    /// Looks at the completed reads of a new configuration before choosing. Among the
    /// candidates (the call entries before the first return entry), a read that fits is
    /// linearized at once. A read that does not fit and never can ([`Model::may_fit_later`])
    /// ends the configuration; that holds for every pending read, so the next few reads beyond
    /// the candidates are checked too: they refute a wrong order as soon as it is taken,
    /// instead of after every order of the operations before them.
    fn sweep(&self, state: u32, steps: &mut u64) -> Sweep {
        let cur = self.states.get(state);
        let mut node = self.next[HEAD];
        let mut enabled = true;
        let (mut beyond, mut visited) = (0, 0);
        while node != NIL && beyond < SWEEP_BEYOND && visited < SWEEP_NODES {
            let tag = self.node_op[node as usize];
            node = self.next[node as usize];
            visited += 1;
            if tag & RET != 0 {
                enabled = false;
                continue;
            }
            let o = &self.ops[tag as usize];
            if o.weak || !o.read_only || o.output.is_none() && !enabled {
                continue;
            }
            beyond += usize::from(!enabled);
            *steps += 1;
            let fits = self.model.step(cur, o.input, o.output).is_some();
            if fits && enabled {
                return Sweep::Read(tag);
            }
            if let (false, Some(output)) = (fits, o.output) {
                let mut pending = Pending { search: self, at: self.next[HEAD], until: self.ret_node[tag as usize] };
                if !self.model.may_fit_later(cur, o.input, output, &mut pending) {
                    return Sweep::Dead;
                }
            }
        }
        Sweep::Open
    }

    /// Undoes choices up to the latest one with an alternative left; returns where to resume
    /// (the call entry after the undone one, in the same pass), or `NIL` if no choice is left.
    fn backtrack(&mut self, state: &mut u32) -> (u32, bool) {
        while let Some(frame) = self.stack.pop() {
            self.unlift(frame.op);
            self.memo.entries[frame.entry as usize].closed = true;
            let done = if self.ops[frame.op as usize].weak { &mut self.weak } else { &mut self.strong };
            done.clear(self.rank[frame.op as usize], frame.m, frame.hi);
            *state = frame.state;
            if !frame.forced {
                return (self.next[self.call_node[frame.op as usize] as usize], frame.deferred_pass);
            }
        }
        (NIL, false)
    }

    /// Marks `op` done with resulting state `state`; if that configuration is new and not
    /// subsumed, records it, pushes a frame and unlinks the operation. Otherwise leaves
    /// everything as it was.
    fn enter(&mut self, op: u32, state: u32, before: u32, forced: bool, deferred_pass: bool) -> bool {
        let weak = self.ops[op as usize].weak;
        let rank = self.rank[op as usize];
        let done = if weak { &mut self.weak } else { &mut self.strong };
        let (m, hi) = (done.m, done.hi);
        done.set(rank);
        let Some(entry) = self.memo.visit(&self.strong, &self.weak, state) else {
            let done = if weak { &mut self.weak } else { &mut self.strong };
            done.clear(rank, m, hi);
            return false;
        };
        self.stack.push(Frame { op, state: before, m, hi, forced, deferred_pass, entry });
        self.lift(op);
        true
    }

    fn unlink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, node: u32) {
        let (p, n) = (self.prev[node as usize], self.next[node as usize]);
        self.next[p as usize] = node;
        if n != NIL {
            self.prev[n as usize] = node;
        }
    }

    fn lift(&mut self, op: u32) {
        self.unlink(self.call_node[op as usize]);
        self.unlink(self.ret_node[op as usize]);
    }

    fn unlift(&mut self, op: u32) {
        self.relink(self.ret_node[op as usize]);
        self.relink(self.call_node[op as usize]);
    }
}

/// The inputs of the pending operations whose call entries come before `until` (a return
/// entry): those that may still be linearized before it.
struct Pending<'s, 'a, 'h, M: Model> {
    search: &'s Search<'a, 'h, M>,
    at: u32,
    until: u32,
}

impl<'s, 'a, 'h, M: Model> Iterator for Pending<'s, 'a, 'h, M> {
    type Item = &'h M::Input;

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.search;
        while self.at != NIL && self.at != self.until {
            let node = self.at as usize;
            self.at = s.next[node];
            let tag = s.node_op[node];
            if tag & RET == 0 && s.ret_node[tag as usize] != self.until {
                return Some(s.ops[tag as usize].input);
            }
        }
        None
    }
}

/// FxHash-style word hasher with a MurmurHash3 finaliser: fast, deterministic (no random keys),
/// good enough for the open-addressing tables below.
#[derive(Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.hash;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

pub(crate) fn hash_of<T: Hash + ?Sized>(value: &T) -> u64 {
    let mut h = FxHasher::default();
    value.hash(&mut h);
    h.finish()
}

/// Open addressing, linear probing, power-of-two size, at most half full. Slots hold `id + 1`
/// (0 is empty); the owner keeps each id's hash and data. Never iterated, so it cannot leak
/// an order.
#[derive(Default)]
struct Table {
    slots: Vec<u32>,
}

impl Table {
    /// The id stored under `hash` for which `eq` holds, or inserts `new_id` and returns `None`.
    /// `hashes` gives the hash of every id already stored (used to grow).
    fn find_or_insert(
        &mut self,
        hash: u64,
        new_id: u32,
        hashes: &[u64],
        mut eq: impl FnMut(u32) -> bool,
    ) -> Option<u32> {
        if (new_id as usize + 1) * 2 > self.slots.len() {
            self.grow(hashes);
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                self.slots[i] = new_id + 1;
                return None;
            }
            let id = slot - 1;
            if hashes[id as usize] == hash && eq(id) {
                return Some(id);
            }
            i = (i + 1) & mask;
        }
    }

    fn grow(&mut self, hashes: &[u64]) {
        let size = (self.slots.len() * 2).max(64);
        self.slots = vec![0; size];
        let mask = size - 1;
        for (id, &hash) in hashes.iter().enumerate() {
            let mut i = hash as usize & mask;
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = id as u32 + 1;
        }
    }
}

/// Gives each distinct value a dense id.
pub(crate) struct Interner<T> {
    items: Vec<T>,
    hashes: Vec<u64>,
    table: Table,
}

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Interner { items: Vec::new(), hashes: Vec::new(), table: Table::default() }
    }
}

impl<T: Hash + Eq> Interner<T> {
    pub(crate) fn intern(&mut self, value: T) -> u32 {
        let hash = hash_of(&value);
        let new_id = u32::try_from(self.items.len()).expect("fewer than 2^32 distinct values");
        let items = &self.items;
        match self.table.find_or_insert(hash, new_id, &self.hashes, |id| items[id as usize] == value) {
            Some(id) => id,
            None => {
                self.items.push(value);
                self.hashes.push(hash);
                new_id
            }
        }
    }

    pub(crate) fn get(&self, id: u32) -> &T {
        &self.items[id as usize]
    }

    pub(crate) fn into_items(self) -> Vec<T> {
        self.items
    }
}

/// The configurations already entered: an exact table of (strong set, weak set, state), and
/// groups by (strong set, state) listing their weak sets, newest first. A new configuration is
/// rejected if it was entered before, or if one of the latest [`SUBSUME_SCAN`] of its group is
/// *closed* (fully explored, so it failed) with a subset of its weak set: that one could have
/// done everything this one can, skipping the rest. An open one (still on the search stack)
/// does not count, as this one may be the way it continues.
#[derive(Default)]
struct Memo {
    exact: Table,
    exact_hashes: Vec<u64>,
    table: Table,
    hashes: Vec<u64>,
    groups: Vec<Group>,
    strong_words: Vec<u64>,
    entries: Vec<WeakSet>,
    weak_words: Vec<u64>,
}

/// How many of a group's latest weak sets are checked for subsuming a new one.
const SUBSUME_SCAN: usize = 8;

struct Group {
    m: u32,
    hi: u32,
    state: u32,
    offset: usize,
    /// The latest weak set of this group (`NIL`: none).
    head: u32,
}

struct WeakSet {
    group: u32,
    m: u32,
    hi: u32,
    offset: usize,
    len: usize,
    /// The previous weak set of the same group.
    next: u32,
    /// Fully explored.
    closed: bool,
}

fn key_hash(seed: u64, m: u32, hi: u32, words: &[u64]) -> u64 {
    let mut h = FxHasher::default();
    h.write_u64(seed);
    h.write_u32(m);
    h.write_u32(hi);
    for &w in words {
        h.write_u64(w);
    }
    h.finish()
}

impl Memo {
    /// Records the configuration and returns its entry; `None` if it was there, or a closed
    /// one subsumes it.
    fn visit(&mut self, strong: &Done, weak: &Done, state: u32) -> Option<u32> {
        let (m, hi, words) = strong.key();
        let hash = key_hash(u64::from(state), m, hi, words);
        let new_group = u32::try_from(self.groups.len()).expect("fewer than 2^32 configurations");
        let (groups, strong_words) = (&self.groups, &self.strong_words);
        let found = self.table.find_or_insert(hash, new_group, &self.hashes, |id| {
            let g = &groups[id as usize];
            g.m == m && g.hi == hi && g.state == state && strong_words[g.offset..g.offset + words.len()] == *words
        });
        let group = match found {
            Some(id) => id,
            None => {
                self.hashes.push(hash);
                self.groups.push(Group { m, hi, state, offset: self.strong_words.len(), head: NIL });
                self.strong_words.extend_from_slice(words);
                new_group
            }
        };
        let (wm, whi, wwords) = weak.key();
        let exact_hash = key_hash(hash ^ u64::from(group), wm, whi, wwords);
        let id = u32::try_from(self.entries.len()).expect("fewer than 2^32 configurations");
        let (entries, weak_words) = (&self.entries, &self.weak_words);
        let seen = self.exact.find_or_insert(exact_hash, id, &self.exact_hashes, |e| {
            let e = &entries[e as usize];
            e.group == group && e.m == wm && e.hi == whi && weak_words[e.offset..e.offset + e.len] == *wwords
        });
        if seen.is_some() {
            return None;
        }
        self.exact_hashes.push(exact_hash);
        let mut at = self.groups[group as usize].head;
        let mut scanned = 0;
        while at != NIL && scanned < SUBSUME_SCAN {
            let e = &self.entries[at as usize];
            if e.closed && subset(e, &self.weak_words[e.offset..e.offset + e.len], weak) {
                // Keep the entry (the exact table already points at it) but report a prune.
                self.entries.push(WeakSet {
                    group,
                    m: wm,
                    hi: whi,
                    offset: self.weak_words.len(),
                    len: wwords.len(),
                    next: NIL,
                    closed: true,
                });
                self.weak_words.extend_from_slice(wwords);
                return None;
            }
            at = e.next;
            scanned += 1;
        }
        let g = &mut self.groups[group as usize];
        self.entries.push(WeakSet {
            group,
            m: wm,
            hi: whi,
            offset: self.weak_words.len(),
            len: wwords.len(),
            next: g.head,
            closed: false,
        });
        g.head = id;
        self.weak_words.extend_from_slice(wwords);
        Some(id)
    }
}

/// Whether the stored set (canonical `m`, `hi`, words from word `m / 64`) is a subset of `live`.
fn subset(stored: &WeakSet, words: &[u64], live: &Done) -> bool {
    let word = |w: u32| -> u64 {
        if (w + 1) * 64 <= stored.m {
            !0
        } else if stored.hi > stored.m && w >= stored.m / 64 && w <= (stored.hi - 1) / 64 {
            words[(w - stored.m / 64) as usize]
        } else if w * 64 < stored.m {
            (1u64 << (stored.m % 64)) - 1
        } else {
            0
        }
    };
    let from = stored.m.min(live.m) / 64;
    let to = stored.hi.max(stored.m).div_ceil(64);
    (from..to).all(|w| word(w) & !live.bits[w as usize] == 0)
}
