//! The trace: typed events with simulated time and node, bounded, with a stable running hash.
//!
//! # The trace hash
//!
//! Every recorded event is folded into a 64-bit FNV-1a hash (offset basis `0xcbf29ce484222325`,
//! prime `0x100000001b3`) over a canonical byte encoding, so the value is the same on every
//! machine, build profile and compiler version:
//!
//! * integers are little-endian at their declared width, `bool` is one byte, `Option` is a tag
//!   byte (`0`/`1`) then the value, strings are their length as `u32` then their UTF-8 bytes;
//! * an event is `at` in nanoseconds (`u64`), the node (`Option<u32>`), then the kind's tag byte
//!   (see [`EventKind::tag`]) followed by its fields in declaration order; a fault is encoded
//!   as its [`Display`](std::fmt::Display) text.
//!
//! The hash is a fingerprint for "same run or not", not a cryptographic digest.

use crate::fault::Fault;
use crate::node::NodeId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Why a message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DropReason {
    /// Random loss on the link.
    Loss,
    /// A partition or one-way cut was active between sender and receiver.
    Partition,
    /// The receiver was crashed, exited, or restarted since the message was sent.
    NodeDown,
    /// The receiver's inbox was at its bound.
    InboxFull,
    /// The network's in-flight queue was at its bound.
    NetworkFull,
}

/// What happened. Message ids are unique per run; `copy` distinguishes duplicates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EventKind {
    /// A node's program started (first boot or restart) with this incarnation number.
    NodeStart {
        /// 0 on first boot, +1 on each restart.
        incarnation: u32,
    },
    /// A node's program returned on its own.
    NodeExit,
    /// A node was killed.
    NodeCrash,
    /// A node was paused.
    NodePause,
    /// A node was resumed.
    NodeResume,
    /// A message left a node.
    Send {
        /// Message id.
        msg: u64,
        /// Destination.
        to: NodeId,
        /// Payload size.
        bytes: u32,
        /// FNV-1a of the payload bytes.
        digest: u64,
    },
    /// A message (or one of its duplicates) reached a node's inbox.
    Deliver {
        /// Message id.
        msg: u64,
        /// Sender.
        from: NodeId,
        /// 0 for the original, 1 for a duplicate.
        copy: u8,
    },
    /// A message was not delivered.
    Drop {
        /// Message id.
        msg: u64,
        /// Intended destination.
        to: NodeId,
        /// Why.
        reason: DropReason,
    },
    /// The network decided to deliver a second copy of a message.
    Duplicate {
        /// Message id.
        msg: u64,
    },
    /// A fault was applied by the supervisor or a schedule.
    Fault {
        /// The fault as applied.
        #[serde(with = "crate::fault::compact")]
        fault: Fault,
    },
    /// Unsynced writes became durable.
    StorageSync {
        /// File name.
        file: String,
        /// Bytes made durable.
        bytes: u64,
    },
    /// A crash discarded unsynced writes.
    StorageLoss {
        /// File name.
        file: String,
        /// Bytes of unsynced writes lost.
        bytes: u64,
        /// Bytes of the first unsynced write that survived as a torn write.
        torn: u64,
    },
    /// A buggify site fired.
    Buggify {
        /// `file:line` of the call site.
        site: String,
    },
    /// Free-form text emitted by the system under test or the supervisor.
    Annotation {
        /// The text.
        text: String,
    },
    /// A client operation was invoked or completed (recorded by workload drivers).
    Op {
        /// Operation name (`"put"`, `"transfer"`).
        op: String,
        /// Invocation or the kind of completion.
        phase: OpPhase,
    },
    /// Something happened to a simulated TCP connection (`crate::net::TcpStream`).
    Tcp {
        /// The connection (0 for a listen, which belongs to none).
        conn: u64,
        /// What happened.
        event: TcpEvent,
    },
}

/// What happened to a simulated TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TcpEvent {
    /// A node listens on a port.
    Listen {
        /// The port.
        port: u16,
    },
    /// A node connects.
    Connect {
        /// The node connected to.
        to: NodeId,
        /// Its port.
        port: u16,
    },
    /// The listening node's program accepted the connection.
    Accept {
        /// The node that connected.
        from: NodeId,
    },
    /// A connect reached a port nobody listens on (or a node whose program is down).
    Refused,
    /// Bytes were written and sent.
    Segment {
        /// The segment's number in its direction.
        seq: u64,
        /// Its size.
        bytes: u32,
        /// FNV-1a of its bytes.
        digest: u64,
    },
    /// A lost or stalled transmission is sent again.
    Retransmit {
        /// The segment's number (0 for a connect).
        seq: u64,
        /// Transmissions so far.
        attempt: u32,
    },
    /// A writing half was shut (or its socket dropped): a FIN follows the data.
    Fin,
    /// The connection was reset (a crash, a dropped socket with unread data).
    Reset,
    /// Data (or a connect) went unacknowledged past its timeout: the connection gave up.
    TimedOut,
}

