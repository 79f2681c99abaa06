//! A node's pool of pending transfers: bounded, fee-prioritised, evicting the cheapest.

use super::state::{State, TxError};
use super::tx::{Address, Tx, TxId};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

/// How far ahead of a payer's next nonce a pending transfer may be.
pub const NONCE_WINDOW: u64 = 64;

/// Whether `from`'s transfer with `nonce` could be taken by a block on `state` once the
/// `pending` `(payer, nonce)` pairs before it are: every nonce from `state`'s up to it is pending.
fn reachable(pending: &BTreeSet<(Address, u64)>, state: &State, from: &Address, nonce: u64) -> bool {
    let next = state.nonce(from);
    nonce < next || pending.range((*from, next)..(*from, nonce)).count() as u64 == nonce - next
}

/// What became of a transfer offered to the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// Added.
    Added,
    /// Added, and the cheapest pending transfer was evicted to make room.
    Evicted(TxId),
    /// Already pending.
    Duplicate,
    /// Invalid against the current state.
    Invalid(TxError),
    /// The pool is full and the fee does not beat the cheapest pending one.
    Full {
        /// The fee to beat.
        min_fee: u64,
    },
}

/// Pending transfers, ordered by fee (highest first), then arrival.
#[derive(Debug, Clone, Default)]
pub struct Mempool {
    capacity: usize,
    unbounded: bool,
    by_id: BTreeMap<TxId, (Tx, u64)>,
    order: BTreeSet<(Reverse<u64>, u64, TxId)>,
    seq: u64,
}

impl Mempool {
    /// A pool of at most `capacity` transfers; `unbounded` is the planted bug
    /// `gossip-no-limit` (the bound is never enforced).
    pub fn new(capacity: usize, unbounded: bool) -> Mempool {
        Mempool { capacity: capacity.max(1), unbounded, ..Mempool::default() }
    }

    /// Pending transfers.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Whether `id` is pending.
    pub fn contains(&self, id: &TxId) -> bool {
        self.by_id.contains_key(id)
    }

    /// Pending ids, in id order.
    pub fn ids(&self) -> Vec<TxId> {
        self.by_id.keys().copied().collect()
    }

    /// The pending transfer `id`.
    pub fn get(&self, id: &TxId) -> Option<&Tx> {
        self.by_id.get(id).map(|(tx, _)| tx)
    }

    /// Pending transfers with their ids, in id order.
    pub fn entries(&self) -> impl Iterator<Item = (&TxId, &Tx)> {
        self.by_id.iter().map(|(id, (tx, _))| (id, tx))
    }

