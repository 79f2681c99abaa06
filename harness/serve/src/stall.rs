//! A write deadline on every connection: a client that stops reading (an event stream it no
//! longer drains, a bundle it downloads and abandons) has its connection closed once a write
//! has waited [`Config::stall_limit`](crate::Config::stall_limit), freeing what it held. Runs
//! never wait for clients in any case: event streams read the store at their own pace.

use prometheus_client::metrics::counter::Counter;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A TCP listener whose connections carry a write deadline.
pub struct StallListener {
    inner: tokio::net::TcpListener,
    limit: Duration,
    dropped: Counter,
}

impl StallListener {
    /// Wraps `inner`: each accepted connection is closed when a write stays blocked for
    /// `limit`; `dropped` counts those closed.
    pub fn new(inner: tokio::net::TcpListener, limit: Duration, dropped: Counter) -> StallListener {
        StallListener { inner, limit, dropped }
    }
}

impl axum::serve::Listener for StallListener {
    type Io = Stalling<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (Stalling::new(io, self.limit, self.dropped.clone()), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A stream whose writes fail with `TimedOut` once one has been blocked for its limit.
pub struct Stalling<T> {
    inner: T,
    limit: Duration,
    /// Armed when a write is first blocked; disarmed by any write that goes through.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    dropped: Counter,
}

impl<T> Stalling<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, limit: Duration, dropped: Counter) -> Stalling<T> {
        Stalling { inner, limit, timer: None, dropped }
    }

    /// After the inner write answered `poll`: disarm on progress; on `Pending`, arm the
    /// deadline (once) and fail when it has passed.
    fn deadline<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match poll {
            Poll::Ready(r) => {
                self.timer = None;
                Poll::Ready(r)
            }
            Poll::Pending => {
                let limit = self.limit;
                let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if timer.as_mut().poll(cx).is_ready() {
                    self.dropped.inc();
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the client read nothing for {limit:?}: connection closed"),
                    )))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stalling<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stalling<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.deadline(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.deadline(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.deadline(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_cut_off_and_one_that_reads_is_not() {
        let dropped = Counter::default();
        // A 64-byte pipe: the writer blocks as soon as the reader stops taking bytes.
        let (server, mut client) = tokio::io::duplex(64);
        let mut server = Stalling::new(server, Duration::from_secs(30), dropped.clone());
        let chunk = [7u8; 48];
        // A reader that keeps up: many writes, never cut (time passes only while blocked).
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; 48 * 100];
            client.read_exact(&mut got).await.map(|_| client)
        });
        for _ in 0..100 {
            server.write_all(&chunk).await.expect("a reading client is written to");
        }
        let mut client = reader.await.expect("joins").expect("the reader read all");
        assert_eq!(dropped.get(), 0);
        // It stops reading: the pipe fills, the write waits 30 s, then fails.
        let started = tokio::time::Instant::now();
        let err = loop {
            if let Err(e) = server.write_all(&chunk).await {
                break e;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert_eq!(started.elapsed(), Duration::from_secs(30), "cut off exactly at the limit");
        assert_eq!(dropped.get(), 1);
        let mut rest = Vec::new();
        drop(server);
        client.read_to_end(&mut rest).await.expect("what was written before stays readable");
        assert_eq!(rest.len(), 64, "the pipe held 64 bytes when the client stopped");
    }
}
