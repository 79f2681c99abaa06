//! A ledger node as a pure state machine, like raft-kv's core: ticks (with the node's clock and
//! a random number), messages and client transfers in; messages, writes and replies out. No
//! I/O, clock or randomness inside.
//!
//! Epochs are `clock / epoch_ms`; epoch `e`'s leader is validator `e mod n`. The leader
//! proposes a block on the head (a longest notarized chain) with the best transfers from its
//! mempool; every validator votes, once per epoch, for the epoch's proposal if it extends a
//! longest notarized chain, its transfers apply to its parent's state, and its epoch and
//! timestamp agree with the voter's clock (within `clock_tolerance_ms`). Executors (and any
//! other non-validator) follow the same chain without voting or proposing.
//!
//! Accepted transfers are gossiped in batches every `gossip_ms`; every `anti_entropy_ms` a
//! node tells one random peer which transfers it holds (the peer sends back what it lacks)
//! and asks it for blocks past its final height, so mempools converge and a node that missed
//! messages (a partition, a restart, a late join) catches up.

use super::chain::{Block, Chain, Hash};
use super::mempool::{Admit, Mempool};
use super::state::State;
use super::tx::{Address, Tx, TxId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Validator number: the index among validators (`0..validators`), the leader rotation's unit.
pub type Id = u32;

/// A node's transport address (its `NodeId`'s number): validators, executors and joiners.
pub type Peer = u32;

/// Final blocks a [`Status`] carries in full.
pub const RECENT_BLOCKS: usize = 128;
/// Evicted transfer ids a [`Status`] carries.
pub const RECENT_EVICTIONS: usize = 1024;
/// A [`Status`] carries the final block hash of every height divisible by this.
pub const CHECKPOINT_EVERY: u64 = 16;

/// Timing and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Validators (ids `0..validators`).
    pub validators: u32,
    /// Epoch (slot) length.
    pub epoch_ms: u64,
    /// Most transfers per block.
    pub max_block_txs: usize,
    /// Mempool bound.
    pub mempool: usize,
    /// How often accepted transfers are gossiped (in one batch).
    pub gossip_ms: u64,
    /// How often a node exchanges mempool ids and asks for blocks with one random peer.
    pub anti_entropy_ms: u64,
    /// How far a proposal's epoch and timestamp may be from the voter's clock.
    pub clock_tolerance_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            validators: 4,
            epoch_ms: 200,
            max_block_txs: 200,
            mempool: 1_000,
            gossip_ms: 50,
            anti_entropy_ms: 500,
            clock_tolerance_ms: 500,
        }
    }
}

/// Planted bugs of the ledger (`app.options.bugs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// `double-spend-on-fork`: nonces and funds are checked against the state after the last
    /// block *seen* (maybe on another fork), not after the block being extended.
    pub double_spend_on_fork: bool,
    /// `mempool-drop-on-restart`: accepted transfers are not persisted.
    pub mempool_drop_on_restart: bool,
    /// `fee-overflow`: amount + fee wraps in the funds check.
    pub fee_overflow: bool,
    /// `timestamp-trust`: a proposal's epoch and timestamp are not checked against the
    /// voter's clock.
    pub timestamp_trust: bool,
    /// `gossip-no-limit`: the mempool bound is not enforced.
    pub gossip_no_limit: bool,
}

/// The planted bugs' names, as plans write them.
pub const BUG_NAMES: [&str; 5] =
    ["double-spend-on-fork", "mempool-drop-on-restart", "fee-overflow", "timestamp-trust", "gossip-no-limit"];

impl Bugs {
    /// Parses bug names; an unknown name is an error that lists the known ones.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Bugs, String> {
        let mut b = Bugs::default();
        for n in names {
            match n {
                "double-spend-on-fork" => b.double_spend_on_fork = true,
                "mempool-drop-on-restart" => b.mempool_drop_on_restart = true,
                "fee-overflow" => b.fee_overflow = true,
                "timestamp-trust" => b.timestamp_trust = true,
                "gossip-no-limit" => b.gossip_no_limit = true,
                other => return Err(format!("unknown bug {other:?}; the ledger plants: {}", BUG_NAMES.join(", "))),
            }
        }
        Ok(b)
    }
}

/// What nodes say to each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// An epoch leader's block.
    Propose(Block),
    /// A vote for a block (accepted only from the voter's own address).
    Vote {
        /// The block.
        block: Hash,
        /// The voter.
        voter: Id,
    },
    /// Transfers, gossiped.
    Txs(Vec<Tx>),
    /// The sender's pending transfers (short ids): send back what it lacks.
    Have(Vec<u64>),
    /// Please send the blocks of the notarized head's chain above height `from`.
    Sync {
        /// The requester's final height.
        from: u64,
    },
    /// Blocks in parent-first order, each with the validators known to have voted for it
    /// (the evidence of its notarization).
    Blocks(Vec<(Block, Vec<Id>)>),
}

