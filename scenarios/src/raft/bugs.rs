//! Planted bugs: realistic mistakes real systems have shipped, each behind a named switch in
//! the plan's app options (`options = { bugs = ["stale-read"] }`). All are off by default.

/// The names, as plans write them.
pub const NAMES: [&str; 6] =
    ["stale-read", "lost-ack-write", "split-vote", "commit-old-term", "skewed-lease", "upgrade-field-order"];

/// Which bugs are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// `stale-read`: a leader serves reads from its own state without confirming it is still
    /// the leader, so a deposed leader in a minority serves stale values.
    pub stale_read: bool,
    /// `lost-ack-write`: entries are acknowledged (and counted towards commit) before they are
    /// synced, so a crash can lose an acknowledged write.
    pub lost_ack_write: bool,
    /// `split-vote`: the vote is not persisted, so after a restart a node can vote twice in one
    /// term and elect two leaders.
    pub split_vote: bool,
    /// `commit-old-term`: a leader commits entries of earlier terms by counting replicas
    /// (Raft paper, Figure 8), which a later leader can overwrite.
    pub commit_old_term: bool,
    /// `skewed-lease`: a leader serves reads under a lease measured on its wall clock, which
    /// clock skew stretches past the moment another leader takes over.
    pub skewed_lease: bool,
    /// `upgrade-field-order`: v2 (see [`Format`](super::driver::Format)) migrates a v1 log by
    /// reading it with v2's record layout, in which a put's value comes first: every put
    /// written before the upgrade comes back with its key and value swapped. Only a rolling
    /// upgrade (`sut.upgrade`) meets it.
    pub upgrade_field_order: bool,
}

impl Bugs {
    /// Parses a list of names; unknown names are returned as errors naming the known ones.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Bugs, String> {
        let mut b = Bugs::default();
        for n in names {
            match n {
                "stale-read" => b.stale_read = true,
                "lost-ack-write" => b.lost_ack_write = true,
                "split-vote" => b.split_vote = true,
                "commit-old-term" => b.commit_old_term = true,
                "skewed-lease" => b.skewed_lease = true,
                "upgrade-field-order" => b.upgrade_field_order = true,
                other => return Err(format!("unknown bug {other:?}; raft-kv plants: {}", NAMES.join(", "))),
            }
        }
        Ok(b)
    }
}
