//! Systems Gauntlet did not write, tested on real backends only (no simulated node): each is
//! a [`gauntlet::real_app::RealApplication`] that says how to launch the installed binaries,
//! drive them over their own HTTP API and read each node's state. See `docs/FOREIGN.md`.

pub mod etcd;
pub mod redis;
