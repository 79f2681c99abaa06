//! Bundles: a round trip keeps everything; every kind of damage gets its own error, never a
//! panic; writing goes through a temp file.

use gauntlet::bundle::{
    reseal_with_version, seal, Bundle, BundleError, BundleWriter, DecodeError, Meta, Summary, FORMAT_VERSION,
    HEADER_LEN,
};
use gauntlet::sim::trace::{EventKind, OpPhase, TraceEvent};
use gauntlet::sim::{Fault, FaultSchedule, NodeId, Seeds, Trace};
use gauntlet::sim::{ProbeHits, ProbeKind, Probes};
use gauntlet::workload::HistoryEntry;
use gauntlet::{Failure, FailureClass, Observation, Plan, Verdict};
use std::collections::BTreeMap;
use std::time::Duration;

const PLAN: &str = r#"
name = "bundled"
[app]
name = "counter"
options = { bugs = ["off-by-one"] }
[topology.nodes]
node = 3
[run]
duration = "10s"
[chaos.restart]
min_delay = "1s"
max_delay = "2s"
"#;

/// A bundle with a few of everything, including a fault inside the trace.
fn sample() -> Bundle {
    let plan = Plan::from_toml(PLAN).unwrap();
    let seeds = Seeds { sim: 42, chaos: 7 };
    let mut trace = Trace::new(1_000, true);
    let mut schedule = FaultSchedule::new();
    for i in 0..200u64 {
        let at = Duration::from_millis(i * 10);
        let kind = match i % 5 {
            0 => EventKind::Send { msg: i, to: NodeId((i % 3) as u32), bytes: 16, digest: i * 7 },
            1 => EventKind::Deliver { msg: i - 1, from: NodeId(0), copy: 0 },
            2 => EventKind::Op { op: format!("add#{i}"), phase: OpPhase::Invoke },
            3 => EventKind::Annotation { text: format!("note {i}") },
            _ => {
                let fault = Fault::Crash { node: format!("node-{}", i % 3) };
                schedule.push(at, fault.clone());
                EventKind::Fault { fault }
            }
        };
        trace.push(TraceEvent { at, node: Some(NodeId((i % 3) as u32)), kind });
    }
    let history = (0..20)
        .map(|i| HistoryEntry {
            workload: "adds".into(),
            user: i % 4,
            id: u64::from(i),
            op: "add".into(),
            arg: u64::from(i) * 31,
            invoke: Duration::from_millis(u64::from(i) * 100),
            complete: (i % 3 != 0).then(|| Duration::from_millis(u64::from(i) * 100 + 5)),
            outcome: if i % 3 == 0 { OpPhase::Info } else { OpPhase::Ok },
            result: i.to_string(),
        })
        .collect();
    let observations =
        vec![Observation { at: Duration::from_millis(100), node: "node-0".into(), state: "count 1".into() }];
    let verdict = Verdict::Fail(Failure {
        class: FailureClass::Safety,
        source: "at_most".into(),
        at: Duration::from_secs(3),
        message: "node-0 counted 11 > 10".into(),
    });
    let summary = Summary {
        plan: plan.name.clone(),
        app: "counter".into(),
        seeds,
        bugs: vec!["off-by-one".into()],
        verdict: verdict.to_string(),
        trace_hash: trace.hash(),
        events: trace.len(),
        counts: BTreeMap::from([("send".to_owned(), 40)]),
        sim_time_ms: 3_000,
        chaos_kinds: vec!["restart".into()],
        faults: schedule.len(),
        ops: BTreeMap::from([("adds".to_owned(), [20, 13, 0, 7, 0])]),
        settled: BTreeMap::new(),
        final_states: BTreeMap::from([("node-0".to_owned(), "count 11".to_owned())]),
        membership: Vec::new(),
    };
    let findings = vec![gauntlet::Finding {
        expectation: "linearizable".into(),
        kind: gauntlet::FindingKind::Evidence,
        text: "op 1 …".into(),
    }];
    let probes = Probes::from([
        (
            "a node restarted".to_owned(),
            ProbeHits {
                kind: ProbeKind::Sometimes,
                evaluated: 9,
                held: 2,
                first_held: Some(Duration::from_millis(1_250)),
            },
        ),
        ("an eviction".to_owned(), ProbeHits::unreached(ProbeKind::Reachable)),
    ]);
    Bundle { meta: Meta::new(&plan, seeds), schedule, trace, observations, history, verdict, summary, findings, probes }
}

/// `bundle`'s bytes as format `version` wrote them: its first `sections` sections only.
fn as_older_format(bundle: &Bundle, version: u32, sections: usize) -> Vec<u8> {
    let bytes = bundle.encode().unwrap();
    let body = &bytes[HEADER_LEN..];
    let mut at = 0;
    for _ in 0..sections {
        let len = u64::from_le_bytes(body[at + 1..at + 9].try_into().unwrap()) as usize;
        at += 9 + len;
    }
    let mut old = seal(&body[..at]);
    reseal_with_version(&mut old, version);
    old
}

#[test]
fn a_bundle_round_trips_through_bytes_and_files() {
    let b = sample();
    let bytes = b.encode().unwrap();
    let back = Bundle::decode(&bytes).unwrap();
    assert_eq!(back.meta, b.meta);
    assert_eq!(back.plan().unwrap(), b.plan().unwrap(), "the plan survives as TOML");
    assert_eq!(back.schedule, b.schedule, "faults survive bincode (as their JSON text)");
    assert_eq!(back.trace.events(), b.trace.events());
    assert_eq!((back.trace_hash(), back.trace.len()), (b.trace_hash(), b.trace.len()));
    assert_eq!(back.history, b.history);
    assert_eq!(back.observations, b.observations);
    assert_eq!(back.verdict, b.verdict);
    assert_eq!(back.summary, b.summary);
    assert_eq!(back.findings, b.findings);
    assert_eq!(back.probes, b.probes, "sometimes-assertions survive (format 4)");

    let dir = tempdir("roundtrip");
    let path = dir.join("sub/run.gbundle");
    b.write(&path).unwrap();
    assert!(path.exists() && !dir.join("sub/run.gbundle.tmp").exists(), "renamed into place");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the streamed file equals the in-memory encoding");
    assert_eq!(Bundle::read(&path).unwrap().summary, b.summary);
}

