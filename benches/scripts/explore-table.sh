#!/usr/bin/env bash
# The exploration table of docs/WORKFLOW.md: for every planted bug, the runs a random sweep and
# guided exploration each needed to the first failure, over TRIALS independent trials with the
# same BUDGET; median and every trial's figure (">B": not found within the budget).
# Usage: [ROWS='plan bug;…'] benches/scripts/explore-table.sh [GAUNTLET_BINARY] [TRIALS] [BUDGET]
set -euo pipefail
cd "$(dirname "$0")/../.."
G=${1:-target/release/gauntlet}
TRIALS=${2:-7}
BUDGET=${3:-300}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
mapfile -t rows < <(grep -v '^#' benches/scripts/planted-bugs.txt)
# and commit-old-term on a plan not tuned for it, and on one whose chaos is too sparse for it
rows+=("kv-partition commit-old-term" "kv-leader-sparse commit-old-term")
# ROWS="plan bug;plan bug" measures only those rows
if [ -n "${ROWS:-}" ]; then IFS=';' read -r -a rows <<<"$ROWS"; fi
median() { python3 -c 'import sys,statistics; v=[int(x) for x in sys.argv[1:]]; print(statistics.median_low(v))' "$@"; }
for row in "${rows[@]}"; do
  read -r plan bug <<<"$row"
  sweeps=(); explores=()
  for t in $(seq 0 $((TRIALS - 1))); do
    start=$((t * 100000))
    s=$("$G" sweep "scenarios/plans/$plan.toml" --bug "$bug" --seeds "$start+$BUDGET" --first --jobs 1 \
      --no-corpus --out "$OUT" --json 2>/dev/null || true)
    sweeps+=("$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); f=d["failed_seeds"]; print(min(f)-int(sys.argv[2])+1 if f else int(sys.argv[3])+1)' "$s" "$start" "$BUDGET")")
    e=$("$G" explore "scenarios/plans/$plan.toml" --bug "$bug" --budget "$BUDGET" --seed "$t" --jobs 2 \
      --out "$OUT" --json 2>/dev/null || true)
    explores+=("$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); f=d["first_failure"]; print(f["run"] if f else int(sys.argv[2])+1)' "$e" "$BUDGET")")
  done
  show() { for v in "$@"; do if [ "$v" -gt "$BUDGET" ]; then printf '>%s ' "$BUDGET"; else printf '%s ' "$v"; fi; done; }
  ms=$(median "${sweeps[@]}"); me=$(median "${explores[@]}")
  [ "$ms" -gt "$BUDGET" ] && ms=">$BUDGET"; [ "$me" -gt "$BUDGET" ] && me=">$BUDGET"
  echo "| $bug | $plan | $ms | $me | $(show "${sweeps[@]}")| $(show "${explores[@]}")|"
done
