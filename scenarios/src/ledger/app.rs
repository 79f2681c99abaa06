//! The ledger as a Gauntlet [`Application`]: roles `validator`, `executor` and `flooder`;
//! operations that pay between funded wallets, read balances and status, and offer invalid
//! transfers of every kind; judged by the checks in [`super::checks`].
//!
//! Options (`app.options`): `wallets` (client wallets, default 16), `balance` (each wallet's
//! starting coins, default 1 000 000), `slot` (epoch length, default `"200ms"`), `mempool`
//! (bound, default 1000), `max_block_txs` (default 200), `clock_tolerance` (how far a
//! proposal may be from a voter's clock, default `"500ms"`), `flood_rate` (a flooder's
//! transfers per second, default 500) and `bugs`.

use super::driver::{self, Answer, Kind, NodeConfig, Query, Wire};
use super::tx::{address, wallet, Transfer};
use super::validator::{short, Bugs, Config, BUG_NAMES};
use gauntlet::expect::ExpectationRegistry;
use gauntlet::sim::{NodeContext, Transport};
use gauntlet::{Application, Launch, NodeRef, NodeSetup, OpOutcome, Operation};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

/// How long a client waits for one request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

/// The key index of the unfunded address overdrafts pay (a payee with nothing, so a wrapped
/// amount shows as minted coins).
pub const OVERDRAFT_PAYEE: u32 = 5000;

/// Operations that must be refused: a history showing one accepted is a violation.
pub const INVALID_OPS: [&str; 4] = ["bad_signature", "overdraft", "bad_nonce", "malformed"];

/// The ledger application.
#[derive(Debug, Clone, Default)]
pub struct Ledger;

/// The ledger's options, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Client wallets.
    pub wallets: u32,
    /// Starting balance of every wallet.
    pub balance: u64,
    /// Protocol configuration (validators filled in by each node).
    pub cfg: Config,
    /// A flooder's transfers per second.
    pub flood_rate: u32,
    /// Planted bugs.
    pub bugs: Bugs,
}

const KEYS: [&str; 8] =
    ["bugs", "wallets", "balance", "slot", "mempool", "max_block_txs", "clock_tolerance", "flood_rate"];

impl Options {
    /// Parses `app.options`; every problem is listed with its key.
    pub fn parse(options: &toml::Table) -> Result<Options, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let mut o =
            Options { wallets: 16, balance: 1_000_000, cfg: Config::default(), flood_rate: 500, bugs: Bugs::default() };
        let int = |k: &str, lo: i64, hi: i64, problems: &mut Vec<(String, String)>| -> Option<i64> {
            match options.get(k)? {
                toml::Value::Integer(i) if (lo..=hi).contains(i) => Some(*i),
                other => {
                    problems.push((k.to_owned(), format!("{other} is not an integer in {lo}..={hi}")));
                    None
                }
            }
        };
        let ms = |k: &str, problems: &mut Vec<(String, String)>| -> Option<u64> {
            let v = options.get(k)?;
            match v.as_str().map(humantime_serde::re::humantime::parse_duration) {
                Some(Ok(d)) if d >= Duration::from_millis(1) => Some(d.as_millis() as u64),
                _ => {
                    problems.push((k.to_owned(), format!("{v} is not a duration of at least 1ms, such as \"200ms\"")));
                    None
                }
            }
        };
        if let Some(v) = int("wallets", 2, 1000, &mut problems) {
            o.wallets = v as u32;
        }
        if let Some(v) = int("balance", 1, i64::MAX, &mut problems) {
            o.balance = v as u64;
        }
        if let Some(v) = int("mempool", 1, 1_000_000, &mut problems) {
            o.cfg.mempool = v as usize;
        }
        if let Some(v) = int("max_block_txs", 1, 100_000, &mut problems) {
            o.cfg.max_block_txs = v as usize;
        }
        if let Some(v) = int("flood_rate", 1, 100_000, &mut problems) {
            o.flood_rate = v as u32;
        }
        if let Some(v) = ms("slot", &mut problems) {
            o.cfg.epoch_ms = v;
        }
        if let Some(v) = ms("clock_tolerance", &mut problems) {
            o.cfg.clock_tolerance_ms = v;
        }
        match options.get("bugs") {
            None => {}
            Some(toml::Value::Array(list)) => {
                let names: Option<Vec<&str>> = list.iter().map(toml::Value::as_str).collect();
                match names.map(Bugs::parse) {
                    Some(Ok(b)) => o.bugs = b,
                    Some(Err(e)) => problems.push(("bugs".into(), e)),
                    None => problems.push(("bugs".into(), format!("bug names are strings: {}", BUG_NAMES.join(", ")))),
                }
            }
            Some(other) => problems.push(("bugs".into(), format!("{other} is not a list of bug names"))),
        }
        for k in options.keys().filter(|k| !KEYS.contains(&k.as_str())) {
            problems.push((k.clone(), format!("unknown option; the ledger knows: {}", KEYS.join(", "))));
        }
        if problems.is_empty() {
            Ok(o)
        } else {
            Err(problems)
        }
    }

    /// Parses options already checked by [`Application::check_options`].
    pub fn of(options: &toml::Table) -> Options {
        Options::parse(options).unwrap_or_else(|_| Options::parse(&toml::Table::new()).expect("defaults parse"))
    }
}

