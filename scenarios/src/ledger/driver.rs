//! The thin driver: runs a [`Validator`] on a [`NodeContext`] — its transport, disk and clock —
//! in both builds. It recovers blocks, the last vote and pending transfers at start, ticks
//! every 10 ms, decodes messages, answers queries, and performs the validator's outputs in
//! order: a vote is synced before it is sent, an accepted transfer before it is acknowledged.
//!
//! A node with role `flooder` runs [`flood`] instead: a Byzantine-ish gossip peer that sends
//! valid but useless transfers, duplicates and sync requests as fast as it is told to.

use super::chain::Block;
use super::tx::{address, wallet, Address, Transfer, Tx, TxId};
use super::validator::{Bugs, Config, Genesis, Msg, Output, Peer, Recovered, Seat, Status, Validator};
use crate::node_loop::{next_event, Event};
use futures::channel::{mpsc, oneshot};
use gauntlet::sim::{Disk, NodeContext, NodeId, ReplyTo};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, UNIX_EPOCH};

/// Time between ticks.
pub const TICK: Duration = Duration::from_millis(10);
/// Key index of the first wallet a flooder pays from (client wallets are keys `0..wallets`).
pub const FLOOD_KEY_BASE: u32 = 1000;
/// Wallets a flooder pays from (funded at genesis after the client wallets).
pub const FLOOD_KEYS: u32 = 16;

/// A query a client or the observer sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// The node's [`Status`].
    Status,
    /// An address's balance after the final blocks.
    Balance(Address),
    /// The nonce an address's next transfer should carry.
    Nonce(Address),
    /// The final block at a height.
    Block(u64),
    /// Pending transfer ids.
    Mempool,
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    /// See [`Query::Status`].
    Status(Box<Status>),
    /// See [`Query::Balance`]: the balance and the final height it is as of.
    Balance {
        /// Coins.
        balance: u64,
        /// Final height.
        height: u64,
    },
    /// See [`Query::Nonce`].
    Nonce(u64),
    /// See [`Query::Block`].
    Block(Option<Block>),
    /// See [`Query::Mempool`].
    Mempool(Vec<TxId>),
}

/// Everything on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Wire {
    /// Node to node.
    Peer(Msg),
    /// A client submits a transfer's bytes (which may be garbage); answered with
    /// [`Wire::Submitted`].
    Submit(Vec<u8>),
    /// The transfer's id, or why it was refused.
    Submitted(Result<TxId, String>),
    /// A query, answered with [`Wire::Answer`].
    Query(Query),
    /// An answer.
    Answer(Answer),
}

impl Wire {
    /// Encodes with bincode.
    pub fn encode(&self) -> Vec<u8> {
        bincode::serialize(self).expect("wire messages always encode")
    }
    /// Decodes; `None` for garbage.
    pub fn decode(bytes: &[u8]) -> Option<Wire> {
        use bincode::Options;
        bincode::options().with_fixint_encoding().with_limit(16 << 20).allow_trailing_bytes().deserialize(bytes).ok()
    }
}

/// What a node runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Votes and proposes.
    Validator,
    /// Follows the chain, accepts and gossips transfers.
    Executor,
    /// Floods its peers with valid but useless messages, `rate` transfers a second.
    Flooder {
        /// Transfers per second.
        rate: u32,
    },
}

/// How a node is set up.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Protocol timing and limits.
    pub cfg: Config,
    /// Planted bugs.
    pub bugs: Bugs,
    /// Funded wallets.
    pub genesis: Genesis,
    /// Its kind.
    pub kind: Kind,
}

/// The funded wallets of a ledger with `clients` client wallets (keys `0..clients`, at most
/// [`FLOOD_KEY_BASE`]): those, then the [`FLOOD_KEYS`] flooder wallets.
pub fn genesis(clients: u32, balance: u64) -> Genesis {
    let wallets = (0..clients.min(FLOOD_KEY_BASE)).chain(FLOOD_KEY_BASE..FLOOD_KEY_BASE + FLOOD_KEYS);
    Genesis { wallets: wallets.map(|i| address(&wallet(i))).collect(), balance }
}

const BLOCKS: &str = "ledger-blocks";
const VOTE: &str = "ledger-vote";
const TXS_GEN: &str = "ledger-txs-gen";

fn txs_file(generation: u64) -> String {
    format!("ledger-txs-{generation}")
}