/// What a node asks its driver to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send to every known peer.
    Broadcast(Msg),
    /// Send to one peer.
    Send(Peer, Msg),
    /// Make the vote for `epoch` durable before anything after it is done.
    PersistVote(u64),
    /// Make a block durable.
    PersistBlock(Block),
    /// Make an accepted transfer durable before anything after it is done (the reply).
    PersistTx(Tx),
    /// Answer a client.
    Reply(u64, Result<TxId, String>),
}

/// A transfer's first 8 bytes of id: how statuses and histories name it.
pub fn short(id: &TxId) -> u64 {
    u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"))
}

fn short_hash(h: &Hash) -> u64 {
    u64::from_be_bytes(h[..8].try_into().expect("8 bytes"))
}

/// The funded wallets a ledger starts from (index = position) and their balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    /// Funded addresses; statuses name a wallet by its index here.
    pub wallets: Vec<Address>,
    /// Every wallet's starting balance.
    pub balance: u64,
}

impl Genesis {
    /// The state before the first block.
    pub fn state(&self) -> State {
        State::genesis(&self.wallets, self.balance)
    }
}

/// One transfer as a status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxSummary {
    /// [`short`] id.
    pub id: u64,
    /// Payer's wallet index (`u32::MAX` if not a genesis wallet).
    pub from: u32,
    /// Payee's wallet index (`u32::MAX` if not a genesis wallet).
    pub to: u32,
    /// Amount.
    pub amount: u64,
    /// Fee.
    pub fee: u64,
    /// Nonce.
    pub nonce: u64,
}

/// One block as a status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSummary {
    /// Height.
    pub height: u64,
    /// First 8 bytes of its hash.
    pub hash: u64,
    /// Epoch.
    pub epoch: u64,
    /// Proposer.
    pub proposer: Id,
    /// Proposer's clock at proposal.
    pub timestamp_ms: u64,
    /// Its transfers, in order.
    pub txs: Vec<TxSummary>,
}

/// What a node reports to the observer (and on `/status`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Validator index, or none for an executor.
    pub validator: Option<Id>,
    /// The node's wall clock.
    pub now_ms: u64,
    /// The epoch by that clock.
    pub epoch: u64,
    /// The tip of the longest notarized chain.
    pub head: BlockSummary,
    /// Height of the last final block.
    pub final_height: u64,
    /// `(height, hash)` of final blocks at every [`CHECKPOINT_EVERY`]th height and the last
    /// few: enough for an observer to compare any two nodes' final chains.
    pub checkpoints: Vec<(u64, u64)>,
    /// The last [`RECENT_BLOCKS`] final blocks, in full.
    pub recent: Vec<BlockSummary>,
    /// Pending transfers.
    pub mempool: usize,
    /// Order-independent digest of the pending ids (equal pools, equal digests).
    pub mempool_digest: u64,
    /// Transfers the mempool bound dropped so far (evicted, or refused when re-offered).
    pub evictions: u64,
    /// The last [`RECENT_EVICTIONS`] dropped ids ([`short`]).
    pub evicted: Vec<u64>,
    /// Total coins after the final blocks.
    pub supply: u128,
    /// Total coins at genesis.
    pub genesis_supply: u128,
    /// The first final height after which the supply differed from genesis, and by how much.
    pub supply_break: Option<(u64, u128)>,
    /// Transfers in final blocks that did not apply: `(height, id, why)` (the first 16).
    pub invalid: Vec<(u64, u64, String)>,
    /// Each genesis wallet's balance after the final blocks.
    pub balances: Vec<u64>,
    /// Whether this node ever saw two conflicting blocks finalized.
    pub conflict: bool,
}

/// One ledger node.
#[derive(Debug)]
pub struct Validator {
    me: Peer,
    index: Option<Id>,
    validator_peers: Vec<Peer>,
    known: BTreeSet<Peer>,
    cfg: Config,
    bugs: Bugs,
    genesis: Genesis,
    wallet_index: BTreeMap<Address, u32>,
    chain: Chain,
    mempool: Mempool,
    voted_epoch: u64,
    proposed_epoch: u64,
    now_ms: u64,
    /// Monotonic milliseconds of the next gossip flush and anti-entropy exchange.
    next_gossip: u64,
    next_anti_entropy: u64,
    to_gossip: Vec<Tx>,
    waiting: BTreeMap<Hash, Vec<Block>>,
    states: BTreeMap<Hash, State>,
    verified: BTreeSet<TxId>,
    last_seen: Hash,
    /// The head after the last change (to notice a switch of forks).
    last_head: Hash,
    synced_for: BTreeMap<Peer, u64>,
    // The final chain, applied block by block.
    final_state: State,
    final_applied: usize,
    genesis_supply: u128,
    supply_break: Option<(u64, u128)>,
    invalid: Vec<(u64, u64, String)>,
    recent: VecDeque<BlockSummary>,
    evictions: u64,
    evicted: VecDeque<u64>,
}

