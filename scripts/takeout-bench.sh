#!/usr/bin/env bash
# A Google Takeout `Records.json` of SIZE_MB megabytes (scripts/takeout-records.py) imported
# into a trip over HTTP (`POST /v1/trips/{id}/import?format=google-takeout`), sent by curl
# as it reads the file, on a fresh release server per run. Prints each run's points a
# second (points stored over the request's wall time, as curl measured it) and the peak
# resident memory over the idle server's (the kernel's VmHWM five seconds after the answer,
# less VmRSS before the import), then the medians over RUNS runs. The targets are in docs/performance.md.
#
#   scripts/takeout-bench.sh [RUNS] [SIZE_MB]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
size=${2:-1000}
port=${PORT:-7896}
key=bench-service-key-0123456789
. scripts/lib.sh
echo "$key read,write,admin" >"$work/keys.txt"
made=$(python3 scripts/takeout-records.py "$size" "$work/Records.json")
echo "file: $made"
first=$(echo "$made" | python3 -c 'import json,sys; print(json.load(sys.stdin)["first_ms"])')
kib() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$server/status"; }
for run in $(seq 1 "$runs"); do
  start_server "$port" --keys "$work/keys.txt"
  url="http://127.0.0.1:$port"
  curl -sf -X PUT -H "Authorization: Bearer $key" -H 'content-type: application/json' \
    -d "{\"traveller\": \"bench:ann\", \"title\": \"History\", \"started_at\": $first}" \
    "$url/v1/trips/history" >/dev/null
  idle=$(kib VmRSS)
  answer=$(curl -sS -X POST -T "$work/Records.json" -H "Authorization: Bearer $key" \
    -H 'content-type: application/json' -w '\n%{time_total}' \
    "$url/v1/trips/history/import?format=google-takeout")
  secs=$(echo "$answer" | tail -1)
  imported=$(echo "$answer" | head -1 | python3 -c 'import json,sys; print(json.load(sys.stdin)["imported"])')
  # Anything the route thread does after the answer counts too.
  sleep 5
  peak=$(kib VmHWM)
  python3 - "$run" "$imported" "$secs" "$idle" "$peak" >>"$work/runs.json" <<'PY'
import json, sys
run, imported, secs, idle, peak = sys.argv[1:]
print(json.dumps({"run": int(run), "imported": int(imported), "seconds": float(secs),
                  "points_per_s": round(int(imported) / float(secs)),
                  "idle_rss_mb": round(int(idle) / 1024, 1),
                  "peak_over_idle_mb": round((int(peak) - int(idle)) / 1024, 1)}))
PY
  tail -1 "$work/runs.json"
  stop_server
done
python3 - "$work/runs.json" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
print(json.dumps({
    "runs": len(runs),
    "median_points_per_s": statistics.median(r["points_per_s"] for r in runs),
    "median_peak_over_idle_mb": statistics.median(r["peak_over_idle_mb"] for r in runs),
}))
PY
