#!/usr/bin/env bash
# An independent check of the trips rate that `scripts/trips-bench.sh` measures with the
# harness: `wrk` (scripts/wrk-positions.lua: batches of 1,000 moving travellers to uniformly
# random places, a second generator and a second data distribution) for 60 s on a server
# with 1,000,000 travellers, first with no trips, then with every traveller on a trip (the
# harness's `trips` workload puts them, for 3 s). wrk does not wait out `Retry-After`, so
# batches refused while the route store is behind are sent again at once; the accepted
# rate counts only 2xx answers. Prints each round: accepted updates/s and non-2xx answers
# without and with trips, and the route store's file length. PHASE_SECONDS (default 60)
# sets how long each phase runs: long enough to hold a few of the route store's settlings
# (each of 128 pieces of 250,000 points) for a rate the server sustains.
#
#   [PHASE_SECONDS=60] scripts/wrk-trips.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/require.sh
require wrk
rounds=${1:-3}
secs=${PHASE_SECONDS:-60}
port=${PORT:-7898}
. scripts/lib.sh
wrk_rate() { # prints accepted updates/s, non-2xx count
  local out; out=$(wrk -t2 -c8 -d"${secs}s" -s scripts/wrk-positions.lua "http://127.0.0.1:$port" -- "$(( $(date +%s%3N) + 120000 ))" 1000 1000000 2)
  local reqs non; reqs=$(echo "$out" | awk '/requests in/ {print $1}'); non=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  [ -n "$reqs" ] || { echo "wrk gave no request count: $out" >&2; exit 1; }
  non=${non:-0}
  python3 -c "print(($reqs - $non) * 1000 / $secs, $non)"
}
for round in $(seq 1 "$rounds"); do
  start_server "$port" --traveller-ttl 86400
  "$bin" bench --target "http://127.0.0.1:$port" --workload positions --travellers 1000000 --load-travellers 1000000 --duration 3 --json > /dev/null
  without=$(wrk_rate)
  "$bin" bench --target "http://127.0.0.1:$port" --workload trips --travellers 1000000 --duration 3 --json > /dev/null
  sleep 15
  with=$(wrk_rate)
  bytes=$(stat -c %s "$work/data/routes.redb")
  echo "round $round: without $without with $with routes_bytes $bytes"
  stop_server
done