/// Where a node sits: its address, its validator index (none: an executor), the validators'
/// addresses (validator `i` is at `validators[i]`) and the peers it gossips with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    /// Its own address.
    pub me: Peer,
    /// Its validator index, if it is one.
    pub index: Option<Id>,
    /// Validator `i`'s address is `validators[i]`.
    pub validators: Vec<Peer>,
    /// Everyone it knows to gossip with at start (more are learned from messages).
    pub peers: Vec<Peer>,
}

/// What a node recovers from its disk at start.
#[derive(Debug, Clone, Default)]
pub struct Recovered {
    /// Blocks, parent-first.
    pub blocks: Vec<Block>,
    /// The last epoch it voted in.
    pub voted_epoch: u64,
    /// Transfers it had accepted and not seen included.
    pub txs: Vec<Tx>,
}

impl Validator {
    /// A node in `seat`, recovering `recovered` from disk.
    pub fn new(seat: Seat, cfg: Config, bugs: Bugs, genesis: Genesis, recovered: Recovered) -> Self {
        let Seat { me, index, validators: validator_peers, peers } = seat;
        let state = genesis.state();
        let g = Block::genesis().hash();
        let mut v = Validator {
            me,
            index,
            validator_peers,
            known: peers.into_iter().filter(|&p| p != me).collect(),
            cfg,
            bugs,
            wallet_index: genesis.wallets.iter().enumerate().map(|(i, a)| (*a, i as u32)).collect(),
            chain: Chain::new(cfg.validators),
            mempool: Mempool::new(cfg.mempool, bugs.gossip_no_limit),
            voted_epoch: recovered.voted_epoch,
            proposed_epoch: recovered.voted_epoch,
            now_ms: 0,
            next_gossip: 0,
            next_anti_entropy: 0,
            to_gossip: Vec::new(),
            waiting: BTreeMap::new(),
            states: BTreeMap::from([(g, state.clone())]),
            verified: BTreeSet::new(),
            last_seen: g,
            last_head: g,
            synced_for: BTreeMap::new(),
            genesis_supply: state.supply(),
            final_state: state,
            final_applied: 1,
            supply_break: None,
            invalid: Vec::new(),
            recent: VecDeque::new(),
            evictions: 0,
            evicted: VecDeque::new(),
            genesis,
        };
        for b in recovered.blocks {
            let _ = v.chain.add_block(b);
        }
        // Pending transfers come back, and are gossiped again (a peer may never have had them).
        let head = v.state_at(v.chain.head());
        for tx in recovered.txs {
            if matches!(v.offer(tx.clone(), &head, true), Admit::Added | Admit::Evicted(_)) {
                v.to_gossip.push(tx);
            }
        }
        v
    }

    /// The chain as this node sees it.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Pending transfers.
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// The current epoch by this node's clock.
    pub fn epoch(&self) -> u64 {
        self.now_ms / self.cfg.epoch_ms.max(1)
    }

    /// The leader of `epoch`.
    pub fn leader(&self, epoch: u64) -> Id {
        (epoch % u64::from(self.cfg.validators.max(1))) as Id
    }

    /// The state after the blocks from genesis to `h` (cached).
    pub fn state_at(&mut self, h: Hash) -> State {
        if let Some(s) = self.states.get(&h) {
            return s.clone();
        }
        let path: Vec<Block> = self.chain.path(h).into_iter().cloned().collect();
        // Start from the nearest cached ancestor.
        let mut start = 0;
        let mut s = self.genesis.state();
        for (i, b) in path.iter().enumerate().rev() {
            if let Some(cached) = self.states.get(&b.hash()) {
                s = cached.clone();
                start = i + 1;
                break;
            }
        }
        for b in &path[start..] {
            let producer = Self::producer_address(b.proposer);
            for tx in &b.txs {
                let _ = s.apply(tx, &producer, self.bugs.fee_overflow);
            }
        }
        if self.states.len() > 256 {
            // Forget the lowest blocks' states (kept: genesis, which sorts anywhere).
            let g = Block::genesis().hash();
            let old: Vec<Hash> = self
                .states
                .keys()
                .filter(|k| **k != g)
                .filter(|k| self.chain.block(k).is_none_or(|b| b.height + 64 < path.len() as u64))
                .copied()
                .collect();
            for k in old {
                self.states.remove(&k);
            }
        }
        self.states.insert(h, s.clone());
        s
    }

