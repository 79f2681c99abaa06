//! Simulated TCP: the world's side of [`crate::net::TcpListener`] and [`crate::net::TcpStream`].
//!
//! A connection is two byte streams, one per direction, cut into segments that travel the
//! same links as messages (the same latency model, the same partitions and cuts) through the
//! world's delivery queue, so they are ordered, traced and replayed like messages. What TCP
//! hides, the model hides too:
//!
//! * **Loss** never loses bytes: a lost transmission is sent again after the retransmission
//!   timeout (doubling each time), so the stream stalls. Duplication and reordering on a link do
//!   not apply to streams; segments that overtake each other wait in the receiver's reorder
//!   buffer.
//! * **Partitions and cuts** stall established connections the same way; a segment that has
//!   not arrived within [`TcpConfig::user_timeout`] of its first transmission gives up: its
//!   sender's end fails with `TimedOut` and a reset goes to the peer (arriving if the link
//!   heals). A connect that is not answered within [`TcpConfig::connect_timeout`] fails with
//!   `TimedOut`.
//! * **A crashed or exited node** loses its connections and listeners: each peer gets a reset
//!   (after the link's latency) and later sees `ConnectionReset`; a segment that reaches a
//!   connection whose end is gone is answered with a reset, as a host answers for a dead
//!   process. A connect to a port nobody listens on, or to a node whose program is down, is
//!   refused. A paused node's kernel still receives (into its window); its program reads
//!   nothing, so its peers' writes stall once the window is full.
//! * **Backpressure:** each direction has a window of [`TcpConfig::window`] bytes: a write
//!   waits while the bytes sent and not yet read by the peer's program fill it.
//!
//! Every listen, connect, accept, refusal, segment, retransmission, FIN, reset and timeout is
//! a trace event ([`crate::trace::TcpEvent`]).

use crate::node::{NodeId, NodeStatus};
use crate::seed::{stream as seeded, Purpose};
use crate::state::{Frame, WorldState};
use crate::trace::{EventKind, StableHasher, TcpEvent};
use bytes::Bytes;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, ErrorKind};
use std::net::{IpAddr, SocketAddr};
use std::task::{Poll, Waker};
use std::time::Duration;

/// Largest segment: a write of more is sent as several.
pub const MAX_SEGMENT: usize = 16 * 1024;
/// First ephemeral port a node's connects use.
const EPHEMERAL: u16 = 49152;

/// How simulated TCP behaves (see the module docs); set with
/// [`WorldBuilder::tcp`](crate::WorldBuilder::tcp).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// First retransmission timeout; each further retransmission of a segment doubles it, up
    /// to [`TcpConfig::max_rto`]. Default 200 ms (Linux's minimum).
    pub rto: Duration,
    /// Longest retransmission timeout. Default 5 s.
    pub max_rto: Duration,
    /// A segment not delivered this long after its first transmission resets the connection:
    /// its sender fails with `TimedOut` (Linux's `TCP_USER_TIMEOUT`). Default 15 s.
    pub user_timeout: Duration,
    /// A connect not answered in this long fails with `TimedOut`. Default 10 s.
    pub connect_timeout: Duration,
    /// Bytes a direction may have sent and not yet read by the receiving program. Default
    /// 64 KiB.
    pub window: usize,
    /// Connections a listener holds before its program accepts them; connects beyond it are
    /// not answered (and time out). Default 128.
    pub backlog: usize,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(5),
            user_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(10),
            window: 64 * 1024,
            backlog: 128,
        }
    }
}

/// What a segment carries.
#[derive(Debug, Clone)]
pub(crate) enum SegmentKind {
    Syn,
    SynAck,
    Data { seq: u64, bytes: Bytes },
    Fin { seq: u64 },
    Rst,
}

/// One segment on the wire: of connection `conn`, sent by its end `from_end` (0 the client,
/// 1 the server).
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    conn: u64,
    from_end: usize,
    kind: SegmentKind,
    /// Transmissions so far (0: the first).
    attempt: u32,
    /// When it was first sent (nanoseconds of world time).
    first_sent: u64,
    /// This transmission was lost on the way (it arrives as a retransmission later).
    lost: bool,
}

