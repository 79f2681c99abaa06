//! A validator as a pure state machine, like raft-kv's core: ticks (with the node's clock),
//! messages and client transfers in; messages, writes and replies out. No I/O, clock or
//! randomness inside.
//!
//! Epochs are `clock / epoch_ms`; epoch `e`'s leader is validator `e mod n`. The leader
//! proposes a block on the head (a longest notarized chain) with the best transfers from its
//! mempool; every validator votes, once per epoch, for the epoch's proposal if it extends a
//! longest notarized chain, its transfers apply to its parent's state, and its timestamp lies
//! in its epoch. Votes and proposals go to everyone; blocks whose parent is missing wait, and
//! the missing blocks are asked for.

use super::chain::{Block, Chain, Hash};
use super::mempool::{Admit, Mempool};
use super::state::State;
use super::tx::{Address, Tx, TxId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Validator number.
pub type Id = u32;

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
}

/// Planted bugs of the ledger (`app.options.bugs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// `double-spend-on-fork`: a proposal's transfers are checked against the state at the
    /// voter's head instead of at the proposal's parent.
    pub double_spend_on_fork: bool,
    /// `mempool-drop-on-restart`: accepted transfers are not persisted.
    pub mempool_drop_on_restart: bool,
    /// `fee-overflow`: amount + fee wraps in the funds check.
    pub fee_overflow: bool,
    /// `timestamp-trust`: a proposal's timestamp is not checked against its epoch.
    pub timestamp_trust: bool,
    /// `gossip-no-limit`: the mempool bound is not enforced.
    pub gossip_no_limit: bool,
}

/// What validators say to each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// An epoch leader's block.
    Propose(Block),
    /// A vote for a block.
    Vote {
        /// The block.
        block: Hash,
        /// The voter.
        voter: Id,
    },
    /// A transfer, gossiped.
    Tx(Tx),
    /// Please send the blocks from the final chain and the notarized head down to `from`.
    Sync {
        /// The requester's final height.
        from: u64,
    },
    /// Blocks in parent-first order, each with the validators known to have voted for it
    /// (the evidence of its notarization).
    Blocks(Vec<(Block, Vec<Id>)>),
}

/// What a validator asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send to every other validator.
    Broadcast(Msg),
    /// Send to one.
    Send(Id, Msg),
    /// Make the vote for `epoch` durable before the vote leaves.
    PersistVote(u64),
    /// Make a block durable.
    PersistBlock(Block),
    /// Make an accepted transfer durable (so a restart keeps it pending).
    PersistTx(Tx),
    /// Answer a client.
    Reply(u64, Result<TxId, String>),
}

/// One validator.
#[derive(Debug)]
pub struct Validator {
    id: Id,
    cfg: Config,
    bugs: Bugs,
    genesis: State,
    chain: Chain,
    mempool: Mempool,
    voted_epoch: u64,
    proposed_epoch: u64,
    now_ms: u64,
    waiting: BTreeMap<Hash, Vec<Block>>,
    states: BTreeMap<Hash, State>,
}

impl Validator {
    /// A validator recovering `blocks` (parent-first), its last `voted_epoch` and its pending
    /// `txs` from disk.
    pub fn new(
        id: Id,
        cfg: Config,
        bugs: Bugs,
        genesis: State,
        blocks: Vec<Block>,
        voted_epoch: u64,
        txs: Vec<Tx>,
    ) -> Self {
        let mut v = Validator {
            id,
            cfg,
            bugs,
            chain: Chain::new(cfg.validators),
            mempool: Mempool::new(cfg.mempool, bugs.gossip_no_limit),
            genesis: genesis.clone(),
            voted_epoch,
            proposed_epoch: voted_epoch,
            now_ms: 0,
            waiting: BTreeMap::new(),
            states: BTreeMap::from([(Block::genesis().hash(), genesis)]),
        };
        for b in blocks {
            let _ = v.chain.add_block(b);
        }
        let head = v.state_at(v.chain.head());
        for tx in txs {
            let _ = v.mempool.admit(tx, &head);
        }
        v
    }