    /// The address block producer `id` is paid fees at.
    pub fn producer_address(id: Id) -> Address {
        Address(id.to_le_bytes().repeat(8).try_into().expect("32 bytes"))
    }

    /// The nonce `from`'s next transfer should carry (past its pending ones).
    pub fn next_nonce(&mut self, from: &Address) -> u64 {
        let head = self.chain.head();
        let state = self.state_at(head);
        self.mempool.next_nonce(from, &state)
    }

    /// `a`'s balance after the final blocks, and the final height.
    pub fn final_balance(&self, a: &Address) -> (u64, u64) {
        (self.final_state.balance(a), self.final_applied as u64 - 1)
    }

    /// The final block at `height`.
    pub fn final_block(&self, height: u64) -> Option<&Block> {
        self.chain.finalized_at(height).and_then(|h| self.chain.block(&h))
    }

    /// Time passed: `now_ms` is the node's wall clock (epochs and timestamps come from it),
    /// `mono_ms` its monotonic clock (gossip and anti-entropy are paced by it, so a wall clock
    /// stepped back does not silence the node), `random` picks the anti-entropy peer. Proposes
    /// if this epoch is ours, flushes gossip, exchanges with a peer.
    pub fn tick(&mut self, now_ms: u64, mono_ms: u64, random: u64) -> Vec<Output> {
        let mut out = Vec::new();
        self.now_ms = now_ms;
        let e = self.epoch();
        if self.index == Some(self.leader(e)) && self.proposed_epoch < e && self.voted_epoch < e {
            self.propose(e, &mut out);
        }
        if mono_ms >= self.next_gossip {
            self.next_gossip = mono_ms + self.cfg.gossip_ms;
            if !self.to_gossip.is_empty() {
                out.push(Output::Broadcast(Msg::Txs(std::mem::take(&mut self.to_gossip))));
            }
        }
        if mono_ms >= self.next_anti_entropy && !self.known.is_empty() {
            self.next_anti_entropy = mono_ms + self.cfg.anti_entropy_ms;
            let peer = *self.known.iter().nth((random % self.known.len() as u64) as usize).expect("in range");
            let ids: Vec<u64> = self.mempool.ids().iter().map(short).collect();
            out.push(Output::Send(peer, Msg::Have(ids)));
            out.push(Output::Send(peer, Msg::Sync { from: self.final_height() }));
        }
        self.after_change();
        out
    }

    fn final_height(&self) -> u64 {
        self.chain.finalized().len() as u64 - 1
    }

    fn propose(&mut self, e: u64, out: &mut Vec<Output>) {
        self.proposed_epoch = e;
        let head = self.chain.head();
        let parent = self.chain.block(&head).expect("the head is known").clone();
        let base = if self.bugs.double_spend_on_fork { self.last_seen } else { head };
        let state = self.state_at(base);
        let txs = self.mempool.select(&state, self.cfg.max_block_txs, self.bugs.fee_overflow);
        let b = Block {
            epoch: e,
            parent: head,
            height: parent.height + 1,
            proposer: self.index.expect("only validators propose"),
            timestamp_ms: self.now_ms,
            txs,
        };
        out.push(Output::PersistBlock(b.clone()));
        out.push(Output::Broadcast(Msg::Propose(b.clone())));
        self.on_block(b, true, out);
    }

    /// A client submits a transfer; the reply comes after it is durable.
    pub fn client_tx(&mut self, reply_to: u64, tx: Tx) -> Vec<Output> {
        let mut out = Vec::new();
        let id = tx.id();
        match self.admit(tx, &mut out) {
            Ok(()) => out.push(Output::Reply(reply_to, Ok(id))),
            Err(e) => out.push(Output::Reply(reply_to, Err(e))),
        }
        out
    }

    /// Offers `tx` to the mempool, recording what the bound drops: the transfer evicted to
    /// make room, and — when `dropping` (a transfer the node had accepted before: recovered, or
    /// from a block left behind) — `tx` itself if the pool is full.
    fn offer(&mut self, tx: Tx, state: &State, dropping: bool) -> Admit {
        let id = tx.id();
        let admitted = self.mempool.admit(tx, state, self.bugs.fee_overflow);
        let dropped = match admitted {
            Admit::Evicted(gone) => Some(gone),
            Admit::Full { .. } if dropping => Some(id),
            _ => None,
        };
        if let Some(gone) = dropped {
            self.evictions += 1;
            self.evicted.push_back(short(&gone));
            if self.evicted.len() > RECENT_EVICTIONS {
                self.evicted.pop_front();
            }
        }
        admitted
    }

