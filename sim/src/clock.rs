//! Node-local clocks: each node reads true time shifted by its own offset and drift.
//!
//! madsim has one global clock; Gauntlet layers a per-node [`ClockModel`] on top of it so clock
//! skew is visible to exactly the node it is applied to. The same model drives the real build,
//! where the deployer sets the skew, so a skewed lease bug behaves the same in both worlds.

use std::time::Duration;

/// The UNIX time (in nanoseconds) at which every simulated world starts: 2025-01-01T00:00:00Z.
pub const SIM_EPOCH_UNIX_NANOS: i128 = 1_735_689_600_000_000_000;

/// Offset and drift of one node's clock relative to true time.
///
/// `local(t) = t + offset + drift_ppm·(t − anchor)/10⁶ + carried`, where `carried` accumulates
/// the drift of earlier settings so that changing the drift never makes the clock jump.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockModel {
    offset_nanos: i64,
    drift_ppm: i64,
    anchor_nanos: u64,
    carried_nanos: i64,
}

impl ClockModel {
    /// Node-local nanoseconds at true time `true_nanos` (since the world started).
    pub fn local_nanos(&self, true_nanos: u64) -> i128 {
        let since = i128::from(true_nanos) - i128::from(self.anchor_nanos);
        i128::from(true_nanos)
            + i128::from(self.offset_nanos)
            + i128::from(self.carried_nanos)
            + since * i128::from(self.drift_ppm) / 1_000_000
    }

    /// Node-local monotonic reading: true elapsed time scaled by the drift (no offset).
    pub fn monotonic_nanos(&self, true_nanos: u64) -> u64 {
        let drifted = self.local_nanos(true_nanos) - i128::from(self.offset_nanos);
        drifted.max(0) as u64
    }

    /// Sets the offset and drift from true time `now_nanos` on, without a jump in the drift part.
    pub fn set(&mut self, now_nanos: u64, offset: i64, drift_ppm: i64) {
        let since = i128::from(now_nanos) - i128::from(self.anchor_nanos);
        self.carried_nanos += (since * i128::from(self.drift_ppm) / 1_000_000) as i64;
        self.anchor_nanos = now_nanos;
        self.offset_nanos = offset;
        self.drift_ppm = drift_ppm;
    }

    /// Current offset.
    pub fn offset(&self) -> i64 {
        self.offset_nanos
    }

    /// Current drift in parts per million.
    pub fn drift_ppm(&self) -> i64 {
        self.drift_ppm
    }
}

/// Converts node-local nanoseconds since the simulated epoch to a [`std::time::SystemTime`].
pub fn to_system_time(local_nanos: i128) -> std::time::SystemTime {
    let unix = SIM_EPOCH_UNIX_NANOS + local_nanos;
    std::time::UNIX_EPOCH + Duration::from_nanos(unix.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_and_drift() {
        let mut c = ClockModel::default();
        assert_eq!(c.local_nanos(1_000), 1_000);
        c.set(1_000_000_000, -500_000_000, 1_000); // -0.5 s, +0.1 %
        assert_eq!(c.local_nanos(1_000_000_000), 500_000_000);
        assert_eq!(c.local_nanos(2_000_000_000), 1_501_000_000);
        assert_eq!(c.monotonic_nanos(2_000_000_000), 2_001_000_000);
        // Changing the drift keeps what has accumulated: no jump.
        c.set(2_000_000_000, -500_000_000, 0);
        assert_eq!(c.local_nanos(2_000_000_000), 1_501_000_000);
        assert_eq!(c.local_nanos(3_000_000_000), 2_501_000_000);
    }
}
