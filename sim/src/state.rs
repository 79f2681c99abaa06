//! The mutable state of one simulated world, kept in a thread-local for the run's thread.
//!
//! Every run executes on a fresh OS thread (see [`crate::world`]), so the thread-local holds
//! exactly one world at a time and nothing leaks between seeds. Code reaches it through
//! [`with_world`]; no user code is ever called while it is borrowed (wakers only enqueue).

use crate::clock::ClockModel;
use crate::disk::DiskModel;
use crate::fault::Fault;
use crate::link::LinkConfig;
use crate::node::{NodeId, NodeSpec, NodeStatus};
use crate::seed::{stream, Purpose, Seeds};
use crate::stream::{Segment, Streams, TcpConfig};
use crate::trace::{DropReason, EventKind, StableHasher, Trace, TraceEvent};
use bytes::Bytes;
use futures::channel::oneshot;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::task::Waker;
use std::time::Duration;

thread_local! {
    static WORLD: RefCell<Option<WorldState>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread's world. Panics (a broken invariant) outside `World::run`.
pub(crate) fn with_world<R>(f: impl FnOnce(&mut WorldState) -> R) -> R {
    WORLD.with(|w| {
        let mut guard = w.borrow_mut();
        let world = guard.as_mut().expect("gauntlet-sim: no world on this thread; call this from inside World::run");
        f(world)
    })
}

/// Runs `f` on this thread's world if there is one and it is not borrowed (for `Drop`s,
/// which may run when the run is over).
pub(crate) fn try_with_world<R>(f: impl FnOnce(&mut WorldState) -> R) -> Option<R> {
    WORLD.with(|w| {
        let mut guard = w.try_borrow_mut().ok()?;
        guard.as_mut().map(f)
    })
}

/// True when a world is installed on this thread.
pub(crate) fn has_world() -> bool {
    WORLD.with(|w| w.try_borrow().map(|w| w.is_some()).unwrap_or(true))
}

pub(crate) fn install(state: WorldState) {
    WORLD.with(|w| *w.borrow_mut() = Some(state));
}

pub(crate) fn uninstall() -> Option<WorldState> {
    WORLD.with(|w| w.borrow_mut().take())
}

/// Remembers a task spawned on the supervisor (madsim's main node), so that the end of the run
/// can abort it: madsim can kill a node's tasks, but not the main node's (see `world::tear_down`).
/// A task spawned on a Gauntlet node is not remembered: killing its node ends it. Outside a
/// world, or with the world borrowed (never, in practice: no task is spawned from inside
/// [`with_world`]), it does nothing.
pub(crate) fn track_task<T>(handle: &madsim::task::JoinHandle<T>) {
    WORLD.with(|w| {
        let Ok(mut guard) = w.try_borrow_mut() else { return };
        let Some(world) = guard.as_mut() else { return };
        if world.current_node().is_some() {
            return;
        }
        let tasks = &mut world.supervisor_tasks;
        if tasks.len() == tasks.capacity() {
            // Forget finished tasks before growing, so a long run's list stays as long as the
            // number of tasks alive at once (amortized: at most once per doubling).
            tasks.retain(|t| !t.is_finished());
        }
        tasks.push(handle.abort_handle());
    });
}

/// What a message carries on the simulated wire.
#[derive(Debug, Clone)]
pub(crate) enum Frame {
    OneWay(Bytes),
    Request {
        id: u64,
        body: Bytes,
    },
    Response {
        id: u64,
        body: Bytes,
    },
    /// A TCP segment's transmission reaching the end of its link ([`crate::stream`]).
    Tcp(Segment),
    /// A TCP segment's retransmission timer.
    TcpRetry(Segment),
}

/// What a frame with no message body (a TCP segment, never sent as a message) shows.
static NO_BODY: Bytes = Bytes::new();

impl Frame {
    fn body(&self) -> &Bytes {
        match self {
            Frame::OneWay(b) | Frame::Request { body: b, .. } | Frame::Response { body: b, .. } => b,
            Frame::Tcp(_) | Frame::TcpRetry(_) => &NO_BODY,
        }
    }
}

/// A message that reached a node: who sent it and what it is.
#[derive(Debug, Clone)]
pub(crate) struct Delivered {
    pub(crate) from: NodeId,
    pub(crate) frame: Frame,
}

struct InFlight {
    msg: u64,
    from: NodeId,
    to: NodeId,
    to_incarnation: u32,
    copy: u8,
    frame: Frame,
}

/// Limits and switches of a world (see `WorldBuilder` for the documented defaults).
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) inbox_capacity: usize,
    pub(crate) in_flight_capacity: usize,
    pub(crate) pending_requests_max: usize,
    pub(crate) buggify: Option<BuggifyConfig>,
    pub(crate) torn_writes: bool,
    pub(crate) fsync_latency: std::time::Duration,
    pub(crate) tcp: TcpConfig,
}

