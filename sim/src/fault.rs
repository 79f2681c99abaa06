//! The fault vocabulary as data: [`Fault`] and the time-ordered [`FaultSchedule`].
//!
//! Faults name nodes by their unique name, so a schedule can be stored in a bundle, shrunk, and
//! promoted to a real deployment where node ids mean nothing.

use crate::link::LinkConfig;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// One thing that can go wrong (or be put right) in a world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Split the nodes into groups that cannot talk to each other, both directions. Nodes named
    /// in no group form one more group together. Replaces any active cuts.
    Partition {
        /// The groups, by node name.
        groups: Vec<Vec<String>>,
    },
    /// Cut one direction only: messages from `from` to `to` are dropped; the reverse flows.
    CutOneWay {
        /// Sender side.
        from: String,
        /// Receiver side.
        to: String,
    },
    /// Remove every partition and cut.
    Heal,
    /// Set the link model for messages from `from` to `to` (`None` = every node on that side).
    SetLink {
        /// Sender (`None`: any).
        from: Option<String>,
        /// Receiver (`None`: any).
        to: Option<String>,
        /// The new model.
        link: LinkConfig,
    },
    /// Forget every per-link override: all links use the world's default model again.
    ResetLinks,
    /// Kill a node: its tasks stop, volatile state and unsynced writes are lost, messages in
    /// flight to it are dropped.
    Crash {
        /// Node name.
        node: String,
    },
    /// Start a node's program again with only its durable state (crashing it first if running).
    Restart {
        /// Node name.
        node: String,
    },
    /// Stop running a node's tasks; its timers fire late and messages wait for it.
    Pause {
        /// Node name.
        node: String,
    },
    /// Let a paused node run again.
    Resume {
        /// Node name.
        node: String,
    },
    /// Set a node's clock offset and drift (both relative to true simulated time).
    ClockSkew {
        /// Node name.
        node: String,
        /// Offset of the node's wall clock, in milliseconds (may be negative).
        offset_ms: i64,
        /// Drift rate in parts per million (may be negative): +1000 runs 0.1% fast.
        drift_ppm: i64,
    },
}

impl Fault {
    /// Names of the nodes this fault refers to, in order of appearance.
    pub fn nodes(&self) -> Vec<&str> {
        match self {
            Fault::Partition { groups } => groups.iter().flatten().map(String::as_str).collect(),
            Fault::CutOneWay { from, to } => vec![from, to],
            Fault::SetLink { from, to, .. } => from.iter().chain(to.iter()).map(String::as_str).collect(),
            Fault::Crash { node }
            | Fault::Restart { node }
            | Fault::Pause { node }
            | Fault::Resume { node }
            | Fault::ClockSkew { node, .. } => vec![node],
            Fault::Heal | Fault::ResetLinks => vec![],
        }
    }
}

impl Fault {
    /// This fault with every reference to node `from` naming `to` instead.
    pub fn renamed(&self, from: &str, to: &str) -> Fault {
        let swap = |n: &String| if n == from { to.to_owned() } else { n.clone() };
        match self {
            Fault::Partition { groups } => {
                Fault::Partition { groups: groups.iter().map(|g| g.iter().map(swap).collect()).collect() }
            }
            Fault::CutOneWay { from: a, to: b } => Fault::CutOneWay { from: swap(a), to: swap(b) },
            Fault::SetLink { from: a, to: b, link } => {
                Fault::SetLink { from: a.as_ref().map(swap), to: b.as_ref().map(swap), link: link.clone() }
            }
            Fault::Crash { node } => Fault::Crash { node: swap(node) },
            Fault::Restart { node } => Fault::Restart { node: swap(node) },
            Fault::Pause { node } => Fault::Pause { node: swap(node) },
            Fault::Resume { node } => Fault::Resume { node: swap(node) },
            Fault::ClockSkew { node, offset_ms, drift_ppm } => {
                Fault::ClockSkew { node: swap(node), offset_ms: *offset_ms, drift_ppm: *drift_ppm }
            }
            Fault::Heal | Fault::ResetLinks => self.clone(),
        }
    }

    /// Checks what can be checked without a world: partition groups are disjoint and non-empty,
    /// link parameters are in range. Node names are checked against a world by the world.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Fault::Partition { groups } => {
                let mut seen = std::collections::BTreeSet::new();
                for (i, g) in groups.iter().enumerate() {
                    if g.is_empty() {
                        return Err(format!("partition: group {i} is empty"));
                    }
                    for n in g {
                        if !seen.insert(n.as_str()) {
                            return Err(format!("partition: node {n:?} is in more than one group"));
                        }
                    }
                }
                Ok(())
            }
            Fault::SetLink { link, .. } => link.validate("link").map_err(|e| e.join("; ")),
            Fault::ClockSkew { offset_ms, drift_ppm, .. } => {
                if offset_ms.unsigned_abs() > MAX_SKEW_OFFSET_MS {
                    Err(format!("clock skew: offset {offset_ms} ms is beyond ±{MAX_SKEW_OFFSET_MS} ms (a day)"))
                } else if drift_ppm.unsigned_abs() > MAX_DRIFT_PPM {
                    Err(format!("clock skew: drift {drift_ppm} ppm is beyond ±{MAX_DRIFT_PPM} ppm (50%)"))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }
}