    /// Pending transfers, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &Tx> {
        self.by_id.values().map(|(tx, _)| tx)
    }

    /// The nonce `from`'s next transfer should carry: `state`'s, past the transfers of `from`
    /// already pending with consecutive nonces (what a wallet asks before signing).
    pub fn next_nonce(&self, from: &Address, state: &State) -> u64 {
        let pending: BTreeSet<u64> =
            self.by_id.values().filter(|(tx, _)| tx.transfer.from == *from).map(|(tx, _)| tx.transfer.nonce).collect();
        let mut n = state.nonce(from);
        while pending.contains(&n) {
            n += 1;
        }
        n
    }

    /// Offers `tx`, checked against `state` (signature, a nonce within the window, funds;
    /// `fee_overflow_bug` is the planted bug that lets amount + fee wrap).
    pub fn admit(&mut self, tx: Tx, state: &State, fee_overflow_bug: bool) -> Admit {
        let id = tx.id();
        if self.by_id.contains_key(&id) {
            return Admit::Duplicate;
        }
        if !tx.signature_valid() {
            return Admit::Invalid(TxError::BadSignature);
        }
        let t = &tx.transfer;
        let next = state.nonce(&t.from);
        if t.nonce < next || t.nonce >= next + NONCE_WINDOW {
            return Admit::Invalid(TxError::BadNonce { expected: next, got: t.nonce });
        }
        if self.by_id.values().any(|(p, _)| p.transfer.from == t.from && p.transfer.nonce == t.nonce) {
            return Admit::Invalid(TxError::NoncePending { nonce: t.nonce });
        }
        let needs = if fee_overflow_bug {
            u128::from(t.amount.wrapping_add(t.fee))
        } else {
            u128::from(t.amount) + u128::from(t.fee)
        };
        if u128::from(state.balance(&t.from)) < needs {
            return Admit::Invalid(TxError::InsufficientFunds { has: state.balance(&t.from), needs });
        }
        let mut evicted = None;
        if self.by_id.len() >= self.capacity && !self.unbounded {
            // A full pool takes no transfer that no block could take yet (an earlier nonce of
            // its payer is neither applied nor pending); for one that can be taken, a stuck
            // transfer goes first, whatever its fee (kept, stuck transfers would fill the pool
            // for good), else the cheapest, if the newcomer pays more.
            let pending: BTreeSet<(Address, u64)> =
                self.by_id.values().map(|(tx, _)| (tx.transfer.from, tx.transfer.nonce)).collect();
            if !reachable(&pending, state, &t.from, t.nonce) {
                let &(Reverse(min_fee), _, _) = self.order.last().expect("a full pool is not empty");
                return Admit::Full { min_fee };
            }
            let stuck = self.order.iter().rev().map(|(_, _, id)| *id).find(|id| {
                let p = &self.by_id[id].0.transfer;
                !reachable(&pending, state, &p.from, p.nonce)
            });
            let victim = match stuck {
                Some(stuck) => {
                    gauntlet::reachable!("ledger: a full mempool evicted a stuck transfer");
                    stuck
                }
                None => {
                    let &(Reverse(min_fee), _, cheapest) = self.order.last().expect("a full pool is not empty");
                    if t.fee <= min_fee {
                        return Admit::Full { min_fee };
                    }
                    gauntlet::reachable!("ledger: a full mempool evicted its cheapest transfer for a better fee");
                    cheapest
                }
            };
            self.remove(&victim);
            evicted = Some(victim);
        }
        self.seq += 1;
        self.order.insert((Reverse(t.fee), self.seq, id));
        self.by_id.insert(id, (tx, self.seq));
        evicted.map_or(Admit::Added, Admit::Evicted)
    }

    /// Pending transfers no block on `state` can take, because an earlier nonce of their payer
    /// is neither applied nor pending: cheapest first, then latest.
    pub fn stuck(&self, state: &State) -> Vec<TxId> {
        let pending: BTreeSet<(Address, u64)> =
            self.by_id.values().map(|(tx, _)| (tx.transfer.from, tx.transfer.nonce)).collect();
        self.order
            .iter()
            .rev()
            .map(|(_, _, id)| *id)
            .filter(|id| {
                let t = &self.by_id[id].0.transfer;
                !reachable(&pending, state, &t.from, t.nonce)
            })
            .collect()
    }

    /// Removes `id` if pending.
    pub fn remove(&mut self, id: &TxId) -> Option<Tx> {
        let (tx, seq) = self.by_id.remove(id)?;
        self.order.remove(&(Reverse(tx.transfer.fee), seq, *id));
        Some(tx)
    }

    /// Drops every transfer `state` has made stale (a nonce already used).
    pub fn prune(&mut self, state: &State) {
        let stale: Vec<TxId> = self
            .by_id
            .iter()
            .filter(|(_, (tx, _))| tx.transfer.nonce < state.nonce(&tx.transfer.from))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.remove(&id);
        }
    }

    /// Up to `max` transfers for a block on top of `state`: highest fee first, each payer's in
    /// nonce order, each valid when applied in the returned order.
    pub fn select(&self, state: &State, max: usize, fee_overflow_bug: bool) -> Vec<Tx> {
        let mut scratch = state.clone();
        let mut chosen: Vec<Tx> = Vec::new();
        let mut taken: BTreeSet<TxId> = BTreeSet::new();
        // A payer's later transfer may become applicable once an earlier one is in: repeat.
        loop {
            let before = chosen.len();
            for (_, _, id) in &self.order {
                if chosen.len() >= max {
                    return chosen;
                }
                if taken.contains(id) {
                    continue;
                }
                let (tx, _) = &self.by_id[id];
                let producer = Address([0; 32]);
                if scratch.check(tx, fee_overflow_bug).is_ok() {
                    scratch.apply(tx, &producer, fee_overflow_bug).expect("checked");
                    taken.insert(*id);
                    chosen.push(tx.clone());
                }
            }
            if chosen.len() == before {
                return chosen;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tx::{address, wallet, Transfer};
    use super::*;

    fn setup() -> (Vec<Address>, State) {
        let w: Vec<Address> = (0..4).map(|i| address(&wallet(i))).collect();
        let s = State::genesis(&w, 1_000);
        (w, s)
    }

    fn pay(w: &[Address], from: u32, fee: u64, nonce: u64) -> Tx {
        Transfer { from: w[from as usize], to: w[(from as usize + 1) % w.len()], amount: 1, fee, nonce }
            .sign(&wallet(from))
    }

    #[test]
    fn a_full_pool_evicts_the_cheapest_for_a_better_fee_and_refuses_the_rest() {
        let (w, s) = setup();
        let mut p = Mempool::new(2, false);
        assert_eq!(p.admit(pay(&w, 0, 5, 0), &s, false), Admit::Added);
        assert_eq!(p.admit(pay(&w, 1, 3, 0), &s, false), Admit::Added);
        assert_eq!(p.admit(pay(&w, 1, 3, 0), &s, false), Admit::Duplicate);
        assert_eq!(p.admit(pay(&w, 2, 3, 0), &s, false), Admit::Full { min_fee: 3 });
        let cheap = pay(&w, 1, 3, 0).id();
        assert_eq!(p.admit(pay(&w, 2, 9, 0), &s, false), Admit::Evicted(cheap));
        assert_eq!(p.len(), 2);
        assert!(matches!(p.admit(pay(&w, 3, 1, 5_000), &s, false), Admit::Invalid(TxError::BadNonce { .. })));
        let mut forged = pay(&w, 3, 1, 0);
        forged.transfer.amount = 2;
        assert_eq!(p.admit(forged, &s, false), Admit::Invalid(TxError::BadSignature));
    }

    #[test]
    fn a_full_pool_evicts_a_transfer_no_block_can_take_before_any_other() {
        let (w, s) = setup();
        let mut p = Mempool::new(2, false);
        let gapped = pay(&w, 0, 9, 3);
        assert_eq!(p.admit(gapped.clone(), &s, false), Admit::Added);
        assert_eq!(p.admit(pay(&w, 1, 5, 0), &s, false), Admit::Added);
        assert_eq!(p.stuck(&s), vec![gapped.id()], "wallet 0's nonces 0..2 are missing");
        assert_eq!(p.admit(pay(&w, 0, 9, 5), &s, false), Admit::Full { min_fee: 5 }, "a stuck one is refused");
        assert_eq!(p.admit(pay(&w, 2, 1, 0), &s, false), Admit::Evicted(gapped.id()), "despite its higher fee");
        assert!(p.stuck(&s).is_empty());
    }

    #[test]
    fn the_unbounded_bug_lets_the_pool_grow_past_its_bound() {
        let (w, s) = setup();
        let mut p = Mempool::new(2, true);
        for n in 0..10 {
            assert_eq!(p.admit(pay(&w, 0, 1, n), &s, false), Admit::Added);
        }
        assert_eq!(p.len(), 10);
    }

    #[test]
    fn selection_takes_high_fees_first_in_nonce_order_and_prune_drops_stale() {
        let (w, mut s) = setup();
        let mut p = Mempool::new(100, false);
        // Wallet 0's nonce 1 pays more than its nonce 0: it still comes after it.
        for tx in [pay(&w, 0, 9, 1), pay(&w, 0, 1, 0), pay(&w, 1, 5, 0), pay(&w, 2, 2, 3)] {
            assert!(matches!(p.admit(tx, &s, false), Admit::Added));
        }
        let picked: Vec<(u64, u64)> =
            p.select(&s, 10, false).iter().map(|t| (t.transfer.fee, t.transfer.nonce)).collect();
        assert_eq!(picked, vec![(5, 0), (1, 0), (9, 1)], "wallet 2's nonce 3 waits for 0..2");
        assert_eq!(p.select(&s, 1, false).len(), 1);
        for tx in p.select(&s, 10, false) {
            s.apply(&tx, &w[3], false).unwrap();
        }
        p.prune(&s);
        assert_eq!(p.len(), 1, "only the future-nonce transfer is left");
    }
}