/// Format 4 added the probes section, format 3 the findings: older bundles still read, with
/// those sections empty and everything else intact.
#[test]
fn bundles_of_formats_2_and_3_still_read_without_the_newer_sections() {
    let b = sample();
    let v3 = Bundle::decode(&as_older_format(&b, 3, 7)).unwrap();
    assert_eq!((&v3.summary, &v3.findings, &v3.history), (&b.summary, &b.findings, &b.history));
    assert!(v3.probes.is_empty(), "no probes section before format 4");
    let v2 = Bundle::decode(&as_older_format(&b, 2, 6)).unwrap();
    assert_eq!((&v2.summary, &v2.verdict, v2.trace_hash()), (&b.summary, &b.verdict, b.trace_hash()));
    assert!(v2.findings.is_empty() && v2.probes.is_empty());
    // A format-4 header over a body without the probes section is damage, not an old bundle.
    let mut short = as_older_format(&b, 3, 7);
    reseal_with_version(&mut short, 4);
    assert!(matches!(Bundle::decode(&short), Err(DecodeError::Corrupt { what }) if what.contains("probes")));
}

#[test]
fn every_kind_of_damage_has_its_own_error() {
    let good = sample().encode().unwrap();
    let n = good.len();
    assert!(n > 1_000, "a bundle big enough to cut in 16ths: {n} bytes");

    // Truncated at every 1/16th (0/16 is the empty file).
    for k in 0..16 {
        let cut = n * k / 16;
        match Bundle::decode(&good[..cut]) {
            Err(DecodeError::Truncated { what }) => assert!(!what.is_empty()),
            other => panic!("cut at {k}/16 ({cut} bytes): {other:?}"),
        }
    }

    // A flipped bit anywhere after the magic is caught by a checksum.
    let mut positions: Vec<usize> = (8..n).step_by(n / 97 + 1).collect();
    positions.extend([8, 20, 30, 35, 39, 40, 41, n / 2, n - 1]);
    for at in positions {
        for bit in [0, 3, 7] {
            let mut bad = good.clone();
            bad[at] ^= 1 << bit;
            match Bundle::decode(&bad) {
                Err(DecodeError::Corrupt { what }) => assert!(what.contains("checksum"), "{what}"),
                other => panic!("bit {bit} of byte {at}: {other:?}"),
            }
        }
    }

    // Wrong magic, or not a bundle at all.
    let mut bad = good.clone();
    bad[0] = b'X';
    assert_eq!(Bundle::decode(&bad).unwrap_err(), DecodeError::NotABundle);
    assert_eq!(Bundle::decode(b"{\"plan\": 1}").unwrap_err(), DecodeError::NotABundle);

    // A newer format version, properly sealed.
    let mut future = good.clone();
    reseal_with_version(&mut future, FORMAT_VERSION + 1);
    assert_eq!(
        Bundle::decode(&future).unwrap_err(),
        DecodeError::FutureVersion { found: FORMAT_VERSION + 1, supported: FORMAT_VERSION }
    );
    assert!(DecodeError::FutureVersion { found: 2, supported: 1 }.to_string().contains("upgrade"));

    // Bytes after the end.
    let mut long = good.clone();
    long.extend_from_slice(b"tail");
    assert!(matches!(Bundle::decode(&long), Err(DecodeError::Corrupt { what }) if what.contains("after the end")));
}

#[test]
fn an_unfinished_bundle_never_has_the_final_name() {
    let b = sample();
    let dir = tempdir("unfinished");
    let path = dir.join("run.gbundle");
    {
        // The writer starts before the run (meta first); the run "aborts" before finishing.
        let mut w = BundleWriter::create(&path, &b.meta).unwrap();
        w.section(2, &b.schedule).unwrap();
    }
    assert!(!path.exists(), "no file under the final name");
    let tmp = dir.join("run.gbundle.tmp");
    assert!(std::fs::metadata(&tmp).unwrap().len() > 40, "the partial file holds the plan and seeds");
    assert!(matches!(
        Bundle::decode(&std::fs::read(&tmp).unwrap()),
        Err(DecodeError::NotABundle | DecodeError::Corrupt { .. })
    ));
    // Sections must come in order, and all of them before finishing.
    let mut w = BundleWriter::create(&path, &b.meta).unwrap();
    assert!(w.section(3, &b.trace).is_err(), "out of order");
    w.section(2, &b.schedule).unwrap();
    assert!(w.finish().is_err(), "finishing early is refused");
    assert!(!path.exists());
    BundleWriter::create(&path, &b.meta).unwrap().finish_with(&b).unwrap();
    assert_eq!(Bundle::read(&path).unwrap().summary, b.summary);
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempdir("files");
    let missing = dir.join("missing.gbundle");
    let err = Bundle::read(&missing).unwrap_err();
    assert!(matches!(err, BundleError::Io { .. }) && err.to_string().contains("missing.gbundle"), "{err}");
    let junk = dir.join("junk.gbundle");
    std::fs::write(&junk, b"GNTLBNDL").unwrap();
    let err = Bundle::read(&junk).unwrap_err();
    assert!(err.to_string().contains("junk.gbundle") && err.to_string().contains("truncated"), "{err}");
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gauntlet-bundle-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
