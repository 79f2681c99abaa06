//! Blocks, votes and the Streamlet rules (Chan and Shi, 2020): a block is **notarized** by
//! votes from at least 2n/3 validators; validators vote for the first proposal of an epoch
//! that extends one of the longest notarized chains; when three notarized blocks of
//! consecutive epochs form a chain, the middle one and its prefix are **final**. Safety holds
//! whatever the network does as long as fewer than n/3 validators misbehave; liveness needs
//! periods of timely delivery.

use super::tx::Tx;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// A block hash.
pub type Hash = [u8; 32];

/// A block: the transfers one epoch's leader proposed on top of `parent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The epoch (slot) it was proposed in; strictly above its parent's.
    pub epoch: u64,
    /// Its parent's hash.
    pub parent: Hash,
    /// Distance from genesis.
    pub height: u64,
    /// The proposing validator (the epoch's leader).
    pub proposer: u32,
    /// The proposer's clock when it proposed, in milliseconds.
    pub timestamp_ms: u64,
    /// The transfers, applied in order.
    pub txs: Vec<Tx>,
}

impl Block {
    /// The genesis block (epoch 0, height 0), notarized and final by definition.
    pub fn genesis() -> Block {
        Block { epoch: 0, parent: [0; 32], height: 0, proposer: 0, timestamp_ms: 0, txs: Vec::new() }
    }

    /// Its hash: SHA-256 of its encoding.
    pub fn hash(&self) -> Hash {
        Sha256::digest(bincode::serialize(self).expect("a block encodes")).into()
    }
}

/// Why a block was not added.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Its parent is unknown (yet).
    #[error("unknown parent")]
    Orphan,
    /// Its height or epoch does not follow its parent's.
    #[error("height {height} / epoch {epoch} do not follow the parent's {parent_height} / {parent_epoch}")]
    Misplaced {
        /// The block's height.
        height: u64,
        /// The block's epoch.
        epoch: u64,
        /// The parent's height.
        parent_height: u64,
        /// The parent's epoch.
        parent_epoch: u64,
    },
}

/// The blocks and votes a node has seen, and what they notarize and finalize.
///
/// Kept incrementally (each block and vote costs time independent of the chain's length): the
/// set of blocks whose whole ancestry is notarized, the best of them (the head), and the final
/// chain.
#[derive(Debug, Clone)]
pub struct Chain {
    validators: u32,
    genesis: Hash,
    blocks: BTreeMap<Hash, Block>,
    children: BTreeMap<Hash, Vec<Hash>>,
    votes: BTreeMap<Hash, BTreeSet<u32>>,
    notarized: BTreeSet<Hash>,
    /// Notarized blocks whose every ancestor is notarized.
    on_chain: BTreeSet<Hash>,
    /// The tip of a longest notarized chain: `(height, Reverse(hash))` is largest.
    head: (u64, std::cmp::Reverse<Hash>),
    /// The final chain, genesis first.
    finalized: Vec<Hash>,
    /// A block that was finalized although it conflicts with the final chain (a safety
    /// violation: it cannot happen with fewer than n/3 faulty validators).
    conflict: Option<Hash>,
}

impl Chain {
    /// A chain of `validators` validators holding only genesis.
    pub fn new(validators: u32) -> Chain {
        let g = Block::genesis();
        let h = g.hash();
        Chain {
            validators: validators.max(1),
            genesis: h,
            blocks: BTreeMap::from([(h, g)]),
            children: BTreeMap::new(),
            votes: BTreeMap::new(),
            notarized: BTreeSet::from([h]),
            on_chain: BTreeSet::from([h]),
            head: (0, std::cmp::Reverse(h)),
            finalized: vec![h],
            conflict: None,
        }
    }

    /// Votes that notarize a block: at least 2n/3.
    pub fn quorum(&self) -> usize {
        (2 * self.validators as usize).div_ceil(3)
    }

    /// The block with hash `h`, if known.
    pub fn block(&self, h: &Hash) -> Option<&Block> {
        self.blocks.get(h)
    }

    /// Adds a block whose parent is known.
    pub fn add_block(&mut self, b: Block) -> Result<Hash, BlockError> {
        let parent = self.blocks.get(&b.parent).ok_or(BlockError::Orphan)?;
        if b.height != parent.height + 1 || b.epoch <= parent.epoch {
            return Err(BlockError::Misplaced {
                height: b.height,
                epoch: b.epoch,
                parent_height: parent.height,
                parent_epoch: parent.epoch,
            });
        }
        let h = b.hash();
        if !self.blocks.contains_key(&h) {
            self.children.entry(b.parent).or_default().push(h);
            self.blocks.insert(h, b);
            self.update(h);
        }
        Ok(h)
    }

    /// Records `voter`'s vote for block `h` (known or not yet).
    pub fn add_vote(&mut self, h: Hash, voter: u32) {
        if voter < self.validators && self.votes.entry(h).or_default().insert(voter) {
            self.update(h);
        }
    }

    /// Who voted for `h`, in id order.
    pub fn voters(&self, h: &Hash) -> Vec<u32> {
        self.votes.get(h).map(|v| v.iter().copied().collect()).unwrap_or_default()
    }

    /// Whether `h` is notarized.
    pub fn is_notarized(&self, h: &Hash) -> bool {
        self.notarized.contains(h)
    }

    /// The tip of a longest notarized chain (ties: the lowest hash), where proposals go.
    pub fn head(&self) -> Hash {
        self.head.1 .0
    }

    /// Whether `b` extends a longest notarized chain (what a validator votes for).
    pub fn extends_longest(&self, b: &Block) -> bool {
        self.on_chain.contains(&b.parent) && self.blocks.get(&b.parent).is_some_and(|p| p.height == self.head.0)
    }

