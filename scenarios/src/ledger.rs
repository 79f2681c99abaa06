//! ledger: a small permissioned chain (issue 6, in progress). What exists so far: wallets with
//! ed25519 keys derived from their index and signed transfers ([`tx`]); balances and nonces
//! with supply conservation ([`state`]); the bounded, fee-prioritised mempool ([`mempool`]);
//! blocks, votes and Streamlet's notarization and finality rules ([`chain`]). The validator
//! core (epochs from the clock, proposing, voting, persistence), the node program, the
//! expectations, the plans and the real binary come next.

pub mod chain;
pub mod mempool;
pub mod state;
pub mod tx;
pub mod validator;
