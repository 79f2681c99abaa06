//! Applications that exist only for real backends: binaries nobody here wrote (etcd, Redis…),
//! described by how to launch, address, drive and observe them, with no simulated node.
//!
//! Implement [`RealApplication`] and register `RealOnly(app)` wherever an [`Application`] is
//! expected (the command line: `Apps::with_real(app)`). Plans of it are checked like any other
//! (roles, operations, options, expectations); a simulation refuses it by name, and real
//! backends run it without a simulated baseline (`gauntlet test-real`).
//!
//! ```
//! use gauntlet::real_app::{RealApplication, RealOnly};
//! use gauntlet::{Application, HttpCall, HttpReply, Launch, NodeSetup, OpOutcome, Operation, Placement};
//!
//! /// A key-value server someone else wrote, driven over its HTTP API.
//! struct Kv;
//! impl RealApplication for Kv {
//!     type State = String;
//!     fn name(&self) -> &str { "kv" }
//!     fn roles(&self) -> Vec<String> { vec!["server".into()] }
//!     fn operations(&self) -> Vec<String> { vec!["get".into()] }
//!     fn launch(&self, setup: &NodeSetup, placement: &Placement) -> Launch {
//!         let me = placement.get(&setup.node.name).expect("placed");
//!         Launch::binary("/usr/bin/kv-server").arg(format!("--port={}", me.port_base)).http(me.port_base)
//!     }
//!     fn request(&self, op: &Operation) -> HttpCall { HttpCall::new("GET", format!("/get/{}", op.arg % 4)) }
//!     fn reply(&self, _op: &Operation, status: u16, body: &str) -> HttpReply {
//!         HttpReply::Done(if status == 200 { OpOutcome::ok(body) } else { OpOutcome::info(body) })
//!     }
//!     fn parse_state(&self, body: &str) -> Result<String, String> { Ok(body.to_owned()) }
//! }
//! let app = RealOnly(Kv);
//! assert!(!app.simulated());
//! assert_eq!(app.name(), "kv");
//! ```

use crate::app::{
    Application, ClockControl, HttpApplication, HttpCall, HttpReply, Launch, NodeRef, NodeSetup, OpOutcome, Operation,
    Placement,
};
use crate::expect::ExpectationRegistry;
use gauntlet_sim::NodeContext;
use std::fmt;
use std::future::Future;

/// A system run only on real backends: what Gauntlet needs to launch its binaries, send it
/// operations over HTTP and read each node's state. The optional parts mean what they mean
/// on [`Application`].
pub trait RealApplication: Send + Sync + 'static {
    /// One node's observable state (parsed from its status answer).
    type State: Clone + fmt::Debug + PartialEq + Send + Sync + 'static;

    /// The name plans use in `app.name`.
    fn name(&self) -> &str;
    /// Roles nodes may have.
    fn roles(&self) -> Vec<String>;
    /// Operations workloads may issue.
    fn operations(&self) -> Vec<String>;
    /// How the node in `setup` is started, placed as `placement` says: the binary (an absolute
    /// path for a system installed on the machine, with [`Launch::install_hint`]), its
    /// arguments, ports, readiness path and environment.
    fn launch(&self, setup: &NodeSetup, placement: &Placement) -> Launch;
    /// The request for `op`.
    fn request(&self, op: &Operation) -> HttpCall;
    /// What the answer to `op`'s request means.
    fn reply(&self, op: &Operation, status: u16, body: &str) -> HttpReply;
    /// Parses a node's state from what [`RealApplication::status_call`] answered.
    fn parse_state(&self, body: &str) -> Result<Self::State, String>;

    /// The request that reads a node's state. Default: `GET /status`.
    fn status_call(&self) -> HttpCall {
        HttpCall::new("GET", "/status")
    }
    /// Checks `app.options`. Default: none accepted.
    fn check_options(&self, options: &toml::Table) -> Vec<(String, String)> {
        options.keys().map(|k| (k.clone(), format!("unknown option; {} takes no options", self.name()))).collect()
    }
    /// Whether a node in `state` is ready. Default: always.
    fn ready(&self, _state: &Self::State) -> bool {
        true
    }
    /// A one-line rendering of a state. Default: its `Debug` form.
    fn describe(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
    /// Whether it elects leaders (for `@leader` faults). Default: no.
    fn elects_leaders(&self) -> bool {
        false
    }
    /// The epoch a node in `state` leads in, if it believes it leads. Default: never.
    fn leader_epoch(&self, _state: &Self::State) -> Option<u64> {
        None
    }
    /// Whether the live members' states have converged. Default: all equal.
    fn converged(&self, states: &[(&str, &Self::State)]) -> Result<(), String> {
        crate::app::all_equal(states)
    }
    /// A history entry as an operation of a built-in linearizability model. Default: none.
    fn history_op(&self, _entry: &crate::workload::HistoryEntry) -> Option<crate::lincheck::HistoryOp> {
        None
    }
    /// A history entry as an add or a read of the built-in set check. Default: none.
    fn set_op(&self, _entry: &crate::workload::HistoryEntry) -> Option<crate::lost_writes::SetOp> {
        None
    }
    /// A history entry as an operation on the lock of the built-in `mutual_exclusion` check.
    /// Default: none.
    fn lock_op(&self, _entry: &crate::workload::HistoryEntry) -> Option<crate::mutex::LockOp> {
        None
    }
    /// Whether nodes of `role` serve clients' operations. Default: every role.
    fn serves(&self, _role: &str) -> bool {
        true
    }
    /// How a backend skews a node's clock. Default: [`ClockControl::Faketime`] (a binary
    /// nobody here wrote has no `PUT /clock`); a Go program says
    /// [`ClockControl::Unsupported`].
    fn clock_control(&self) -> ClockControl {
        ClockControl::Faketime
    }
}