    fn admit(&mut self, tx: Tx, out: &mut Vec<Output>) -> Result<(), String> {
        let head = self.chain.head();
        let state = self.state_at(head);
        match self.offer(tx.clone(), &state, false) {
            Admit::Added | Admit::Evicted(_) => {
                self.verified.insert(tx.id());
                if !self.bugs.mempool_drop_on_restart {
                    out.push(Output::PersistTx(tx.clone()));
                }
                self.to_gossip.push(tx);
                Ok(())
            }
            Admit::Duplicate => Ok(()),
            Admit::Invalid(e) => Err(e.to_string()),
            Admit::Full { min_fee } => {
                gauntlet::reachable!("ledger: a full mempool refused a transfer");
                Err(format!("mempool full: fee must exceed {min_fee}"))
            }
        }
    }

    /// A message from peer `from`.
    pub fn message(&mut self, from: Peer, msg: Msg) -> Vec<Output> {
        let mut out = Vec::new();
        if from != self.me {
            self.known.insert(from);
        }
        match msg {
            Msg::Propose(b) => {
                if self.chain.block(&b.hash()).is_none() {
                    out.push(Output::PersistBlock(b.clone()));
                    self.on_block(b, false, &mut out);
                }
            }
            Msg::Vote { block, voter } => {
                if self.validator_peers.get(voter as usize) == Some(&from) {
                    self.chain.add_vote(block, voter);
                }
            }
            Msg::Txs(txs) => {
                for tx in txs.into_iter().take(4 * self.cfg.mempool.max(64)) {
                    let _ = self.admit(tx, &mut out);
                }
            }
            Msg::Have(ids) => {
                let theirs: BTreeSet<u64> = ids.into_iter().collect();
                let missing: Vec<Tx> = self
                    .mempool
                    .entries()
                    .filter(|(id, _)| !theirs.contains(&short(id)))
                    .take(256)
                    .map(|(_, tx)| tx.clone())
                    .collect();
                if !missing.is_empty() {
                    out.push(Output::Send(from, Msg::Txs(missing)));
                }
            }
            Msg::Sync { from: height } => {
                // At most one answer per requester per epoch: a flood of requests costs little.
                let epoch = self.epoch();
                if self.synced_for.get(&from) != Some(&epoch) {
                    self.synced_for.insert(from, epoch);
                    let head = self.chain.head();
                    let blocks: Vec<(Block, Vec<Id>)> = self
                        .chain
                        .path(head)
                        .into_iter()
                        .filter(|b| b.height > height)
                        .take(256)
                        .map(|b| (b.clone(), self.chain.voters(&b.hash())))
                        .collect();
                    if !blocks.is_empty() {
                        out.push(Output::Send(from, Msg::Blocks(blocks)));
                    }
                }
            }
            Msg::Blocks(blocks) => {
                for (b, voters) in blocks {
                    let h = b.hash();
                    if self.chain.block(&h).is_none() {
                        out.push(Output::PersistBlock(b.clone()));
                        self.on_block(b, false, &mut out);
                    }
                    for v in voters {
                        self.chain.add_vote(h, v);
                    }
                }
            }
        }
        self.after_change();
        out
    }

    fn on_block(&mut self, b: Block, own: bool, out: &mut Vec<Output>) {
        let h = b.hash();
        if self.chain.block(&b.parent).is_none() {
            // Wait for the parent, and ask around for what is missing.
            gauntlet::reachable!("ledger: a block waited for its missing parent");
            if self.waiting.len() < 1024 {
                self.waiting.entry(b.parent).or_default().push(b);
            }
            out.push(Output::Broadcast(Msg::Sync { from: self.final_height() }));
            return;
        }
        let votable = self.index.is_some() && (own || self.votable(&b));
        if self.chain.add_block(b.clone()).is_err() {
            return;
        }
        self.last_seen = h;
        if votable && b.epoch > self.voted_epoch {
            let me = self.index.expect("only validators vote");
            self.voted_epoch = b.epoch;
            out.push(Output::PersistVote(b.epoch));
            out.push(Output::Broadcast(Msg::Vote { block: h, voter: me }));
            self.chain.add_vote(h, me);
        }
        // Blocks that were waiting for this one.
        for child in self.waiting.remove(&h).unwrap_or_default() {
            self.on_block(child, false, out);
        }
    }

