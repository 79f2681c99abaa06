//! Golden baselines: every plan's readable summary for fixed seeds is checked with `insta`
//! (`snapshots/summaries/`), a few golden bundles must replay to their recorded trace hash
//! (`snapshots/bundles/`), and every seed in the failing-seed corpus (`snapshots/corpus/`) is
//! run again with its recorded expectation.
//!
//! A behaviour change shows up here as a failing summary with a diff: review it with
//! `cargo insta review` (accept to make it the new baseline), and rewrite the golden bundles
//! with `GAUNTLET_BLESS=1 cargo test -p gauntlet-snapshots --test golden golden_bundles`.
#![cfg(madsim)]

use gauntlet::bundle::{bugs_of, Bundle, Summary};
use gauntlet::sim::Seeds;
use gauntlet::testing::{workspace_root, TestRun};
use gauntlet::{Plan, Verdict};
use gauntlet_scenarios::plans;
use gauntlet_scenarios::registry::{self, RunOptions};
use std::path::PathBuf;

/// Seeds whose summaries are kept for every plan (or only `SIM_SEED` when it is set).
fn seeds() -> Vec<u64> {
    match gauntlet::sim::seed::seed_from_env(gauntlet::sim::seed::SIM_SEED_ENV) {
        Ok(Some(s)) => vec![s],
        Ok(None) => vec![1, 2],
        Err(e) => panic!("{e}"),
    }
}

fn snapshots() -> PathBuf {
    workspace_root().join("snapshots")
}

/// Runs `plan` for each kept seed and asserts its summary against the stored one.
fn check_summaries(test: &str, plan: Plan) {
    let t = TestRun::new("gauntlet-snapshots", "golden", test);
    for seed in seeds() {
        let seeds = Seeds::new(seed);
        let outcome = registry::run(&plan, seeds, false).unwrap_or_else(|e| panic!("{}: {e}", t.replay_line(seeds)));
        let summary = Summary::of(&plan, &outcome).render();
        insta::with_settings!({
            snapshot_path => snapshots().join("summaries"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!("{} (plan {}, seed {seed})", t.replay_line(seeds), plan.name),
        }, {
            insta::assert_snapshot!(format!("{}-{seed}", plan.name), summary);
        });
    }
}

macro_rules! golden_summaries {
    ($($test:ident => $plan:expr),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                check_summaries(stringify!($test), $plan);
            }
        )*
    };
}

golden_summaries! {
    summary_gossip_smoke => plans::gossip_smoke(),
    summary_gossip_load_progression => plans::gossip_load_progression(),
    summary_gossip_swarm => plans::gossip_swarm(),
    summary_kv_partition => plans::kv_partition(),
    summary_kv_failover => plans::kv_failover(),
    summary_kv_skew => plans::kv_skew(),
    summary_kv_leader_partition => plans::kv_leader_partition(),
    summary_kv_leader_sparse => plans::kv_leader_sparse(),
    summary_kv_vote_restart => plans::kv_vote_restart(),
    summary_pb_kv_crash => plans::pb_kv_crash(),
    summary_ledger_aggressive_chaos => ledger("ledger-aggressive-chaos"),
    summary_ledger_api_dos => ledger("ledger-api-dos"),
    summary_ledger_block_timing => ledger("ledger-block-timing"),
    summary_ledger_byzantine_flood => ledger("ledger-byzantine-flood"),
    summary_ledger_clock_skew => ledger("ledger-clock-skew"),
    summary_ledger_gossip_latency => ledger("ledger-gossip-latency"),
    summary_ledger_invalid_fuzzing => ledger("ledger-invalid-fuzzing"),
    summary_ledger_load_progression => ledger("ledger-load-progression"),
    summary_ledger_mempool_divergence => ledger("ledger-mempool-divergence"),
    summary_ledger_mempool_pressure => ledger("ledger-mempool-pressure"),
    summary_ledger_partition_recovery => ledger("ledger-partition-recovery"),
    summary_ledger_sustained_load => ledger("ledger-sustained-load"),
    summary_ledger_topology_churn => ledger("ledger-topology-churn"),
    summary_ledger_tx_propagation => ledger("ledger-tx-propagation"),
    summary_ledger_wallet_balances => ledger("ledger-wallet-balances"),
}

/// A ledger catalogue plan, from its file.
fn ledger(name: &str) -> Plan {
    plans::ledger().into_iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no plan {name}")).1
}

/// Every shipped plan has a summary test above.
#[test]
fn every_plan_has_golden_summaries() {
    let here = include_str!("golden.rs");
    let ledger = plans::ledger().into_iter().map(|(n, _)| n);
    for name in plans::all().into_iter().map(|(n, _)| n.to_owned()).chain(ledger) {
        let test = format!("summary_{}", name.replace('-', "_"));
        assert!(here.contains(&format!("{test} =>")), "plan {name} has no `{test}` in golden_summaries!");
    }
}

