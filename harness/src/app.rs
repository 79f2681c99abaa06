//! [`Application`]: how Gauntlet is generic over the system under test. An application says
//! how a node runs, how a client issues an operation, how a node's state is read for
//! observation, when a node is ready, and how the node is launched for real.
//!
//! A whole application, for reference (a register every client write replaces):
//!
//! ```
//! use gauntlet::{Application, Launch, NodeRef, NodeSetup, OpOutcome, Operation, Placement};
//! use gauntlet::sim::{NodeContext, Transport};
//! use std::time::Duration;
//!
//! struct Register;
//! impl Application for Register {
//!     type State = u64;
//!     type Client = Transport;
//!     fn name(&self) -> &str { "register" }
//!     fn roles(&self) -> Vec<String> { vec!["replica".into()] }
//!     fn operations(&self) -> Vec<String> { vec!["write".into()] }
//!     fn node(&self, ctx: NodeContext, _: NodeSetup) -> impl std::future::Future<Output = ()> + 'static + use<> {
//!         async move {
//!             let (t, mut value) = (ctx.transport(), 0u64);
//!             loop {
//!                 let m = t.recv().await;
//!                 if let Ok(b) = <[u8; 8]>::try_from(&m.body[..]) { value = u64::from_le_bytes(b); }
//!                 if let Some(r) = m.reply_to { t.reply(r, value.to_le_bytes().to_vec()); }
//!             }
//!         }
//!     }
//!     fn client(&self, ctx: &NodeContext) -> Transport { ctx.transport() }
//!     async fn execute(&self, t: &Transport, op: &Operation, nodes: &[NodeRef]) -> OpOutcome {
//!         let to = nodes[op.user as usize % nodes.len()].id;
//!         match t.request(to, op.arg.to_le_bytes().to_vec(), Duration::from_millis(500)).await {
//!             Ok(_) => OpOutcome::ok(""),
//!             Err(e) => OpOutcome::info(e.to_string()),
//!         }
//!     }
//!     async fn read_state(&self, t: &Transport, node: &NodeRef) -> Result<u64, String> {
//!         let b = t.request(node.id, Vec::new(), Duration::from_millis(200)).await.map_err(|e| e.to_string())?;
//!         Ok(u64::from_le_bytes(b[..8].try_into().map_err(|_| "short reply")?))
//!     }
//!     fn launch(&self, s: &NodeSetup, _: &Placement) -> Launch { Launch::binary("register-node").arg(&s.node.name) }
//! }
//! ```

use crate::expect::ExpectationRegistry;
use gauntlet_sim::{NodeContext, NodeId};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;

/// A node as the harness knows it: id, name and role. The observation runtime's source type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeRef {
    /// Its id in the deployment (the transport address).
    pub id: NodeId,
    /// Its unique name.
    pub name: String,
    /// Its role.
    pub role: String,
}

/// What a node is started with.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSetup {
    /// The node.
    pub node: NodeRef,
    /// The plan's `app.options`.
    pub options: toml::Table,
    /// Which build of the node's program to run: `None` for the first of
    /// [`Application::versions`] (the default), or one of them a script upgraded the node to
    /// (`sut.upgrade(node, version)`, see `docs/SCRIPTING.md`).
    pub version: Option<String>,
}

impl NodeSetup {
    /// A setup for `node` with `options`, on the default version.
    pub fn new(node: NodeRef, options: toml::Table) -> NodeSetup {
        NodeSetup { node, options, version: None }
    }
}

/// One client operation, as drawn by a workload from the seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The workload that issued it.
    pub workload: String,
    /// Operation name, from the workload's mix.
    pub op: String,
    /// The logical user issuing it, in `0..users`.
    pub user: u32,
    /// Sequence number within the workload, from 0.
    pub id: u64,
    /// A random argument drawn from the workload's stream (keys, values, amounts).
    pub arg: u64,
}

/// How an operation ended, in Jepsen's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutcome {
    /// It took effect; the text is its result.
    Ok(String),
    /// It certainly did not take effect.
    Fail(String),
    /// Unknown (timeout, broken connection): it may or may not have taken effect.
    Info(String),
}

