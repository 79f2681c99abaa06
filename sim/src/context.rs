//! [`NodeContext`]: everything a node's program may touch — its identity, transport, disk,
//! clock and random stream — the same API under simulation and in a real process.

use crate::disk::Disk;
use crate::net::Transport;
use crate::node::{NodeId, NodeSpec};
use rand_chacha::ChaCha8Rng;
use std::time::{Duration, SystemTime};

#[cfg(madsim)]
mod imp {
    use super::*;
    use crate::clock::to_system_time;
    use crate::seed::{stream, Purpose};
    use crate::state::with_world;
    use crate::trace::EventKind;

    /// A node's local clock (simulated): true time shifted by the node's skew and drift.
    #[derive(Debug, Clone)]
    pub struct Clock {
        pub(crate) node: NodeId,
    }

    impl Clock {
        /// The node's wall-clock time (the world starts at 2025-01-01T00:00:00Z).
        pub fn now(&self) -> SystemTime {
            with_world(|w| to_system_time(w.node(self.node).clock.local_nanos(w.now_nanos())))
        }

        /// The node's monotonic clock: time since the world started, scaled by the drift.
        pub fn monotonic(&self) -> Duration {
            with_world(|w| Duration::from_nanos(w.node(self.node).clock.monotonic_nanos(w.now_nanos())))
        }
    }

    /// The view a node's program has of its world. Handed to the program at every (re)start.
    #[derive(Debug, Clone)]
    pub struct NodeContext {
        pub(crate) id: NodeId,
        pub(crate) spec: NodeSpec,
        pub(crate) incarnation: u32,
        pub(crate) seed: u64,
    }

    impl NodeContext {
        pub(crate) fn attach(id: NodeId) -> Self {
            with_world(|w| {
                let incarnation = w.node_started(id);
                NodeContext { id, spec: w.node(id).spec.clone(), incarnation, seed: w.seeds.sim }
            })
        }

        /// This node's id.
        pub fn id(&self) -> NodeId {
            self.id
        }

        /// This node's name.
        pub fn name(&self) -> &str {
            &self.spec.name
        }

        /// This node's role.
        pub fn role(&self) -> &str {
            &self.spec.role
        }

        /// 0 on first boot, +1 on every restart.
        pub fn incarnation(&self) -> u32 {
            self.incarnation
        }

        /// The node's endpoint on the network.
        pub fn transport(&self) -> Transport {
            Transport { node: self.id, incarnation: self.incarnation }
        }

        /// The node's durable storage.
        pub fn disk(&self) -> Disk {
            Disk { node: self.id }
        }

        /// The node's local clock.
        pub fn clock(&self) -> Clock {
            Clock { node: self.id }
        }

        /// A random stream for the program, derived from the world seed, the node's name and
        /// its incarnation: deterministic, and different after each restart.
        pub fn rng(&self) -> ChaCha8Rng {
            stream(self.seed, Purpose::Program, &self.spec.name, u64::from(self.incarnation))
        }

        /// Every member node of the world (including this one, clients excluded), in id order.
        pub fn members(&self) -> Vec<(NodeId, NodeSpec)> {
            with_world(|w| {
                w.nodes
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| !n.spec.client)
                    .map(|(i, n)| (NodeId(i as u32), n.spec.clone()))
                    .collect()
            })
        }

        /// Records a free-form annotation in the trace.
        pub fn annotate(&self, text: impl Into<String>) {
            let text = text.into();
            with_world(|w| w.record(Some(self.id), EventKind::Annotation { text }));
        }

        /// Records ground truth — something this node believes or did, such as `("leader",
        /// "term=3")` — stamped with the world's **true** time, for expectations to read
        /// (`Check::facts`). It is also an annotation in the trace (`fact key=value`). In the
        /// real build it is a log line.
        pub fn fact(&self, key: impl Into<String>, value: impl Into<String>) {
            let (key, value) = (key.into(), value.into());
            let at = std::time::Duration::from_nanos(with_world(|w| w.now_nanos()));
            self.annotate(format!("fact {key}={value}"));
            crate::facts::record(crate::facts::Fact { at, node: self.spec.name.clone(), key, value });
        }

        /// Records a client operation's invocation or completion in the trace.
        pub fn record_op(&self, op: &str, phase: crate::trace::OpPhase) {
            with_world(|w| w.record(Some(self.id), EventKind::Op { op: op.to_owned(), phase }));
        }
    }
}

#[cfg(not(madsim))]
mod imp {
    #![allow(clippy::disallowed_methods, reason = "the real clock reads the real time")]
    use super::*;
    use crate::clock::ClockModel;
    use rand::SeedableRng;
    use std::sync::{Arc, Mutex};

