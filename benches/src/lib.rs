//! Workloads shared by the benchmarks and their tests: the same 5-node all-to-all exchange
//! written on Gauntlet's world and directly on raw madsim, so the harness's overhead is a
//! ratio measured side by side.

#[cfg(madsim)]
pub mod exchange;
#[cfg(madsim)]
pub mod rpc;