/// Buggify probabilities.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BuggifyConfig {
    pub(crate) site_probability: f64,
    pub(crate) fire_probability: f64,
}

pub(crate) struct NodeState {
    pub(crate) spec: NodeSpec,
    pub(crate) madsim: Option<madsim::task::NodeId>,
    pub(crate) status: NodeStatus,
    pub(crate) incarnation: u32,
    inbox: VecDeque<Delivered>,
    inbox_wakers: Vec<Waker>,
    held: Vec<InFlight>,
    pub(crate) pending: BTreeMap<u64, oneshot::Sender<Bytes>>,
    next_request: u64,
    /// One network stream per link this node sends on, keyed by the receiver, created on the
    /// first send (see [`WorldState::send`]).
    link_rngs: BTreeMap<NodeId, ChaCha8Rng>,
    pub(crate) buggify_rng: ChaCha8Rng,
    pub(crate) clock: ClockModel,
    pub(crate) disk: DiskModel,
}

/// Partition group of a client node that no group names: connected to every side.
const FREE: usize = usize::MAX;

#[derive(Default)]
pub(crate) struct NetState {
    pub(crate) default_link: LinkConfig,
    links: BTreeMap<(Option<NodeId>, Option<NodeId>), LinkConfig>,
    pub(crate) cuts: BTreeSet<(NodeId, NodeId)>,
    /// Group index per node while a partition is active (the implicit rest group last), so
    /// nodes added later join the rest group. Client nodes no group names are [`FREE`].
    partition: Option<(Vec<usize>, usize)>,
    queue: BTreeMap<(u64, u64), InFlight>,
    seq: u64,
    next_msg: u64,
    pub(crate) driver_waker: Option<Waker>,
    pub(crate) armed: Option<u64>,
    pub(crate) kicked: bool,
}

pub(crate) struct WorldState {
    pub(crate) seeds: Seeds,
    pub(crate) limits: Limits,
    pub(crate) nodes: Vec<NodeState>,
    pub(crate) by_madsim: BTreeMap<madsim::task::NodeId, NodeId>,
    pub(crate) by_name: BTreeMap<String, NodeId>,
    pub(crate) net: NetState,
    pub(crate) trace: Trace,
    pub(crate) chaos_rng: ChaCha8Rng,
    pub(crate) supervisor_rng: ChaCha8Rng,
    pub(crate) buggify_sites: BTreeMap<&'static str, bool>,
    /// The runtime's clock (read directly: going through `Instant::now` costs a thread-local
    /// lookup and a handle clone in madsim's `clock_gettime`, about a tenth of a run).
    pub(crate) time: madsim::time::TimeHandle,
    /// The runtime's elapsed time when the world started.
    pub(crate) start_elapsed: std::time::Duration,
    /// The instant the world started.
    pub(crate) start: madsim::time::Instant,
    /// Tasks spawned on the supervisor (the network driver, `Sim::spawn`, fault schedules,
    /// `time::spawn` from the supervisor), aborted when the run ends (see [`track_task`]).
    pub(crate) supervisor_tasks: Vec<madsim::task::AbortHandle>,
    /// Simulated TCP connections and listeners.
    pub(crate) streams: Streams,
}

