//! The network model of one directed link: latency distribution, loss, duplication, reordering.

use rand::Rng;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a message spends on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Latency {
    /// Always the same.
    Fixed {
        /// The latency.
        #[serde(with = "humantime_serde")]
        value: Duration,
    },
    /// Uniform in `[min, max]`.
    Uniform {
        /// Lower bound (inclusive).
        #[serde(with = "humantime_serde")]
        min: Duration,
        /// Upper bound (inclusive).
        #[serde(with = "humantime_serde")]
        max: Duration,
    },
    /// Bounded Pareto on `[min, max]` with tail index `shape` (smaller is heavier; 1.0–2.0 is
    /// typical): most messages arrive near `min`, a few take up to `max`.
    LongTail {
        /// Lower bound, the most common value.
        #[serde(with = "humantime_serde")]
        min: Duration,
        /// Hard upper bound.
        #[serde(with = "humantime_serde")]
        max: Duration,
        /// Pareto tail index, > 0.
        shape: f64,
    },
}

impl Latency {
    /// A fixed latency.
    pub fn fixed(value: Duration) -> Self {
        Latency::Fixed { value }
    }

    /// A uniform latency in `[min, max]`.
    pub fn uniform(min: Duration, max: Duration) -> Self {
        Latency::Uniform { min, max }
    }

    /// A bounded Pareto latency on `[min, max]`.
    pub fn long_tail(min: Duration, max: Duration, shape: f64) -> Self {
        Latency::LongTail { min, max, shape }
    }

    /// The smallest and largest value this distribution can produce.
    pub fn bounds(&self) -> (Duration, Duration) {
        match *self {
            Latency::Fixed { value } => (value, value),
            Latency::Uniform { min, max } | Latency::LongTail { min, max, .. } => (min, max),
        }
    }

    /// Draws one latency. Always within [`Latency::bounds`].
    pub fn sample(&self, rng: &mut impl Rng) -> Duration {
        match *self {
            Latency::Fixed { value } => value,
            Latency::Uniform { min, max } => {
                let (lo, hi) = (min.as_nanos() as u64, max.as_nanos() as u64);
                Duration::from_nanos(rng.random_range(lo..=hi))
            }
            Latency::LongTail { min, max, shape } => {
                // Inverse CDF of the Pareto distribution truncated to [min, max].
                let (lo, hi) = (min.as_secs_f64().max(1e-9), max.as_secs_f64());
                let u: f64 = rng.random();
                let ratio = (lo / hi).powf(shape);
                let x = lo / (1.0 - u * (1.0 - ratio)).powf(1.0 / shape);
                Duration::from_secs_f64(x.clamp(lo, hi.max(lo)))
            }
        }
    }

    /// Checks the parameters; `what` names the field in the message.
    pub fn validate(&self, what: &str) -> Result<(), String> {
        let (min, max) = self.bounds();
        if min > max {
            return Err(format!("{what}: min {min:?} > max {max:?}"));
        }
        if let Latency::LongTail { shape, .. } = self {
            if !(shape.is_finite() && *shape > 0.0) {
                return Err(format!("{what}: shape must be a positive number, got {shape}"));
            }
        }
        Ok(())
    }
}

/// Everything the network does to messages on one directed link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinkConfig {
    /// Latency distribution. Default: uniform 1–10 ms.
    pub latency: Latency,
    /// Probability a message is lost. Default 0.
    pub loss: f64,
    /// Probability a message is delivered twice (the copy draws its own latency). Default 0.
    pub duplicate: f64,
    /// Probability a message is held back by an extra delay in `(0, reorder_delay]`, so later
    /// messages overtake it. Default 0.
    pub reorder: f64,
    /// Largest extra delay of a reordered message. Default 10 ms.
    #[serde(with = "humantime_serde")]
    pub reorder_delay: Duration,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Latency::uniform(Duration::from_millis(1), Duration::from_millis(10)),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(10),
        }
    }
}

impl LinkConfig {
    /// A perfect link with a fixed latency and no loss, duplication or reordering.
    pub fn fixed(latency: Duration) -> Self {
        LinkConfig { latency: Latency::fixed(latency), ..LinkConfig::default() }
    }

    /// Sets the latency distribution.
    pub fn latency(mut self, latency: Latency) -> Self {
        self.latency = latency;
        self
    }

    /// Sets the loss probability.
    pub fn loss(mut self, p: f64) -> Self {
        self.loss = p;
        self
    }

    /// Sets the duplication probability.
    pub fn duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// Sets the reordering probability and the largest extra delay.
    pub fn reorder(mut self, p: f64, delay: Duration) -> Self {
        self.reorder = p;
        self.reorder_delay = delay;
        self
    }

    /// The largest total time a message can spend on this link (latency plus reorder delay).
    pub fn max_delay(&self) -> Duration {
        self.latency.bounds().1 + if self.reorder > 0.0 { self.reorder_delay } else { Duration::ZERO }
    }

    /// Checks every parameter and lists each problem found, prefixed with `what`.
    pub fn validate(&self, what: &str) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if let Err(e) = self.latency.validate(&format!("{what}.latency")) {
            problems.push(e);
        }
        for (name, p) in [("loss", self.loss), ("duplicate", self.duplicate), ("reorder", self.reorder)] {
            if !(0.0..=1.0).contains(&p) {
                problems.push(format!("{what}.{name}: probability must be in [0, 1], got {p}"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn samples_stay_within_bounds() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let ms = Duration::from_millis;
        for lat in [Latency::fixed(ms(3)), Latency::uniform(ms(1), ms(10)), Latency::long_tail(ms(1), ms(300), 1.2)] {
            let (lo, hi) = lat.bounds();
            for _ in 0..10_000 {
                let d = lat.sample(&mut rng);
                assert!(lo <= d && d <= hi, "{lat:?} gave {d:?}");
            }
        }
    }

    #[test]
    fn long_tail_is_long_tailed() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let lat = Latency::long_tail(Duration::from_millis(1), Duration::from_millis(500), 1.0);
        let mut v: Vec<_> = (0..20_000).map(|_| lat.sample(&mut rng)).collect();
        v.sort();
        let (median, p999) = (v[v.len() / 2], v[v.len() * 999 / 1000]);
        assert!(median < Duration::from_millis(3), "median {median:?}");
        assert!(p999 > Duration::from_millis(100), "p99.9 {p999:?}");
    }

    #[test]
    fn validation_names_the_field() {
        let bad = LinkConfig::default()
            .loss(1.5)
            .latency(Latency::uniform(Duration::from_millis(9), Duration::from_millis(2)));
        let errs = bad.validate("net.link").unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs[0].starts_with("net.link.latency: min 9ms > max 2ms"), "{errs:?}");
        assert!(errs[1].contains("net.link.loss: probability must be in [0, 1], got 1.5"), "{errs:?}");
    }
}
