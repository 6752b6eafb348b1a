#!/usr/bin/env bash
# The README's first command on a "fresh machine": a fresh clone of HEAD, a new venv, an empty data cache and no pip
# cache, timed as a whole. Run from the repository root; the clone goes to ${FRESH:-/tmp/dp_synth_fresh}.
#   bash benchmarks/experiments/fresh_demo.sh        then read its last lines (the demo's summary and TOTAL_SECONDS)
# On success the run's figures become a row of benchmarks/results/demo.json (demo_row.py), which RESULTS.md renders.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd); FRESH=${FRESH:-/tmp/dp_synth_fresh}
rm -rf "$FRESH" && git clone -q "$REPO" "$FRESH/repo" && mkdir -p "$FRESH/data" && cd "$FRESH/repo" || exit 1
CMD=$(grep -E '^python3 -m venv .*pip install -e \. && dp_synth demo$' README.md)
[ -n "$CMD" ] || { echo "README.md has no first command ending in 'dp_synth demo'"; exit 1; }
echo "commit $(git rev-parse --short HEAD): $CMD"
export DP_SYNTH_DATA="$FRESH/data" PIP_NO_CACHE_DIR=1
T0=$(date +%s)
bash -c "$CMD"
RC=$?; TOTAL=$(( $(date +%s) - T0 ))
echo "RC=$RC TOTAL_SECONDS=$TOTAL"
[ "$RC" = 0 ] && "$FRESH/repo/.venv/bin/python" "$REPO/benchmarks/experiments/demo_row.py" runs/demo \
  --commit "$(git rev-parse --short HEAD)" --total-seconds "$TOTAL"
exit $RC