/// A client: a transport, and the wallets with an operation in flight (one at a time per
/// wallet, so nonces do not race).
#[derive(Clone)]
pub struct LedgerClient {
    transport: Transport,
    /// Per wallet, the nonce after the last transfer a node acknowledged: a wallet counts its
    /// own nonces (a node that has not yet heard of an acknowledged transfer would hand its
    /// nonce out again), and starts again from a node's answer when one refuses its nonce.
    next: Rc<RefCell<BTreeMap<u32, u64>>>,
    /// Client wallets in the ledger (learned from the first status read; 0 until then).
    wallets: Rc<Cell<u32>>,
    busy: Rc<RefCell<BTreeSet<u32>>>,
}

/// Holds a wallet for one operation.
struct Hold {
    busy: Rc<RefCell<BTreeSet<u32>>>,
    wallet: u32,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.busy.borrow_mut().remove(&self.wallet);
    }
}

/// FNV-1a: where a workload's users start among the wallets (stable across runs).
fn offset(workload: &str) -> u64 {
    workload.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

impl LedgerClient {
    fn wallet_of(&self, op: &Operation, wallets: u32) -> u32 {
        ((offset(&op.workload) + u64::from(op.user)) % u64::from(wallets)) as u32
    }

    /// The ledger's client wallets, asked of `node` once (its genesis wallets, less the
    /// flooder's).
    async fn wallets(&self, node: &NodeRef) -> Result<u32, String> {
        if self.wallets.get() == 0 {
            match self.query(node, Query::Status).await? {
                Answer::Status(s) => self.wallets.set((s.balances.len() as u32).saturating_sub(driver::FLOOD_KEYS)),
                _ => return Err("garbled status".into()),
            }
        }
        Ok(self.wallets.get().max(2))
    }

    fn hold(&self, wallet: u32) -> Option<Hold> {
        self.busy.borrow_mut().insert(wallet).then(|| Hold { busy: self.busy.clone(), wallet })
    }

    async fn query(&self, node: &NodeRef, q: Query) -> Result<Answer, String> {
        let bytes = self
            .transport
            .request(node.id, Wire::Query(q).encode(), REQUEST_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        match Wire::decode(&bytes) {
            Some(Wire::Answer(a)) => Ok(a),
            _ => Err("garbled answer".into()),
        }
    }

    async fn submit(&self, node: &NodeRef, bytes: Vec<u8>) -> OpOutcome {
        match self.transport.request(node.id, Wire::Submit(bytes).encode(), REQUEST_TIMEOUT).await {
            Ok(answer) => match Wire::decode(&answer) {
                Some(Wire::Submitted(Ok(id))) => OpOutcome::ok(format!("{:016x}", short(&id))),
                Some(Wire::Submitted(Err(e))) => OpOutcome::fail(e),
                _ => OpOutcome::info("garbled answer"),
            },
            Err(e) => OpOutcome::info(e.to_string()),
        }
    }
}

/// The nodes clients talk to: validators and executors.
fn servers(nodes: &[NodeRef]) -> Vec<&NodeRef> {
    nodes.iter().filter(|n| n.role != "flooder").collect()
}

impl Application for Ledger {
    type State = super::validator::Status;
    type Client = LedgerClient;

    fn name(&self) -> &str {
        "ledger"
    }

    fn bugs(&self) -> Vec<String> {
        crate::ledger::validator::BUG_NAMES.iter().map(|b| (*b).to_owned()).collect()
    }
    /// Only this system's sometimes-assertions: the crate links gossip, raft-kv and the ledger.
    fn probe_scope(&self) -> Vec<String> {
        vec![module_path!().trim_end_matches("::app").to_owned()]
    }
    fn roles(&self) -> Vec<String> {
        vec!["executor".into(), "flooder".into(), "validator".into()]
    }
    fn operations(&self) -> Vec<String> {
        ["transfer", "broadcast", "balance", "status", "bad_signature", "overdraft", "bad_nonce", "malformed"]
            .map(String::from)
            .to_vec()
    }
    fn check_options(&self, options: &toml::Table) -> Vec<(String, String)> {
        Options::parse(options).err().unwrap_or_default()
    }
    fn node(&self, ctx: NodeContext, setup: NodeSetup) -> impl Future<Output = ()> + 'static + use<> {
        let o = Options::of(&setup.options);
        let kind = match setup.node.role.as_str() {
            "validator" => Kind::Validator,
            "flooder" => Kind::Flooder { rate: o.flood_rate },
            _ => Kind::Executor,
        };
        let node = NodeConfig { cfg: o.cfg, bugs: o.bugs, genesis: driver::genesis(o.wallets, o.balance), kind };
        driver::run(ctx, node)
    }
    fn client(&self, ctx: &NodeContext) -> LedgerClient {
        LedgerClient { transport: ctx.transport(), next: Rc::default(), wallets: Rc::default(), busy: Rc::default() }
    }
    async fn execute(&self, c: &LedgerClient, op: &Operation, nodes: &[NodeRef]) -> OpOutcome {
        let servers = servers(nodes);
        if servers.is_empty() {
            return OpOutcome::fail("no nodes");
        }
        let target = servers[((op.arg >> 24) % servers.len() as u64) as usize];
        let wallets = match c.wallets(target).await {
            Ok(w) => w,
            Err(e) => return OpOutcome::fail(format!("cannot reach {}: {e}", target.name)),
        };
        match op.op.as_str() {
            "balance" => {
                let w = (op.arg % u64::from(wallets)) as u32;
                match c.query(target, Query::Balance(address(&wallet(w)))).await {
                    Ok(Answer::Balance { balance, height }) => OpOutcome::ok(format!("w{w} {balance} @{height}")),
                    Ok(_) => OpOutcome::info("garbled answer"),
                    Err(e) => OpOutcome::fail(e),
                }
            }
            "status" => match c.query(target, Query::Status).await {
                Ok(Answer::Status(s)) => OpOutcome::ok(format!("final {}", s.final_height)),
                Ok(_) => OpOutcome::info("garbled answer"),
                Err(e) => OpOutcome::fail(e),
            },
            "malformed" => {
                let len = (op.arg % 200) as usize;
                let bytes: Vec<u8> = (0..len).map(|i| (op.arg.rotate_left(i as u32 % 64) >> 3) as u8).collect();
                c.submit(target, bytes).await
            }
            _ => {
                let w = c.wallet_of(op, wallets);
                let Some(_hold) = c.hold(w) else { return OpOutcome::fail("wallet busy") };
                let key = wallet(w);
                let from = address(&key);
                let queried = match c.query(target, Query::Nonce(from)).await {
                    Ok(Answer::Nonce(n)) => n,
                    Ok(_) => return OpOutcome::fail("garbled nonce"),
                    Err(e) => return OpOutcome::fail(format!("no nonce: {e}")),
                };
                let nonce = queried.max(c.next.borrow().get(&w).copied().unwrap_or(0));
                let to_index = (u64::from(w) + 1 + (op.arg >> 8) % u64::from(wallets - 1)) % u64::from(wallets);
                let to = address(&wallet(to_index as u32));
                let (amount, fee) = (1 + (op.arg >> 16) % 100, 1 + (op.arg >> 32) % 10);
                let mut t = Transfer { from, to, amount, fee, nonce };
                let tx = match op.op.as_str() {
                    "bad_signature" => t.sign(&wallet(w + 1)),
                    "overdraft" => {
                        // More than anyone has, to a fresh address: amount + fee wraps to a
                        // few coins.
                        t.to = address(&wallet(OVERDRAFT_PAYEE));
                        t.amount = u64::MAX - (op.arg % 3);
                        t.fee = 1 + (op.arg >> 4) % 5;
                        t.sign(&key)
                    }
                    "bad_nonce" => {
                        // Past every mempool's window. (A nonce one below the node's next free
                        // one is not surely bad: a switch of forks can free it again.)
                        t.nonce = queried + 2 * super::mempool::NONCE_WINDOW + op.arg % 100;
                        t.sign(&key)
                    }
                    _ => t.sign(&key),
                };
                let bytes = tx.encode();
                // An accepted transfer's result names it, its wallet and nonce, and the node
                // that accepted it: "<id> w<wallet> n<nonce> by <node>".
                let label = |o: OpOutcome, by: &str| match o {
                    OpOutcome::Ok(id) => {
                        if op.op == "transfer" || op.op == "broadcast" {
                            c.next.borrow_mut().insert(w, tx.transfer.nonce + 1);
                        }
                        OpOutcome::ok(format!("{id} w{w} n{} by {by}", tx.transfer.nonce))
                    }
                    OpOutcome::Fail(why) => {
                        if why.contains("nonce") {
                            c.next.borrow_mut().remove(&w);
                        }
                        OpOutcome::Fail(why)
                    }
                    other => other,
                };
                if op.op == "broadcast" {
                    // The same transfer to two nodes, the second a little later.
                    let second = servers[((op.arg >> 24).wrapping_add(1) % servers.len() as u64) as usize];
                    let jitter = Duration::from_millis((op.arg >> 40) % 50);
                    let a = c.submit(target, bytes.clone());
                    let b = async {
                        gauntlet::sim::time::sleep(jitter).await;
                        c.submit(second, bytes.clone()).await
                    };
                    return match futures::join!(a, b) {
                        (o @ OpOutcome::Ok(_), _) => label(o, &target.name),
                        (_, o @ OpOutcome::Ok(_)) => label(o, &second.name),
                        (o @ OpOutcome::Info(_), _) | (_, o @ OpOutcome::Info(_)) => o,
                        (fail, _) => label(fail, &target.name),
                    };
                }
                label(c.submit(target, bytes).await, &target.name)
            }
        }
    }
    async fn read_state(&self, c: &LedgerClient, node: &NodeRef) -> Result<Self::State, String> {
        match c.query(node, Query::Status).await? {
            Answer::Status(s) => Ok(*s),
            _ => Err("garbled status".into()),
        }
    }
    fn ready(&self, s: &Self::State) -> bool {
        s.final_height > 0
    }
    fn describe(&self, s: &Self::State) -> String {
        let who = s.validator.map_or_else(|| "executor".to_owned(), |v| format!("validator {v}"));
        format!(
            "{who} epoch {} head {}@{} final {} mempool {} evictions {} supply {}",
            s.epoch, s.head.height, s.head.epoch, s.final_height, s.mempool, s.evictions, s.supply
        )
    }
    fn converged(&self, states: &[(&str, &Self::State)]) -> Result<(), String> {
        super::checks::same_final_chain(states)
    }
    fn expectations(&self, r: &mut ExpectationRegistry<Self>) {
        super::checks::register(r);
    }
    fn launch(&self, setup: &NodeSetup, _placement: &gauntlet::Placement) -> Launch {
        Launch::binary("ledger-node").arg("--name").arg(&setup.node.name)
    }
}
