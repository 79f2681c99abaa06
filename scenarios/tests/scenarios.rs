//! The reference systems' integration tests in one binary, a module per system or area (each
//! is a directory here). `memory` (it measures this process), `real_guard` and the real-build
//! tests (`raft_real`, `ledger_real`) are binaries of their own.

#[path = "ledger/main.rs"]
mod ledger;
#[path = "pbkv/main.rs"]
mod pbkv;
#[path = "plans/main.rs"]
mod plans;
#[path = "raft/main.rs"]
mod raft;
#[path = "runner/main.rs"]
mod runner;
