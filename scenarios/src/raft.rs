//! raft-kv: a key-value store replicated with Raft, written for Gauntlet.
//!
//! * [`core`]: the protocol as a pure state machine (leader election with randomised
//!   timeouts, log replication, commit, persistence of term, vote and log, recovery, reads
//!   through the leader with a read index, client redirects);
//! * [`driver`]: runs the core on a node's transport, disk and clocks, in both builds;
//! * [`app`]: the Gauntlet application (operations `get`, `put`, `cas`; expectations
//!   `linearizable` and `one_leader_per_term`);
//! * [`bugs`]: five planted bugs behind `app.options.bugs`.

pub mod app;
pub mod bugs;
pub mod core;
pub mod driver;
pub mod history;

pub use app::RaftKv;