/// A [`RealApplication`] as an [`Application`]: its simulated parts refuse (a simulation never
/// reaches them: the runner refuses an application that is not [`Application::simulated`]).
#[derive(Debug, Clone, Default)]
pub struct RealOnly<R>(pub R);

impl<R: RealApplication> Application for RealOnly<R> {
    type State = R::State;
    type Client = ();

    fn name(&self) -> &str {
        self.0.name()
    }
    fn roles(&self) -> Vec<String> {
        self.0.roles()
    }
    fn operations(&self) -> Vec<String> {
        self.0.operations()
    }
    fn check_options(&self, options: &toml::Table) -> Vec<(String, String)> {
        self.0.check_options(options)
    }
    fn simulated(&self) -> bool {
        false
    }
    fn node(&self, _ctx: NodeContext, _setup: NodeSetup) -> impl Future<Output = ()> + 'static + use<R> {
        async {}
    }
    fn client(&self, _ctx: &NodeContext) -> Self::Client {}
    #[allow(clippy::manual_async_fn, reason = "the trait's signature")]
    fn execute(&self, _client: &(), _op: &Operation, _nodes: &[NodeRef]) -> impl Future<Output = OpOutcome> {
        async { OpOutcome::fail("a real-only application has no simulated client") }
    }
    #[allow(clippy::manual_async_fn, reason = "the trait's signature")]
    fn read_state(&self, _client: &(), _node: &NodeRef) -> impl Future<Output = Result<Self::State, String>> {
        async { Err("a real-only application has no simulated node".to_owned()) }
    }
    fn ready(&self, state: &Self::State) -> bool {
        self.0.ready(state)
    }
    fn describe(&self, state: &Self::State) -> String {
        self.0.describe(state)
    }
    fn elects_leaders(&self) -> bool {
        self.0.elects_leaders()
    }
    fn leader_epoch(&self, state: &Self::State) -> Option<u64> {
        self.0.leader_epoch(state)
    }
    fn converged(&self, states: &[(&str, &Self::State)]) -> Result<(), String> {
        self.0.converged(states)
    }
    fn expectations(&self, _registry: &mut ExpectationRegistry<Self>) {}
    fn history_op(&self, entry: &crate::workload::HistoryEntry) -> Option<crate::lincheck::HistoryOp> {
        self.0.history_op(entry)
    }
    fn set_op(&self, entry: &crate::workload::HistoryEntry) -> Option<crate::lost_writes::SetOp> {
        self.0.set_op(entry)
    }
    fn lock_op(&self, entry: &crate::workload::HistoryEntry) -> Option<crate::mutex::LockOp> {
        self.0.lock_op(entry)
    }
    fn probe_scope(&self) -> Vec<String> {
        let name = std::any::type_name::<R>();
        vec![name.split("::").next().unwrap_or(name).to_owned()]
    }
    fn launch(&self, setup: &NodeSetup, placement: &Placement) -> Launch {
        self.0.launch(setup, placement)
    }
}

impl<R: RealApplication> HttpApplication for RealOnly<R> {
    fn request(&self, op: &Operation) -> HttpCall {
        self.0.request(op)
    }
    fn reply(&self, op: &Operation, status: u16, body: &str) -> HttpReply {
        self.0.reply(op, status, body)
    }
    fn status_call(&self) -> HttpCall {
        self.0.status_call()
    }
    fn serves(&self, role: &str) -> bool {
        self.0.serves(role)
    }
    fn clock_control(&self) -> ClockControl {
        self.0.clock_control()
    }
    fn parse_state(&self, body: &str) -> Result<Self::State, String> {
        self.0.parse_state(body)
    }
}

#[cfg(all(test, madsim))]
mod tests {
    use super::*;

    struct Kv;
    impl RealApplication for Kv {
        type State = String;
        fn name(&self) -> &str {
            "kv"
        }
        fn roles(&self) -> Vec<String> {
            vec!["server".into()]
        }
        fn operations(&self) -> Vec<String> {
            vec!["get".into()]
        }
        fn launch(&self, _setup: &NodeSetup, _placement: &Placement) -> Launch {
            Launch::binary("/usr/bin/kv-server")
        }
        fn request(&self, _op: &Operation) -> HttpCall {
            HttpCall::new("GET", "/get")
        }
        fn reply(&self, _op: &Operation, _status: u16, body: &str) -> HttpReply {
            HttpReply::Done(OpOutcome::ok(body))
        }
        fn parse_state(&self, body: &str) -> Result<String, String> {
            Ok(body.to_owned())
        }
    }

    #[test]
    fn a_plan_of_it_validates_but_a_simulation_refuses_it_by_name() {
        let plan = crate::Plan::from_toml(
            "name = \"p\"\n[app]\nname = \"kv\"\n[topology]\nnodes = { server = 3 }\n[run]\nduration = \"1s\"\n",
        )
        .expect("a plan");
        let scenario = crate::Scenario::new(RealOnly(Kv), plan).expect("the plan fits the application");
        let err = crate::run(&scenario).expect_err("no simulated node");
        assert!(err.to_string().contains("application \"kv\" runs on real backends only"), "{err}");
        assert!(err.to_string().contains("gauntlet test-real"), "{err}");
    }
}
