//! # gauntlet-backends: promoting a plan to real deployments
//!
//! The plan that passed in simulation runs against real node processes with real faults,
//! and the observed run is compared with the simulated baseline:
//!
//! * [`live::drive`] issues the same operations ([`gauntlet::workload::PlannedOps`]) and the
//!   same concrete fault timeline as the simulation with the same seeds, in wall time, through
//!   the nodes' HTTP APIs ([`gauntlet::HttpApplication`]), polls their states and judges the
//!   expectations with the simulator's [`gauntlet::judge::Judge`];
//! * [`local`]: one process per node, each in its own network namespace ([`netns`]) so that
//!   partitions, loss and delay are real packet rules; crash is SIGKILL, pause SIGSTOP, clock
//!   skew the node clock's control endpoint;
//! * [`compose`]: the nodes as containers of locally built `FROM scratch` images;
//! * [`k8s`]: kubernetes manifests, rendered and validated (applied with `kubectl` where a
//!   cluster is configured);
//! * [`baseline`]: the comparison of a real run with its simulated baseline;
//! * [`clean`]: what a killed run left behind, found by its run id and removed.
//!
//! Backends use real tokio directly, outside any madsim runtime, so they work inside the
//! simulation build of the `gauntlet` CLI. See `docs/PROMOTION.md`.
#![allow(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    reason = "this crate is the real world: processes, sockets and wall time, never inside a simulated run"
)]

pub mod baseline;
pub mod clean;
pub mod compose;
pub mod delay;
pub mod error;
pub mod http;
pub mod k8s;
pub mod live;
pub mod local;
pub mod netns;
pub mod process;
pub mod rules;
pub mod scripted;
pub mod spec;
pub mod sweep_job;
pub mod sys;
pub mod yaml;

pub use error::{BackendError, Result};

/// Every process a run starts carries its run id in this environment variable, so that
/// `gauntlet clean` can find it after the driver was killed.
pub const RUN_ID_ENV: &str = "GAUNTLET_RUN_ID";
/// The node clock's offset at start, in milliseconds (read by the node binaries).
pub const CLOCK_OFFSET_ENV: &str = "GAUNTLET_CLOCK_OFFSET_MS";
/// The node clock's drift at start, in parts per million (read by the node binaries).
pub const CLOCK_DRIFT_ENV: &str = "GAUNTLET_CLOCK_DRIFT_PPM";