    /// A node's local clock (real): the OS clock shifted by the skew the deployer set, so skew
    /// works for static binaries without libfaketime.
    #[derive(Debug, Clone)]
    pub struct Clock {
        model: Arc<Mutex<ClockModel>>,
        start: std::time::Instant,
        start_wall: SystemTime,
    }

    impl Clock {
        /// A clock with the given offset and drift.
        pub fn new(offset_ms: i64, drift_ppm: i64) -> Self {
            let clock = Clock {
                model: Arc::new(Mutex::new(ClockModel::default())),
                start: std::time::Instant::now(),
                start_wall: SystemTime::now(),
            };
            clock.set_skew(offset_ms, drift_ppm);
            clock
        }

        /// Changes offset and drift from now on.
        pub fn set_skew(&self, offset_ms: i64, drift_ppm: i64) {
            let now = self.start.elapsed().as_nanos() as u64;
            self.model.lock().expect("clock lock").set(now, offset_ms.saturating_mul(1_000_000), drift_ppm);
        }

        /// The current offset (milliseconds) and drift (parts per million).
        pub fn skew(&self) -> (i64, i64) {
            let model = self.model.lock().expect("clock lock");
            (model.offset() / 1_000_000, model.drift_ppm())
        }

        /// The node's wall-clock time.
        pub fn now(&self) -> SystemTime {
            let elapsed = self.start.elapsed().as_nanos() as u64;
            let local = self.model.lock().expect("clock lock").local_nanos(elapsed);
            if local >= 0 {
                self.start_wall + Duration::from_nanos(local as u64)
            } else {
                self.start_wall - Duration::from_nanos(local.unsigned_abs() as u64)
            }
        }

        /// Time since the process started, scaled by the drift.
        pub fn monotonic(&self) -> Duration {
            let elapsed = self.start.elapsed().as_nanos() as u64;
            Duration::from_nanos(self.model.lock().expect("clock lock").monotonic_nanos(elapsed))
        }
    }

    /// The view a node's program has of its world, built by the real binary from its config.
    #[derive(Debug, Clone)]
    pub struct NodeContext {
        id: NodeId,
        spec: NodeSpec,
        members: Vec<(NodeId, NodeSpec)>,
        transport: Transport,
        disk: Disk,
        clock: Clock,
        seed: u64,
    }

    impl NodeContext {
        /// Assembles a context; `members` lists every node including this one.
        pub fn new(
            id: NodeId,
            spec: NodeSpec,
            members: Vec<(NodeId, NodeSpec)>,
            transport: Transport,
            disk: Disk,
            clock: Clock,
            seed: u64,
        ) -> Self {
            NodeContext { id, spec, members, transport, disk, clock, seed }
        }

        /// This node's id.
        pub fn id(&self) -> NodeId {
            self.id
        }
        /// This node's name.
        pub fn name(&self) -> &str {
            &self.spec.name
        }
        /// This node's role.
        pub fn role(&self) -> &str {
            &self.spec.role
        }
        /// Always 0 in a real process (each start is a new process).
        pub fn incarnation(&self) -> u32 {
            0
        }
        /// The node's endpoint on the network.
        pub fn transport(&self) -> Transport {
            self.transport.clone()
        }
        /// The node's durable storage.
        pub fn disk(&self) -> Disk {
            self.disk.clone()
        }
        /// The node's local clock.
        pub fn clock(&self) -> Clock {
            self.clock.clone()
        }
        /// A random stream seeded from the configured seed and the node's name.
        pub fn rng(&self) -> ChaCha8Rng {
            ChaCha8Rng::seed_from_u64(crate::seed::derive_seed(
                self.seed,
                crate::seed::Purpose::Program,
                &self.spec.name,
                0,
            ))
        }
        /// Every member node of the deployment (clients excluded), in id order.
        pub fn members(&self) -> Vec<(NodeId, NodeSpec)> {
            self.members.clone()
        }
        /// Logs an annotation through `tracing` (there is no trace in a real process).
        pub fn annotate(&self, text: impl Into<String>) {
            tracing::info!(target: "gauntlet::trace", node = %self.spec.name, "{}", text.into());
        }
        /// Logs a fact through `tracing` (real processes have no shared true time to judge by).
        pub fn fact(&self, key: impl Into<String>, value: impl Into<String>) {
            tracing::info!(target: "gauntlet::facts", node = %self.spec.name, "fact {}={}", key.into(), value.into());
        }
        /// Logs a client operation through `tracing` (there is no trace in a real process).
        pub fn record_op(&self, op: &str, phase: crate::trace::OpPhase) {
            tracing::debug!(target: "gauntlet::trace", node = %self.spec.name, "op {op} {phase:?}");
        }
    }
}

pub use imp::{Clock, NodeContext};