/// The golden bundles kept (small): plan name and seed.
const GOLDEN: [(&str, u64); 2] = [("gossip-smoke", 1), ("kv-partition", 1)];

/// Each golden bundle replays to its recorded trace hash and verdict. With `GAUNTLET_BLESS=1`
/// they are rewritten from the current code instead.
#[test]
fn golden_bundles_replay_to_their_trace_hash() {
    let bless = std::env::var("GAUNTLET_BLESS").is_ok_and(|v| v == "1");
    let dir = snapshots().join("bundles");
    for (name, seed) in GOLDEN {
        let path = dir.join(format!("{name}-{seed}.gbundle"));
        let plan = plans::all().into_iter().find(|(n, _)| *n == name).expect("a shipped plan").1;
        let seeds = Seeds::new(seed);
        let outcome = registry::run_with(&plan, seeds, RunOptions { keep_events: true, ..RunOptions::default() })
            .expect("the golden run runs");
        if bless {
            Bundle::of(&plan, &outcome).write(&path).expect("golden bundle written");
            continue;
        }
        let golden = Bundle::read(&path).unwrap_or_else(|e| {
            panic!("{e}\n(create the golden bundles with GAUNTLET_BLESS=1 cargo test -p gauntlet-snapshots --test golden golden_bundles)")
        });
        assert_eq!(golden.plan().expect("the golden plan parses"), plan, "{name}: the shipped plan changed");
        assert!(
            golden.trace_hash() == outcome.trace_hash && golden.verdict == outcome.verdict,
            "{name} seed {seed} no longer replays its golden bundle {}: recorded {:016x} ({}), now {:016x} ({}).\n\
             See what changed: gauntlet run scenarios/plans/{name}.toml --seed {seed} --out /tmp/now && \
             gauntlet diff {} /tmp/now/{name}-{seed}.gbundle\n\
             If the change is intended: GAUNTLET_BLESS=1 cargo test -p gauntlet-snapshots --test golden golden_bundles",
            path.display(),
            golden.trace_hash(),
            golden.verdict,
            outcome.trace_hash,
            outcome.verdict,
            path.display()
        );
        let size = std::fs::metadata(&path).expect("golden bundle").len();
        assert!(size < 1 << 20, "{name}: golden bundles stay small ({size} bytes)");
    }
}

/// One line of a corpus file: `seed expect [bugs=a,b]`.
#[derive(Debug)]
struct CorpusSeed {
    seed: u64,
    expect: String,
    bugs: Vec<String>,
}

fn parse_corpus(text: &str) -> Vec<CorpusSeed> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.split_whitespace();
            let seed = parts.next().and_then(|s| gauntlet::sim::seed::parse_seed("corpus", s).ok());
            let expect = parts.next().map(str::to_owned);
            let bugs = parts
                .find_map(|p| p.strip_prefix("bugs="))
                .map(|b| b.split(',').map(str::to_owned).collect())
                .unwrap_or_default();
            match (seed, expect) {
                (Some(seed), Some(expect)) => CorpusSeed { seed, expect, bugs },
                _ => panic!("corpus line {l:?}: expected `seed expect [bugs=a,b]`"),
            }
        })
        .collect()
}

/// Every seed in `snapshots/corpus/<plan>.seeds` (added by `gauntlet sweep`) gives its
/// recorded result: `pass`, or `fail:<class>:<source>` for runs with planted bugs.
#[test]
fn the_failing_seed_corpus_still_gives_its_recorded_results() {
    let dir = snapshots().join("corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "seeds")).collect()
        })
        .unwrap_or_default();
    files.sort();
    assert!(!files.is_empty(), "the corpus in {} is empty", dir.display());
    let mut checked = 0;
    for file in files {
        let name = file.file_stem().and_then(|s| s.to_str()).expect("a plan name").to_owned();
        let (_, base) = plans::all()
            .into_iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{}: no shipped plan is named {name}", file.display()));
        for entry in parse_corpus(&std::fs::read_to_string(&file).expect("corpus file")) {
            let mut plan = base.clone();
            plan.add_bugs(&entry.bugs);
            let seeds = Seeds::new(entry.seed);
            let outcome = registry::run(&plan, seeds, false).expect("a corpus run runs");
            let got = match &outcome.verdict {
                Verdict::Pass => "pass".to_owned(),
                Verdict::Fail(f) => format!("fail:{}:{}", f.class, f.source),
            };
            let bugs: String = bugs_of(&plan).iter().map(|b| format!(" --bug {b}")).collect();
            assert_eq!(
                got,
                entry.expect,
                "{}: seed {} of {name}{bugs}; replay: gauntlet run scenarios/plans/{name}.toml --seed {}{bugs}\n{}",
                file.display(),
                entry.seed,
                entry.seed,
                outcome.verdict
            );
            checked += 1;
        }
    }
    assert!(checked > 0, "no corpus seed was checked");
}