impl OpOutcome {
    /// A success with a result.
    pub fn ok(result: impl Into<String>) -> Self {
        OpOutcome::Ok(result.into())
    }
    /// A definite failure.
    pub fn fail(why: impl Into<String>) -> Self {
        OpOutcome::Fail(why.into())
    }
    /// An indeterminate outcome.
    pub fn info(why: impl Into<String>) -> Self {
        OpOutcome::Info(why.into())
    }
}

/// How a node is started as a real process (used when a plan is promoted to a real backend).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Launch {
    /// The executable's name (built with `cargo real-build`).
    pub binary: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Ports the node listens on (the HTTP API's among them).
    pub ports: Vec<u16>,
    /// The port of the node's HTTP API (`/healthz`, `/status`, operations).
    pub http_port: u16,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
    /// The path that answers 200 once the node is ready (default, when empty: `/healthz`).
    pub health_path: String,
    /// What to install when `binary` is missing (e.g. "Debian's etcd-server package"), for a
    /// binary nobody builds here.
    pub install_hint: String,
    /// A readiness check other than `GET health_path` (a RESP `PING`): see
    /// [`Launch::health_call`].
    pub health_request: Option<HttpCall>,
    /// Files written into the node's data directory before its first start, by name (a
    /// configuration file the server insists on, such as Redis Sentinel's). A file already
    /// there is kept: servers that rewrite their configuration keep what they wrote.
    pub files: BTreeMap<String, String>,
}

impl Launch {
    /// Launches `binary` with no arguments.
    pub fn binary(name: impl Into<String>) -> Self {
        Launch { binary: name.into(), ..Launch::default() }
    }
    /// Adds an argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }
    /// Adds a listening port.
    pub fn port(mut self, p: u16) -> Self {
        self.ports.push(p);
        self
    }
    /// Sets the HTTP API's port (also added to the listening ports).
    pub fn http(mut self, p: u16) -> Self {
        self.http_port = p;
        self.ports.push(p);
        self
    }
    /// Sets an environment variable.
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.insert(k.into(), v.into());
        self
    }
    /// Sets the path that answers 200 once the node is ready.
    pub fn health(mut self, path: impl Into<String>) -> Self {
        self.health_path = path.into();
        self
    }
    /// Sets the readiness check to a request of its own (it must answer status 200 once the
    /// node is ready), e.g. `HttpCall::resp([vec!["PING"]])` for a server without HTTP.
    pub fn health_call(mut self, call: HttpCall) -> Self {
        self.health_request = Some(call);
        self
    }
    /// Adds a file written into the node's data directory before its first start.
    pub fn file(mut self, name: impl Into<String>, contents: impl Into<String>) -> Self {
        self.files.insert(name.into(), contents.into());
        self
    }
    /// The readiness check: the [`Launch::health_call`] if set, else `GET` the health path.
    pub fn readiness(&self) -> HttpCall {
        self.health_request.clone().unwrap_or_else(|| HttpCall::new("GET", self.health_path()))
    }
    /// Says what to install when the binary is missing.
    pub fn install_hint(mut self, hint: impl Into<String>) -> Self {
        self.install_hint = hint.into();
        self
    }
    /// The readiness path (`/healthz` unless set).
    pub fn health_path(&self) -> &str {
        if self.health_path.is_empty() {
            "/healthz"
        } else {
            &self.health_path
        }
    }
}

/// Where a backend puts one node: the address it binds, the name or address its peers reach it
/// by, the first of the ports it may use, and its data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The node.
    pub node: NodeRef,
    /// The host the node binds to (`0.0.0.0` in a container or namespace, `127.0.0.1` on loopback).
    pub bind: String,
    /// The host its peers and clients reach it at (an IP address or a DNS name).
    pub host: String,
    /// The node's ports are `port_base`, `port_base + 1`, … (the application picks how many).
    pub port_base: u16,
    /// The node's data directory, inside the node's file system.
    pub data_dir: String,
}

/// Where a backend puts every initial member: what an application needs to write the command
/// lines of a real cluster ([`Application::launch`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    /// Every member, in member order.
    pub nodes: Vec<Placed>,
}

impl Placement {
    /// The placement of the node named `name`.
    pub fn get(&self, name: &str) -> Option<&Placed> {
        self.nodes.iter().find(|p| p.node.name == name)
    }
}

