//! Gossip-max: the demo system.
//!
//! Every node keeps the largest value it has seen, persisted (with fsync) in the file `value`.
//! Each round (`round`, default 50 ms) it sends its value to `fanout` random peers; until the
//! `bump_until` deadline of its own monotonic clock, every `bump_every` it also raises the value
//! to one more than the largest it knows. Once bumping stops and the network heals, every live
//! node must converge to the same value: the demo's expectation.

use gauntlet_sim::{NodeContext, NodeId};
use rand::seq::IndexedRandom;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tuning of a gossip-max node.
#[derive(Debug, Clone, Copy)]
pub struct GossipConfig {
    /// Time between gossip rounds. Default 50 ms.
    pub round: Duration,
    /// Peers contacted per round. Default 2.
    pub fanout: usize,
    /// Time between local bumps. Default 500 ms.
    pub bump_every: Duration,
    /// Bumping stops once the node's monotonic clock passes this. Default 10 s.
    pub bump_until: Duration,
    /// Planted bug `deaf_after_restart`: a restarted node ignores gossip. Default off.
    pub deaf_after_restart: bool,
    /// Planted bug `ignore_client_bumps`: client bumps are acknowledged but dropped.
    pub ignore_client_bumps: bool,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            round: Duration::from_millis(50),
            fanout: 2,
            bump_every: Duration::from_millis(500),
            bump_until: Duration::from_secs(10),
            deaf_after_restart: false,
            ignore_client_bumps: false,
        }
    }
}

/// Where nodes publish their current value for observers (a stand-in for a status endpoint).
pub type Board = Arc<Mutex<BTreeMap<String, u64>>>;

fn decode(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Message tags after the 8-byte gossip format: a one-byte request from a client.
const STATUS: u8 = 1;
/// A client asks the node to bump its value; the reply is the new value.
const BUMP: u8 = 2;

/// The node program. `board` receives the node's value after every change.
pub async fn node(ctx: NodeContext, cfg: GossipConfig, board: Board) {
    let disk = ctx.disk();
    let mut value = disk.read("value").ok().and_then(|b| decode(&b)).unwrap_or(0);
    let mut durable = value;
    gauntlet_sim::sometimes!(
        ctx.incarnation() > 0 && value > 0,
        "gossip: a restarted node recovered its value from disk"
    );
    let publish = |v: u64| {
        board.lock().expect("board lock").insert(ctx.name().to_owned(), v);
    };
    publish(value);
    let transport = ctx.transport();
    let mut rng = ctx.rng();
    let me = ctx.id();
    let clock = ctx.clock();
    let mut next_bump = clock.monotonic() + cfg.bump_every;
    let mut next_round = clock.monotonic();
    loop {
        let now = clock.monotonic();
        let mut changed = false;
        if now >= next_bump && now < cfg.bump_until {
            value += 1 + rng.random_range(0..3);
            next_bump = now + cfg.bump_every;
            changed = true;
        }
        if now >= next_round {
            // Membership is read each round, so nodes that join later are gossiped to.
            let peers: Vec<NodeId> = ctx.members().into_iter().map(|(id, _)| id).filter(|&id| id != me).collect();
            for &p in peers.choose_multiple(&mut rng, cfg.fanout) {
                transport.send(p, value.to_le_bytes().to_vec());
            }
            next_round = now + cfg.round;
        }
        // Wait for a message or the next round, whichever comes first.
        let wait = next_round.saturating_sub(clock.monotonic()).max(Duration::from_millis(1));
        let mut answer = None;
        if let Ok(msg) = gauntlet_sim::time::timeout(wait, transport.recv()).await {
            if let (Some(reply), Some(&tag)) = (msg.reply_to, msg.body.first()) {
                if tag == BUMP && !cfg.ignore_client_bumps {
                    gauntlet_sim::reachable!("gossip: a client bump applied");
                    value += 1;
                    changed = true;
                }
                if tag == STATUS || tag == BUMP {
                    answer = Some(reply);
                }
            } else if let Some(v) = decode(&msg.body) {
                gauntlet_sim::sometimes!(v < value, "gossip: an older value from a peer ignored");
                if v > value && !(cfg.deaf_after_restart && ctx.incarnation() > 0) {
                    gauntlet_sim::sometimes!(ctx.incarnation() > 0, "gossip: a restarted node caught up by gossip");
                    value = v;
                    changed = true;
                }
            }
        }
        if changed {
            if disk.write("value", 0, &value.to_le_bytes()).is_ok() && disk.sync("value").await.is_ok() {
                durable = value;
            }
            publish(value);
        }
        // Answered only once the value is durable: a crash never takes back a value a client
        // saw (while writes fail, clients time out, their outcome unknown).
        if let Some(reply) = answer.filter(|_| durable == value) {
            transport.reply(reply, value.to_le_bytes().to_vec());
        }
    }
}

#[cfg(madsim)]
pub mod demo;

mod app;
mod bumps;
pub use app::{GossipApp, GossipBuilderExt, GossipTopologyExt, BUGS};

/// Asks `node` for its value through `transport`.
pub async fn read_value(transport: &gauntlet_sim::Transport, node: NodeId, timeout: Duration) -> Result<u64, String> {
    let body = transport.request(node, vec![STATUS], timeout).await.map_err(|e| e.to_string())?;
    decode(&body).ok_or_else(|| format!("short status reply ({} bytes)", body.len()))
}

/// Asks `node` to bump its value; returns the new value.
pub async fn bump(transport: &gauntlet_sim::Transport, node: NodeId, timeout: Duration) -> Result<u64, String> {
    let body = transport.request(node, vec![BUMP], timeout).await.map_err(|e| e.to_string())?;
    decode(&body).ok_or_else(|| format!("short bump reply ({} bytes)", body.len()))
}
