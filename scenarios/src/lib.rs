//! # gauntlet-scenarios
//!
//! Reference systems under test and the scenarios that exercise them. Each system's node code
//! is ordinary async Rust on [`gauntlet_sim::NodeContext`], so the same source runs under
//! simulation and as a real binary.
//!
//! * [`gossip`]: gossip-max, the demo system — nodes spread the largest value they have seen,
//!   persist it, and must agree once the network heals.
//! * [`raft`]: raft-kv, a replicated key-value store judged by linearizability.
//! * [`ledger`]: a permissioned chain with wallets, mempools, gossip and blocks.
//! * [`pbkv`]: pb-kv, a primary–backup key-value store written on streams (hyper over
//!   [`gauntlet_sim::net`]'s `TcpListener`/`TcpStream`) instead of the message transport.

pub mod bug_options;
pub mod foreign;
pub mod gossip;
pub mod ledger;
pub mod node_loop;
pub mod pbkv;
pub mod plans;
pub mod raft;
#[cfg(not(madsim))]
pub mod realnode;
pub mod registry;

/// The guide to writing scenarios (`docs/WRITING_SCENARIOS.md`), compiled so its examples are
/// tested.
#[cfg(all(doctest, madsim))]
#[doc = include_str!("../../docs/WRITING_SCENARIOS.md")]
pub struct WritingScenariosDoctests;
