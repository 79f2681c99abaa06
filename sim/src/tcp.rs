//! The real transport: length-prefixed frames over TCP.
//!
//! Frame: `u32 len` (of what follows), `u32 from`, `u8 kind` (0 one-way, 1 request, 2 response),
//! `u64 request id`, body. All little-endian. One outbound connection per peer, opened on demand
//! and re-opened after an error; a message that cannot be written is dropped, as on a lossy network.
#![allow(clippy::disallowed_types, clippy::disallowed_methods, reason = "the real transport talks to the real network")]

use super::{Message, ReplyTo, RequestError};
use crate::node::NodeId;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

const KIND_ONE_WAY: u8 = 0;
const KIND_REQUEST: u8 = 1;
const KIND_RESPONSE: u8 = 2;
/// Largest frame accepted from the wire.
pub const MAX_FRAME_BYTES: usize = 16 << 20;
const OUTBOUND_QUEUE: usize = 4096;
const INBOX_QUEUE: usize = 65_536;

struct Inner {
    id: NodeId,
    peers: BTreeMap<NodeId, SocketAddr>,
    outbound: Mutex<BTreeMap<NodeId, mpsc::Sender<Bytes>>>,
    /// Waiting requests by (peer, id): a late reply from another peer can never complete one.
    pending: Mutex<BTreeMap<(NodeId, u64), oneshot::Sender<Bytes>>>,
    next_request: AtomicU64,
    inbox: tokio::sync::Mutex<mpsc::Receiver<Message>>,
}

/// A node's endpoint on the real network. Cheap to clone.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").field("id", &self.inner.id).finish()
    }
}

fn encode(from: NodeId, kind: u8, id: u64, body: &[u8]) -> Bytes {
    let mut buf = Vec::with_capacity(17 + body.len());
    buf.extend_from_slice(&((13 + body.len()) as u32).to_le_bytes());
    buf.extend_from_slice(&from.0.to_le_bytes());
    buf.push(kind);
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(body);
    Bytes::from(buf)
}

impl Transport {
    /// Listens on `listen` as node `id`; `peers` maps every other node to its address.
    /// Must be called inside a tokio runtime.
    pub async fn bind(id: NodeId, listen: SocketAddr, peers: BTreeMap<NodeId, SocketAddr>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        Ok(Self::with_listener(id, listener, peers))
    }

    /// Serves on an already bound listener. Binding every node's listener to port 0 first and
    /// then building the peer map from their real addresses assigns ports without races.
    pub fn with_listener(id: NodeId, listener: TcpListener, peers: BTreeMap<NodeId, SocketAddr>) -> Self {
        let (tx, rx) = mpsc::channel(INBOX_QUEUE);
        // Ids start at a random point, so a reply meant for a previous process's request id
        // is unlikely to match one of ours after a restart.
        let first_id = {
            use rand::RngCore;
            rand::rng().next_u64() >> 1
        };
        let inner = Arc::new(Inner {
            id,
            peers,
            outbound: Mutex::new(BTreeMap::new()),
            pending: Mutex::new(BTreeMap::new()),
            next_request: AtomicU64::new(first_id),
            inbox: tokio::sync::Mutex::new(rx),
        });
        let weak = Arc::downgrade(&inner);
        tokio::spawn(async move {
            loop {
                let accepted = listener.accept().await;
                let Some(inner) = weak.upgrade() else { break };
                match accepted {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(read_loop(stream, tx.clone(), Arc::downgrade(&inner)));
                    }
                    // Out of file descriptors and the like: keep serving once it passes.
                    Err(e) => {
                        tracing::warn!(node = %inner.id, "accept failed: {e}");
                        drop(inner);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        });
        Transport { inner }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    fn push(&self, to: NodeId, frame: Bytes) {
        let Some(&addr) = self.inner.peers.get(&to) else { return };
        if frame.len() - 4 > MAX_FRAME_BYTES {
            tracing::warn!(node = %self.inner.id, %to, bytes = frame.len(), "message over {MAX_FRAME_BYTES} bytes dropped");
            return;
        }
        let mut out = self.inner.outbound.lock().expect("outbound lock");
        let tx = out.entry(to).or_insert_with(|| {
            let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
            tokio::spawn(write_loop(addr, rx));
            tx
        });
        // A full queue drops the message: the peer is slow or unreachable.
        let _ = tx.try_send(frame);
    }

    /// Sends a one-way message. Never blocks; it may be dropped if the peer is unreachable.
    pub fn send(&self, to: NodeId, body: impl Into<Bytes>) {
        self.push(to, encode(self.inner.id, KIND_ONE_WAY, 0, &body.into()));
    }

    /// Receives the next message (one-way or request).
    pub async fn recv(&self) -> Message {
        let mut rx = self.inner.inbox.lock().await;
        rx.recv().await.expect("the accept loop holds the sender while the transport lives")
    }

    /// Sends a request and waits at most `timeout` for its response.
    pub async fn request(&self, to: NodeId, body: impl Into<Bytes>, timeout: Duration) -> Result<Bytes, RequestError> {
        if !self.inner.peers.contains_key(&to) {
            return Err(RequestError::UnknownPeer(to));
        }
        let id = self.inner.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.inner.pending.lock().expect("pending lock").insert((to, id), tx);
        // Removes the entry however this future ends: answered, timed out, or dropped.
        let _guard = PendingGuard { inner: &self.inner, key: (to, id) };
        self.push(to, encode(self.inner.id, KIND_REQUEST, id, &body.into()));
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(body)) => Ok(body),
            _ => Err(RequestError::Timeout { to, timeout }),
        }
    }

    /// Answers a request received through [`Transport::recv`].
    pub fn reply(&self, to: ReplyTo, body: impl Into<Bytes>) {
        self.push(to.to, encode(self.inner.id, KIND_RESPONSE, to.id, &body.into()));
    }
}

struct PendingGuard<'a> {
    inner: &'a Inner,
    key: (NodeId, u64),
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.inner.pending.lock().expect("pending lock").remove(&self.key);
    }
}