/// One end of a connection.
#[derive(Debug)]
struct End {
    node: NodeId,
    incarnation: u32,
    addr: SocketAddr,
    /// The error this end's program sees from now on (a reset, a timeout).
    error: Option<ErrorKind>,
    /// Its handle was dropped.
    closed: bool,
    /// Its program shut its writing half (or dropped it): a FIN was sent.
    shut: bool,
    /// It exists: always for the connecting end; for the listening end once the connect
    /// reached a listener.
    bound: bool,
}

/// One direction of a connection: bytes from `ends[d]` to `ends[1 - d]`.
#[derive(Debug, Default)]
struct Dir {
    next_seq: u64,
    expected: u64,
    /// Segments that arrived ahead of a missing one (`None`: the FIN).
    reorder: BTreeMap<u64, Option<Bytes>>,
    /// Arrived, in order, not yet read.
    unread: VecDeque<Bytes>,
    /// Bytes sent and not yet read by the receiving program.
    in_window: usize,
    fin: bool,
    /// When the last segment of this direction is due, so first transmissions keep their order.
    last_due: u64,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

#[derive(Debug)]
struct Conn {
    ends: [End; 2],
    dirs: [Dir; 2],
    established: bool,
    connect_waker: Option<Waker>,
}

#[derive(Debug)]
struct Listener {
    incarnation: u32,
    /// Connections the kernel accepted, waiting for the program's `accept`.
    backlog: VecDeque<u64>,
    wakers: Vec<Waker>,
}

/// The world's TCP state.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    pub(crate) config: TcpConfig,
    listeners: BTreeMap<(NodeId, u16), Listener>,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    next_port: BTreeMap<NodeId, u16>,
    /// One stream of draws per link, apart from the messages' (TCP traffic never shifts the
    /// draws of messages).
    rngs: BTreeMap<(NodeId, NodeId), ChaCha8Rng>,
}

impl Streams {
    /// No connections yet; TCP behaves as `config` says.
    pub(crate) fn new(config: TcpConfig) -> Streams {
        Streams { config, ..Streams::default() }
    }
}

fn err(kind: ErrorKind, what: impl Into<String>) -> io::Error {
    io::Error::new(kind, what.into())
}

impl WorldState {
    /// The IP address of `node` (its spec's, or the one the world assigned).
    pub(crate) fn node_ip(&self, node: NodeId) -> IpAddr {
        self.node(node).spec.addr.map_or_else(|| crate::world::default_addr(node).ip(), |a| a.ip())
    }

    /// The node with address `ip`.
    fn node_at(&self, ip: IpAddr) -> Option<NodeId> {
        (0..self.nodes.len() as u32).map(NodeId).find(|&n| self.node_ip(n) == ip)
    }

    /// The node running the current task, or an error naming why TCP needs one.
    pub(crate) fn tcp_caller(&self) -> io::Result<(NodeId, u32)> {
        let node = self.current_node().ok_or_else(|| {
            err(ErrorKind::Unsupported, "simulated TCP is used from a node's program (not from the supervisor)")
        })?;
        Ok((node, self.node(node).incarnation))
    }

