//! ledger: a small permissioned chain written for Gauntlet, with wallets, a mempool, gossip and
//! blocks.
//!
//! * [`tx`]: wallets with ed25519 keys derived from their index, signed transfers with nonces;
//! * [`state`]: balances and nonces, the transfer rules, supply conservation;
//! * [`mempool`]: a bounded, fee-prioritised pool that evicts the cheapest;
//! * [`chain`]: blocks, votes, Streamlet's notarization, finality and fork choice;
//! * [`validator`]: a node as a pure state machine (epochs from its clock, rotating leaders,
//!   votes, batched gossip, anti-entropy, catch-up), and the five planted bugs;
//! * [`driver`]: runs it on a node's transport, disk and clock, in both builds (blocks, votes
//!   and accepted transfers persisted and recovered), and the `flooder` role;
//! * [`app`]: the Gauntlet application (roles `validator`, `executor`, `flooder`; valid and
//!   invalid operations);
//! * [`checks`]: its expectations (agreement, supply, inclusion, balances, timing, mempool
//!   bounds and convergence, liveness).
//!
//! The chain and its rules are described in `docs/LEDGER.md`.

pub mod app;
pub mod chain;
pub mod checks;
pub mod driver;
pub mod mempool;
pub mod state;
pub mod tx;
pub mod validator;

pub use app::Ledger;
