//! A replica's log of writes on its [`Disk`]: one `key\tvalue\n` line per write, in order.
//! Loading keeps the longest prefix of whole lines (a torn last line, left by a crash during a
//! write, is cut off and the cut made durable), so a log never holds half a write.

use gauntlet::sim::{Disk, DiskError};
use std::collections::BTreeMap;

/// The log's file on the node's disk.
pub const FILE: &str = "pb-kv.log";

/// One write: a key and the value it was set to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Its new value.
    pub value: String,
}

impl Entry {
    /// Whether the entry can be written as one line (no tabs or line breaks; keys not empty).
    pub fn valid(&self) -> bool {
        !self.key.is_empty() && !self.key.contains(['\t', '\n']) && !self.value.contains(['\t', '\n'])
    }
    fn line(&self) -> String {
        format!("{}\t{}\n", self.key, self.value)
    }
}

/// The log, its byte offsets and digests, and the map it produces.
#[derive(Debug)]
pub struct Log {
    disk: Disk,
    entries: Vec<Entry>,
    /// `ends[i]`: the file's length once entry `i` is written.
    ends: Vec<u64>,
    /// `digests[i]`: FNV-1a over the lines of entries `0..=i`.
    digests: Vec<u64>,
    /// How many entries are durable (synced).
    synced: usize,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl Log {
    /// Loads the log from `disk`, cutting off a torn last line (durably).
    pub async fn load(disk: Disk) -> Result<Log, DiskError> {
        let bytes = if disk.exists(FILE) { disk.read(FILE)? } else { Vec::new() };
        let mut log = Log { disk, entries: Vec::new(), ends: Vec::new(), digests: Vec::new(), synced: 0 };
        let mut start = 0;
        while let Some(nl) = bytes[start..].iter().position(|b| *b == b'\n') {
            let line = String::from_utf8_lossy(&bytes[start..start + nl]).into_owned();
            let Some((key, value)) = line.split_once('\t') else { break };
            log.push(Entry { key: key.to_owned(), value: value.to_owned() });
            start += nl + 1;
        }
        if start < bytes.len() || !log.disk.exists(FILE) {
            log.disk.truncate(FILE, start as u64)?;
            log.disk.sync(FILE).await?;
        }
        log.synced = log.entries.len();
        Ok(log)
    }

    fn push(&mut self, e: Entry) {
        let line = e.line();
        let end = self.ends.last().copied().unwrap_or(0) + line.len() as u64;
        let digest = fnv(self.digest(), line.as_bytes());
        self.entries.push(e);
        self.ends.push(end);
        self.digests.push(digest);
    }

    /// Appends entries (not yet durable: see [`Log::sync`]).
    pub fn append(&mut self, entries: impl IntoIterator<Item = Entry>) -> Result<(), DiskError> {
        let mut bytes = Vec::new();
        for e in entries {
            debug_assert!(e.valid(), "an entry that is not one line: {e:?}");
            bytes.extend_from_slice(e.line().as_bytes());
            self.push(e);
        }
        self.disk.append(FILE, &bytes)
    }

    /// Keeps the first `len` entries only (not yet durable: see [`Log::sync`]).
    pub fn truncate(&mut self, len: usize) -> Result<(), DiskError> {
        if len >= self.entries.len() {
            return Ok(());
        }
        let bytes = if len == 0 { 0 } else { self.ends[len - 1] };
        self.entries.truncate(len);
        self.ends.truncate(len);
        self.digests.truncate(len);
        self.synced = self.synced.min(len);
        self.disk.truncate(FILE, bytes)
    }

    /// The disk the log is on, to sync it without holding the log: `disk.sync(FILE)`, then
    /// [`Log::mark_synced`] with the length before the sync.
    pub fn disk(&self) -> Disk {
        self.disk.clone()
    }

    /// Records that the first `upto` entries are durable (a sync that began when the log held
    /// `upto` entries has finished; entries truncated since stay truncated).
    pub fn mark_synced(&mut self, upto: usize) {
        self.synced = self.synced.max(upto.min(self.entries.len()));
    }

    /// How many entries the log holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How many entries are durable.
    pub fn synced(&self) -> usize {
        self.synced
    }

    /// The entries from `from` on.
    pub fn since(&self, from: usize) -> &[Entry] {
        self.entries.get(from..).unwrap_or_default()
    }

    /// The digest of the whole log (FNV-1a over its lines; the empty log's is the offset basis).
    pub fn digest(&self) -> u64 {
        self.digests.last().copied().unwrap_or(FNV_OFFSET)
    }

    /// The map the first `upto` entries produce.
    pub fn map(&self, upto: usize) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for e in self.entries.iter().take(upto) {
            map.insert(e.key.clone(), e.value.clone());
        }
        map
    }
}
