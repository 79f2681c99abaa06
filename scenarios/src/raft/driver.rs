//! The thin driver: runs the pure [`Raft`] core on a [`NodeContext`] — its transport, disk
//! and clocks — in both builds. It recovers durable state at start, ticks every 10 ms of the
//! node's monotonic clock, decodes messages, and performs the core's outputs in order (a
//! `Persist` is written and synced before the next output is performed).

use super::bugs::Bugs;
use super::core::{
    ClientCommand, ClientResult, Command, Entry, HardState, Input, Message, Output, Raft, Status, Timing,
};
use crate::node_loop::{next_event, Event};
use futures::channel::{mpsc, oneshot};
use gauntlet::sim::{Disk, NodeContext, NodeId, ReplyTo};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, UNIX_EPOCH};

/// Everything on the wire, between replicas and from clients.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Wire {
    /// Replica to replica.
    Peer(Message),
    /// A client request (sent with `Transport::request`).
    Request(ClientCommand),
    /// The answer to a request.
    Response(ClientResult),
    /// A status request (sent with `Transport::request`), answered with [`Wire::Status`].
    StatusRequest,
    /// A replica's status.
    Status(Status),
}

impl Wire {
    /// Encodes with bincode.
    pub fn encode(&self) -> Vec<u8> {
        bincode::serialize(self).expect("wire messages always encode")
    }
    /// Decodes; `None` for garbage.
    pub fn decode(bytes: &[u8]) -> Option<Wire> {
        bincode::deserialize(bytes).ok()
    }
}

/// How a replica is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct RaftConfig {
    /// Timeouts.
    pub timing: Timing,
    /// Planted bugs.
    pub bugs: Bugs,
    /// The build: which log format it writes.
    pub format: Format,
}

/// The builds of raft-kv, by their log format (the versions a script upgrades between).
///
/// v1 writes the log as `raft-log`, each record a bincode [`Entry`]. v2 writes `raft-log.v2`,
/// whose records lay a put out value first ([`EntryV2`]); on its first start over a v1 data
/// directory it migrates: reads `raft-log` with v1's layout, writes `raft-log.v2`, syncs it, and
/// only then writes the marker `raft-format` (so a crash mid-migration migrates again). v1
/// refuses a directory v2 has migrated (no downgrades). With the planted bug
/// `upgrade-field-order`, v2 reads the v1 log with its own layout: every put of `k = v` comes
/// back as `v = k`, silently, and the replica's state diverges from its peers' with the same
/// log indexes and terms (nothing in Raft repairs it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// The original layout.
    #[default]
    V1,
    /// A put's value before its key.
    V2,
}

impl Format {
    /// The version names scripts use.
    pub const NAMES: [&'static str; 2] = ["v1", "v2"];

    /// The build a version name stands for (`None`: the default, v1).
    pub fn of(version: Option<&str>) -> Option<Format> {
        match version {
            None | Some("v1") => Some(Format::V1),
            Some("v2") => Some(Format::V2),
            Some(_) => None,
        }
    }

    fn file(self) -> &'static str {
        match self {
            Format::V1 => LOG,
            Format::V2 => LOG_V2,
        }
    }

    fn encode(self, e: &Entry) -> Vec<u8> {
        match self {
            Format::V1 => bincode::serialize(e),
            Format::V2 => bincode::serialize(&EntryV2::from(e.clone())),
        }
        .expect("entries encode")
    }

    fn decode(self, body: &[u8]) -> Option<Entry> {
        match self {
            Format::V1 => bincode::deserialize::<Entry>(body).ok(),
            Format::V2 => bincode::deserialize::<EntryV2>(body).ok().map(Entry::from),
        }
    }
}

/// A log entry as v2 lays it out.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EntryV2 {
    /// Term in which a leader created it.
    pub term: u64,
    /// What to apply.
    pub command: CommandV2,
}

/// A command as v2 lays it out: a put's value comes first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs, reason = "the fields mirror Command's")]
pub enum CommandV2 {
    Noop,
    Put { value: String, key: String },
    Cas { key: String, expected: Option<String>, new: String },
}

impl From<Entry> for EntryV2 {
    fn from(e: Entry) -> EntryV2 {
        let command = match e.command {
            Command::Noop => CommandV2::Noop,
            Command::Put { key, value } => CommandV2::Put { value, key },
            Command::Cas { key, expected, new } => CommandV2::Cas { key, expected, new },
        };
        EntryV2 { term: e.term, command }
    }
}

