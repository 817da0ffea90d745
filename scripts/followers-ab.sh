#!/usr/bin/env bash
# Two builds with a trip's followers watching, alternating on the same machine in one
# run: TRAVELLERS travellers, all on trips, report in batches (`proxima bench --workload
# trips`, 20 s measured) while PER follower streams watch each of 5 trips
# (`scripts/trip-streams.py`, a client of its own, counting the points it is told).
# Prints, a round and a build: the trips updates a second, the points told in 28 s, and
# the reads of a trip that settled its points first (`proxima_route_reader_settlings_total`).
#
#   [PER=40] scripts/followers-ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [TRAVELLERS]
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(realpath "$1")
new=$(realpath "$2")
rounds=${3:-2}
travellers=${4:-10000}
per=${PER:-40}
port=${PORT:-7896}
. scripts/lib.sh

for round in $(seq 1 "$rounds"); do
  for build in old new; do
    bin=$old
    [ "$build" = new ] && bin=$new
    start_server "$port" --traveller-ttl 86400 --max-streams-per-key 10000
    trips() {
      "$new" bench --target "http://127.0.0.1:$port" --workload trips --travellers "$travellers" \
        --load-travellers "$travellers" --subscribers 0 --json "$@"
    }
    trips --duration 2 >/dev/null
    python3 scripts/trip-streams.py "$port" 5 "$per" 28 >"$work/streams.txt" &
    streams=$!
    sleep 2
    trips --duration 20 >"$work/trips.json"
    wait "$streams"
    settlings=$(curl -sf "http://127.0.0.1:$port/metrics" |
      awk '/^proxima_route_reader_settlings_total/ {print $2}')
    stop_server
    rate=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    if line.startswith("{"):
        r = json.loads(line)
        if r.get("workload") == "trips":
            print(round(r["updates_per_s"]))' "$work/trips.json")
    echo "round $round $build: trips updates/s $rate; $(cat "$work/streams.txt"); reader settlings ${settlings:-n/a}"
  done
done
