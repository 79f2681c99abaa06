//! Buggify: rare code paths that system-under-test code opts into, FoundationDB style.
//!
//! `buggify!()` is true only in a simulation with buggify switched on, only at call sites that
//! this seed enabled (each site independently, with the world's site probability, default
//! 25%), and then only with the fire probability (default 5%) per call. Decisions come from the
//! seed, so they replay exactly. In a real build it is the constant `false`.

/// Is this `file:line` site enabled and does it fire now? Use [`buggify!`](crate::buggify!).
#[cfg(madsim)]
pub fn fire(site: &'static str) -> bool {
    fire_with(site, None)
}

/// Like [`fire`] with an explicit fire probability.
#[cfg(madsim)]
pub fn fire_with(site: &'static str, probability: Option<f64>) -> bool {
    use crate::state::{has_world, with_world};
    use crate::trace::EventKind;
    use rand::Rng;
    if !has_world() {
        return false;
    }
    with_world(|w| {
        let Some(cfg) = w.limits.buggify else { return false };
        if !w.buggify_site_enabled(site, cfg.site_probability) {
            return false;
        }
        let p = probability.unwrap_or(cfg.fire_probability).clamp(0.0, 1.0);
        let node = w.current_node();
        let rng = match node {
            Some(n) => &mut w.node_mut(n).buggify_rng,
            None => &mut w.supervisor_rng,
        };
        let fired = rng.random_bool(p);
        if fired {
            w.record(node, EventKind::Buggify { site: site.to_owned() });
        }
        fired
    })
}

/// Always false in a real build.
#[cfg(not(madsim))]
pub fn fire(_site: &'static str) -> bool {
    false
}

/// Always false in a real build.
#[cfg(not(madsim))]
pub fn fire_with(_site: &'static str, _probability: Option<f64>) -> bool {
    false
}

/// True when this call site should take its rare path now (see [the module](crate::buggify)).
///
/// `buggify!()` uses the world's fire probability; `buggify!(0.5)` sets it for this site.
#[macro_export]
macro_rules! buggify {
    () => {
        $crate::buggify::fire(concat!(file!(), ":", line!()))
    };
    ($p:expr) => {
        $crate::buggify::fire_with(concat!(file!(), ":", line!()), Some($p))
    };
}