/// Largest clock offset a fault may set, in milliseconds (one day).
pub const MAX_SKEW_OFFSET_MS: u64 = 24 * 3600 * 1000;
/// Largest drift a fault may set, in parts per million (50%).
pub const MAX_DRIFT_PPM: u64 = 500_000;

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Partition { groups } => {
                let gs: Vec<String> = groups.iter().map(|g| format!("{{{}}}", g.join(","))).collect();
                write!(f, "partition {}", gs.join(" | "))
            }
            Fault::CutOneWay { from, to } => write!(f, "cut {from} -> {to}"),
            Fault::Heal => write!(f, "heal"),
            Fault::SetLink { from, to, link } => write!(
                f,
                "link {} -> {}: latency {:?}..{:?} loss {} dup {} reorder {}",
                from.as_deref().unwrap_or("*"),
                to.as_deref().unwrap_or("*"),
                link.latency.bounds().0,
                link.latency.bounds().1,
                link.loss,
                link.duplicate,
                link.reorder
            ),
            Fault::ResetLinks => write!(f, "reset links"),
            Fault::Crash { node } => write!(f, "crash {node}"),
            Fault::Restart { node } => write!(f, "restart {node}"),
            Fault::Pause { node } => write!(f, "pause {node}"),
            Fault::Resume { node } => write!(f, "resume {node}"),
            Fault::ClockSkew { node, offset_ms, drift_ppm } => {
                write!(f, "skew {node} offset {offset_ms}ms drift {drift_ppm}ppm")
            }
        }
    }
}

/// A fault due at a simulated time since the start of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledFault {
    /// When, since the start of the run.
    #[serde(with = "humantime_serde")]
    pub at: Duration,
    /// What.
    #[serde(with = "compact")]
    pub fault: Fault,
}

/// Serde adapter for a [`Fault`] field: the fault's own form in human-readable formats (TOML,
/// JSON), its JSON text in binary ones (bincode cannot decode internally tagged enums).
pub mod compact {
    use super::Fault;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes `fault`.
    pub fn serialize<S: Serializer>(fault: &Fault, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            fault.serialize(s)
        } else {
            serde_json::to_string(fault).map_err(serde::ser::Error::custom)?.serialize(s)
        }
    }

    /// Deserializes a fault written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fault, D::Error> {
        if d.is_human_readable() {
            Fault::deserialize(d)
        } else {
            let text = String::deserialize(d)?;
            serde_json::from_str(&text).map_err(serde::de::Error::custom)
        }
    }
}

/// An ordered list of faults. Entries with equal times keep their insertion order.
/// Serialised as a plain list of `{ at, fault }` entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FaultSchedule {
    /// The entries, sorted by `at` (stable).
    pub entries: Vec<ScheduledFault>,
}

impl FaultSchedule {
    /// An empty schedule.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a fault at `at`, keeping the schedule sorted (stable for equal times).
    pub fn at(mut self, at: Duration, fault: Fault) -> Self {
        self.push(at, fault);
        self
    }

    /// Adds a fault at `at`, keeping the schedule sorted (stable for equal times).
    pub fn push(&mut self, at: Duration, fault: Fault) {
        let idx = self.entries.partition_point(|e| e.at <= at);
        self.entries.insert(idx, ScheduledFault { at, fault });
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Time of the last entry (zero when empty).
    pub fn end(&self) -> Duration {
        self.entries.last().map_or(Duration::ZERO, |e| e.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renaming_a_node_reaches_every_reference_and_nothing_else() {
        let link = LinkConfig::default();
        let set = Fault::SetLink { from: Some("x".into()), to: None, link: link.clone() };
        assert_eq!(set.renamed("x", "n1"), Fault::SetLink { from: Some("n1".into()), to: None, link });
        let cut = Fault::Partition { groups: vec![vec!["x".into(), "n2".into()], vec!["n3".into()]] };
        assert_eq!(cut.renamed("x", "n1").nodes(), vec!["n1", "n2", "n3"]);
        assert_eq!(Fault::Resume { node: "n2".into() }.renamed("x", "n1"), Fault::Resume { node: "n2".into() });
        assert_eq!(Fault::Heal.renamed("x", "n1"), Fault::Heal);
    }

    #[test]
    fn schedule_is_sorted_and_stable() {
        let s = FaultSchedule::new()
            .at(Duration::from_secs(5), Fault::Heal)
            .at(Duration::from_secs(1), Fault::Crash { node: "a".into() })
            .at(Duration::from_secs(5), Fault::Restart { node: "a".into() });
        let kinds: Vec<String> = s.entries.iter().map(|e| e.fault.to_string()).collect();
        assert_eq!(kinds, ["crash a", "heal", "restart a"]);
        assert_eq!(s.end(), Duration::from_secs(5));
    }

    #[test]
    fn overlapping_partition_groups_are_rejected() {
        let f = Fault::Partition { groups: vec![vec!["b".into()], vec!["b".into(), "c".into()]] };
        assert_eq!(f.validate().unwrap_err(), "partition: node \"b\" is in more than one group");
        assert!(Fault::Partition { groups: vec![vec![]] }.validate().is_err());
    }

    #[test]
    fn schedule_round_trips_through_json() {
        let s = FaultSchedule::new()
            .at(
                Duration::from_millis(1500),
                Fault::Partition { groups: vec![vec!["a".into()], vec!["b".into(), "c".into()]] },
            )
            .at(Duration::from_secs(3), Fault::ClockSkew { node: "b".into(), offset_ms: -1000, drift_ppm: 200 });
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""at":"1s 500ms""#), "{json}");
        let back: FaultSchedule = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}