impl From<EntryV2> for Entry {
    fn from(e: EntryV2) -> Entry {
        let command = match e.command {
            CommandV2::Noop => Command::Noop,
            CommandV2::Put { value, key } => Command::Put { key, value },
            CommandV2::Cas { key, expected, new } => Command::Cas { key, expected, new },
        };
        Entry { term: e.term, command }
    }
}

const HARD: &str = "raft-hard";
const LOG: &str = "raft-log";
const LOG_V2: &str = "raft-log.v2";
/// Written once a v2 replica has migrated the log; its content is the format's name.
const FORMAT_MARKER: &str = "raft-format";
/// Time between ticks of the node's monotonic clock.
pub const TICK: Duration = Duration::from_millis(10);

/// The durable log: length-prefixed entries in the build's format, with their offsets.
struct Log {
    disk: Disk,
    format: Format,
    /// `offsets[i]`: byte offset of entry `i + 1`; the last element is the end of the file.
    offsets: Vec<u64>,
}

/// The entries of a log file read with `layout`, and where the last whole record ends.
fn read_records(bytes: &[u8], layout: Format) -> (Vec<Entry>, Vec<u64>) {
    let (mut entries, mut offsets, mut at) = (Vec::new(), vec![0u64], 0usize);
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let Some(body) = bytes.get(at + 4..at + 4 + len) else { break };
        let Some(entry) = layout.decode(body) else { break };
        entries.push(entry);
        at += 4 + len;
        offsets.push(at as u64);
    }
    (entries, offsets)
}

fn record(format: Format, e: &Entry) -> Vec<u8> {
    let body = format.encode(e);
    let mut record = (body.len() as u32).to_le_bytes().to_vec();
    record.extend(body);
    record
}

impl Log {
    /// Reads the log back in `format`'s file, migrating a v1 log when v2 first starts; a torn
    /// or partial record at the end is dropped (it was never synced).
    async fn recover(disk: Disk, format: Format, bugs: Bugs) -> (Log, Vec<Entry>) {
        let migrated = disk.read(FORMAT_MARKER).is_ok_and(|m| m == b"v2");
        if format == Format::V1 && migrated {
            panic!("raft-kv v1 cannot read a data directory v2 has migrated (downgrades are not supported)");
        }
        if format == Format::V2 && !migrated {
            // The v1 log, read with v1's layout (the planted bug reads it with v2's).
            let layout = if bugs.upgrade_field_order { Format::V2 } else { Format::V1 };
            let (entries, _) = read_records(&disk.read(LOG).unwrap_or_default(), layout);
            let bytes: Vec<u8> = entries.iter().flat_map(|e| record(Format::V2, e)).collect();
            let _ = disk.truncate(LOG_V2, 0);
            let _ = disk.write(LOG_V2, 0, &bytes);
            let _ = disk.sync(LOG_V2).await;
            let _ = disk.write(FORMAT_MARKER, 0, b"v2");
            let _ = disk.sync(FORMAT_MARKER).await;
        }
        let bytes = disk.read(format.file()).unwrap_or_default();
        let (entries, offsets) = read_records(&bytes, format);
        let end = *offsets.last().expect("offsets start with 0");
        if end < bytes.len() as u64 {
            let _ = disk.truncate(format.file(), end);
        }
        (Log { disk, format, offsets }, entries)
    }

    async fn persist(&mut self, truncate_from: Option<u64>, entries: &[Entry], first_index: u64, sync: bool) {
        if let Some(from) = truncate_from {
            let keep = (from as usize).saturating_sub(1).min(self.offsets.len() - 1);
            self.offsets.truncate(keep + 1);
            let _ = self.disk.truncate(self.format.file(), self.offsets[keep]);
        }
        // Entries start right after what is stored (the core never leaves gaps).
        debug_assert!(entries.is_empty() || first_index as usize == self.offsets.len(), "no gaps in the log");
        for e in entries {
            let record = record(self.format, e);
            let at = *self.offsets.last().expect("offsets start with 0");
            let _ = self.disk.write(self.format.file(), at, &record);
            self.offsets.push(at + record.len() as u64);
        }
        if sync {
            let _ = self.disk.sync(self.format.file()).await;
        }
    }
}

fn recover_hard(disk: &Disk) -> HardState {
    disk.read(HARD).ok().and_then(|b| bincode::deserialize(&b).ok()).unwrap_or_default()
}

/// A request from a client in the same process (the real binary's HTTP API).
pub enum LocalRequest {
    /// A client command; the result comes back on the sender.
    Command(ClientCommand, oneshot::Sender<ClientResult>),
    /// The replica's status.
    Status(oneshot::Sender<Status>),
}

