//! `gauntlet replay`, `diff` and `report`: commands that read bundles.

use crate::apps::Apps;
use crate::{EXIT_CRASH, EXIT_FAIL, EXIT_PASS, EXIT_USAGE};
use gauntlet::bundle::Bundle;
use gauntlet::registry::{RunOptions, RunPlanError};
use gauntlet::sim::trace::TraceEvent;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

/// Reads a bundle, printing the error (which names the file and the damage) on failure.
pub fn load(path: &Path) -> Result<Bundle, i32> {
    Bundle::read(path).map_err(|e| {
        eprintln!("gauntlet: {e}");
        EXIT_USAGE
    })
}

/// Reads a bundle and parses its plan, printing what is wrong on failure.
pub fn load_with_plan(path: &Path) -> Result<(Bundle, gauntlet::Plan), i32> {
    let bundle = load(path)?;
    match bundle.plan() {
        Ok(plan) => Ok((bundle, plan)),
        Err(e) => {
            eprintln!("gauntlet: {}: the bundle's plan does not parse: {e}", path.display());
            Err(EXIT_USAGE)
        }
    }
}

/// The index of the first event where `a` and `b` differ (`None` when one is a prefix of the
/// other and the lengths match).
pub fn first_divergence(a: &[TraceEvent], b: &[TraceEvent]) -> Option<usize> {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => Some(i),
        None if a.len() != b.len() => Some(a.len().min(b.len())),
        None => None,
    }
}

fn window(events: &[TraceEvent], centre: usize, width: usize) -> Vec<String> {
    let lo = centre.saturating_sub(width);
    let hi = (centre + width + 1).min(events.len());
    (lo..hi).map(|i| format!("{}{i:>8} {}", if i == centre { ">" } else { " " }, events[i])).collect()
}

