#!/usr/bin/env bash
# What the trackers' protocols cost against Proxima's own API, with `wrk` (the ratios in
# docs/performance.md, Trackers): on a fresh release server per run, with a service key and DEVICES
# travellers each with a device token, single OwnTracks requests against single
# `PUT /v1/travellers/{id}/position`, and Overland batches of 100 against `POST
# /v1/positions` batches of 100 (scripts/wrk-trackers.lua; the same random places, each
# request's reports newer than the last). Prints each run's rates and the medians of the
# ratios over RUNS runs.
#
#   scripts/trackers-bench.sh [RUNS] [DEVICES] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/require.sh
require wrk
runs=${1:-3}
devices=${2:-1000}
duration=${3:-10}
port=${PORT:-7895}
key=bench-service-key-0123456789
. scripts/lib.sh
echo "$key read,write,admin" >"$work/keys.txt"

rate() { awk '/Requests\/sec/ {print $2}'; }
for run in $(seq 1 "$runs"); do
  start_server "$port" --keys "$work/keys.txt" --device-rate 1000000 --traveller-ttl 86400
  : >"$work/devices.txt"
  for i in $(seq 0 $((devices - 1))); do
    token=$(curl -sf -X POST -H "Authorization: Bearer $key" -H 'content-type: application/json' \
      -d '{"name":"phone"}' "http://127.0.0.1:$port/v1/travellers/bench:t:$i/devices" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    echo "bench:t:$i $token" >>"$work/devices.txt"
  done
  # Two days ago, then past each workload's reports (each device steps at most a few hours).
  ts0=$(( $(date +%s) * 1000 - 2 * 86400000 ))
  url="http://127.0.0.1:$port"
  lua=scripts/wrk-trackers.lua
  put=$(wrk -t2 -c32 -d"${duration}s" -s $lua "$url" -- put "$work/devices.txt" "$ts0" 1 "$key" | rate)
  ts0=$((ts0 + 12 * 3600000))
  owntracks=$(wrk -t2 -c32 -d"${duration}s" -s $lua "$url" -- owntracks "$work/devices.txt" "$ts0" 1 | rate)
  ts0=$((ts0 + 12 * 3600000))
  positions=$(wrk -t2 -c32 -d"${duration}s" -s $lua "$url" -- positions "$work/devices.txt" "$ts0" 100 "$key" | rate)
  ts0=$((ts0 + 12 * 3600000))
  overland=$(wrk -t2 -c32 -d"${duration}s" -s $lua "$url" -- overland "$work/devices.txt" "$ts0" 100 | rate)
  echo "{\"run\": $run, \"put_per_s\": $put, \"owntracks_per_s\": $owntracks, \"positions_batches_per_s\": $positions, \"overland_batches_per_s\": $overland}" >>"$work/runs.json"
  tail -1 "$work/runs.json"
  stop_server
done

python3 - "$work/runs.json" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
owntracks = [r["owntracks_per_s"] / r["put_per_s"] for r in rows]
overland = [r["overland_batches_per_s"] / r["positions_batches_per_s"] for r in rows]
print("owntracks / put:", ", ".join(f"{x:.3f}" for x in owntracks), f"median {statistics.median(owntracks):.3f}")
print("overland / positions (batches of 100):", ", ".join(f"{x:.3f}" for x in overland), f"median {statistics.median(overland):.3f}")
PY