/// Runs one replica until the node is stopped.
pub async fn run(ctx: NodeContext, cfg: RaftConfig) {
    run_with_local(ctx, cfg, None).await
}

/// Runs one replica that also serves requests from `local` (same-process clients).
pub async fn run_with_local(ctx: NodeContext, cfg: RaftConfig, mut local: Option<mpsc::Receiver<LocalRequest>>) {
    let disk = ctx.disk();
    let hard = recover_hard(&disk);
    let (mut log, entries) = Log::recover(disk.clone(), cfg.format, cfg.bugs).await;
    gauntlet::sometimes!(
        ctx.incarnation() > 0 && !entries.is_empty(),
        "raft: a restarted replica recovered its log from disk"
    );
    let peers: Vec<u32> = ctx.members().into_iter().map(|(id, _)| id.0).collect();
    let mut raft = Raft::new(ctx.id().0, peers, cfg.timing, cfg.bugs, hard, entries);
    let transport = ctx.transport();
    let clock = ctx.clock();
    let mut rng = ctx.rng();
    let mut replies: BTreeMap<u64, ReplyTo> = BTreeMap::new();
    let mut local_replies: BTreeMap<u64, oneshot::Sender<ClientResult>> = BTreeMap::new();
    let mut next_handle = 0u64;
    let mut next_tick = clock.monotonic();
    let mut unsynced = false;
    let mut led: Option<u64> = None;
    loop {
        let wait = next_tick.saturating_sub(clock.monotonic());
        let event = next_event(&transport, &mut local, wait).await;
        let input = match event {
            Event::Local(LocalRequest::Status(tx)) => {
                let _ = tx.send(raft.status());
                continue;
            }
            Event::Local(LocalRequest::Command(command, tx)) => {
                next_handle += 1;
                local_replies.insert(next_handle, tx);
                Input::Client { reply_to: next_handle, command }
            }
            Event::Tick => {
                if std::mem::take(&mut unsynced) {
                    // The periodic flush of writes that were acknowledged without a sync.
                    let _ = disk.sync(cfg.format.file()).await;
                }
                next_tick = clock.monotonic() + TICK;
                let wall_ms = clock.now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
                Input::Tick { mono_ms: clock.monotonic().as_millis() as u64, wall_ms, random: rng.random() }
            }
            Event::Net(msg) => match (Wire::decode(&msg.body), msg.reply_to) {
                (Some(Wire::Peer(message)), _) => Input::Message { from: msg.from.0, message },
                (Some(Wire::Request(command)), Some(reply)) => {
                    next_handle += 1;
                    replies.insert(next_handle, reply);
                    Input::Client { reply_to: next_handle, command }
                }
                (Some(Wire::StatusRequest), Some(reply)) => {
                    transport.reply(reply, Wire::Status(raft.status()).encode());
                    continue;
                }
                _ => continue,
            },
        };
        let mut queue: VecDeque<Output> = raft.step(input).into();
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Send { to, message } => transport.send(NodeId(to), Wire::Peer(message).encode()),
                Output::Reply { reply_to, result } => {
                    if let Some(r) = replies.remove(&reply_to) {
                        transport.reply(r, Wire::Response(result).encode());
                    } else if let Some(tx) = local_replies.remove(&reply_to) {
                        let _ = tx.send(result);
                    }
                }
                Output::Persist { hard, truncate_from, entries, first_index, sync } => {
                    if let Some(h) = hard {
                        let _ = disk.write(HARD, 0, &bincode::serialize(&h).expect("hard state encodes"));
                        let _ = disk.sync(HARD).await;
                    }
                    if truncate_from.is_some() || !entries.is_empty() {
                        log.persist(truncate_from, &entries, first_index, sync).await;
                        unsynced |= !sync;
                        let index = match (entries.len() as u64, truncate_from) {
                            (0, Some(from)) => from - 1,
                            (n, _) => first_index + n - 1,
                        };
                        queue.extend(raft.step(Input::Persisted { index }));
                    }
                }
            }
        }
        // Ground truth for `one_leader_per_term`: a leadership, however short, and even one
        // whose replica restarts before any observer asks (its `terms_led` is memory only).
        if let Some(term) = raft.leading().filter(|&t| led != Some(t)) {
            led = Some(term);
            ctx.fact("leader", format!("term={term}"));
        }
        // Requests a leader dropped (it stepped down) are left to time out at the client.
        while replies.len() > 10_000 {
            replies.pop_first();
        }
        while local_replies.len() > 10_000 {
            local_replies.pop_first();
        }
    }
}