/// One request a real client sends a node for an operation, a status read or a health check:
/// an HTTP/1.1 request (the default), or Redis's protocol (RESP) commands for a server that
/// speaks no HTTP ([`HttpCall::resp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// `GET`, `PUT`, `POST`…
    pub method: String,
    /// The path and query, from `/`.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// RESP commands sent instead of HTTP, in one pipeline on one connection, when not empty
    /// (`method`, `path`, `headers` and `body` are then unused). The answer comes back as
    /// status 200 with the replies as JSON (one reply: the value itself; several: an array;
    /// simple and bulk strings as strings, integers as numbers, nil as `null`), or status 500
    /// with the text of the first error reply (`READONLY …`).
    pub resp: Vec<Vec<String>>,
}

impl HttpCall {
    /// A request with no headers or body.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        HttpCall { method: method.into(), path: path.into(), headers: Vec::new(), body: Vec::new(), resp: Vec::new() }
    }
    /// RESP commands (each a command and its arguments), sent in one pipeline.
    ///
    /// ```
    /// let add = gauntlet::HttpCall::resp([vec!["SADD", "s", "7"], vec!["WAIT", "1", "100"]]);
    /// assert_eq!(add.resp[1][0], "WAIT");
    /// ```
    pub fn resp<C, A>(commands: C) -> Self
    where
        C: IntoIterator<Item = Vec<A>>,
        A: Into<String>,
    {
        let resp = commands.into_iter().map(|c| c.into_iter().map(Into::into).collect()).collect();
        HttpCall { resp, ..HttpCall::new("", "") }
    }
    /// Whether this is a RESP call.
    pub fn is_resp(&self) -> bool {
        !self.resp.is_empty()
    }
    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// What an HTTP answer means for an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpReply {
    /// The operation ended so.
    Done(OpOutcome),
    /// This node cannot serve it; try the node with this id (or, if `None`, the next one).
    Elsewhere(Option<u32>),
    /// This step is done and the operation goes on: send this call next, to the node that
    /// answered (an operation of several requests: grant a lease, then take a lock with it).
    /// Its answer comes back to `reply` like the first one's; the application tells the steps
    /// apart by its client's own state or by the answer. Once a step has been answered, a later
    /// step that cannot be delivered leaves the operation's outcome unknown.
    Then(HttpCall),
}

/// How a real backend skews a node's clock for the plan's clock-skew faults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockControl {
    /// The node serves Gauntlet's `PUT /clock` and reads `GAUNTLET_CLOCK_OFFSET_MS` and
    /// `GAUNTLET_CLOCK_DRIFT_PPM` at start (Gauntlet's own node binaries, through
    /// `gauntlet_sim::Clock`).
    Api,
    /// The node runs under Debian's libfaketime (`LD_PRELOAD`), whose offset and rate the
    /// backend rewrites in a file the library rereads: for a dynamically linked program that
    /// reads the clock through libc (C, C++, most interpreters). Not for Go programs, whose
    /// clock reads bypass libc.
    Faketime,
    /// The node's clock cannot be skewed: a plan with clock skew is refused, with this reason.
    Unsupported(String),
}

/// An application that can be promoted to real deployments: its nodes serve an HTTP API, and
/// this says how an operation becomes a request, what an answer means and how a node's state
/// is read. Backends need nothing else to drive and observe a real cluster.
pub trait HttpApplication: Application {
    /// The request for `op`.
    fn request(&self, op: &Operation) -> HttpCall;
    /// What the answer `(status, body)` to `op`'s request means. A transport error is always
    /// an unknown outcome and never reaches this.
    fn reply(&self, op: &Operation, status: u16, body: &str) -> HttpReply;
    /// The path that answers a node's state as JSON. Default: `/status`.
    fn status_path(&self) -> &str {
        "/status"
    }
    /// The request that reads a node's state. Default: `GET` [`HttpApplication::status_path`].
    fn status_call(&self) -> HttpCall {
        HttpCall::new("GET", self.status_path())
    }
    /// Parses a node's state from the body `status_path` answered.
    fn parse_state(&self, body: &str) -> Result<Self::State, String>;
    /// Whether nodes of `role` serve clients' operations (a cluster's monitors, such as Redis
    /// Sentinels, do not). Default: every role.
    fn serves(&self, _role: &str) -> bool {
        true
    }
    /// How a backend skews a node's clock. Default: [`ClockControl::Api`].
    fn clock_control(&self) -> ClockControl {
        ClockControl::Api
    }
}

