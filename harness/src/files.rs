//! Files written whole or not at all: a reader never sees half a plan, summary or manifest.

use std::path::Path;

/// Writes `bytes` to `path` through a temporary file beside it and a rename, so a reader sees
/// the old contents or the new, never a part.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
