//! The transport system-under-test code uses for node-to-node messages: one-way sends and
//! request/response, addressed by [`NodeId`].
//!
//! One API, two implementations, picked by `cfg(madsim)` like madsim itself does:
//! * simulated: every message goes through the world's fault model (partitions, latency,
//!   loss, duplication, reordering, crashes, pauses) and is recorded in the trace;
//! * real: length-prefixed frames over TCP between the addresses given at bind time.
//!
//! Message bodies are bytes in both worlds, so the serialization a node does is the same too.

use crate::node::NodeId;
use bytes::Bytes;

/// Where to send the answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    /// The requester.
    pub to: NodeId,
    /// The requester's request id.
    pub id: u64,
}

/// A message received by a node.
#[derive(Debug, Clone)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Set when the sender awaits an answer: pass it to [`Transport::reply`].
    pub reply_to: Option<ReplyTo>,
    /// Payload.
    pub body: Bytes,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No response within the timeout (lost, partitioned, peer down or slow).
    #[error("request to {to} timed out after {timeout:?}")]
    Timeout {
        /// The peer.
        to: NodeId,
        /// The timeout that expired.
        timeout: std::time::Duration,
    },
    /// The peer is not known to this transport.
    #[error("unknown peer {0}")]
    UnknownPeer(NodeId),
}

#[cfg(madsim)]
mod imp {
    use super::{Message, ReplyTo, RequestError};
    use crate::node::NodeId;
    use crate::state::{with_world, Frame};
    use bytes::Bytes;
    use std::time::Duration;

    /// A node's endpoint on the simulated network. Cheap to clone.
    #[derive(Debug, Clone)]
    pub struct Transport {
        pub(crate) node: NodeId,
        pub(crate) incarnation: u32,
    }

    impl Transport {
        /// This node's id.
        pub fn id(&self) -> NodeId {
            self.node
        }

        /// Sends a one-way message. Never blocks; the network may drop, delay or duplicate it.
        pub fn send(&self, to: NodeId, body: impl Into<Bytes>) {
            let frame = Frame::OneWay(body.into());
            with_world(|w| w.send(self.node, to, frame));
        }

        /// Receives the next message (one-way or request). Responses to this node's own
        /// requests never show up here; they complete [`Transport::request`].
        pub async fn recv(&self) -> Message {
            let d = std::future::poll_fn(|cx| {
                match with_world(|w| w.poll_inbox(self.node, self.incarnation, cx.waker())) {
                    Some(d) => std::task::Poll::Ready(d),
                    None => std::task::Poll::Pending,
                }
            })
            .await;
            match d.frame {
                Frame::OneWay(body) => Message { from: d.from, reply_to: None, body },
                Frame::Request { id, body } => {
                    Message { from: d.from, reply_to: Some(ReplyTo { to: d.from, id }), body }
                }
                Frame::Response { .. } | Frame::Tcp(_) | Frame::TcpRetry(_) => {
                    unreachable!("responses go to their requests, segments to their connections")
                }
            }
        }

        /// Sends a request and waits at most `timeout` for its response.
        pub async fn request(
            &self,
            to: NodeId,
            body: impl Into<Bytes>,
            timeout: Duration,
        ) -> Result<Bytes, RequestError> {
            let body = body.into();
            let rx = with_world(|w| {
                if to.0 as usize >= w.nodes.len() {
                    return Err(RequestError::UnknownPeer(to));
                }
                let (id, rx) = w.new_request(self.node);
                w.send(self.node, to, Frame::Request { id, body });
                Ok((id, rx))
            });
            let (id, rx) = rx?;
            match madsim::time::timeout(timeout, rx).await {
                Ok(Ok(body)) => Ok(body),
                _ => {
                    with_world(|w| w.node_mut(self.node).pending.remove(&id));
                    Err(RequestError::Timeout { to, timeout })
                }
            }
        }

        /// Answers a request received through [`Transport::recv`].
        pub fn reply(&self, to: ReplyTo, body: impl Into<Bytes>) {
            let frame = Frame::Response { id: to.id, body: body.into() };
            with_world(|w| w.send(self.node, to.to, frame));
        }
    }
}

#[cfg(not(madsim))]
#[path = "tcp.rs"]
mod imp;

pub use imp::Transport;

// Streams: the world's simulated TCP under simulation, tokio's sockets for real, so one
// source serves both builds (see `docs/STREAMS.md`).
#[cfg(madsim)]
pub use crate::sockets::{TcpListener, TcpStream, ToSimAddr};
#[cfg(not(madsim))]
pub use tokio::net::{TcpListener, TcpStream};