/// Length-prefixed bincode records; a torn record at the end is dropped.
fn records<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> (Vec<T>, usize) {
    let (mut out, mut at) = (Vec::new(), 0usize);
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let Some(body) = bytes.get(at + 4..at + 4 + len) else { break };
        let Ok(v) = bincode::deserialize(body) else { break };
        out.push(v);
        at += 4 + len;
    }
    (out, at)
}

fn record<T: Serialize>(v: &T) -> Vec<u8> {
    let body = bincode::serialize(v).expect("records encode");
    let mut r = (body.len() as u32).to_le_bytes().to_vec();
    r.extend(body);
    r
}

/// The node's files: blocks (appended, synced each tick), its last vote (synced before the
/// vote leaves) and its accepted transfers (synced before the client hears "accepted";
/// rewritten into a new generation when mostly stale).
struct Store {
    disk: Disk,
    blocks_len: u64,
    blocks_dirty: bool,
    txs_generation: u64,
    txs_records: usize,
    txs_dirty: bool,
}

impl Store {
    fn recover(disk: Disk) -> (Store, Recovered) {
        let bytes = disk.read(BLOCKS).unwrap_or_default();
        let (blocks, good) = records::<Block>(&bytes);
        if good < bytes.len() {
            let _ = disk.truncate(BLOCKS, good as u64);
        }
        let voted_epoch = disk
            .read(VOTE)
            .ok()
            .and_then(|b| b.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))))
            .unwrap_or(0);
        let generation = disk
            .read(TXS_GEN)
            .ok()
            .and_then(|b| b.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))))
            .unwrap_or(0);
        let tx_bytes = disk.read(&txs_file(generation)).unwrap_or_default();
        let (txs, good_txs) = records::<Tx>(&tx_bytes);
        if good_txs < tx_bytes.len() {
            let _ = disk.truncate(&txs_file(generation), good_txs as u64);
        }
        let store = Store {
            disk,
            blocks_len: good as u64,
            blocks_dirty: false,
            txs_generation: generation,
            txs_records: txs.len(),
            txs_dirty: false,
        };
        (store, Recovered { blocks, voted_epoch, txs })
    }

    fn block(&mut self, b: &Block) {
        let r = record(b);
        let _ = self.disk.write(BLOCKS, self.blocks_len, &r);
        self.blocks_len += r.len() as u64;
        self.blocks_dirty = true;
    }

    async fn vote(&mut self, epoch: u64) {
        let _ = self.disk.write(VOTE, 0, &epoch.to_le_bytes());
        let _ = self.disk.sync(VOTE).await;
    }

    /// Appends an accepted transfer; [`Store::sync_txs`] makes it durable.
    fn tx(&mut self, tx: &Tx) {
        let _ = self.disk.append(&txs_file(self.txs_generation), &record(tx));
        self.txs_records += 1;
        self.txs_dirty = true;
    }

    /// Syncs the transfers appended since the last sync (one sync for a whole batch).
    async fn sync_txs(&mut self) {
        if std::mem::take(&mut self.txs_dirty) {
            let _ = self.disk.sync(&txs_file(self.txs_generation)).await;
        }
    }

    /// Rewrites the pending transfers into a fresh generation once the file is mostly stale.
    async fn compact(&mut self, pending: &[&Tx]) {
        self.sync_txs().await;
        if self.txs_records < 2 * pending.len() + 256 {
            return;
        }
        let next = self.txs_generation + 1;
        let mut bytes = Vec::new();
        for tx in pending {
            bytes.extend(record(*tx));
        }
        let _ = self.disk.truncate(&txs_file(next), 0);
        let _ = self.disk.write(&txs_file(next), 0, &bytes);
        let _ = self.disk.sync(&txs_file(next)).await;
        let _ = self.disk.write(TXS_GEN, 0, &next.to_le_bytes());
        let _ = self.disk.sync(TXS_GEN).await;
        let _ = self.disk.truncate(&txs_file(self.txs_generation), 0);
        self.txs_generation = next;
        self.txs_records = pending.len();
    }

    async fn flush(&mut self) {
        if std::mem::take(&mut self.blocks_dirty) {
            let _ = self.disk.sync(BLOCKS).await;
        }
    }
}

/// A request from a client in the same process (the real binary's HTTP API).
pub enum LocalRequest {
    /// Submit a transfer's bytes.
    Submit(Vec<u8>, oneshot::Sender<Result<TxId, String>>),
    /// A query.
    Query(Query, oneshot::Sender<Answer>),
}