impl WorldState {
    pub(crate) fn new(seeds: Seeds, limits: Limits, default_link: LinkConfig, trace: Trace) -> Self {
        let tcp = limits.tcp.clone();
        WorldState {
            seeds,
            limits,
            nodes: Vec::new(),
            by_madsim: BTreeMap::new(),
            by_name: BTreeMap::new(),
            net: NetState { default_link, ..NetState::default() },
            trace,
            chaos_rng: stream(seeds.chaos, Purpose::Chaos, "", 0),
            // Node names are never empty, so this stream cannot collide with a node's.
            supervisor_rng: stream(seeds.sim, Purpose::Buggify, "", 0),
            buggify_sites: BTreeMap::new(),
            time: madsim::time::TimeHandle::current(),
            start_elapsed: madsim::time::TimeHandle::current().elapsed(),
            start: crate::time::now(),
            supervisor_tasks: Vec::new(),
            streams: Streams::new(tcp),
        }
    }

    /// Nanoseconds of simulated time since the world started.
    pub(crate) fn now_nanos(&self) -> u64 {
        (self.time.elapsed() - self.start_elapsed).as_nanos() as u64
    }

    pub(crate) fn record(&mut self, node: Option<NodeId>, kind: EventKind) {
        let at = Duration::from_nanos(self.now_nanos());
        self.trace.push(TraceEvent { at, node, kind });
    }

    pub(crate) fn node(&self, id: NodeId) -> &NodeState {
        &self.nodes[id.0 as usize]
    }

    pub(crate) fn node_mut(&mut self, id: NodeId) -> &mut NodeState {
        &mut self.nodes[id.0 as usize]
    }

    /// Registers a node (not yet started) and returns its id.
    pub(crate) fn add_node(&mut self, spec: NodeSpec) -> NodeId {
        let id = NodeId(self.nodes.len() as u32);
        let sim = self.seeds.sim;
        if let Some((group_of, rest)) = &mut self.net.partition {
            // A node that joins during a partition is in the rest group; a client is free.
            if spec.client {
                group_of.push(FREE);
            }
            for (other, g) in group_of.iter().enumerate().filter(|_| !spec.client) {
                if *g != *rest && *g != FREE {
                    self.net.cuts.insert((id, NodeId(other as u32)));
                    self.net.cuts.insert((NodeId(other as u32), id));
                }
            }
            if !spec.client {
                group_of.push(*rest);
            }
        }
        self.by_name.insert(spec.name.clone(), id);
        self.nodes.push(NodeState {
            link_rngs: BTreeMap::new(),
            buggify_rng: stream(sim, Purpose::Buggify, &spec.name, 0),
            spec,
            madsim: None,
            status: NodeStatus::Running,
            incarnation: 0,
            inbox: VecDeque::new(),
            inbox_wakers: Vec::new(),
            held: Vec::new(),
            pending: BTreeMap::new(),
            next_request: 0,
            clock: ClockModel::default(),
            disk: DiskModel::default(),
        });
        id
    }

    pub(crate) fn resolve(&self, name: &str) -> Option<NodeId> {
        self.by_name.get(name).copied()
    }

    /// The node whose task is running now (`None` for the supervisor).
    pub(crate) fn current_node(&self) -> Option<NodeId> {
        self.by_madsim.get(&madsim::plugin::node()).copied()
    }

    // ----- links and partitions -----

