//! The simulated [`TcpListener`] and [`TcpStream`]: tokio's surface (`bind`, `accept`,
//! `connect`, `peer_addr`, `AsyncRead`/`AsyncWrite`, `shutdown`) over the world's streams
//! ([`crate::stream`]). Handles are ids: `Send`, `Sync`, `Unpin`, cheap, and harmless after
//! their node restarted (they fail with the error a real socket of a dead process would give).

use crate::state::{try_with_world, with_world};
use std::future::poll_fn;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where to bind or connect: a socket address, `(ip, port)`, or `"host:port"` where host is
/// a node's name (`"replica-1:7000"`) or an IP address — what tokio takes, resolved in the
/// simulated network instead of DNS.
pub trait ToSimAddr {
    /// The address, resolved in the world.
    fn to_sim_addr(&self) -> io::Result<SocketAddr>;
}

impl ToSimAddr for SocketAddr {
    fn to_sim_addr(&self) -> io::Result<SocketAddr> {
        Ok(*self)
    }
}

impl ToSimAddr for (IpAddr, u16) {
    fn to_sim_addr(&self) -> io::Result<SocketAddr> {
        Ok(SocketAddr::new(self.0, self.1))
    }
}

impl ToSimAddr for (&str, u16) {
    fn to_sim_addr(&self) -> io::Result<SocketAddr> {
        with_world(|w| w.tcp_resolve(self.0, self.1))
    }
}

impl ToSimAddr for str {
    fn to_sim_addr(&self) -> io::Result<SocketAddr> {
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{self:?} is not host:port")))?;
        let port: u16 =
            port.parse().map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("bad port in {self:?}")))?;
        (host.trim_start_matches('[').trim_end_matches(']'), port).to_sim_addr()
    }
}

impl ToSimAddr for String {
    fn to_sim_addr(&self) -> io::Result<SocketAddr> {
        self.as_str().to_sim_addr()
    }
}

impl<T: ToSimAddr + ?Sized> ToSimAddr for &T {
    fn to_sim_addr(&self) -> io::Result<SocketAddr> {
        (**self).to_sim_addr()
    }
}

/// A listening socket of a simulated node (tokio's `TcpListener` in the real build).
#[derive(Debug)]
pub struct TcpListener {
    node: crate::NodeId,
    incarnation: u32,
    addr: SocketAddr,
}

impl TcpListener {
    /// Listens on `addr` of the calling node: its own IP, `0.0.0.0` or `127.0.0.1`, and a
    /// port (0 picks a free one). `AddrInUse` if something listens there already.
    pub async fn bind<A: ToSimAddr>(addr: A) -> io::Result<TcpListener> {
        let addr = addr.to_sim_addr()?;
        with_world(|w| {
            let (node, incarnation) = w.tcp_caller()?;
            let addr = w.tcp_bind(addr)?;
            Ok(TcpListener { node, incarnation, addr })
        })
    }

    /// Waits for the next connection: the stream and the peer's address.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (conn, local, peer) =
            poll_fn(|cx| with_world(|w| w.tcp_poll_accept(self.node, self.incarnation, self.addr.port(), cx.waker())))
                .await?;
        let stream = TcpStream { conn, end: 1, incarnation: self.incarnation, local, peer };
        Ok((stream, peer))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        try_with_world(|w| w.tcp_close_listener(self.node, self.incarnation, self.addr.port()));
    }
}

/// A connection of a simulated node (tokio's `TcpStream` in the real build): reads and writes
/// go through the world's links, with their latency, partitions, loss (as retransmission
/// delay) and resets.
#[derive(Debug)]
pub struct TcpStream {
    conn: u64,
    /// 0: the end that connected; 1: the end that accepted.
    end: usize,
    incarnation: u32,
    local: SocketAddr,
    peer: SocketAddr,
}

impl TcpStream {
    /// Connects to `addr` (a node's name or IP, and a port). `ConnectionRefused` if nobody
    /// listens there (or the node's program is down), `TimedOut` if no answer comes within
    /// the connect timeout (a partition), `HostUnreachable` for an address no node has.
    pub async fn connect<A: ToSimAddr>(addr: A) -> io::Result<TcpStream> {
        let to = addr.to_sim_addr()?;
        let (conn, local, peer, incarnation) = with_world(|w| {
            let (_, incarnation) = w.tcp_caller()?;
            let (conn, local, peer) = w.tcp_connect(to)?;
            Ok::<_, io::Error>((conn, local, peer, incarnation))
        })?;
        // Dropped if the connect fails or is given up: the connection is closed.
        let stream = TcpStream { conn, end: 0, incarnation, local, peer };
        poll_fn(|cx| with_world(|w| w.tcp_poll_connect(conn, cx.waker()))).await?;
        Ok(stream)
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    /// Accepted for compatibility: segments are never delayed to coalesce them.
    pub fn set_nodelay(&self, _nodelay: bool) -> io::Result<()> {
        Ok(())
    }

    /// Always true (see [`TcpStream::set_nodelay`]).
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(true)
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let (conn, end) = (self.conn, self.end);
        let n = match with_world(|w| w.tcp_poll_read(conn, end, buf.initialize_unfilled(), cx.waker())) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let (conn, end) = (self.conn, self.end);
        with_world(|w| w.tcp_poll_write(conn, end, buf, cx.waker()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Written bytes are on their way already.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (conn, end) = (self.conn, self.end);
        Poll::Ready(with_world(|w| w.tcp_shutdown(conn, end)))
    }
}

impl Drop for TcpStream {
    fn drop(&mut self) {
        try_with_world(|w| w.tcp_drop(self.conn, self.end, self.incarnation));
    }
}
