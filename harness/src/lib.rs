//! # gauntlet
//!
//! The library users depend on. Today it re-exports the deterministic world
//! ([`gauntlet_sim`]); plans, the runner, expectations and the observation runtime build on it.

pub use gauntlet_sim as sim;
