//! Seeds: parsing `SIM_SEED`/`CHAOS_SEED`, drawing a fresh seed, and deriving independent
//! ChaCha streams per purpose and per node.
//!
//! A stream is keyed by `(root seed, purpose, name)`: the node's *name*, not its index, so adding
//! a node or a fault does not reshuffle the streams of everything else.

use crate::trace::StableHasher;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::fmt;

/// Environment variable holding the world seed.
pub const SIM_SEED_ENV: &str = "SIM_SEED";
/// Environment variable that overrides the chaos stream's seed alone.
pub const CHAOS_SEED_ENV: &str = "CHAOS_SEED";

/// A seed given in the environment (or on a command line) that is not a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{var}={value:?} is not a seed: expected a decimal u64 (e.g. 42), 0x-prefixed hex (e.g. 0x2a) or a git commit id (7 to 40 hex digits with a letter, e.g. e946b57)"
)]
pub struct SeedError {
    /// The variable (or flag) that held the value.
    pub var: String,
    /// The offending value.
    pub value: String,
}

/// Parses a seed written in decimal, `0x` hex, or as a git commit id. `var` names the source
/// in the error.
///
/// A commit id is 7 to 40 hex digits with at least one letter (all-digit strings are decimal);
/// it is hashed with [`commit_seed`], so CI can use `git rev-parse HEAD` as a seed that varies
/// per commit and still replays.
///
/// ```
/// use gauntlet_sim::seed::{commit_seed, parse_seed};
/// assert_eq!(parse_seed("--seed", "42"), Ok(42));
/// assert_eq!(parse_seed("--seed", "0x2a"), Ok(42));
/// assert_eq!(parse_seed("--seed", "e946b57"), Ok(commit_seed("e946b57")));
/// assert!(parse_seed("--seed", "forty-two").is_err());
/// ```
pub fn parse_seed(var: &str, value: &str) -> Result<u64, SeedError> {
    let v = value.trim();
    let is_commit = (7..=40).contains(&v.len())
        && v.bytes().all(|b| b.is_ascii_hexdigit())
        && v.bytes().any(|b| b.is_ascii_alphabetic());
    let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None if is_commit => Ok(commit_seed(v)),
        None => v.parse::<u64>(),
    };
    parsed.map_err(|_| SeedError { var: var.to_owned(), value: value.to_owned() })
}

/// The seed of a git commit id: FNV-1a (64 bit) over its lowercase ASCII text. An abbreviated
/// id gives a different seed from the full one; use the same form to replay.
pub fn commit_seed(commit: &str) -> u64 {
    crate::trace::StableHasher::digest(commit.trim().to_ascii_lowercase().as_bytes())
}

/// Reads a seed from the environment variable `var`: `Ok(None)` when unset or empty.
pub fn seed_from_env(var: &str) -> Result<Option<u64>, SeedError> {
    match std::env::var(var) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => parse_seed(var, &v).map(Some),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => {
            Err(SeedError { var: var.to_owned(), value: v.to_string_lossy().into_owned() })
        }
    }
}

/// Draws a fresh seed from the operating system. Only ever called *outside* a simulation, and
/// the seed is printed before the run starts so the run can be replayed.
#[expect(clippy::disallowed_methods, reason = "choosing a new seed is the one place real randomness is wanted")]
pub fn draw_seed() -> u64 {
    use rand::RngCore;
    rand::rng().next_u64()
}

/// The world seed and the (possibly overridden) chaos seed of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seeds {
    /// Root of every stream.
    pub sim: u64,
    /// Root of the chaos stream (equal to `sim` unless `CHAOS_SEED` overrides it).
    pub chaos: u64,
}

impl Seeds {
    /// Both seeds equal to `seed`.
    pub fn new(seed: u64) -> Self {
        Seeds { sim: seed, chaos: seed }
    }

