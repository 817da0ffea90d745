#!/usr/bin/env bash
# What privacy zones cost position batches (the ratio in docs/performance.md, Privacy zones):
# per run, two fresh release servers loaded with the same TRAVELLERS travellers, one
# running `proxima bench --workload positions`, the other `--workload zones` (the same
# batches after ten zones are put around every traveller, one where it starts); the
# ratio of their update rates, and its median over RUNS runs.
#
#   scripts/zones-bench.sh [RUNS] [TRAVELLERS] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
travellers=${2:-100000}
duration=${3:-10}
port=${PORT:-7898}
. scripts/lib.sh

measure() { # workload -> updates per second
  start_server "$port" --traveller-ttl 86400
  "$bin" bench --target "http://127.0.0.1:$port" --workload "$1" \
    --travellers "$travellers" --load-travellers "$travellers" --duration "$duration" \
    --json | python3 -c 'import json,sys
for line in sys.stdin:
    r = json.loads(line)
    if r.get("workload") == sys.argv[1]:
        print(r["updates_per_s"])' "$1"
  stop_server
}

for run in $(seq 1 "$runs"); do
  plain=$(measure positions)
  zoned=$(measure zones)
  python3 -c "import json,sys; print(json.dumps({'run': $run, 'positions_per_s': $plain, 'zones_per_s': $zoned, 'ratio': round($zoned / $plain, 3)}))" | tee -a "$work/runs.json"
done
python3 - "$work/runs.json" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print(json.dumps({"runs": len(runs), "median_ratio": statistics.median(r["ratio"] for r in runs)}))
PY