    /// The chain as this validator sees it.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Pending transfers.
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// The current epoch by this validator's clock.
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
        let mut s = self.genesis.clone();
        for b in &path {
            let producer = Self::producer_address(b.proposer);
            for tx in &b.txs {
                let _ = s.apply(tx, &producer, self.bugs.fee_overflow);
            }
        }
        if self.states.len() > 4096 {
            self.states.pop_first();
        }
        self.states.insert(h, s.clone());
        s
    }

    /// The address block producer `id` is paid fees at.
    pub fn producer_address(id: Id) -> Address {
        Address(id.to_le_bytes().repeat(8).try_into().expect("32 bytes"))
    }

    /// Feeds one input; returns what to do.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Output> {
        let mut out = Vec::new();
        self.now_ms = now_ms;
        let e = self.epoch();
        if self.leader(e) == self.id && self.proposed_epoch < e && self.voted_epoch < e {
            self.propose(e, &mut out);
        }
        out
    }

    fn propose(&mut self, e: u64, out: &mut Vec<Output>) {
        self.proposed_epoch = e;
        let head = self.chain.head();
        let parent = self.chain.block(&head).expect("the head is known").clone();
        let state = self.state_at(head);
        let txs = self.mempool.select(&state, self.cfg.max_block_txs, self.bugs.fee_overflow);
        let b = Block {
            epoch: e,
            parent: head,
            height: parent.height + 1,
            proposer: self.id,
            timestamp_ms: self.now_ms,
            txs,
        };
        out.push(Output::PersistBlock(b.clone()));
        out.push(Output::Broadcast(Msg::Propose(b.clone())));
        self.on_block(b, true, out);
    }

    /// A client submits a transfer.
    pub fn client_tx(&mut self, reply_to: u64, tx: Tx) -> Vec<Output> {
        let mut out = Vec::new();
        let id = tx.id();
        match self.admit(tx, &mut out) {
            Ok(()) => out.push(Output::Reply(reply_to, Ok(id))),
            Err(e) => out.push(Output::Reply(reply_to, Err(e))),
        }
        out
    }

    fn admit(&mut self, tx: Tx, out: &mut Vec<Output>) -> Result<(), String> {
        let head = self.chain.head();
        let state = self.state_at(head);
        match self.mempool.admit(tx.clone(), &state) {
            Admit::Added | Admit::Evicted(_) => {
                if !self.bugs.mempool_drop_on_restart {
                    out.push(Output::PersistTx(tx.clone()));
                }
                out.push(Output::Broadcast(Msg::Tx(tx)));
                Ok(())
            }
            Admit::Duplicate => Ok(()),
            Admit::Invalid(e) => Err(e.to_string()),
            Admit::Full { min_fee } => Err(format!("mempool full: fee must exceed {min_fee}")),
        }
    }

    /// A message from validator `from`.
    pub fn message(&mut self, from: Id, msg: Msg) -> Vec<Output> {
        let mut out = Vec::new();
        match msg {
            Msg::Propose(b) => {
                let fresh = self.chain.block(&b.hash()).is_none();
                if fresh {
                    out.push(Output::PersistBlock(b.clone()));
                }
                self.on_block(b, false, &mut out);
            }
            Msg::Vote { block, voter } => self.chain.add_vote(block, voter),
            Msg::Tx(tx) => {
                let _ = self.admit(tx, &mut out);
            }
            Msg::Sync { from: height } => {
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
            // Wait for the parent, and ask the proposer's side for what is missing.
            self.waiting.entry(b.parent).or_default().push(b.clone());
            out.push(Output::Broadcast(Msg::Sync { from: self.chain.finalized().len() as u64 - 1 }));
            return;
        }
        let votable = self.votable(&b);
        if self.chain.add_block(b.clone()).is_err() {
            return;
        }
        // A proposal is voted for in its epoch (or just before it, by a clock a little behind
        // the leader's); never for an epoch that has passed, never twice in an epoch.
        let now = self.epoch();
        if votable && (own || (now..=now + 1).contains(&b.epoch)) && b.epoch > self.voted_epoch {
            self.voted_epoch = b.epoch;
            out.push(Output::PersistVote(b.epoch));
            out.push(Output::Broadcast(Msg::Vote { block: h, voter: self.id }));
            self.chain.add_vote(h, self.id);
        }
        // Blocks that were waiting for this one.
        for child in self.waiting.remove(&h).unwrap_or_default() {
            self.on_block(child, false, out);
        }
    }

    /// Whether `b` deserves a vote (apart from the once-per-epoch rule).
    fn votable(&mut self, b: &Block) -> bool {
        if b.proposer != self.leader(b.epoch) || !self.chain.extends_longest(b) {
            return false;
        }
        let lo = b.epoch * self.cfg.epoch_ms;
        if !self.bugs.timestamp_trust && !(lo..lo + self.cfg.epoch_ms).contains(&b.timestamp_ms) {
            return false;
        }
        let base = if self.bugs.double_spend_on_fork { self.chain.head() } else { b.parent };
        let mut s = self.state_at(base);
        let producer = Self::producer_address(b.proposer);
        b.txs.iter().all(|tx| s.apply(tx, &producer, self.bugs.fee_overflow).is_ok())
    }

    fn after_change(&mut self) {
        let head = self.chain.head();
        let state = self.state_at(head);
        self.mempool.prune(&state);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tx::{address, wallet, Transfer};
    use super::*;
    use std::collections::VecDeque;

    struct Cluster {
        nodes: Vec<Validator>,
        down: Vec<bool>,
        replies: Vec<Result<TxId, String>>,
    }

    impl Cluster {
        fn new(n: u32, bugs: Bugs) -> Cluster {
            let cfg = Config { validators: n, epoch_ms: 100, max_block_txs: 50, mempool: 1_000 };
            let wallets: Vec<Address> = (0..8).map(|i| address(&wallet(i))).collect();
            let genesis = State::genesis(&wallets, 1_000);
            let nodes =
                (0..n).map(|id| Validator::new(id, cfg, bugs, genesis.clone(), Vec::new(), 0, Vec::new())).collect();
            Cluster { nodes, down: vec![false; n as usize], replies: Vec::new() }
        }

        /// Delivers everything at once (in order), except to and from nodes that are down.
        fn run(&mut self, from: Id, outputs: Vec<Output>) {
            let mut queue: VecDeque<(Id, Output)> = outputs.into_iter().map(|o| (from, o)).collect();
            while let Some((at, o)) = queue.pop_front() {
                let targets: Vec<(Id, Msg)> = match o {
                    Output::Broadcast(m) => {
                        (0..self.nodes.len() as Id).filter(|&i| i != at).map(|i| (i, m.clone())).collect()
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
                for id in 0..self.nodes.len() as Id {
                    if !self.down[id as usize] {
                        let out = self.nodes[id as usize].tick(now);
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
        let mut v = c.nodes.remove(0);
        let tip = *v.chain().finalized().last().unwrap();
        let included: usize = v.chain().path(tip).iter().map(|b| b.txs.len()).sum();
        assert_eq!(included, 6, "every transfer included once");
        let state = v.state_at(tip);
        assert_eq!(state.supply(), 8_000, "supply conserved");
        assert!(v.mempool().is_empty(), "included transfers leave the mempool");
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
}
