//! Durable storage per node with fsync semantics.
//!
//! Under simulation each node has a set of named files that outlive its crashes. Writes land in
//! the volatile view at once; [`Disk::sync`] makes a file's writes durable. A crash rolls every
//! file back to its durable contents, except that with torn writes enabled a random prefix of the
//! first unsynced write may survive (as on a real disk that was mid-write). madsim's own `fs`
//! keeps unsynced data across a kill, which is why this layer exists.
//!
//! In a real build the same API is backed by files in a data directory and `fsync`.

/// Errors a program can observe from its disk.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// The file does not exist.
    #[error("no such file: {0:?}")]
    NotFound(String),
    /// A file name that is empty, contains `/`, or starts with `.`.
    #[error("invalid file name {0:?}: use a non-empty name without '/' that does not start with '.'")]
    InvalidName(String),
    /// An I/O error from the real file system.
    #[error("i/o error on {file:?}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn check_name(name: &str) -> Result<(), DiskError> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(DiskError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// One simulated file: what survives a crash and what the program currently sees.
#[cfg(any(madsim, test))]
#[derive(Debug, Clone, Default)]
pub(crate) struct FileModel {
    durable: Vec<u8>,
    volatile: Vec<u8>,
    /// Unsynced writes in order: `(offset, len)` into `volatile`.
    dirty: Vec<(u64, u64)>,
    /// Whether a truncation happened since the last sync.
    resized: bool,
}

#[cfg(any(madsim, test))]
impl FileModel {
    pub(crate) fn write(&mut self, offset: u64, data: &[u8]) {
        let end = offset as usize + data.len();
        if self.volatile.len() < end {
            self.volatile.resize(end, 0);
        }
        self.volatile[offset as usize..end].copy_from_slice(data);
        self.dirty.push((offset, data.len() as u64));
    }

    pub(crate) fn truncate(&mut self, len: u64) {
        self.volatile.resize(len as usize, 0);
        self.resized = true;
    }

    pub(crate) fn contents(&self) -> &[u8] {
        &self.volatile
    }

    /// Makes everything durable; returns the number of bytes written back.
    pub(crate) fn sync(&mut self) -> u64 {
        let mut bytes = 0;
        self.durable.resize(self.volatile.len(), 0);
        for &(off, len) in &self.dirty {
            let (start, end) = (off as usize, (off + len) as usize);
            let end = end.min(self.volatile.len());
            if start < end {
                self.durable[start..end].copy_from_slice(&self.volatile[start..end]);
                bytes += (end - start) as u64;
            }
        }
        self.dirty.clear();
        self.resized = false;
        bytes
    }

    pub(crate) fn is_dirty(&self) -> bool {
        !self.dirty.is_empty() || self.resized
    }

    /// Crash: roll back to the durable contents. With `torn = Some(fraction)`, that fraction of
    /// the first unsynced write survives. Returns `(bytes lost, bytes torn in)`.
    pub(crate) fn crash(&mut self, torn: Option<f64>) -> (u64, u64) {
        let lost: u64 = self.dirty.iter().map(|d| d.1).sum();
        let mut torn_bytes = 0;
        if let (Some(fraction), Some(&(off, len))) = (torn, self.dirty.first()) {
            torn_bytes = ((len as f64) * fraction) as u64;
            let (start, end) = (off as usize, (off + torn_bytes) as usize);
            let end = end.min(self.volatile.len());
            if start < end {
                if self.durable.len() < end {
                    self.durable.resize(end, 0);
                }
                self.durable[start..end].copy_from_slice(&self.volatile[start..end]);
            }
        }
        self.volatile = self.durable.clone();
        self.dirty.clear();
        self.resized = false;
        (lost, torn_bytes)
    }
}

/// All files of one node. Ordered, so iteration is deterministic.
#[cfg(madsim)]
#[derive(Debug, Clone, Default)]
pub(crate) struct DiskModel {
    pub(crate) files: std::collections::BTreeMap<String, FileModel>,
}

#[cfg(madsim)]
mod handle {
    use super::{check_name, DiskError};
    use crate::node::NodeId;
    use crate::state::with_world;

    /// A node's durable storage (simulated). Cheap to clone; every clone is the same disk.
    #[derive(Debug, Clone)]
    pub struct Disk {
        pub(crate) node: NodeId,
    }

    impl Disk {
        /// Writes `data` at `offset`, creating the file if needed (zero-filling any gap).
        /// Not durable until [`Disk::sync`].
        pub fn write(&self, file: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
            check_name(file)?;
            with_world(|w| w.node_mut(self.node).disk.files.entry(file.to_owned()).or_default().write(offset, data));
            Ok(())
        }

        /// Appends `data` to the end of the file, creating it if needed.
        pub fn append(&self, file: &str, data: &[u8]) -> Result<(), DiskError> {
            check_name(file)?;
            with_world(|w| {
                let f = w.node_mut(self.node).disk.files.entry(file.to_owned()).or_default();
                let end = f.contents().len() as u64;
                f.write(end, data);
            });
            Ok(())
        }

        /// Shrinks (or zero-extends) the file to `len` bytes. Not durable until synced.
        pub fn truncate(&self, file: &str, len: u64) -> Result<(), DiskError> {
            check_name(file)?;
            with_world(|w| w.node_mut(self.node).disk.files.entry(file.to_owned()).or_default().truncate(len));
            Ok(())
        }