    /// Whether another leader's proposal `b` deserves a vote (apart from the once-per-epoch
    /// rule).
    fn votable(&mut self, b: &Block) -> bool {
        if b.proposer != self.leader(b.epoch) || !self.chain.extends_longest(b) {
            return false;
        }
        if !self.bugs.timestamp_trust {
            // The proposal's epoch and timestamp agree with this node's clock.
            let (slot, tol) = (self.cfg.epoch_ms.max(1), self.cfg.clock_tolerance_ms);
            let lo = b.epoch * slot;
            if !(lo..lo + slot).contains(&b.timestamp_ms) || b.timestamp_ms.abs_diff(self.now_ms) > tol {
                gauntlet::reachable!("ledger: a proposal refused a vote for its timestamp");
                return false;
            }
            let window = tol / slot + 1;
            if b.epoch.abs_diff(self.epoch()) > window {
                return false;
            }
        }
        let base = if self.bugs.double_spend_on_fork { self.last_seen } else { b.parent };
        let mut s = self.state_at(base);
        let producer = Self::producer_address(b.proposer);
        for tx in &b.txs {
            let id = tx.id();
            if !self.verified.contains(&id) && !self.mempool.contains(&id) {
                if !tx.signature_valid() {
                    return false;
                }
                if self.verified.len() > 100_000 {
                    self.verified.pop_first();
                }
                self.verified.insert(id);
            }
            if s.apply(tx, &producer, self.bugs.fee_overflow).is_err() {
                return false;
            }
        }
        true
    }

    fn after_change(&mut self) {
        let head = self.chain.head();
        if head != self.last_head {
            let old = std::mem::replace(&mut self.last_head, head);
            self.reinject_orphaned(old, head);
        }
        let state = self.state_at(head);
        self.mempool.prune(&state);
        self.advance_final();
    }

    /// The head moved from `old` to `new`. If `new` is on another fork, the transfers of the
    /// blocks left behind (above the common ancestor) go back into the mempool: they were
    /// pruned when those blocks were the head, and would otherwise be lost with the fork.
    fn reinject_orphaned(&mut self, old: Hash, new: Hash) {
        let height = |c: &Chain, h: &Hash| c.block(h).map_or(0, |b| b.height);
        let parent = |c: &Chain, h: &Hash| c.block(h).map_or(*h, |b| b.parent);
        let (mut a, mut b) = (old, new);
        let mut orphaned = Vec::new();
        while height(&self.chain, &b) > height(&self.chain, &a) {
            b = parent(&self.chain, &b);
        }
        while height(&self.chain, &a) > height(&self.chain, &b) {
            orphaned.push(a);
            a = parent(&self.chain, &a);
        }
        while a != b && height(&self.chain, &a) > 0 {
            orphaned.push(a);
            a = parent(&self.chain, &a);
            b = parent(&self.chain, &b);
        }
        if orphaned.is_empty() {
            return;
        }
        gauntlet::reachable!("ledger: the head switched to another fork");
        let state = self.state_at(new);
        let txs: Vec<Tx> =
            orphaned.iter().rev().filter_map(|h| self.chain.block(h)).flat_map(|blk| blk.txs.clone()).collect();
        gauntlet::sometimes!(!txs.is_empty(), "ledger: a fork switch returned orphaned transfers to the mempool");
        for tx in txs {
            let _ = self.offer(tx, &state, true);
        }
    }

    /// Applies newly final blocks to the final state, checking each transfer and the supply.
    fn advance_final(&mut self) {
        while self.final_applied < self.chain.finalized().len() {
            let h = self.chain.finalized()[self.final_applied];
            let Some(b) = self.chain.block(&h).cloned() else { break };
            let producer = Self::producer_address(b.proposer);
            for tx in &b.txs {
                if let Err(e) = self.final_state.apply(tx, &producer, self.bugs.fee_overflow) {
                    if self.invalid.len() < 16 {
                        self.invalid.push((b.height, short(&tx.id()), e.to_string()));
                    }
                }
            }
            gauntlet::sometimes!(b.height > 1 && !b.txs.is_empty(), "ledger: a block of transfers finalized");
            let supply = self.final_state.supply();
            if supply != self.genesis_supply && self.supply_break.is_none() {
                self.supply_break = Some((b.height, supply));
            }
            let summary = self.summary(&b);
            self.recent.push_back(summary);
            if self.recent.len() > RECENT_BLOCKS {
                self.recent.pop_front();
            }
            self.final_applied += 1;
        }
    }

    fn summary(&self, b: &Block) -> BlockSummary {
        let index = |a: &Address| self.wallet_index.get(a).copied().unwrap_or(u32::MAX);
        BlockSummary {
            height: b.height,
            hash: short_hash(&b.hash()),
            epoch: b.epoch,
            proposer: b.proposer,
            timestamp_ms: b.timestamp_ms,
            txs: b
                .txs
                .iter()
                .map(|tx| {
                    let t = &tx.transfer;
                    TxSummary {
                        id: short(&tx.id()),
                        from: index(&t.from),
                        to: index(&t.to),
                        amount: t.amount,
                        fee: t.fee,
                        nonce: t.nonce,
                    }
                })
                .collect(),
        }
    }

