#!/usr/bin/env bash
# What trips cost: on a fresh release server per run, TRAVELLERS travellers report in
# batches of 1,000 with no trips (`positions`), then the batches of `trips` with no trips
# (`late-positions`), then with every one of them on a trip (`trips`: one report in twenty
# late, batches shuffled, 32 follower streams), then route
# reads (`routes`); and `wrk` compares `GET /v1/trips/{id}` with `GET /v1/travellers/{id}`
# on the same server. Prints each run's figures and the medians over RUNS runs.
#
#   scripts/trips-bench.sh [RUNS] [TRAVELLERS] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/require.sh
require wrk
runs=${1:-3}
travellers=${2:-1000000}
duration=${3:-10}
port=${PORT:-7894}
. scripts/lib.sh

for run in $(seq 1 "$runs"); do
  start_server "$port" --traveller-ttl 86400
  "$bin" bench --target "http://127.0.0.1:$port" --workload positions,late-positions,trips,routes \
    --travellers "$travellers" --load-travellers "$travellers" --duration "$duration" \
    --json >"$work/run-$run.json"
  # A trip and its traveller with points on them, for wrk.
  id=0
  lookup=$(wrk -t2 -c32 -d5s "http://127.0.0.1:$port/v1/travellers/bench:t:$id?viewer=bench:t:$id" | awk '/Requests\/sec/ {print $2}')
  trip=$(wrk -t2 -c32 -d5s "http://127.0.0.1:$port/v1/trips/bench:trip:$id?viewer=bench:t:$id" | awk '/Requests\/sec/ {print $2}')
  echo "{\"run\": $run, \"lookup_per_s\": $lookup, \"trip_per_s\": $trip, \"routes_bytes\": $(stat -c %s "$work/data/routes.redb")}" >>"$work/run-$run.json"
  stop_server
done

python3 - "$work" "$runs" <<'PY'
import json, statistics, sys
work, runs = sys.argv[1], int(sys.argv[2])
rows = []
for run in range(1, runs + 1):
    reports = {}
    extra = {}
    for line in open(f"{work}/run-{run}.json"):
        line = line.strip()
        if not line:
            continue
        value = json.loads(line)
        if "workload" in value:
            reports[value["workload"]] = value
        else:
            extra = value
    trips = reports["trips"]
    row = {
        "positions_updates_per_s": reports["positions"]["updates_per_s"],
        "trips_updates_per_s": trips["updates_per_s"],
        "late_positions_updates_per_s": reports["late-positions"]["updates_per_s"],
        "trips_vs_positions": trips["vs_positions"],
        "trips_vs_late_positions": trips["vs_late_positions"],
        # Batches refused while the route store was behind (503, waited out as told).
        "trips_refused": trips.get("refused", 0),
        "memory_per_trip_bytes": trips["trips"]["memory_per_trip_bytes"],
        "points_streamed": reports["routes"]["trips"]["points_streamed"],
        "route_reads_per_s": reports["routes"]["throughput_per_s"],
        "route_reads_p99_us": reports["routes"]["latency_us"]["p99"],
        "trip_vs_lookup": extra["trip_per_s"] / extra["lookup_per_s"],
        "routes_file_bytes": extra["routes_bytes"],
    }
    rows.append(row)
    print(f"run {run}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))
print("medians: " + ", ".join(f"{k} {statistics.median(r[k] for r in rows):.3f}" for k in rows[0]))
PY
