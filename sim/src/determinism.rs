//! The determinism check: run a seed twice and find the first event where the traces differ.
//!
//! [`World::run`](crate::World::run) does this itself when `SIM_CHECK_DETERMINISM=1` or
//! [`WorldBuilder::check_determinism`](crate::WorldBuilder::check_determinism) is set.

use crate::trace::{Trace, TraceEvent};
use std::fmt;

/// Where two runs of one seed first differ.
#[derive(Debug, Clone, PartialEq)]
pub struct Divergence {
    /// Index of the first differing event.
    pub index: usize,
    /// The event in the first run (`None`: the first run ended here).
    pub first: Option<TraceEvent>,
    /// The event in the second run (`None`: the second run ended here).
    pub second: Option<TraceEvent>,
    /// The events just before the divergence (identical in both runs), oldest first.
    pub context: Vec<TraceEvent>,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "nondeterminism: the two runs diverge at event #{}", self.index)?;
        for e in &self.context {
            writeln!(f, "    both:   {e}")?;
        }
        let show = |e: &Option<TraceEvent>| e.as_ref().map_or_else(|| "<end of trace>".to_owned(), |e| e.to_string());
        writeln!(f, "  > run 1:  {}", show(&self.first))?;
        write!(f, "  > run 2:  {}", show(&self.second))
    }
}

/// Compares two traces that kept their events. `None` when they are identical.
pub fn first_divergence(a: &Trace, b: &Trace) -> Option<Divergence> {
    if a.hash() == b.hash() && a.len() == b.len() {
        return None;
    }
    let (ea, eb) = (a.events(), b.events());
    let index = ea.iter().zip(eb).position(|(x, y)| x != y).unwrap_or(ea.len().min(eb.len()));
    Some(Divergence {
        index,
        first: ea.get(index).cloned(),
        second: eb.get(index).cloned(),
        context: ea[index.saturating_sub(3)..index].to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::EventKind;
    use std::time::Duration;

    fn ev(ms: u64, text: &str) -> TraceEvent {
        TraceEvent { at: Duration::from_millis(ms), node: None, kind: EventKind::Annotation { text: text.into() } }
    }

    #[test]
    fn names_the_first_divergent_event() {
        let (mut a, mut b) = (Trace::new(100, true), Trace::new(100, true));
        for (i, t) in ["x", "y", "z"].iter().enumerate() {
            a.push(ev(i as u64, t));
        }
        for (i, t) in ["x", "y", "w"].iter().enumerate() {
            b.push(ev(i as u64, t));
        }
        let d = first_divergence(&a, &b).expect("they differ");
        assert_eq!(d.index, 2);
        assert_eq!(d.first, Some(ev(2, "z")));
        assert_eq!(d.second, Some(ev(2, "w")));
        let text = d.to_string();
        assert!(text.contains("diverge at event #2") && text.contains("note z") && text.contains("note w"), "{text}");
        assert!(first_divergence(&a, &a.clone()).is_none());
    }

    #[test]
    fn a_shorter_trace_diverges_at_its_end() {
        let (mut a, mut b) = (Trace::new(100, true), Trace::new(100, true));
        a.push(ev(0, "x"));
        b.push(ev(0, "x"));
        b.push(ev(1, "y"));
        let d = first_divergence(&a, &b).unwrap();
        assert_eq!((d.index, d.first.is_none()), (1, true));
    }
}
