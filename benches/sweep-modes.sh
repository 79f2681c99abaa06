#!/usr/bin/env bash
# Batched sweep workers against one process per seed, side by side in one run (docs/PERFORMANCE.md):
#
#   benches/sweep-modes.sh [KV_SEEDS] [LEDGER_SEEDS]      (defaults 400 and 60)
#
# For kv-partition and ledger-partition-recovery, with 1 and 2 jobs, it runs the same seeds
# through `gauntlet sweep --mode process` and `--mode batch` (release build) and prints a
# markdown table: seeds/s, ms per seed per job, and seeds per core-hour (seeds/s x 3600 / jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
kv="${1:-400}"
ledger="${2:-60}"
cargo build --release -q -p gauntlet-tool
echo "| plan | seeds | jobs | mode | seeds/s | ms/seed/job | seeds per core-hour | failed |"
echo "|---|---|---|---|---|---|---|---|"
for spec in "kv-partition:$kv" "ledger-partition-recovery:$ledger"; do
  plan="${spec%%:*}"; n="${spec##*:}"
  for jobs in 1 2; do
    for mode in process batch; do
      # Exit 1 (a failing seed) is a result like any other here.
      summary=$(target/release/gauntlet sweep "scenarios/plans/$plan.toml" --seeds "0..$n" --jobs "$jobs" \
        --mode "$mode" --no-corpus --json --out "${TMPDIR:-/tmp}/sweep-modes-out" || [ $? -eq 1 ])
      echo "$summary" | python3 -c '
import json, sys
v = json.load(sys.stdin)
rate = v["runs"] * 1000.0 / v["wall_ms"]
jobs, plan, runs, mode = v["jobs"], v["plan"], v["runs"], v["mode"]
failed = v["failed"]
print(f"| {plan} | {runs} | {jobs} | {mode} | {rate:.1f} | {1000.0 * jobs / rate:.1f} | {rate * 3600 / jobs:,.0f} | {failed} |")'
    done
  done
done
