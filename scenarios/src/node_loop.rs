//! The step the node drivers (raft-kv, ledger) share: wait for the next thing to do — a message
//! from the network, a request from a same-process client (the real binaries' HTTP APIs), or
//! the tick coming due. Both builds.

use futures::channel::mpsc;
use futures::future::Either;
use futures::StreamExt;
use gauntlet::sim::{Message, Transport};
use std::time::Duration;

/// What a driver does next.
pub enum Event<L> {
    /// A message arrived.
    Net(Message),
    /// A same-process client asked something.
    Local(L),
    /// `wait` passed with nothing else: the tick is due.
    Tick,
}

/// Waits up to `wait` for a message or a local request. The network is polled first, so the
/// choice is deterministic (like `select_biased!`); a closed or absent local channel never
/// yields.
pub async fn next_event<L>(transport: &Transport, local: &mut Option<mpsc::Receiver<L>>, wait: Duration) -> Event<L> {
    let net = std::pin::pin!(transport.recv());
    let from_local = std::pin::pin!(async {
        match local.as_mut() {
            Some(rx) => match rx.next().await {
                Some(r) => r,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    });
    match gauntlet::sim::time::timeout(wait, futures::future::select(net, from_local)).await {
        Err(_) => Event::Tick,
        Ok(Either::Left((m, _))) => Event::Net(m),
        Ok(Either::Right((r, _))) => Event::Local(r),
    }
}
