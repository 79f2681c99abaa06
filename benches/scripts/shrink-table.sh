#!/usr/bin/env bash
# The shrinking table of docs/WORKFLOW.md: for every planted bug of every shipped system, the
# first failing seeds of a sweep (KEEP, default 3), each shrunk; one JSON line per seed (and a
# markdown row on stderr).
# Usage: benches/scripts/shrink-table.sh [GAUNTLET_BINARY]   (default: target/release/gauntlet)
set -euo pipefail
cd "$(dirname "$0")/../.."
G=${1:-target/release/gauntlet}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
mapfile -t rows < <(grep -v '^#' benches/scripts/planted-bugs.txt)
# The first KEEP failing seeds of each bug are shrunk (a sweep finds several; the smallest
# reproducer is the one to read): one row each.
KEEP=${KEEP:-3}
for row in "${rows[@]}"; do
  read -r plan bug <<<"$row"
  start=0
  for _ in $(seq "$KEEP"); do
    sweep=$("$G" sweep "scenarios/plans/$plan.toml" --bug "$bug" --seeds "$start..2000" --first --jobs 2 \
      --no-corpus --out "$OUT" --json 2>/dev/null || true)
    seed=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(min(d["failed_seeds"]) if d.get("failed_seeds") else "")' "$sweep")
    if [ -z "$seed" ]; then echo "{\"plan\":\"$plan\",\"bug\":\"$bug\",\"from\":$start,\"found\":false}"; break; fi
    "$G" run "scenarios/plans/$plan.toml" --bug "$bug" --seed "$seed" --out "$OUT" --json >/dev/null 2>&1 || true
    bundle=$(ls "$OUT/$plan-$seed.gbundle")
    shrunk=$("$G" shrink "$bundle" -o "$OUT/$plan-$bug-$seed-shrunk.toml" --json 2>/dev/null)
    python3 - "$plan" "$bug" "$seed" "$shrunk" <<'PY'
import json, sys
plan, bug, seed, s = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
s.update(plan=plan, bug=bug, seed=seed)
print(json.dumps(s, sort_keys=True))
t = lambda ms: f"{ms/1000:.1f} s"
print(f"| {bug} | {plan} | {seed} | {s['faults_before']} → {s['faults_after']} | {s['ops_before']} → {s['ops_after']} "
      f"| {t(s['sim_time_ms_before'])} → {t(s['sim_time_ms_after'])} | {t(s['failure_at_ms'])} | {s['runs']} | {s['wall_ms']/1000:.1f} s |",
      file=sys.stderr)
PY
    start=$((seed + 1))
  done
done