enum Reply {
    Net(ReplyTo),
    Local(oneshot::Sender<Result<TxId, String>>),
}

/// The validator set: members with role `validator`, in id order (validator `i` is the
/// `i`-th). Validators are fixed for a run: this is a permissioned chain; executors come and go.
fn validator_peers(ctx: &NodeContext) -> Vec<Peer> {
    ctx.members().into_iter().filter(|(_, s)| s.role == "validator").map(|(id, _)| id.0).collect()
}

/// Runs one node until it is stopped.
pub async fn run(ctx: NodeContext, node: NodeConfig) {
    run_with_local(ctx, node, None).await
}

/// Runs one node that also serves requests from `local` (same-process clients).
pub async fn run_with_local(ctx: NodeContext, node: NodeConfig, mut local: Option<mpsc::Receiver<LocalRequest>>) {
    if let Kind::Flooder { rate } = node.kind {
        return flood(ctx, node, rate).await;
    }
    let (mut store, recovered) = Store::recover(ctx.disk());
    let validators = validator_peers(&ctx);
    let me = ctx.id().0;
    let index = match node.kind {
        Kind::Validator => validators.iter().position(|&p| p == me).map(|i| i as u32),
        _ => None,
    };
    let peers: Vec<Peer> = ctx.members().into_iter().map(|(id, _)| id.0).collect();
    let cfg = Config { validators: validators.len() as u32, ..node.cfg };
    let seat = Seat { me, index, validators, peers };
    let mut v = Validator::new(seat, cfg, node.bugs, node.genesis, recovered);
    let transport = ctx.transport();
    let clock = ctx.clock();
    let mut rng = ctx.rng();
    let mut replies: BTreeMap<u64, Reply> = BTreeMap::new();
    let mut next_handle = 0u64;
    let mut next_tick = clock.monotonic();
    let mut known: Vec<NodeId> = ctx.members().into_iter().map(|(id, _)| id).filter(|id| id.0 != me).collect();
    loop {
        let wait = next_tick.saturating_sub(clock.monotonic());
        // A due tick goes first: under steady traffic a message is always ready, and ticks
        // (proposals, gossip, the clock the node reports) must not starve.
        let event = if wait.is_zero() { Event::Tick } else { next_event(&transport, &mut local, wait).await };
        let outputs = match event {
            Event::Tick => {
                store.flush().await;
                let pending: Vec<&Tx> = v.mempool().iter().collect();
                store.compact(&pending).await;
                next_tick = clock.monotonic() + TICK;
                let now_ms = clock.now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
                v.tick(now_ms, clock.monotonic().as_millis() as u64, rng.random())
            }
            Event::Local(LocalRequest::Query(q, tx)) => {
                let _ = tx.send(answer(&mut v, q));
                continue;
            }
            Event::Local(LocalRequest::Submit(bytes, tx)) => match Tx::decode(&bytes) {
                None => {
                    let _ = tx.send(Err("malformed transaction".into()));
                    continue;
                }
                Some(t) => {
                    next_handle += 1;
                    replies.insert(next_handle, Reply::Local(tx));
                    v.client_tx(next_handle, t)
                }
            },
            Event::Net(msg) => {
                match (Wire::decode(&msg.body), msg.reply_to) {
                    (Some(Wire::Peer(m)), _) => {
                        // A peer not met before (a node that joined): gossip reaches it too.
                        // Clients and the observer only ask; they are not gossiped to.
                        if !known.contains(&msg.from) && msg.from.0 != me {
                            known.push(msg.from);
                        }
                        v.message(msg.from.0, m)
                    }
                    (Some(Wire::Submit(bytes)), Some(reply)) => match Tx::decode(&bytes) {
                        None => {
                            transport.reply(reply, Wire::Submitted(Err("malformed transaction".into())).encode());
                            continue;
                        }
                        Some(t) => {
                            next_handle += 1;
                            replies.insert(next_handle, Reply::Net(reply));
                            v.client_tx(next_handle, t)
                        }
                    },
                    (Some(Wire::Query(q)), Some(reply)) => {
                        transport.reply(reply, Wire::Answer(answer(&mut v, q)).encode());
                        continue;
                    }
                    _ => continue,
                }
            }
        };
        // Accepted transfers are appended as they come and synced once, before the first reply
        // or message that follows them (group commit), and at the end of the step.
        let mut queue: VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            if !matches!(output, Output::PersistTx(_) | Output::PersistBlock(_)) {
                store.sync_txs().await;
            }
            match output {
                Output::Broadcast(m) => {
                    let body = Wire::Peer(m).encode();
                    for &to in &known {
                        transport.send(to, body.clone());
                    }
                }
                Output::Send(to, m) => transport.send(NodeId(to), Wire::Peer(m).encode()),
                Output::PersistVote(epoch) => store.vote(epoch).await,
                Output::PersistBlock(b) => store.block(&b),
                Output::PersistTx(tx) => store.tx(&tx),
                Output::Reply(handle, result) => match replies.remove(&handle) {
                    Some(Reply::Net(r)) => transport.reply(r, Wire::Submitted(result).encode()),
                    Some(Reply::Local(tx)) => {
                        let _ = tx.send(result);
                    }
                    None => {}
                },
            }
        }
        store.sync_txs().await;
    }
}