/// Whether every member's state equals the first one's; `Err` names the first that differs
/// (the default of [`Application::converged`]).
pub fn all_equal<S: PartialEq + fmt::Debug>(states: &[(&str, &S)]) -> Result<(), String> {
    match states.split_first() {
        Some(((first_name, first), rest)) => match rest.iter().find(|(_, s)| s != first) {
            Some((name, s)) => Err(format!("{first_name} has {first:?} but {name} has {s:?}")),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

/// A system under test. Keep it small: Gauntlet supplies topology, load, faults, observation
/// and judgement; the application supplies only what only it knows.
pub trait Application: Send + Sync + 'static {
    /// One node's observable state (what [`Application::read_state`] returns).
    type State: Clone + fmt::Debug + PartialEq + Send + 'static;
    /// A client handle, made on a client node, used by workloads and the observer.
    type Client: Clone + 'static;

    /// The name plans use in `app.name`.
    fn name(&self) -> &str;

    /// Roles nodes may have.
    fn roles(&self) -> Vec<String>;

    /// Operations workloads may issue (the default mix is all of them, equally weighted).
    fn operations(&self) -> Vec<String>;

    /// Checks `app.options`; returns `(option, message)` per problem. Default: no options are
    /// accepted.
    fn check_options(&self, options: &toml::Table) -> Vec<(String, String)> {
        options.keys().map(|k| (k.clone(), format!("unknown option; {} takes no options", self.name()))).collect()
    }

    /// The node's program, run at first boot and at every restart.
    fn node(&self, ctx: NodeContext, setup: NodeSetup) -> impl Future<Output = ()> + 'static + use<Self>;

    /// Makes a client on a client node.
    fn client(&self, ctx: &NodeContext) -> Self::Client;

    /// Performs one operation against the cluster (`nodes`: the current members).
    fn execute(&self, client: &Self::Client, op: &Operation, nodes: &[NodeRef]) -> impl Future<Output = OpOutcome>;

    /// Reads one node's state.
    fn read_state(&self, client: &Self::Client, node: &NodeRef) -> impl Future<Output = Result<Self::State, String>>;

    /// Whether a node in `state` is ready to serve. Default: always.
    fn ready(&self, _state: &Self::State) -> bool {
        true
    }

    /// A short, stable, one-line rendering of a node's state for observation histories,
    /// bundles and summaries (no wall-clock values). Default: its `Debug` form.
    fn describe(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }

    /// Whether the application has a simulated node (`true`, the default). A real-only
    /// application ([`crate::real_app::RealOnly`]) says `false`: simulations refuse it by name
    /// and real backends run it without a simulated baseline.
    fn simulated(&self) -> bool {
        true
    }

    /// Whether the application elects leaders, so that chaos may be aimed at the leader
    /// (`aim = "leader"` in a plan). Default: no. An application that says yes implements
    /// [`Application::leader_epoch`].
    fn elects_leaders(&self) -> bool {
        false
    }

    /// If a node in `state` believes it leads, the epoch (term, view, ballot) it leads in.
    /// Chaos aimed at the leader picks, among the members' latest observed states, the one
    /// with the highest epoch (ties: the first by name). Default: never a leader.
    fn leader_epoch(&self, _state: &Self::State) -> Option<u64> {
        None
    }

    /// Whether these states (one per live member) have converged; `Err` says how they differ.
    /// Default: all equal ([`all_equal`]).
    fn converged(&self, states: &[(&str, &Self::State)]) -> Result<(), String> {
        all_equal(states)
    }

    /// Registers the application's own expectations. Default: none.
    fn expectations(&self, _registry: &mut ExpectationRegistry<Self>)
    where
        Self: Sized,
    {
    }

    /// How a client history entry reads as an operation of a built-in linearizability model
    /// (`register` or `kv`), for the built-in `linearizable` expectation: the model input the
    /// entry's operation and argument stand for, and its reply when the entry completed (`None`
    /// for a reply that says nothing). Return `None` for entries that constrain nothing (say,
    /// an operation outside the model). Failed entries are left out and unknown outcomes are
    /// handled by the harness. Default: `None` for every entry, and a plan naming
    /// `linearizable` fails saying this hook is missing. For a model of your own, see
    /// [`ExpectationRegistry::linearizable_with`].
    fn history_op(&self, _entry: &crate::workload::HistoryEntry) -> Option<crate::lincheck::HistoryOp> {
        None
    }

    /// A history entry as an operation of the built-in set check (`no_lost_writes`): an add
    /// of a unique element, or a read of the whole set. Default: none.
    fn set_op(&self, _entry: &crate::workload::HistoryEntry) -> Option<crate::lost_writes::SetOp> {
        None
    }

    /// A history entry as an operation on the lock of the built-in `mutual_exclusion` check:
    /// an acquisition (held from its completion until its client's next lock operation), or
    /// any other operation on the lock (a release). Default: none.
    fn lock_op(&self, _entry: &crate::workload::HistoryEntry) -> Option<crate::mutex::LockOp> {
        None
    }

    /// The builds of its node program a script can move a node between with
    /// `sut.upgrade(node, version)` (rolling upgrades), the first being the one nodes start on;
    /// [`Application::node`] reads [`NodeSetup::version`]. Default: none (one build, no
    /// upgrades).
    fn versions(&self) -> Vec<String> {
        Vec::new()
    }

    /// The argument of operation `op` from named fields a script gave
    /// (`client.op("put", {key = "k1", value = 3})`), as the values are written in Lua
    /// (strings; numbers in their decimal form). The argument is what a workload draws
    /// ([`Operation::arg`]), so histories and checkers treat a script's operations like any
    /// other; `random` is a draw from the script's seeded stream for the parts of the argument
    /// the fields leave free (which node a client tries first, say). Default: only `arg` (the
    /// argument itself) is known; any other field is an error naming it.
    fn script_arg(&self, op: &str, fields: &BTreeMap<String, String>, _random: u64) -> Result<u64, String> {
        let mut arg = 0;
        for (k, v) in fields {
            match k.as_str() {
                "arg" => arg = v.parse().map_err(|_| format!("arg = {v:?} is not an unsigned integer"))?,
                other => {
                    return Err(format!(
                        "{} does not name the fields of its operations ({op:?} got {other:?}); pass {{arg = N}}",
                        self.name()
                    ))
                }
            }
        }
        Ok(arg)
    }

    /// Planted bugs this application can switch on (`app.options.bugs`, or `--bug NAME` on the
    /// command line), for `gauntlet list` and for checking `--bug`. Default: none.
    fn bugs(&self) -> Vec<String> {
        Vec::new()
    }

    /// The module-path prefixes whose sometimes-assertions ([`crate::sometimes!`],
    /// [`crate::reachable!`]) belong to this application: a run lists every assertion with a
    /// call site there, reached or not, and a sweep reports those that never held. An
    /// assertion evaluated elsewhere during the run is listed too (it ran). Override it when
    /// one crate holds several applications (`vec!["my_crate::raft".into()]`), or when the
    /// node code lives in other crates. Default: the crate that defines the application's type.
    fn probe_scope(&self) -> Vec<String> {
        let name = std::any::type_name::<Self>();
        vec![name.split("::").next().unwrap_or(name).to_owned()]
    }

    /// Smaller versions of `options` (this application's `app.options`), most preferred first,
    /// for shrinking a failing run: e.g. fewer keys, a smaller value space. Each is tried in
    /// turn, and one that keeps the failure is shrunk again. Default: none.
    ///
    /// ```
    /// // An application with a `keys` option might offer half as many.
    /// fn smaller(options: &toml::Table) -> Vec<toml::Table> {
    ///     let keys = options.get("keys").and_then(|k| k.as_integer()).unwrap_or(8);
    ///     if keys <= 1 {
    ///         return Vec::new();
    ///     }
    ///     let mut o = options.clone();
    ///     o.insert("keys".into(), (keys / 2).into());
    ///     vec![o]
    /// }
    /// assert_eq!(smaller(&toml::Table::new())[0]["keys"].as_integer(), Some(4));
    /// ```
    fn smaller_options(&self, _options: &toml::Table) -> Vec<toml::Table> {
        Vec::new()
    }

    /// How the node in `setup` is launched as a real process, placed as `placement` says
    /// (which holds every initial member, so peers can be listed). Only promotion to a real
    /// backend calls it. Default: no launch (an empty binary name), which a backend refuses
    /// with an error naming the application: a simulation-only application need not say.
    fn launch(&self, _setup: &NodeSetup, _placement: &Placement) -> Launch {
        Launch::default()
    }
}
