//! The library's integration tests in one binary, a module per area (each is a directory
//! here). `probes` (it lists the assertions linked into its binary) and `observe_real` (the
//! real build) are binaries of their own.

#[path = "bundle/main.rs"]
mod bundle;
#[path = "facts/main.rs"]
mod facts;
#[path = "lincheck/main.rs"]
mod lincheck;
#[path = "linearizable/main.rs"]
mod linearizable;
#[path = "observe/main.rs"]
mod observe;
#[path = "plan_props/main.rs"]
mod plan_props;
#[path = "runner/main.rs"]
mod runner;
#[path = "test_run/main.rs"]
mod test_run;
#[path = "workloads/main.rs"]
mod workloads;
