//! ledger: a small permissioned chain (issue 6, in progress). What exists so far is the
//! transaction layer: wallets with ed25519 keys derived from their index ([`tx`]), balances
//! and nonces with supply conservation ([`state`]), and the bounded, fee-prioritised mempool
//! ([`mempool`]). Blocks, slots, finality, the node program and the plans come next.

pub mod mempool;
pub mod state;
pub mod tx;