    /// Resolves `host` (a node's name or an IP address) and `port`.
    pub(crate) fn tcp_resolve(&self, host: &str, port: u16) -> io::Result<SocketAddr> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let node = self.resolve(host).ok_or_else(|| {
            err(ErrorKind::NotFound, format!("no node named {host:?} in the simulated network (a node's name or IP)"))
        })?;
        Ok(SocketAddr::new(self.node_ip(node), port))
    }

    fn tcp_record(&mut self, node: NodeId, conn: u64, event: TcpEvent) {
        self.record(Some(node), EventKind::Tcp { conn, event });
    }

    /// Listens on `port` of the calling node (0: a free ephemeral port).
    pub(crate) fn tcp_bind(&mut self, addr: SocketAddr) -> io::Result<SocketAddr> {
        let (node, incarnation) = self.tcp_caller()?;
        let ip = self.node_ip(node);
        if !(addr.ip().is_unspecified() || addr.ip().is_loopback() || addr.ip() == ip) {
            return Err(err(ErrorKind::AddrNotAvailable, format!("{} is not this node's address ({ip})", addr.ip())));
        }
        let port = if addr.port() == 0 { self.ephemeral_port(node) } else { addr.port() };
        if self.streams.listeners.get(&(node, port)).is_some_and(|l| l.incarnation == incarnation) {
            return Err(err(ErrorKind::AddrInUse, format!("port {port} is in use on {}", self.node(node).spec.name)));
        }
        self.streams.listeners.insert((node, port), Listener { incarnation, backlog: VecDeque::new(), wakers: vec![] });
        self.tcp_record(node, 0, TcpEvent::Listen { port });
        Ok(SocketAddr::new(ip, port))
    }

    fn ephemeral_port(&mut self, node: NodeId) -> u16 {
        let next = self.streams.next_port.entry(node).or_insert(EPHEMERAL);
        let port = *next;
        *next = if *next == u16::MAX { EPHEMERAL } else { *next + 1 };
        port
    }

    /// Takes the next connection `port`'s listener holds, or registers the waker.
    pub(crate) fn tcp_poll_accept(
        &mut self,
        node: NodeId,
        incarnation: u32,
        port: u16,
        waker: &Waker,
    ) -> Poll<io::Result<(u64, SocketAddr, SocketAddr)>> {
        let Some(l) = self.streams.listeners.get_mut(&(node, port)).filter(|l| l.incarnation == incarnation) else {
            return Poll::Ready(Err(err(ErrorKind::NotConnected, "the listener is closed")));
        };
        match l.backlog.pop_front() {
            Some(conn) => {
                let c = &self.streams.conns[&conn];
                let (local, peer, from) = (c.ends[1].addr, c.ends[0].addr, c.ends[0].node);
                self.tcp_record(node, conn, TcpEvent::Accept { from });
                Poll::Ready(Ok((conn, local, peer)))
            }
            None => {
                if !l.wakers.iter().any(|w| w.will_wake(waker)) {
                    l.wakers.push(waker.clone());
                }
                Poll::Pending
            }
        }
    }

    /// Closes a listener: connections it held and nobody accepted are reset.
    pub(crate) fn tcp_close_listener(&mut self, node: NodeId, incarnation: u32, port: u16) {
        if self.streams.listeners.get(&(node, port)).is_none_or(|l| l.incarnation != incarnation) {
            return;
        }
        let l = self.streams.listeners.remove(&(node, port)).expect("checked");
        for conn in l.backlog {
            // Never accepted: no program holds this end.
            if let Some(c) = self.streams.conns.get_mut(&conn) {
                c.ends[1].closed = true;
            }
            self.tcp_abort(conn, 1, TcpEvent::Reset);
            self.tcp_forget_if_done(conn);
        }
    }

    /// Starts a connect from the calling node to `to`: the connection's id, the local address
    /// and the peer's (a loopback address resolves to the node itself).
    pub(crate) fn tcp_connect(&mut self, to: SocketAddr) -> io::Result<(u64, SocketAddr, SocketAddr)> {
        let (node, incarnation) = self.tcp_caller()?;
        let target = if to.ip().is_loopback() { Some(node) } else { self.node_at(to.ip()) };
        let Some(target) = target else {
            return Err(err(ErrorKind::HostUnreachable, format!("no node has address {}", to.ip())));
        };
        let local = SocketAddr::new(self.node_ip(node), self.ephemeral_port(node));
        let conn = self.streams.next_conn;
        self.streams.next_conn += 1;
        let end = |node, incarnation, addr, bound| End {
            node,
            incarnation,
            addr,
            error: None,
            closed: false,
            shut: false,
            bound,
        };
        let to = SocketAddr::new(self.node_ip(target), to.port());
        self.streams.conns.insert(
            conn,
            Conn {
                ends: [end(node, incarnation, local, true), end(target, 0, to, false)],
                dirs: Default::default(),
                established: false,
                connect_waker: None,
            },
        );
        self.tcp_record(node, conn, TcpEvent::Connect { to: target, port: to.port() });
        self.tcp_send(conn, 0, SegmentKind::Syn);
        Ok((conn, local, to))
    }

    /// Whether connection `conn` is established (or failed), else registers the waker.
    pub(crate) fn tcp_poll_connect(&mut self, conn: u64, waker: &Waker) -> Poll<io::Result<()>> {
        let Some(c) = self.streams.conns.get_mut(&conn) else {
            return Poll::Ready(Err(err(ErrorKind::ConnectionAborted, "the connection is gone")));
        };
        if let Some(kind) = c.ends[0].error {
            return Poll::Ready(Err(err(kind, connect_failure(kind))));
        }
        if c.established {
            return Poll::Ready(Ok(()));
        }
        c.connect_waker = Some(waker.clone());
        Poll::Pending
    }

    /// Reads into `buf` for end `end` of `conn`.
    pub(crate) fn tcp_poll_read(
        &mut self,
        conn: u64,
        end: usize,
        buf: &mut [u8],
        waker: &Waker,
    ) -> Poll<io::Result<usize>> {
        let window = self.streams.config.window;
        let Some(c) = self.streams.conns.get_mut(&conn) else {
            return Poll::Ready(Err(err(ErrorKind::ConnectionReset, "connection reset")));
        };
        let dir = &mut c.dirs[1 - end];
        if !dir.unread.is_empty() {
            let mut n = 0;
            while n < buf.len() {
                let Some(front) = dir.unread.front_mut() else { break };
                let take = front.len().min(buf.len() - n);
                buf[n..n + take].copy_from_slice(&front.split_to(take));
                n += take;
                if front.is_empty() {
                    dir.unread.pop_front();
                }
            }
            let was_full = dir.in_window >= window;
            dir.in_window -= n;
            if let (true, Some(w)) = (was_full || n > 0, dir.write_waker.take()) {
                w.wake();
            }
            return Poll::Ready(Ok(n));
        }
        if let Some(kind) = c.ends[end].error {
            return Poll::Ready(Err(err(kind, stream_failure(kind))));
        }
        if dir.fin && dir.reorder.is_empty() {
            return Poll::Ready(Ok(0));
        }
        dir.read_waker = Some(waker.clone());
        Poll::Pending
    }

    /// Writes from `buf` for end `end` of `conn`, as much as the window takes.
    pub(crate) fn tcp_poll_write(
        &mut self,
        conn: u64,
        end: usize,
        buf: &[u8],
        waker: &Waker,
    ) -> Poll<io::Result<usize>> {
        let window = self.streams.config.window;
        let Some(c) = self.streams.conns.get_mut(&conn) else {
            return Poll::Ready(Err(err(ErrorKind::BrokenPipe, "the connection is closed")));
        };
        if let Some(kind) = c.ends[end].error {
            return Poll::Ready(Err(err(kind, stream_failure(kind))));
        }
        if c.ends[end].shut {
            return Poll::Ready(Err(err(ErrorKind::BrokenPipe, "this end was shut down for writing")));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let dir = &mut c.dirs[end];
        let free = window.saturating_sub(dir.in_window);
        if free == 0 {
            dir.write_waker = Some(waker.clone());
            return Poll::Pending;
        }
        let n = free.min(buf.len()).min(MAX_SEGMENT);
        let seq = dir.next_seq;
        dir.next_seq += 1;
        dir.in_window += n;
        let bytes = Bytes::copy_from_slice(&buf[..n]);
        let node = c.ends[end].node;
        self.tcp_record(node, conn, TcpEvent::Segment { seq, bytes: n as u32, digest: StableHasher::digest(&bytes) });
        self.tcp_send(conn, end, SegmentKind::Data { seq, bytes });
        Poll::Ready(Ok(n))
    }

    /// Shuts end `end`'s writing half: a FIN after what it wrote.
    pub(crate) fn tcp_shutdown(&mut self, conn: u64, end: usize) -> io::Result<()> {
        let Some(c) = self.streams.conns.get_mut(&conn) else { return Ok(()) };
        if c.ends[end].shut || c.ends[end].error.is_some() {
            return Ok(());
        }
        c.ends[end].shut = true;
        let seq = c.dirs[end].next_seq;
        c.dirs[end].next_seq += 1;
        let node = c.ends[end].node;
        self.tcp_record(node, conn, TcpEvent::Fin);
        self.tcp_send(conn, end, SegmentKind::Fin { seq });
        Ok(())
    }

    /// End `end`'s handle was dropped: unread data makes it a reset (as a kernel does), else
    /// a FIN; the connection is forgotten once both ends are done.
    pub(crate) fn tcp_drop(&mut self, conn: u64, end: usize, incarnation: u32) {
        let Some(c) = self.streams.conns.get_mut(&conn) else { return };
        if c.ends[end].incarnation != incarnation || c.ends[end].closed {
            return;
        }
        c.ends[end].closed = true;
        let unread = !c.dirs[1 - end].unread.is_empty();
        if c.ends[end].error.is_none() && unread {
            self.tcp_abort(conn, end, TcpEvent::Reset);
        } else {
            let _ = self.tcp_shutdown(conn, end);
        }
        self.tcp_forget_if_done(conn);
    }

    fn tcp_forget_if_done(&mut self, conn: u64) {
        // Kept while a program holds a handle to either end (it must still see the error).
        let done = (self.streams.conns.get(&conn)).is_some_and(|c| c.ends.iter().all(|e| !e.bound || e.closed));
        if done {
            self.streams.conns.remove(&conn);
        }
    }

    /// Fails end `end` of `conn` locally (`event` says why) and sends the peer a reset.
    fn tcp_abort(&mut self, conn: u64, end: usize, event: TcpEvent) {
        let Some(c) = self.streams.conns.get_mut(&conn) else { return };
        let kind = if matches!(event, TcpEvent::TimedOut) { ErrorKind::TimedOut } else { ErrorKind::ConnectionAborted };
        let node = c.ends[end].node;
        if c.ends[end].error.is_none() {
            c.ends[end].error = Some(kind);
        }
        wake_all(c);
        self.tcp_record(node, conn, event);
        self.tcp_send(conn, end, SegmentKind::Rst);
    }

    /// A node's program is gone (crash, exit, restart): its listeners close and its
    /// connections are reset for their peers.
    pub(crate) fn tcp_node_down(&mut self, node: NodeId) {
        let incarnation = self.node(node).incarnation;
        self.streams.listeners.retain(|(n, _), l| !(*n == node && l.incarnation == incarnation));
        let conns: Vec<(u64, usize)> = (self.streams.conns.iter())
            .filter_map(|(id, c)| {
                let end = c.ends.iter().position(|e| e.bound && e.node == node && e.incarnation == incarnation)?;
                Some((*id, end))
            })
            .collect();
        for (conn, end) in conns {
            let c = self.streams.conns.get_mut(&conn).expect("listed");
            c.ends[end].closed = true;
            c.ends[end].error = Some(ErrorKind::ConnectionAborted);
            self.tcp_record(node, conn, TcpEvent::Reset);
            self.tcp_send(conn, end, SegmentKind::Rst);
            self.tcp_forget_if_done(conn);
        }
    }

    /// Puts one transmission of a segment on the wire.
    fn tcp_send(&mut self, conn: u64, from_end: usize, kind: SegmentKind) {
        let now = self.now_nanos();
        self.tcp_transmit(Segment { conn, from_end, kind, attempt: 0, first_sent: now, lost: false });
    }

    fn tcp_transmit(&mut self, mut seg: Segment) {
        let Some(c) = self.streams.conns.get(&seg.conn) else { return };
        let (from, to) = (c.ends[seg.from_end].node, c.ends[1 - seg.from_end].node);
        let link = self.link(from, to).clone();
        let rng = self.streams.rngs.entry((from, to)).or_insert_with(|| {
            let name = format!("{}>{}/tcp", self.nodes[from.0 as usize].spec.name, self.nodes[to.0 as usize].spec.name);
            seeded(self.seeds.sim, Purpose::Network, &name, 0)
        });
        let mut draw = ChaCha8Rng::seed_from_u64(rng.next_u64());
        // A reset is not lost: in TCP the segment that drew it is retransmitted and draws
        // another, which this stands for. It still waits out a cut.
        seg.lost = link.loss > 0.0 && draw.random_bool(link.loss) && !matches!(seg.kind, SegmentKind::Rst);
        let delay = link.latency.sample(&mut draw).as_nanos() as u64;
        let now = self.now_nanos();
        let c = self.streams.conns.get_mut(&seg.conn).expect("checked");
        let dir = &mut c.dirs[seg.from_end];
        // First transmissions of one direction keep their order, as on one path.
        let due = if seg.attempt == 0 { (now + delay).max(dir.last_due) } else { now + delay };
        if seg.attempt == 0 {
            dir.last_due = due;
        }
        let to_incarnation = self.node(to).incarnation;
        self.enqueue_at(due, from, to, to_incarnation, Frame::Tcp(seg));
    }

    /// A segment's transmission reached the end of its link (or was lost on it).
    pub(crate) fn tcp_arrive(&mut self, from: NodeId, to: NodeId, seg: Segment) {
        if !self.streams.conns.contains_key(&seg.conn) {
            return;
        }
        if seg.lost || self.is_cut(from, to) {
            return self.tcp_retransmit(seg);
        }
        let conn = seg.conn;
        let receiver = 1 - seg.from_end;
        let down = !matches!(self.node(to).status, NodeStatus::Running | NodeStatus::Paused);
        match seg.kind {
            SegmentKind::Syn if self.streams.conns[&conn].ends[1].bound => {
                // A retransmitted connect the listener already took: answer it again.
                if !self.streams.conns[&conn].established {
                    self.tcp_send(conn, 1, SegmentKind::SynAck);
                }
            }
            SegmentKind::Syn => {
                let port = self.streams.conns[&conn].ends[1].addr.port();
                let incarnation = self.node(to).incarnation;
                let backlog = self.streams.config.backlog;
                let listener =
                    self.streams.listeners.get_mut(&(to, port)).filter(|l| l.incarnation == incarnation && !down);
                match listener {
                    None => {
                        self.tcp_record(to, conn, TcpEvent::Refused);
                        self.tcp_send(conn, 1, SegmentKind::Rst);
                    }
                    // A full backlog ignores the connect, which retries and times out.
                    Some(l) if l.backlog.len() >= backlog => {}
                    Some(l) => {
                        l.backlog.push_back(conn);
                        for w in l.wakers.drain(..) {
                            w.wake();
                        }
                        let c = self.streams.conns.get_mut(&conn).expect("checked");
                        c.ends[1].incarnation = incarnation;
                        c.ends[1].bound = true;
                        self.tcp_send(conn, 1, SegmentKind::SynAck);
                    }
                }
            }
            SegmentKind::SynAck => {
                let c = self.streams.conns.get_mut(&conn).expect("checked");
                c.established = true;
                if let Some(w) = c.connect_waker.take() {
                    w.wake();
                }
            }
            SegmentKind::Rst => {
                let c = self.streams.conns.get_mut(&conn).expect("checked");
                let kind = if c.established { ErrorKind::ConnectionReset } else { ErrorKind::ConnectionRefused };
                if c.ends[receiver].error.is_none() {
                    c.ends[receiver].error = Some(kind);
                }
                wake_all(c);
                self.tcp_forget_if_done(conn);
            }
            SegmentKind::Data { seq, bytes } => self.tcp_take(conn, receiver, seq, Some(bytes)),
            SegmentKind::Fin { seq } => self.tcp_take(conn, receiver, seq, None),
        }
    }

    /// Data or a FIN (`None`) for `receiver`: in order into its unread bytes, or held until
    /// the missing segments arrive. An end that is gone answers with a reset.
    fn tcp_take(&mut self, conn: u64, receiver: usize, seq: u64, bytes: Option<Bytes>) {
        let c = self.streams.conns.get_mut(&conn).expect("checked");
        if c.ends[receiver].closed {
            // Nobody reads there any more (the program closed it, or is gone): its host
            // answers with a reset.
            if bytes.is_some() {
                self.tcp_send(conn, receiver, SegmentKind::Rst);
            }
            return;
        }
        let dir = &mut c.dirs[1 - receiver];
        if seq < dir.expected {
            return;
        }
        dir.reorder.insert(seq, bytes);
        while let Some(next) = dir.reorder.remove(&dir.expected) {
            dir.expected += 1;
            match next {
                Some(b) => dir.unread.push_back(b),
                None => dir.fin = true,
            }
        }
        if let Some(w) = dir.read_waker.take() {
            w.wake();
        }
    }

    /// Sends a lost or stalled transmission again after the retransmission timeout, or gives
    /// up past the user (or connect) timeout.
    fn tcp_retransmit(&mut self, mut seg: Segment) {
        let config = &self.streams.config;
        let now = self.now_nanos();
        let limit = if matches!(seg.kind, SegmentKind::Syn) { config.connect_timeout } else { config.user_timeout };
        let rto = config.rto.saturating_mul(1 << seg.attempt.min(16)).min(config.max_rto).as_nanos() as u64;
        let deadline = seg.first_sent + limit.as_nanos() as u64;
        if now >= deadline {
            if matches!(seg.kind, SegmentKind::SynAck | SegmentKind::Rst) {
                // The connecting end gives up on its own connect timeout; a reset that never
                // got through leaves its peer to find out by its own timeouts.
                return;
            }
            return self.tcp_abort(seg.conn, seg.from_end, TcpEvent::TimedOut);
        }
        let Some(c) = self.streams.conns.get(&seg.conn) else { return };
        let (from, to) = (c.ends[seg.from_end].node, c.ends[1 - seg.from_end].node);
        seg.attempt += 1;
        seg.lost = false;
        let seq = match &seg.kind {
            SegmentKind::Data { seq, .. } | SegmentKind::Fin { seq } => *seq,
            _ => 0,
        };
        self.tcp_record(from, seg.conn, TcpEvent::Retransmit { seq, attempt: seg.attempt });
        // Sent again after the timeout: its transmission then takes the link's latency (drawn
        // then, from the link's TCP stream).
        let at = (now + rto).min(deadline);
        let to_incarnation = self.node(to).incarnation;
        self.enqueue_at(at, from, to, to_incarnation, Frame::TcpRetry(seg));
    }

    /// A retransmission's timer fired: transmit it.
    pub(crate) fn tcp_retry(&mut self, seg: Segment) {
        self.tcp_transmit(seg);
    }
}

fn wake_all(c: &mut Conn) {
    for d in &mut c.dirs {
        if let Some(w) = d.read_waker.take() {
            w.wake();
        }
        if let Some(w) = d.write_waker.take() {
            w.wake();
        }
    }
    if let Some(w) = c.connect_waker.take() {
        w.wake();
    }
}

fn connect_failure(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::TimedOut => "connect timed out",
        _ => "connect failed",
    }
}

fn stream_failure(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ConnectionReset => "connection reset by peer",
        ErrorKind::TimedOut => "connection timed out (unacknowledged data past the user timeout)",
        ErrorKind::ConnectionRefused => "connection refused",
        _ => "connection aborted",
    }
}