    /// What the observer sees.
    pub fn status(&self) -> Status {
        let finalized = self.chain.finalized();
        let applied = &finalized[..self.final_applied.min(finalized.len())];
        let last = applied.len() as u64 - 1;
        let checkpoints = applied
            .iter()
            .enumerate()
            .map(|(h, hash)| (h as u64, short_hash(hash)))
            .filter(|(h, _)| h % CHECKPOINT_EVERY == 0 || h + 8 > last)
            .collect();
        let head = self.chain.block(&self.chain.head()).expect("the head is known");
        Status {
            validator: self.index,
            now_ms: self.now_ms,
            epoch: self.epoch(),
            head: BlockSummary { txs: Vec::new(), ..self.summary(head) },
            final_height: last,
            checkpoints,
            recent: self.recent.iter().cloned().collect(),
            mempool: self.mempool.len(),
            mempool_digest: self.mempool.ids().iter().map(short).fold(self.mempool.len() as u64, |a, b| a ^ b),
            evictions: self.evictions,
            evicted: self.evicted.iter().copied().collect(),
            supply: self.final_state.supply(),
            genesis_supply: self.genesis_supply,
            supply_break: self.supply_break,
            invalid: self.invalid.clone(),
            balances: self.genesis.wallets.iter().map(|a| self.final_state.balance(a)).collect(),
            conflict: self.chain.conflict().is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tx::{address, wallet, Transfer};
    use super::*;

    struct Cluster {
        nodes: Vec<Validator>,
        down: Vec<bool>,
        replies: Vec<Result<TxId, String>>,
    }

    fn genesis() -> Genesis {
        Genesis { wallets: (0..8).map(|i| address(&wallet(i))).collect(), balance: 1_000 }
    }

    impl Cluster {
        fn new(n: u32, bugs: Bugs) -> Cluster {
            Cluster::with_executors(n, 0, bugs)
        }

        /// Validators `0..n`, then `executors` executors.
        fn with_executors(n: u32, executors: u32, bugs: Bugs) -> Cluster {
            let cfg = Config { validators: n, epoch_ms: 100, max_block_txs: 50, mempool: 1_000, ..Config::default() };
            let validators: Vec<Peer> = (0..n).collect();
            let all: Vec<Peer> = (0..n + executors).collect();
            let nodes = all
                .iter()
                .map(|&id| {
                    let index = (id < n).then_some(id);
                    let seat = Seat { me: id, index, validators: validators.clone(), peers: all.clone() };
                    Validator::new(seat, cfg, bugs, genesis(), Recovered::default())
                })
                .collect();
            Cluster { nodes, down: vec![false; all.len()], replies: Vec::new() }
        }

        /// Delivers everything at once (in order), except to and from nodes that are down.
        fn run(&mut self, from: Peer, outputs: Vec<Output>) {
            let mut queue: VecDeque<(Peer, Output)> = outputs.into_iter().map(|o| (from, o)).collect();
            while let Some((at, o)) = queue.pop_front() {
                let targets: Vec<(Peer, Msg)> = match o {
                    Output::Broadcast(m) => {
                        (0..self.nodes.len() as Peer).filter(|&i| i != at).map(|i| (i, m.clone())).collect()
                    }
                    Output::Send(to, m) => vec![(to, m)],
                    Output::Reply(_, r) => {
                        self.replies.push(r);
                        continue;
                    }
                    _ => continue,
                };
                for (to, m) in targets {
                    if self.down[at as usize] || self.down[to as usize] {
                        continue;
                    }
                    let out = self.nodes[to as usize].message(at, m);
                    queue.extend(out.into_iter().map(|o| (to, o)));
                }
            }
        }

        fn advance(&mut self, from_ms: u64, to_ms: u64) {
            for now in (from_ms..to_ms).step_by(10) {
                for id in 0..self.nodes.len() as Peer {
                    if !self.down[id as usize] {
                        let out = self.nodes[id as usize].tick(now, now, now / 10 + u64::from(id));
                        self.run(id, out);
                    }
                }
            }
        }
    }

    fn pay(from: u32, to: u32, amount: u64, nonce: u64) -> Tx {
        Transfer { from: address(&wallet(from)), to: address(&wallet(to)), amount, fee: 1, nonce }.sign(&wallet(from))
    }

    #[test]
    fn four_validators_finalize_blocks_with_transfers_and_agree() {
        let mut c = Cluster::new(4, Bugs::default());
        for i in 0..6u32 {
            let out = c.nodes[(i % 4) as usize].client_tx(u64::from(i), pay(i, i + 1, 10, 0));
            c.run(i % 4, out);
        }
        assert!(c.replies.iter().all(Result::is_ok), "{:?}", c.replies);
        c.advance(100, 2_000);
        let finals: Vec<&[Hash]> = c.nodes.iter().map(|n| n.chain().finalized()).collect();
        assert!(finals[0].len() > 10, "blocks were finalized: {}", finals[0].len());
        for f in &finals {
            let common = f.len().min(finals[0].len());
            assert_eq!(f[..common], finals[0][..common], "final chains agree");
        }
        let status = c.nodes[0].status();
        let included: usize = status.recent.iter().map(|b| b.txs.len()).sum();
        assert_eq!(included, 6, "every transfer included once");
        assert_eq!(status.supply, 8_000, "supply conserved");
        assert_eq!(status.supply_break, None);
        assert!(status.invalid.is_empty());
        assert_eq!(status.balances.iter().map(|&b| u128::from(b)).sum::<u128>() + 6, 8_000, "fees went to producers");
        assert_eq!(status.mempool, 0, "included transfers leave the mempool");
        let mut v = c.nodes.remove(0);
        let tip = *v.chain().finalized().last().unwrap();
        assert_eq!(v.state_at(tip).supply(), 8_000);
    }

    #[test]
    fn a_validator_that_was_down_catches_up_and_the_rest_stay_live() {
        let mut c = Cluster::new(4, Bugs::default());
        c.down[3] = true;
        c.advance(100, 1_500);
        let h = c.nodes[0].chain().finalized().len();
        assert!(h > 3, "three of four stay live: {h}");
        c.down[3] = false;
        c.advance(1_500, 3_000);
        let (a, b) = (c.nodes[0].chain().finalized(), c.nodes[3].chain().finalized());
        assert!(b.len() + 2 >= a.len() && b.len() > h, "the returning validator caught up: {} vs {}", b.len(), a.len());
        assert_eq!(a[..b.len().min(a.len())], b[..b.len().min(a.len())]);
    }

    #[test]
    fn a_vote_counts_only_from_its_voter_and_a_skewed_proposal_gets_none() {
        let mut c = Cluster::new(4, Bugs::default());
        c.advance(100, 110);
        // Peer 2 claims to be validator 1: ignored.
        let b = *c.nodes[0].chain().finalized().last().unwrap();
        let before = c.nodes[0].chain().voters(&b);
        let _ = c.nodes[0].message(2, Msg::Vote { block: [9; 32], voter: 1 });
        assert!(c.nodes[0].chain().voters(&[9; 32]).is_empty());
        assert_eq!(c.nodes[0].chain().voters(&b), before);
        // A proposal one second in the future (epoch 11 at time ~100 ms) gets no vote...
        let head = c.nodes[0].chain().head();
        let parent = c.nodes[0].chain().block(&head).unwrap().clone();
        let future = Block {
            epoch: 13,
            parent: head,
            height: parent.height + 1,
            proposer: 1,
            timestamp_ms: 1_300,
            txs: Vec::new(),
        };
        let out = c.nodes[0].message(1, Msg::Propose(future.clone()));
        assert!(!out.iter().any(|o| matches!(o, Output::Broadcast(Msg::Vote { .. }))), "{out:?}");
        // ...unless the voter trusts the proposer's clock.
        let mut trusting = Cluster::new(4, Bugs { timestamp_trust: true, ..Bugs::default() });
        trusting.advance(100, 110);
        let out = trusting.nodes[0].message(1, Msg::Propose(future));
        assert!(out.iter().any(|o| matches!(o, Output::Broadcast(Msg::Vote { .. }))), "{out:?}");
    }

    #[test]
    fn an_executor_follows_the_chain_without_voting_and_its_transfers_are_included() {
        let mut c = Cluster::with_executors(4, 1, Bugs::default());
        let out = c.nodes[4].client_tx(1, pay(0, 1, 5, 0));
        c.run(4, out);
        c.advance(100, 1_500);
        let ex = c.nodes[4].status();
        assert_eq!(ex.validator, None);
        assert!(ex.final_height > 3, "the executor sees blocks finalized: {}", ex.final_height);
        let (a, b) = (c.nodes[0].chain().finalized(), c.nodes[4].chain().finalized());
        assert_eq!(a[..a.len().min(b.len())], b[..a.len().min(b.len())], "the executor's final chain agrees");
        assert_eq!(ex.recent.iter().map(|b| b.txs.len()).sum::<usize>(), 1, "its transfer was included");
        for b in c.nodes[0].chain().finalized().iter().skip(1) {
            assert!(!c.nodes[0].chain().voters(b).contains(&4), "no vote from the executor");
        }
    }
}