    pub(crate) fn link(&self, from: NodeId, to: NodeId) -> &LinkConfig {
        if self.net.links.is_empty() {
            return &self.net.default_link;
        }
        self.net
            .links
            .get(&(Some(from), Some(to)))
            .or_else(|| self.net.links.get(&(Some(from), None)))
            .or_else(|| self.net.links.get(&(None, Some(to))))
            .or_else(|| self.net.links.get(&(None, None)))
            .unwrap_or(&self.net.default_link)
    }

    pub(crate) fn set_link(&mut self, from: Option<NodeId>, to: Option<NodeId>, link: LinkConfig) {
        self.net.links.insert((from, to), link);
    }

    pub(crate) fn reset_links(&mut self) {
        self.net.links.clear();
    }

    pub(crate) fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        !self.net.cuts.is_empty() && self.net.cuts.contains(&(from, to))
    }

    // ----- sending and delivery -----

    /// Sends a frame from `from` (which must be the running incarnation) to `to`.
    pub(crate) fn send(&mut self, from: NodeId, to: NodeId, frame: Frame) {
        let msg = self.net.next_msg;
        self.net.next_msg += 1;
        let body = frame.body();
        let (bytes, digest) = (body.len() as u32, StableHasher::digest(body));
        self.record(Some(from), EventKind::Send { msg, to, bytes, digest });
        if to.0 as usize >= self.nodes.len() {
            self.record(Some(from), EventKind::Drop { msg, to, reason: DropReason::NodeDown });
            return;
        }
        // Every message takes exactly one draw from its link's stream, whatever happens to it,
        // and its loss, delay and duplication come from a generator seeded by that draw. So a
        // cut, a lossy spell or another link model changes nothing but the messages it
        // touches: removing a fault (as shrinking does) leaves the draws of every message the
        // nodes still send the same, and traffic on one link never shifts another's.
        let mut rng = self.message_rng(from, to);
        if self.is_cut(from, to) {
            self.record(Some(from), EventKind::Drop { msg, to, reason: DropReason::Partition });
            return;
        }
        let link = self.link(from, to).clone();
        let rng = &mut rng;
        if link.loss > 0.0 && rng.random_bool(link.loss) {
            self.record(Some(from), EventKind::Drop { msg, to, reason: DropReason::Loss });
            return;
        }
        let delay = sample_delay(&link, rng);
        let duplicate = link.duplicate > 0.0 && rng.random_bool(link.duplicate);
        let dup_delay = if duplicate { Some(sample_delay(&link, rng)) } else { None };
        let to_incarnation = self.nodes[to.0 as usize].incarnation;
        let dup_frame = dup_delay.map(|_| frame.clone());
        self.enqueue(delay, InFlight { msg, from, to, to_incarnation, copy: 0, frame });
        if let (Some(d), Some(frame)) = (dup_delay, dup_frame) {
            self.record(Some(from), EventKind::Duplicate { msg });
            self.enqueue(d, InFlight { msg, from, to, to_incarnation, copy: 1, frame });
        }
    }

    /// The generator of one message from `from` to `to`: seeded by the next draw of the link's
    /// own stream, keyed by both names (not ids), so it is stable across topologies.
    fn message_rng(&mut self, from: NodeId, to: NodeId) -> ChaCha8Rng {
        if !self.nodes[from.0 as usize].link_rngs.contains_key(&to) {
            let name = format!("{}>{}", self.nodes[from.0 as usize].spec.name, self.nodes[to.0 as usize].spec.name);
            let link = stream(self.seeds.sim, Purpose::Network, &name, 0);
            self.nodes[from.0 as usize].link_rngs.insert(to, link);
        }
        let link = self.nodes[from.0 as usize].link_rngs.get_mut(&to);
        ChaCha8Rng::seed_from_u64(link.map_or(0, |l| l.next_u64()))
    }

    fn enqueue(&mut self, delay: Duration, m: InFlight) {
        if self.net.queue.len() >= self.limits.in_flight_capacity {
            let (msg, to) = (m.msg, m.to);
            self.record(Some(m.from), EventKind::Drop { msg, to, reason: DropReason::NetworkFull });
            return;
        }
        let at = self.now_nanos() + delay.as_nanos() as u64;
        let seq = self.net.seq;
        self.net.seq += 1;
        self.net.queue.insert((at, seq), m);
        if self.net.armed.is_none_or(|armed| at < armed) {
            self.net.armed = Some(at);
            self.net.kicked = true;
            if let Some(w) = self.net.driver_waker.take() {
                w.wake();
            }
        }
    }

    /// Puts a frame that is not a message (a TCP segment, a retransmission timer) into the
    /// delivery queue, due at `at` (nanoseconds of world time).
    pub(crate) fn enqueue_at(&mut self, at: u64, from: NodeId, to: NodeId, to_incarnation: u32, frame: Frame) {
        let seq = self.net.seq;
        self.net.seq += 1;
        self.net.queue.insert((at, seq), InFlight { msg: u64::MAX, from, to, to_incarnation, copy: 0, frame });
        if self.net.armed.is_none_or(|armed| at < armed) {
            self.net.armed = Some(at);
            self.net.kicked = true;
            if let Some(w) = self.net.driver_waker.take() {
                w.wake();
            }
        }
    }

    /// Delivers every message due at or before `now`; returns the next due time, if any.
    pub(crate) fn deliver_due(&mut self, now: u64) -> Option<u64> {
        while let Some(entry) = self.net.queue.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let m = entry.remove();
            self.deliver(m);
        }
        let next = self.net.queue.first_key_value().map(|(k, _)| k.0);
        self.net.armed = next;
        next
    }

    fn deliver(&mut self, m: InFlight) {
        if matches!(m.frame, Frame::Tcp(_) | Frame::TcpRetry(_)) {
            let InFlight { from, to, frame, .. } = m;
            match frame {
                Frame::Tcp(seg) => self.tcp_arrive(from, to, seg),
                Frame::TcpRetry(seg) => self.tcp_retry(seg),
                _ => unreachable!("matched above"),
            }
            return;
        }
        let (msg, to) = (m.msg, m.to);
        let node = &self.nodes[to.0 as usize];
        if matches!(node.status, NodeStatus::Crashed | NodeStatus::Exited) || node.incarnation != m.to_incarnation {
            self.record(Some(to), EventKind::Drop { msg, to, reason: DropReason::NodeDown });
            return;
        }
        if self.is_cut(m.from, to) {
            self.record(Some(to), EventKind::Drop { msg, to, reason: DropReason::Partition });
            return;
        }
        if node.status == NodeStatus::Paused {
            // Held messages count against the inbox bound: a long pause cannot grow memory.
            if node.held.len() + node.inbox.len() >= self.limits.inbox_capacity {
                self.record(Some(to), EventKind::Drop { msg, to, reason: DropReason::InboxFull });
            } else {
                self.nodes[to.0 as usize].held.push(m);
            }
            return;
        }
        self.hand_over(m);
    }

    /// Puts a message into its (running) destination's inbox or pending-request slot.
    fn hand_over(&mut self, m: InFlight) {
        let (msg, to, from, copy) = (m.msg, m.to, m.from, m.copy);
        let node = &mut self.nodes[to.0 as usize];
        if let Frame::Response { id, body } = m.frame {
            if let Some(tx) = node.pending.remove(&id) {
                let _ = tx.send(body);
            }
            self.record(Some(to), EventKind::Deliver { msg, from, copy });
            return;
        }
        if node.inbox.len() >= self.limits.inbox_capacity {
            self.record(Some(to), EventKind::Drop { msg, to, reason: DropReason::InboxFull });
            return;
        }
        node.inbox.push_back(Delivered { from, frame: m.frame });
        for w in node.inbox_wakers.drain(..) {
            w.wake();
        }
        self.record(Some(to), EventKind::Deliver { msg, from, copy });
    }

    /// Takes the next inbox message of `id` or registers the waker.
    pub(crate) fn poll_inbox(&mut self, id: NodeId, incarnation: u32, waker: &Waker) -> Option<Delivered> {
        let node = &mut self.nodes[id.0 as usize];
        assert_eq!(node.incarnation, incarnation, "a transport outlived its node's incarnation");
        if let Some(d) = node.inbox.pop_front() {
            return Some(d);
        }
        if !node.inbox_wakers.iter().any(|w| w.will_wake(waker)) {
            node.inbox_wakers.push(waker.clone());
        }
        None
    }

    /// Registers a pending request on `id`; returns its id and the receiver for the response.
    pub(crate) fn new_request(&mut self, id: NodeId) -> (u64, oneshot::Receiver<Bytes>) {
        let max = self.limits.pending_requests_max;
        let node = &mut self.nodes[id.0 as usize];
        if node.pending.len() >= max {
            node.pending.retain(|_, tx| !tx.is_canceled());
        }
        assert!(node.pending.len() < max, "node {} has {max} requests in flight (limit)", node.spec.name);
        let req = node.next_request;
        node.next_request += 1;
        let (tx, rx) = oneshot::channel();
        node.pending.insert(req, tx);
        (req, rx)
    }

    // ----- lifecycle -----

    pub(crate) fn node_started(&mut self, id: NodeId) -> u32 {
        let incarnation = self.node(id).incarnation;
        self.record(Some(id), EventKind::NodeStart { incarnation });
        incarnation
    }

    pub(crate) fn node_exited(&mut self, id: NodeId, incarnation: u32) {
        if self.node(id).incarnation == incarnation && self.node(id).status == NodeStatus::Running {
            self.tcp_node_down(id);
            self.clear_volatile(id);
            self.node_mut(id).status = NodeStatus::Exited;
            self.record(Some(id), EventKind::NodeExit);
        }
    }

    fn clear_volatile(&mut self, id: NodeId) {
        let node = self.node_mut(id);
        node.inbox.clear();
        node.inbox_wakers.clear();
        node.held.clear();
        node.pending.clear();
    }

    /// Crash semantics on our side (madsim's kill is done by the caller, outside the borrow).
    pub(crate) fn crash(&mut self, id: NodeId) {
        self.record(Some(id), EventKind::NodeCrash);
        self.tcp_node_down(id);
        self.clear_volatile(id);
        self.node_mut(id).status = NodeStatus::Crashed;
        let torn_writes = self.limits.torn_writes;
        let files: Vec<String> = self.node(id).disk.files.keys().cloned().collect();
        for file in files {
            let torn = if torn_writes { Some(self.chaos_rng.random::<f64>()) } else { None };
            let f = self.node_mut(id).disk.files.get_mut(&file).expect("listed file exists");
            if !f.is_dirty() {
                continue;
            }
            let (bytes, torn) = f.crash(torn);
            self.record(Some(id), EventKind::StorageLoss { file, bytes, torn });
        }
    }

    pub(crate) fn prepare_restart(&mut self, id: NodeId) {
        if matches!(self.node(id).status, NodeStatus::Running | NodeStatus::Paused) {
            self.crash(id);
        }
        let node = self.node_mut(id);
        node.incarnation += 1;
        node.status = NodeStatus::Running;
    }

    pub(crate) fn pause(&mut self, id: NodeId) {
        self.node_mut(id).status = NodeStatus::Paused;
        self.record(Some(id), EventKind::NodePause);
    }

    pub(crate) fn resume(&mut self, id: NodeId) {
        self.node_mut(id).status = NodeStatus::Running;
        self.record(Some(id), EventKind::NodeResume);
        // A held message counts as arriving now: a cut that became active meanwhile drops it,
        // so no delivery ever happens across an active cut.
        let held = std::mem::take(&mut self.node_mut(id).held);
        for m in held {
            if self.is_cut(m.from, id) {
                self.record(Some(id), EventKind::Drop { msg: m.msg, to: id, reason: DropReason::Partition });
            } else {
                self.hand_over(m);
            }
        }
    }

    pub(crate) fn sync_file(&mut self, id: NodeId, file: &str) -> Option<()> {
        let bytes = self.node_mut(id).disk.files.get_mut(file)?.sync();
        self.record(Some(id), EventKind::StorageSync { file: file.to_owned(), bytes });
        Some(())
    }

    /// Applies the network and clock parts of a fault. Node lifecycle faults are returned as
    /// `Some((id, fault))` for the caller to finish with madsim outside the borrow.
    pub(crate) fn apply_network_fault(&mut self, fault: &Fault) -> Result<(), String> {
        let id = |name: &str| self.resolve(name).ok_or_else(|| self.unknown_node(name));
        match fault {
            Fault::Partition { groups } => {
                let mut group_of: Vec<usize> =
                    self.nodes.iter().map(|n| if n.spec.client { FREE } else { groups.len() }).collect();
                for (g, members) in groups.iter().enumerate() {
                    for name in members {
                        group_of[id(name)?.0 as usize] = g;
                    }
                }
                self.net.cuts.clear();
                for a in 0..self.nodes.len() {
                    for b in 0..self.nodes.len() {
                        if group_of[a] != group_of[b] && group_of[a] != FREE && group_of[b] != FREE {
                            self.net.cuts.insert((NodeId(a as u32), NodeId(b as u32)));
                        }
                    }
                }
                self.net.partition = Some((group_of, groups.len()));
            }
            Fault::CutOneWay { from, to } => {
                let (f, t) = (id(from)?, id(to)?);
                self.net.cuts.insert((f, t));
            }
            Fault::Heal => {
                self.net.cuts.clear();
                self.net.partition = None;
            }
            Fault::SetLink { from, to, link } => {
                let f = from.as_deref().map(id).transpose()?;
                let t = to.as_deref().map(id).transpose()?;
                self.set_link(f, t, link.clone());
            }
            Fault::ResetLinks => self.reset_links(),
            Fault::ClockSkew { node, offset_ms, drift_ppm } => {
                let n = id(node)?;
                let now = self.now_nanos();
                self.node_mut(n).clock.set(now, offset_ms.saturating_mul(1_000_000), *drift_ppm);
            }
            Fault::Crash { .. } | Fault::Restart { .. } | Fault::Pause { .. } | Fault::Resume { .. } => {
                unreachable!("lifecycle faults are applied by Sim::apply")
            }
        }
        Ok(())
    }

    /// Everything wrong with applying `fault` to this world: its own parameters, then each node
    /// it names that does not exist. Empty when it can be applied.
    pub(crate) fn fault_problems(&self, fault: &Fault) -> Vec<String> {
        let mut problems: Vec<String> = fault.validate().err().into_iter().collect();
        problems.extend(fault.nodes().into_iter().filter(|n| self.resolve(n).is_none()).map(|n| self.unknown_node(n)));
        problems
    }

    pub(crate) fn unknown_node(&self, name: &str) -> String {
        let known: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        format!("unknown node {name:?}; the world has: {}", known.join(", "))
    }

    pub(crate) fn buggify_site_enabled(&mut self, site: &'static str, p: f64) -> bool {
        let root = self.seeds.sim;
        *self.buggify_sites.entry(site).or_insert_with(|| {
            let mut rng = stream(root, Purpose::Buggify, site, 1);
            rng.random_bool(p)
        })
    }
}

fn sample_delay(link: &LinkConfig, rng: &mut ChaCha8Rng) -> Duration {
    let mut d = link.latency.sample(rng);
    if link.reorder > 0.0 && rng.random_bool(link.reorder) {
        let max = link.reorder_delay.as_nanos().max(1) as u64;
        d += Duration::from_nanos(rng.random_range(1..=max));
    }
    d
}
