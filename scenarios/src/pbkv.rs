//! pb-kv: a primary–backup key-value store written on streams — HTTP/1.1 with hyper over
//! [`gauntlet::sim::net`]'s `TcpListener` and `TcpStream` — rather than Gauntlet's message
//! transport. Under simulation its sockets are the world's simulated streams, with every
//! fault of the plan; `pb-kv-node` is the same code on tokio's sockets.
//!
//! * [`node`]: the replica program (HTTP API, the primary's writes, the shippers that stream
//!   its log to the backups);
//! * [`log`]: the log on disk;
//! * [`http`]: hyper's client and server halves over the streams;
//! * [`app`]: the Gauntlet application (operations `get` and `put`, judged by the built-in
//!   `linearizable` with the `kv` model and by convergence of the replicas' logs);
//! * [`bugs`]: the planted bug `ack-before-sync`.

pub mod app;
pub mod bugs;
pub mod http;
pub mod log;
pub mod node;

pub use app::PbKv;