/// Re-runs the bundle's plan and seeds; exit 0 when the trace hash and verdict match, 3 when
/// the replay diverges, 2 when the bundle cannot be read.
pub fn replay(apps: &Apps, path: &Path, around: Option<usize>, at: Option<Duration>, width: usize, json: bool) -> i32 {
    let (bundle, plan) = match load_with_plan(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let seeds = bundle.meta.seeds;
    if bundle.meta.backend != "sim" {
        eprintln!(
            "gauntlet: {} records a real run (backend {}), which has no trace to replay; its simulated \
             baseline is `gauntlet run {} --seed {}`, and `gauntlet report` shows the real run",
            path.display(),
            bundle.meta.backend,
            plan.name,
            seeds.sim
        );
        return EXIT_USAGE;
    }
    eprintln!("gauntlet: replaying {} with {seeds}", plan.name);
    let outcome = match apps.registry.run_plan(&plan, seeds, RunOptions { keep_events: true, ..RunOptions::default() })
    {
        Ok(o) => o,
        Err(e @ RunPlanError::Plan(_)) => {
            eprintln!("gauntlet: {}: cannot replay: {e}", path.display());
            return EXIT_USAGE;
        }
        Err(e) => {
            eprintln!("gauntlet: the replay broke: {e}");
            return EXIT_CRASH;
        }
    };
    let same_hash = outcome.trace_hash == bundle.trace_hash();
    let same_verdict = outcome.verdict == bundle.verdict;
    let events = outcome.trace.as_ref().map(|t| t.events().to_vec()).unwrap_or_default();
    let divergence = if same_hash { None } else { first_divergence(bundle.trace.events(), &events) };
    let centre = around.or_else(|| at.map(|t| events.partition_point(|e| e.at < t))).or(divergence);
    let shown = centre.map(|c| window(&events, c.min(events.len().saturating_sub(1)), width)).unwrap_or_default();
    if json {
        let v = serde_json::json!({
            "bundle": path.display().to_string(),
            "plan": plan.name, "seed": seeds.sim, "chaos_seed": seeds.chaos,
            "recorded_trace_hash": format!("{:016x}", bundle.trace_hash()),
            "trace_hash": format!("{:016x}", outcome.trace_hash),
            "same_trace": same_hash, "same_verdict": same_verdict,
            "verdict": outcome.verdict.to_string(),
            "first_divergent_event": divergence,
            "window": shown,
        });
        println!("{v}");
    } else {
        println!("plan        {}", plan.name);
        println!("seeds       sim {} chaos {}", seeds.sim, seeds.chaos);
        println!("recorded    {:016x}  {}", bundle.trace_hash(), bundle.verdict);
        println!("replayed    {:016x}  {}", outcome.trace_hash, outcome.verdict);
        if let Some(i) = divergence {
            println!("diverges at event {i}");
        }
        for line in &shown {
            println!("{line}");
        }
        println!(
            "{}",
            match (same_hash, same_verdict) {
                (true, true) => "replay: identical (same trace hash, same verdict)",
                (true, false) => "replay: same trace, different verdict (the expectations changed)",
                _ => "replay: DIVERGED (the code or the simulator changed since the bundle was written)",
            }
        );
    }
    if same_hash && same_verdict {
        EXIT_PASS
    } else {
        EXIT_CRASH
    }
}

/// Compares two bundles; exit 0 when they are the same run, 1 when they differ.
/// What `gauntlet diff --json` prints for two bundles: `same`, both trace hashes, the first
/// divergent event and the summaries' unified diff.
pub fn diff_value(a: &Bundle, b: &Bundle, a_path: &Path, b_path: &Path) -> serde_json::Value {
    let (ea, eb) = (a.trace.events(), b.trace.events());
    let same_trace = a.trace_hash() == b.trace_hash();
    let divergence = if same_trace { None } else { first_divergence(ea, eb) };
    let (sa, sb) = (a.summary.render(), b.summary.render());
    let text = similar::TextDiff::from_lines(&sa, &sb);
    serde_json::json!({
        "a": a_path.display().to_string(), "b": b_path.display().to_string(),
        "same": same_trace && sa == sb,
        "trace_hash": [format!("{:016x}", a.trace_hash()), format!("{:016x}", b.trace_hash())],
        "first_divergent_event": divergence.map(|i| serde_json::json!({
            "index": i,
            "a": ea.get(i).map(|e| e.to_string()),
            "b": eb.get(i).map(|e| e.to_string()),
        })),
        "summary_diff": text.unified_diff().header(&a_path.display().to_string(), &b_path.display().to_string()).to_string(),
    })
}

pub fn diff(a_path: &Path, b_path: &Path, context: usize, json: bool) -> i32 {
    let (a, b) = match (load(a_path), load(b_path)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let (ea, eb) = (a.trace.events(), b.trace.events());
    let same_trace = a.trace_hash() == b.trace_hash();
    let divergence = if same_trace { None } else { first_divergence(ea, eb) };
    let (sa, sb) = (a.summary.render(), b.summary.render());
    let text = similar::TextDiff::from_lines(&sa, &sb);
    let same = same_trace && sa == sb;
    if json {
        let v = diff_value(&a, &b, a_path, b_path);
        println!("{v}");
        return if same { EXIT_PASS } else { EXIT_FAIL };
    }
    use std::fmt::Write as _;
    let mut o = String::new();
    if same {
        let _ = writeln!(o, "same run: trace hash {:016x}, identical summaries", a.trace_hash());
        emit(&o);
        return EXIT_PASS;
    }
    match divergence {
        Some(i) => {
            let _ = writeln!(o, "first divergent event: #{i}");
            let _ =
                writeln!(o, "  {}: {}", a_path.display(), ea.get(i).map_or("(trace ends)".into(), |e| e.to_string()));
            let _ =
                writeln!(o, "  {}: {}", b_path.display(), eb.get(i).map_or("(trace ends)".into(), |e| e.to_string()));
            for (path, events) in [(a_path, ea), (b_path, eb)] {
                let _ = writeln!(o, "context in {}:", path.display());
                for line in window(events, i.min(events.len().saturating_sub(1)), context) {
                    let _ = writeln!(o, "{line}");
                }
            }
        }
        None if !same_trace => {
            let _ = writeln!(
                o,
                "trace hashes differ ({:016x} vs {:016x}) but the bundles keep no events to compare",
                a.trace_hash(),
                b.trace_hash()
            );
        }
        None => {}
    }
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = writeln!(o, "summary diff:");
    for change in text.iter_all_changes() {
        let (sign, on, off) = match change.tag() {
            similar::ChangeTag::Delete => ("-", "\x1b[31m", "\x1b[0m"),
            similar::ChangeTag::Insert => ("+", "\x1b[32m", "\x1b[0m"),
            similar::ChangeTag::Equal => (" ", "", ""),
        };
        if colour {
            let _ = write!(o, "{on}{sign}{change}{off}");
        } else {
            let _ = write!(o, "{sign}{change}");
        }
    }
    emit(&o);
    EXIT_FAIL
}

/// Writes `text` to stdout, ignoring a closed pipe (`gauntlet diff A B | head`).
fn emit(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Writes the HTML report of a bundle.
pub fn report(path: &Path, out: &Path, json: bool) -> i32 {
    let bundle = match load(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let html = crate::report::render(&bundle);
    let tmp = out.with_extension("html.tmp");
    if let Err(e) = std::fs::write(&tmp, html.as_bytes()).and_then(|()| std::fs::rename(&tmp, out)) {
        eprintln!("gauntlet: {}: {e}", out.display());
        return EXIT_USAGE;
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"bundle": path.display().to_string(), "report": out.display().to_string(), "bytes": html.len()})
        );
    } else {
        println!("report: {} ({} KiB)", out.display(), html.len() / 1024);
    }
    EXIT_PASS
}