/// How long sent data may go unacknowledged before a connection is given up (`TCP_USER_TIMEOUT`).
pub const UNACKED_LIMIT: Duration = Duration::from_secs(2);

async fn write_loop(addr: SocketAddr, mut rx: mpsc::Receiver<Bytes>) {
    let mut conn: Option<TcpStream> = None;
    while let Some(frame) = rx.recv().await {
        if conn.is_none() {
            conn = match tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    // A connection whose data goes unacknowledged for 2 s (a partition that
                    // drops packets silently) is abandoned, so that once the network heals the
                    // next frame opens a fresh one instead of waiting out TCP's exponential
                    // retransmission backoff, which grows past 10 s after a few seconds of loss.
                    let _ = socket2::SockRef::from(&s).set_tcp_user_timeout(Some(UNACKED_LIMIT));
                    Some(s)
                }
                _ => None,
            };
        }
        if let Some(s) = conn.as_mut() {
            // A peer that stops reading must not stall this queue forever.
            match tokio::time::timeout(Duration::from_secs(5), s.write_all(&frame)).await {
                Ok(Ok(())) => {}
                _ => conn = None,
            }
        }
    }
}

async fn read_loop(mut stream: TcpStream, inbox: mpsc::Sender<Message>, inner: std::sync::Weak<Inner>) {
    loop {
        let mut len = [0u8; 4];
        if stream.read_exact(&mut len).await.is_err() {
            return;
        }
        let len = u32::from_le_bytes(len) as usize;
        if !(13..=MAX_FRAME_BYTES).contains(&len) {
            return; // not our protocol, or corrupt: drop the connection
        }
        let mut buf = vec![0u8; len];
        if stream.read_exact(&mut buf).await.is_err() {
            return;
        }
        let from = NodeId(u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")));
        let kind = buf[4];
        let id = u64::from_le_bytes(buf[5..13].try_into().expect("8 bytes"));
        let body = Bytes::from(buf).slice(13..);
        match kind {
            KIND_RESPONSE => {
                let Some(inner) = inner.upgrade() else { return };
                let tx = inner.pending.lock().expect("pending lock").remove(&(from, id));
                if let Some(tx) = tx {
                    let _ = tx.send(body);
                }
            }
            KIND_ONE_WAY | KIND_REQUEST => {
                let reply_to = (kind == KIND_REQUEST).then_some(ReplyTo { to: from, id });
                let _ = inbox.try_send(Message { from, reply_to, body });
            }
            _ => return,
        }
    }
}
