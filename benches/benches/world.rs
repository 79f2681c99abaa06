//! The deterministic world against raw madsim, side by side in one run.
//!
//! `cargo bench -p gauntlet-benches --bench world`; figures go to docs/PERFORMANCE.md.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gauntlet_benches::exchange::{gauntlet, raw_madsim};
use std::time::Duration;

const SIM_TIME: Duration = Duration::from_secs(60);

fn exchange(c: &mut Criterion) {
    let messages = gauntlet(1, SIM_TIME, true).sent;
    let mut g = c.benchmark_group("exchange_5_nodes_60s");
    g.sample_size(10).throughput(Throughput::Elements(messages));
    g.bench_function("raw_madsim", |b| b.iter(|| raw_madsim(1, SIM_TIME)));
    g.bench_function("gauntlet_trace_kept", |b| b.iter(|| gauntlet(1, SIM_TIME, true)));
    g.bench_function("gauntlet_hash_only", |b| b.iter(|| gauntlet(1, SIM_TIME, false)));
    g.finish();
}

criterion_group!(benches, exchange);
criterion_main!(benches);