    /// The final chain, genesis first.
    pub fn finalized(&self) -> &[Hash] {
        &self.finalized
    }

    /// The hash of the final block at `height`.
    pub fn finalized_at(&self, height: u64) -> Option<Hash> {
        self.finalized.get(height as usize).copied()
    }

    /// A conflicting finalization, if one ever happened.
    pub fn conflict(&self) -> Option<Hash> {
        self.conflict
    }

    /// The blocks from genesis (excluded) to `h` (included).
    pub fn path(&self, mut h: Hash) -> Vec<&Block> {
        let mut out = Vec::new();
        while h != self.genesis {
            let Some(b) = self.blocks.get(&h) else { break };
            out.push(b);
            h = b.parent;
        }
        out.reverse();
        out
    }

    /// `h` got a block or a vote: it may now be notarized, and join the notarized chain with
    /// the notarized descendants that were waiting for it.
    fn update(&mut self, h: Hash) {
        if !self.blocks.contains_key(&h) || self.votes.get(&h).map_or(0, BTreeSet::len) < self.quorum() {
            return;
        }
        if !self.notarized.insert(h) {
            return;
        }
        let mut stack = vec![h];
        while let Some(x) = stack.pop() {
            let parent = self.blocks[&x].parent;
            if !self.notarized.contains(&x) || !self.on_chain.contains(&parent) || !self.on_chain.insert(x) {
                continue;
            }
            let key = (self.blocks[&x].height, std::cmp::Reverse(x));
            if key > self.head {
                self.head = key;
            }
            self.finalize_through(x);
            stack.extend(self.children.get(&x).into_iter().flatten().copied());
        }
    }

    /// `c` joined the notarized chain: if it, its parent and grandparent have consecutive
    /// epochs, the parent and its prefix are final.
    fn finalize_through(&mut self, c: Hash) {
        let cb = &self.blocks[&c];
        let b = cb.parent;
        if b == self.genesis {
            return;
        }
        let bb = &self.blocks[&b];
        let ab = &self.blocks[&bb.parent];
        if bb.epoch + 1 != cb.epoch || ab.epoch + 1 != bb.epoch {
            return;
        }
        let height = bb.height as usize;
        if height < self.finalized.len() {
            if self.finalized[height] != b && self.conflict.is_none() {
                self.conflict = Some(b);
            }
            return;
        }
        let mut path: Vec<Hash> = self.path(b).iter().map(|blk| blk.hash()).collect();
        path.insert(0, self.genesis);
        if path[..self.finalized.len()] != self.finalized[..] {
            self.conflict.get_or_insert(b);
            return;
        }
        self.finalized = path;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(parent: &Block, epoch: u64, proposer: u32) -> Block {
        Block {
            epoch,
            parent: parent.hash(),
            height: parent.height + 1,
            proposer,
            timestamp_ms: epoch * 1000,
            txs: Vec::new(),
        }
    }

    fn notarize(c: &mut Chain, b: &Block, voters: &[u32]) -> Hash {
        let h = c.add_block(b.clone()).unwrap();
        for &v in voters {
            c.add_vote(h, v);
        }
        h
    }

    #[test]
    fn three_consecutive_notarized_epochs_finalize_the_middle_and_its_prefix() {
        let mut c = Chain::new(4);
        assert_eq!(c.quorum(), 3);
        let g = Block::genesis();
        let b1 = child(&g, 1, 1);
        let b2 = child(&b1, 2, 2);
        let b3 = child(&b2, 3, 3);
        let h1 = notarize(&mut c, &b1, &[0, 1]);
        assert!(!c.is_notarized(&h1), "two of four votes do not notarize");
        c.add_vote(h1, 2);
        assert!(c.is_notarized(&h1));
        assert_eq!(c.head(), h1);
        let h2 = notarize(&mut c, &b2, &[0, 1, 2]);
        assert_eq!(c.finalized(), &[g.hash(), h1], "genesis, 1, 2 are epochs 0, 1, 2: 1 is final");
        let _h3 = notarize(&mut c, &b3, &[1, 2, 3]);
        assert_eq!(c.finalized(), &[g.hash(), h1, h2], "epochs 1, 2, 3 finalize 2 and its prefix");
        assert_eq!(c.finalized_at(2), Some(h2));
        assert_eq!(c.conflict(), None);
    }

    #[test]
    fn a_gap_in_epochs_finalizes_nothing_and_votes_follow_the_longest_chain() {
        let mut c = Chain::new(4);
        let g = Block::genesis();
        let b1 = child(&g, 1, 1);
        let b3 = child(&b1, 3, 3);
        let b4 = child(&b3, 4, 0);
        notarize(&mut c, &b1, &[0, 1, 2]);
        notarize(&mut c, &b3, &[0, 1, 2]);
        notarize(&mut c, &b4, &[0, 1, 2]);
        assert_eq!(c.finalized().len(), 1, "epochs 1, 3, 4 are not consecutive");
        let fork = child(&b1, 5, 1);
        assert!(!c.extends_longest(&fork), "a proposal on a shorter chain gets no vote");
        assert!(c.extends_longest(&child(&b4, 5, 1)));
        assert_eq!(
            c.add_block(child(&Block::genesis(), 0, 0)).unwrap_err(),
            BlockError::Misplaced { height: 1, epoch: 0, parent_height: 0, parent_epoch: 0 }
        );
        let mut orphan = child(&b4, 9, 1);
        orphan.parent = [7; 32];
        assert_eq!(c.add_block(orphan), Err(BlockError::Orphan));
    }
}
