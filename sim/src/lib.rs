//! # gauntlet-sim: the deterministic world
//!
//! A run of a distributed system as a pure function of a seed. This crate gives system-under-test
//! code a small environment — a [`NodeContext`] with a [`Transport`], a [`Disk`], a [`Clock`] and
//! a random stream — and implements it twice:
//!
//! * **simulated** (`--cfg madsim`, the default in this workspace): nodes run on madsim's seeded
//!   scheduler; every message goes through a fault model (latency distributions, loss,
//!   duplication, reordering, partitions and one-way cuts); nodes crash, restart, pause and see
//!   skewed clocks; disks lose unsynced writes; every event lands in a bounded, hashed [`Trace`];
//! * **real** (`cargo real-build`): the same API over TCP, files with `fsync`, and the OS clock.
//!
//! ```
//! use gauntlet_sim::{Fault, LinkConfig, NodeId, NodeSpec, World};
//! use std::time::Duration;
//!
//! // Two nodes ping each other every 10 ms; we cut the link for a second.
//! let ping = |ctx: gauntlet_sim::NodeContext| async move {
//!     let t = ctx.transport();
//!     let peer = NodeId(1 - ctx.id().0);
//!     gauntlet_sim::time::spawn({
//!         let t = t.clone();
//!         async move { loop { t.send(peer, &b"ping"[..]); gauntlet_sim::time::sleep(Duration::from_millis(10)).await; } }
//!     });
//!     loop { t.recv().await; }
//! };
//! let world = World::builder().seed(42).node(NodeSpec::new("a"), ping).node(NodeSpec::new("b"), ping).build().unwrap();
//! let run = || world.run(|sim| async move {
//!     sim.sleep(Duration::from_secs(1)).await;
//!     sim.apply(&Fault::Partition { groups: vec![vec!["a".into()], vec!["b".into()]] }).unwrap();
//!     sim.sleep(Duration::from_secs(1)).await;
//!     sim.apply(&Fault::Heal).unwrap();
//!     sim.sleep(Duration::from_secs(1)).await;
//! }).unwrap();
//! let (first, second) = (run(), run());
//! assert_eq!(first.trace_hash(), second.trace_hash()); // same seed, same run
//! assert!(first.trace.counts_by_kind()["drop"] > 100);  // the partition dropped pings
//! ```
//!
//! Seeds come from `SIM_SEED` (decimal or `0x` hex) or are drawn and printed before the run;
//! `CHAOS_SEED` overrides the chaos stream alone; `SIM_CHECK_DETERMINISM=1` runs every seed twice
//! and reports the first divergent event. See `docs/ARCHITECTURE.md` for the design.

// Built with neither mode's cfg, the simulation would silently be configured out (and a user
// would meet `unresolved import gauntlet::SimDeployer`); say what to add instead.
#[cfg(not(any(madsim, gauntlet_real, fuzzing, doc)))]
compile_error!(concat!(
    "Gauntlet needs to know its build mode.\n",
    "For simulation (tests, a gauntlet command line), add to your crate's .cargo/config.toml:\n\n",
    "    [build]\n",
    "    rustflags = [\"--cfg\", \"madsim\"]\n",
    "    rustdocflags = [\"--cfg\", \"madsim\"]\n\n",
    "It must reach every crate, madsim's own included, so it cannot be a cargo feature; ",
    "`gauntlet init` writes it. For the real build of node binaries, pass `--cfg gauntlet_real` ",
    "instead (`cargo real-build`). A RUSTFLAGS environment variable overrides both. See docs/YOUR_SYSTEM.md."
));

pub mod buggify;
pub mod clock;
pub mod context;
pub mod disk;
pub mod facts;
pub mod fault;
pub mod link;
pub mod log;
pub mod net;
pub mod node;
pub mod probes;
pub mod seed;
pub mod time;
pub mod trace;

pub mod determinism;
#[cfg(madsim)]
mod sockets;
#[cfg(madsim)]
mod state;
#[cfg(madsim)]
mod stream;
#[cfg(madsim)]
pub mod world;

pub use context::{Clock, NodeContext};
pub use disk::{Disk, DiskError};
pub use facts::Fact;
pub use fault::{Fault, FaultSchedule, ScheduledFault};
pub use link::{Latency, LinkConfig};
pub use net::{Message, ReplyTo, RequestError, Transport};
pub use node::{NodeId, NodeSpec, NodeStatus};
pub use probes::{ProbeHits, ProbeKind, Probes};
pub use seed::{SeedError, Seeds};
#[cfg(madsim)]
pub use stream::TcpConfig;
pub use trace::{EventKind, OpPhase, TcpEvent, Trace, TraceEvent};
#[cfg(madsim)]
pub use world::{RunError, RunReport, Sim, World, WorldBuilder};

/// What the macros of this crate expand to; not an API.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
}

/// The user's guide (`docs/GUIDE.md`), compiled so its examples are tested.
#[cfg(all(doctest, madsim))]
#[doc = include_str!("../../docs/GUIDE.md")]
pub struct GuideDoctests;

/// Panics unless this is a real (non-simulation) build. Real node binaries call it first thing
/// in `main`, so a simulation-built binary can never be started as a real node by mistake.
pub fn assert_real_build() {
    if cfg!(madsim) {
        panic!("this binary was built for simulation (--cfg madsim); build real nodes with `cargo real-build`");
    }
}