    /// `SIM_SEED` (or a freshly drawn seed) and `CHAOS_SEED` (or the sim seed).
    pub fn from_env() -> Result<Self, SeedError> {
        let sim = seed_from_env(SIM_SEED_ENV)?.unwrap_or_else(draw_seed);
        let chaos = seed_from_env(CHAOS_SEED_ENV)?.unwrap_or(sim);
        Ok(Seeds { sim, chaos })
    }

    /// The `SIM_SEED=… [CHAOS_SEED=…]` prefix that replays these seeds.
    pub fn env_prefix(&self) -> String {
        if self.chaos == self.sim {
            format!("{SIM_SEED_ENV}={}", self.sim)
        } else {
            format!("{SIM_SEED_ENV}={} {CHAOS_SEED_ENV}={}", self.sim, self.chaos)
        }
    }
}

impl fmt::Display for Seeds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.env_prefix())
    }
}

/// What a random stream is used for. Each purpose is an independent stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Purpose {
    /// Network decisions (latency, loss, duplication, reordering) for messages a node sends.
    Network,
    /// Fault generation and fault side effects (torn writes). Rooted at the chaos seed.
    Chaos,
    /// Client workload decisions.
    Workload,
    /// Randomness handed to a node's program (election timeouts and the like).
    Program,
    /// Buggify decisions.
    Buggify,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Network => "network",
            Purpose::Chaos => "chaos",
            Purpose::Workload => "workload",
            Purpose::Program => "program",
            Purpose::Buggify => "buggify",
        }
    }
}

/// Derives a 64-bit child seed for `(root, purpose, name, index)`. Stable across platforms.
pub fn derive_seed(root: u64, purpose: Purpose, name: &str, index: u64) -> u64 {
    let mut h = StableHasher::default();
    h.u64(root);
    h.str(purpose.label());
    h.str(name);
    h.u64(index);
    // FNV's low bits mix poorly for similar inputs; finish with a splitmix64 round.
    let mut z = h.finish().wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A ChaCha8 stream for `(root, purpose, name, index)`.
pub fn stream(root: u64, purpose: Purpose, name: &str, index: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(derive_seed(root, purpose, name, index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn parses_decimal_and_hex() {
        assert_eq!(parse_seed("SIM_SEED", "42"), Ok(42));
        assert_eq!(parse_seed("SIM_SEED", " 0x2A "), Ok(42));
        assert_eq!(parse_seed("SIM_SEED", "18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn bad_seed_names_variable_and_value() {
        let err = parse_seed("SIM_SEED", "abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "SIM_SEED=\"abc\" is not a seed: expected a decimal u64 (e.g. 42), 0x-prefixed hex (e.g. 0x2a) \
             or a git commit id (7 to 40 hex digits with a letter, e.g. e946b57)"
        );
        // Six hex digits, or forty-one, are not a commit id; digits alone are decimal.
        assert!(parse_seed("SIM_SEED", "abcdef").is_err());
        assert!(parse_seed("SIM_SEED", &"a".repeat(41)).is_err());
        assert_eq!(parse_seed("SIM_SEED", "1234567"), Ok(1_234_567));
        assert_eq!(parse_seed("SIM_SEED", "ABCDEF0"), parse_seed("SIM_SEED", "abcdef0"));
        assert!(parse_seed("CHAOS_SEED", "-1").unwrap_err().to_string().starts_with("CHAOS_SEED=\"-1\""));
        assert!(parse_seed("SIM_SEED", "0xzz").is_err());
    }

    #[test]
    fn streams_are_independent_and_stable() {
        let a = stream(1, Purpose::Network, "n1", 0).next_u64();
        assert_eq!(a, stream(1, Purpose::Network, "n1", 0).next_u64());
        assert_ne!(a, stream(1, Purpose::Network, "n2", 0).next_u64());
        assert_ne!(a, stream(1, Purpose::Chaos, "n1", 0).next_u64());
        assert_ne!(a, stream(2, Purpose::Network, "n1", 0).next_u64());
        assert_ne!(a, stream(1, Purpose::Network, "n1", 1).next_u64());
    }
}