impl TcpEvent {
    fn tag(&self) -> u8 {
        match self {
            TcpEvent::Listen { .. } => 1,
            TcpEvent::Connect { .. } => 2,
            TcpEvent::Accept { .. } => 3,
            TcpEvent::Refused => 4,
            TcpEvent::Segment { .. } => 5,
            TcpEvent::Retransmit { .. } => 6,
            TcpEvent::Fin => 7,
            TcpEvent::Reset => 8,
            TcpEvent::TimedOut => 9,
        }
    }
}

/// Number of tag slots in per-kind counts (tags are 1..=16; tag 16, `tcp`, is counted in slot
/// 0, which was unused, so that traces written before it still read).
const TAGS: usize = 16;

/// [`EventKind::name`] by [`EventKind::tag`].
const TAG_NAMES: [&str; TAGS] = [
    "tcp",
    "node_start",
    "node_exit",
    "node_crash",
    "node_pause",
    "node_resume",
    "send",
    "deliver",
    "drop",
    "duplicate",
    "fault",
    "storage_sync",
    "storage_loss",
    "buggify",
    "annotation",
    "op",
];

/// Where a client operation is in its life, in Jepsen's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpPhase {
    /// The client sent it.
    Invoke,
    /// It completed and took effect.
    Ok,
    /// It completed and certainly did not take effect.
    Fail,
    /// Unknown: it timed out or the connection broke; it may or may not have taken effect.
    Info,
}

impl EventKind {
    /// Stable one-byte tag used in the hash encoding (never renumber; append new kinds).
    pub fn tag(&self) -> u8 {
        match self {
            EventKind::NodeStart { .. } => 1,
            EventKind::NodeExit => 2,
            EventKind::NodeCrash => 3,
            EventKind::NodePause => 4,
            EventKind::NodeResume => 5,
            EventKind::Send { .. } => 6,
            EventKind::Deliver { .. } => 7,
            EventKind::Drop { .. } => 8,
            EventKind::Duplicate { .. } => 9,
            EventKind::Fault { .. } => 10,
            EventKind::StorageSync { .. } => 11,
            EventKind::StorageLoss { .. } => 12,
            EventKind::Buggify { .. } => 13,
            EventKind::Annotation { .. } => 14,
            EventKind::Op { .. } => 15,
            EventKind::Tcp { .. } => 16,
        }
    }

    /// Short lowercase name of the kind, for counts and summaries (`"send"`, `"deliver"`).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::NodeStart { .. } => "node_start",
            EventKind::NodeExit => "node_exit",
            EventKind::NodeCrash => "node_crash",
            EventKind::NodePause => "node_pause",
            EventKind::NodeResume => "node_resume",
            EventKind::Send { .. } => "send",
            EventKind::Deliver { .. } => "deliver",
            EventKind::Drop { .. } => "drop",
            EventKind::Duplicate { .. } => "duplicate",
            EventKind::Fault { .. } => "fault",
            EventKind::StorageSync { .. } => "storage_sync",
            EventKind::StorageLoss { .. } => "storage_loss",
            EventKind::Buggify { .. } => "buggify",
            EventKind::Annotation { .. } => "annotation",
            EventKind::Op { .. } => "op",
            EventKind::Tcp { .. } => "tcp",
        }
    }
}

/// One trace event: when (simulated time since the world started), where, what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Simulated time since the start of the run.
    pub at: Duration,
    /// The node the event belongs to (`None` for the supervisor and the network itself).
    pub node: Option<NodeId>,
    /// What happened.
    pub kind: EventKind,
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.at.as_secs_f64() * 1e3;
        match self.node {
            Some(n) => write!(f, "{ms:>12.3}ms {n:<5} ")?,
            None => write!(f, "{ms:>12.3}ms {:<5} ", "-")?,
        }
        match &self.kind {
            EventKind::NodeStart { incarnation } => write!(f, "start incarnation={incarnation}"),
            EventKind::Send { msg, to, bytes, digest } => {
                write!(f, "send #{msg} -> {to} ({bytes} B, digest {digest:016x})")
            }
            EventKind::Deliver { msg, from, copy } => write!(f, "deliver #{msg} <- {from} copy={copy}"),
            EventKind::Drop { msg, to, reason } => write!(f, "drop #{msg} -> {to} ({reason:?})"),
            EventKind::Duplicate { msg } => write!(f, "duplicate #{msg}"),
            EventKind::Fault { fault } => write!(f, "fault {fault}"),
            EventKind::StorageSync { file, bytes } => write!(f, "sync {file} ({bytes} B)"),
            EventKind::StorageLoss { file, bytes, torn } => {
                write!(f, "storage loss {file} ({bytes} B lost, {torn} B torn)")
            }
            EventKind::Buggify { site } => write!(f, "buggify {site}"),
            EventKind::Annotation { text } => write!(f, "note {text}"),
            EventKind::Op { op, phase } => write!(f, "op {op} {phase:?}"),
            EventKind::Tcp { conn, event } => write!(f, "tcp #{conn} {event:?}"),
            other => write!(f, "{}", other.name()),
        }
    }
}

