//! The simulated world's integration tests in one binary, a module per area (each is a
//! directory here). `memory` (it measures this process), `probes` (it lists the assertions
//! linked into its binary), `build_modes` and `real_transport` (the real build) are binaries
//! of their own.

#[path = "common/mod.rs"]
mod common;
#[path = "determinism/main.rs"]
mod determinism;
#[path = "faults/main.rs"]
mod faults;
#[path = "hyper/main.rs"]
mod hyper_stack;
#[path = "properties/main.rs"]
mod properties;
#[path = "streams/main.rs"]
mod streams;
#[path = "tonic/main.rs"]
mod tonic_stack;