        /// The file's current contents as this node sees them (including unsynced writes).
        pub fn read(&self, file: &str) -> Result<Vec<u8>, DiskError> {
            with_world(|w| w.node(self.node).disk.files.get(file).map(|f| f.contents().to_vec()))
                .ok_or_else(|| DiskError::NotFound(file.to_owned()))
        }

        /// True if the file exists.
        pub fn exists(&self, file: &str) -> bool {
            with_world(|w| w.node(self.node).disk.files.contains_key(file))
        }

        /// Names of the node's files, sorted.
        pub fn list(&self) -> Vec<String> {
            with_world(|w| w.node(self.node).disk.files.keys().cloned().collect())
        }

        /// Makes every write to `file` so far durable (fsync). Takes the world's fsync latency;
        /// a crash before it completes loses the writes.
        pub async fn sync(&self, file: &str) -> Result<(), DiskError> {
            let latency = with_world(|w| w.limits.fsync_latency);
            if !latency.is_zero() {
                crate::time::sleep(latency).await;
            }
            with_world(|w| w.sync_file(self.node, file)).ok_or_else(|| DiskError::NotFound(file.to_owned()))
        }
    }
}

#[cfg(not(madsim))]
mod handle {
    use super::{check_name, DiskError};
    use std::io::{Seek, SeekFrom, Write};
    use std::path::PathBuf;

    /// A node's durable storage (real): one file per name in a data directory.
    #[derive(Debug, Clone)]
    pub struct Disk {
        pub(crate) dir: PathBuf,
    }

    fn io(file: &str) -> impl FnOnce(std::io::Error) -> DiskError + '_ {
        move |source| DiskError::Io { file: file.to_owned(), source }
    }

    impl Disk {
        /// A disk rooted at `dir` (created if missing).
        pub fn open(dir: impl Into<PathBuf>) -> Result<Self, DiskError> {
            let dir = dir.into();
            std::fs::create_dir_all(&dir).map_err(io("."))?;
            Ok(Disk { dir })
        }

        fn file(&self, name: &str) -> Result<std::fs::File, DiskError> {
            check_name(name)?;
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(self.dir.join(name))
                .map_err(io(name))
        }

        /// Writes `data` at `offset`, creating the file if needed.
        pub fn write(&self, file: &str, offset: u64, data: &[u8]) -> Result<(), DiskError> {
            let mut f = self.file(file)?;
            f.seek(SeekFrom::Start(offset)).map_err(io(file))?;
            f.write_all(data).map_err(io(file))
        }

        /// Appends `data` to the end of the file.
        pub fn append(&self, file: &str, data: &[u8]) -> Result<(), DiskError> {
            let mut f = self.file(file)?;
            f.seek(SeekFrom::End(0)).map_err(io(file))?;
            f.write_all(data).map_err(io(file))
        }

        /// Shrinks (or zero-extends) the file to `len` bytes.
        pub fn truncate(&self, file: &str, len: u64) -> Result<(), DiskError> {
            self.file(file)?.set_len(len).map_err(io(file))
        }

        /// The file's contents.
        pub fn read(&self, file: &str) -> Result<Vec<u8>, DiskError> {
            check_name(file)?;
            std::fs::read(self.dir.join(file)).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => DiskError::NotFound(file.to_owned()),
                _ => DiskError::Io { file: file.to_owned(), source: e },
            })
        }

        /// True if the file exists.
        pub fn exists(&self, file: &str) -> bool {
            check_name(file).is_ok() && self.dir.join(file).exists()
        }

        /// Names of the files, sorted.
        pub fn list(&self) -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(&self.dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| check_name(n).is_ok())
                .collect();
            names.sort();
            names
        }

        /// Makes every write to `file` durable (`fsync`).
        pub async fn sync(&self, file: &str) -> Result<(), DiskError> {
            self.file(file)?.sync_all().map_err(io(file))
        }
    }
}

pub use handle::Disk;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_keeps_synced_and_loses_unsynced() {
        let mut f = FileModel::default();
        f.write(0, b"hello");
        assert_eq!(f.sync(), 5);
        f.write(5, b" world");
        assert_eq!(f.contents(), b"hello world");
        assert_eq!(f.crash(None), (6, 0));
        assert_eq!(f.contents(), b"hello");
    }

    #[test]
    fn torn_write_keeps_a_prefix_of_the_first_unsynced_write() {
        let mut f = FileModel::default();
        f.write(0, b"abcd");
        f.sync();
        f.write(4, b"efgh");
        f.write(8, b"ijkl");
        assert_eq!(f.crash(Some(0.5)), (8, 2));
        assert_eq!(f.contents(), b"abcdef");
    }

    #[test]
    fn truncation_is_volatile_until_synced() {
        let mut f = FileModel::default();
        f.write(0, b"abcdef");
        f.sync();
        f.truncate(2);
        assert!(f.is_dirty());
        f.crash(None);
        assert_eq!(f.contents(), b"abcdef");
        f.truncate(2);
        f.sync();
        f.crash(None);
        assert_eq!(f.contents(), b"ab");
        f.truncate(4);
        assert_eq!(f.contents(), b"ab\0\0", "truncate zero-extends like set_len");
    }
}