/// FNV-1a, 64 bit: the documented, platform-independent hash behind [`Trace::hash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StableHasher(u64);

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl StableHasher {
    /// Folds raw bytes in.
    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    /// Folds a `u8`.
    #[inline]
    pub fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }
    /// Folds a `u32`, little-endian.
    #[inline]
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    /// Folds a `u64`, little-endian.
    #[inline]
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    /// Folds a string as `u32` length then UTF-8 bytes.
    #[inline]
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.bytes(s.as_bytes());
    }
    /// The hash so far.
    pub fn finish(&self) -> u64 {
        self.0
    }

    /// FNV-1a of one byte slice (used for payload digests).
    pub fn digest(bytes: &[u8]) -> u64 {
        let mut h = StableHasher::default();
        h.bytes(bytes);
        h.finish()
    }

    fn event(&mut self, e: &TraceEvent) {
        self.u64(e.at.as_nanos() as u64);
        match e.node {
            Some(n) => {
                self.u8(1);
                self.u32(n.0);
            }
            None => self.u8(0),
        }
        self.u8(e.kind.tag());
        match &e.kind {
            EventKind::NodeStart { incarnation } => self.u32(*incarnation),
            EventKind::NodeExit | EventKind::NodeCrash | EventKind::NodePause | EventKind::NodeResume => {}
            EventKind::Send { msg, to, bytes, digest } => {
                self.u64(*msg);
                self.u32(to.0);
                self.u32(*bytes);
                self.u64(*digest);
            }
            EventKind::Deliver { msg, from, copy } => {
                self.u64(*msg);
                self.u32(from.0);
                self.u8(*copy);
            }
            EventKind::Drop { msg, to, reason } => {
                self.u64(*msg);
                self.u32(to.0);
                self.u8(*reason as u8);
            }
            EventKind::Duplicate { msg } => self.u64(*msg),
            EventKind::Fault { fault } => self.str(&fault.to_string()),
            EventKind::StorageSync { file, bytes } => {
                self.str(file);
                self.u64(*bytes);
            }
            EventKind::StorageLoss { file, bytes, torn } => {
                self.str(file);
                self.u64(*bytes);
                self.u64(*torn);
            }
            EventKind::Buggify { site } => self.str(site),
            EventKind::Annotation { text } => self.str(text),
            EventKind::Op { op, phase } => {
                self.str(op);
                self.u8(*phase as u8);
            }
            EventKind::Tcp { conn, event } => {
                self.u64(*conn);
                self.u8(event.tag());
                match *event {
                    TcpEvent::Listen { port } => self.u32(u32::from(port)),
                    TcpEvent::Connect { to, port } => {
                        self.u32(to.0);
                        self.u32(u32::from(port));
                    }
                    TcpEvent::Accept { from } => self.u32(from.0),
                    TcpEvent::Segment { seq, bytes, digest } => {
                        self.u64(seq);
                        self.u32(bytes);
                        self.u64(digest);
                    }
                    TcpEvent::Retransmit { seq, attempt } => {
                        self.u64(seq);
                        self.u32(attempt);
                    }
                    TcpEvent::Refused | TcpEvent::Fin | TcpEvent::Reset | TcpEvent::TimedOut => {}
                }
            }
        }
    }
}

/// Error raised when a trace would grow past its bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("trace limit exceeded: the run recorded more than {limit} events (raise WorldBuilder::max_trace_events, or shorten the run)")]
pub struct TraceLimitExceeded {
    /// The configured bound.
    pub limit: usize,
}

/// A bounded, hashed sequence of [`TraceEvent`]s.
///
/// When `keep_events` is false only the hash and the count are kept (for large sweeps).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trace {
    events: Vec<TraceEvent>,
    count: u64,
    /// Events recorded per [`EventKind::tag`], kept or not.
    #[serde(default)]
    by_tag: [u64; TAGS],
    hash: u64,
    limit: usize,
    keep_events: bool,
    overflowed: bool,
}

