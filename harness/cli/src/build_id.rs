//! Which build this is, for results that must only be combined with the same build's.

use std::sync::OnceLock;

/// This build: the command line's version, the git revision it was built from (when known)
/// and the SHA-256 of this very executable (its first 16 hex digits). Two sweeps' results
/// combine only when this is equal: the same source built twice with different flags is two
/// builds.
pub fn build_id() -> String {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let rev = gauntlet::bundle::git_rev().map_or("unknown", |r| &r[..r.len().min(12)]);
        let exe = std::env::current_exe()
            .and_then(std::fs::read)
            .map(|bytes| Sha256::digest(&bytes).iter().take(8).map(|b| format!("{b:02x}")).collect::<String>());
        let exe = exe.unwrap_or_else(|e| format!("unreadable ({e})"));
        format!("gauntlet {} git {rev} exe {exe}", env!("CARGO_PKG_VERSION"))
    })
    .clone()
}