fn answer(v: &mut Validator, q: Query) -> Answer {
    match q {
        Query::Status => Answer::Status(Box::new(v.status())),
        Query::Balance(a) => {
            let (balance, height) = v.final_balance(&a);
            Answer::Balance { balance, height }
        }
        Query::Nonce(a) => Answer::Nonce(v.next_nonce(&a)),
        Query::Block(h) => Answer::Block(v.final_block(h).cloned()),
        Query::Mempool => Answer::Mempool(v.mempool().ids()),
    }
}

/// A flooder: follows the chain like an executor (to know nonces), and every tick sends every
/// validator a batch of valid zero-amount, zero-fee transfers from its own funded wallets (as
/// far ahead in nonces as a mempool admits), the previous batch again (duplicates), and a
/// request for the whole chain. All valid; all useless.
async fn flood(ctx: NodeContext, node: NodeConfig, rate: u32) {
    let validators = validator_peers(&ctx);
    let me = ctx.id().0;
    let peers: Vec<Peer> = ctx.members().into_iter().map(|(id, _)| id.0).collect();
    let cfg = Config { validators: validators.len() as u32, ..node.cfg };
    let seat = Seat { me, index: None, validators: validators.clone(), peers };
    let mut v = Validator::new(seat, cfg, Bugs::default(), node.genesis, Recovered::default());
    let transport = ctx.transport();
    let clock = ctx.clock();
    let keys: Vec<_> = (0..FLOOD_KEYS).map(|i| wallet(FLOOD_KEY_BASE + i)).collect();
    let mut next_nonce: Vec<u64> = vec![0; keys.len()];
    let mut next_tick = clock.monotonic();
    let mut previous: Vec<Tx> = Vec::new();
    let mut owed = 0.0f64;
    loop {
        let wait = next_tick.saturating_sub(clock.monotonic());
        let due = if wait.is_zero() {
            Err(())
        } else {
            gauntlet::sim::time::timeout(wait, transport.recv()).await.map_err(|_| ())
        };
        match due {
            Ok(msg) => {
                if let Some(Wire::Peer(m)) = Wire::decode(&msg.body) {
                    // Follow the chain (answers to our requests included); say nothing back.
                    let _ = v.message(msg.from.0, m);
                }
                continue;
            }
            Err(_) => next_tick = clock.monotonic() + TICK,
        }
        owed += f64::from(rate) * TICK.as_secs_f64();
        let mut batch = Vec::new();
        let head = v.chain().head();
        let state = v.state_at(head);
        while owed >= 1.0 {
            owed -= 1.0;
            let k = batch.len() % keys.len();
            let from = address(&keys[k]);
            let floor = state.nonce(&from);
            if next_nonce[k] < floor || next_nonce[k] >= floor + super::mempool::NONCE_WINDOW {
                next_nonce[k] = floor;
            }
            let t = Transfer { from, to: from, amount: 0, fee: 0, nonce: next_nonce[k] };
            next_nonce[k] += 1;
            batch.push(t.sign(&keys[k]));
        }
        for &to in &validators {
            let to = NodeId(to);
            transport.send(to, Wire::Peer(Msg::Txs(batch.clone())).encode());
            if !previous.is_empty() {
                transport.send(to, Wire::Peer(Msg::Txs(previous.clone())).encode());
            }
            transport.send(to, Wire::Peer(Msg::Sync { from: 0 }).encode());
        }
        previous = batch;
    }
}