impl Trace {
    /// An empty trace that keeps at most `limit` events (and keeps them only if `keep_events`).
    pub fn new(limit: usize, keep_events: bool) -> Self {
        Trace {
            events: Vec::new(),
            count: 0,
            by_tag: [0; TAGS],
            hash: StableHasher::default().finish(),
            limit,
            keep_events,
            overflowed: false,
        }
    }

    /// Records an event, folding it into the running hash. Past the limit, events are neither
    /// counted, hashed nor kept, and [`Trace::check_limit`] reports the overflow.
    pub fn push(&mut self, event: TraceEvent) {
        if self.count as usize >= self.limit {
            self.overflowed = true;
            return;
        }
        let mut h = StableHasher(self.hash);
        h.event(&event);
        self.hash = h.finish();
        self.count += 1;
        self.by_tag[usize::from(event.kind.tag()) % TAGS] += 1;
        if tracing::enabled!(target: "gauntlet::trace", tracing::Level::DEBUG) {
            tracing::debug!(target: "gauntlet::trace", "{event}");
        }
        if self.keep_events {
            self.events.push(event);
        }
    }

    /// The running hash over every event so far (see the module docs for the algorithm).
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Number of events recorded (kept or not).
    pub fn len(&self) -> u64 {
        self.count
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The kept events (empty when the trace keeps only its hash).
    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }

    /// Errors if the run tried to record more events than the bound.
    pub fn check_limit(&self) -> Result<(), TraceLimitExceeded> {
        if self.overflowed {
            Err(TraceLimitExceeded { limit: self.limit })
        } else {
            Ok(())
        }
    }

    /// Counts of recorded events (kept or not) by [`EventKind::name`], in name order; kinds
    /// that never happened are left out.
    pub fn counts_by_kind(&self) -> std::collections::BTreeMap<&'static str, u64> {
        TAG_NAMES
            .iter()
            .enumerate()
            .filter(|(tag, _)| self.by_tag[*tag] > 0)
            .map(|(tag, name)| (*name, self.by_tag[tag]))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-tag name table agrees with `EventKind::name` for every kind.
    #[test]
    fn tag_names_match_kind_names() {
        let kinds = [
            EventKind::NodeStart { incarnation: 0 },
            EventKind::NodeExit,
            EventKind::NodeCrash,
            EventKind::NodePause,
            EventKind::NodeResume,
            EventKind::Send { msg: 0, to: NodeId(0), bytes: 0, digest: 0 },
            EventKind::Deliver { msg: 0, from: NodeId(0), copy: 0 },
            EventKind::Drop { msg: 0, to: NodeId(0), reason: DropReason::Loss },
            EventKind::Duplicate { msg: 0 },
            EventKind::Fault { fault: crate::Fault::Heal },
            EventKind::StorageSync { file: String::new(), bytes: 0 },
            EventKind::StorageLoss { file: String::new(), bytes: 0, torn: 0 },
            EventKind::Buggify { site: String::new() },
            EventKind::Annotation { text: String::new() },
            EventKind::Op { op: String::new(), phase: OpPhase::Invoke },
            EventKind::Tcp { conn: 0, event: TcpEvent::Fin },
        ];
        for k in &kinds {
            assert_eq!(TAG_NAMES[usize::from(k.tag()) % TAGS], k.name());
        }
        let mut hash_only = Trace::new(100, false);
        for k in kinds {
            hash_only.push(TraceEvent { at: Duration::ZERO, node: None, kind: k });
        }
        assert_eq!(hash_only.counts_by_kind().len(), 16, "counted without keeping events");
    }

    /// The hash algorithm is part of the product: this pins its value for a fixed input.
    #[test]
    fn hash_is_pinned() {
        let mut t = Trace::new(10, true);
        t.push(TraceEvent { at: Duration::from_millis(5), node: Some(NodeId(1)), kind: EventKind::NodeCrash });
        t.push(TraceEvent {
            at: Duration::from_millis(6),
            node: None,
            kind: EventKind::Annotation { text: "hello".into() },
        });
        assert_eq!(t.len(), 2);
        assert_eq!(t.hash(), 0x98f0_7886_2576_e09c, "got {:#018x}", t.hash());
        assert_eq!(StableHasher::digest(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(StableHasher::digest(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn limit_is_an_error_not_a_hang() {
        let mut t = Trace::new(1, false);
        let e = TraceEvent { at: Duration::ZERO, node: None, kind: EventKind::NodeExit };
        t.push(e.clone());
        assert!(t.check_limit().is_ok());
        t.push(e);
        assert_eq!(t.len(), 1);
        let err = t.check_limit().unwrap_err();
        assert!(err.to_string().contains("more than 1 events"), "{err}");
    }
}
