//! pb-kv's planted bug, behind `app.options.bugs` (off by default).

/// The names, as plans write them.
pub const NAMES: [&str; 1] = ["ack-before-sync"];

/// Which bugs are on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// `ack-before-sync`: the primary acknowledges a write (and serves it to reads) as soon as
    /// it holds it in memory; a group commit writes and syncs the buffered writes every 50 ms.
    /// A crash in between loses acknowledged writes, and the primary comes back serving older
    /// values — in simulation and on a real machine alike, since the writes were only ever in
    /// the process's memory.
    pub ack_before_sync: bool,
}

impl Bugs {
    /// Parses a list of names; an unknown one is an error naming the known ones.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Bugs, String> {
        let mut b = Bugs::default();
        for n in names {
            match n {
                "ack-before-sync" => b.ack_before_sync = true,
                other => return Err(format!("unknown bug {other:?}; pb-kv plants: {}", NAMES.join(", "))),
            }
        }
        Ok(b)
    }
}
