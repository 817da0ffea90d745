#!/usr/bin/env bash
# The check of scripts/narrow-stall.sh with an independent client: `wrk` reads another
# traveller's route (bob's trip, the newest 100 points) while the owner of a trip of a
# million imported points narrows it back to back for 8 s, one point a request; bob's
# trip gets a point every 0.1 s meanwhile, so that each read settles it. Each build on a
# fresh server, alternating, ROUNDS rounds; prints wrk's reads a second, p50 and p99.
#
#   scripts/narrow-stall-wrk.sh OLD_BIN NEW_BIN [ROUNDS] [POINTS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/require.sh
require wrk
old_bin=$1
new_bin=$2
rounds=${3:-3}
points=${4:-1000000}
port=${PORT:-7901}
. scripts/lib.sh
url="http://127.0.0.1:$port"

walk_geojson "$points"

position() { # ts -> one of bob's points on his trip
  curl -sf -X PUT "$url/v1/travellers/bob/position" -H 'content-type: application/json' \
    -d "{\"lat\":1.0,\"lon\":1.0,\"ts\":$1,\"trip_id\":\"v\"}" >/dev/null
}

measure() { # bin -> one line
  bin=$1
  start_server "$port"
  put_walk_trip "$url"
  curl -sf "$url/v1/trips/walk?viewer=ann" >/dev/null
  local now
  now=$(date +%s%3N)
  curl -sf -X PUT "$url/v1/trips/v" -H 'content-type: application/json' \
    -d "{\"traveller\":\"bob\",\"title\":\"V\",\"started_at\":$((now - 3600000))}" >/dev/null
  for i in $(seq 1 50); do position $((now - 100000 + i * 1000)); done
  python3 - "$port" "$walk_t0" <<'PY' &
import http.client, json, sys, time
port, t0 = int(sys.argv[1]), int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", port)
start, i = time.perf_counter(), 0
while time.perf_counter() - start < 8:
    i += 1
    body = json.dumps({"traveller": "ann", "title": "Walk", "started_at": t0 + 5000 * i})
    c.request("PUT", "/v1/trips/walk", body, {"content-type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY
  local owner=$!
  sleep 1
  (for _ in $(seq 1 50); do position "$(date +%s%3N)"; sleep 0.1; done) &
  local feeder=$!
  wrk -t1 -c4 -d5s --latency "$url/v1/trips/v/route?viewer=bob&limit=100" |
    awk '/Requests\/sec/ {rps = $2} /^ +50%/ {p50 = $2} /^ +99%/ {p99 = $2}
         END {printf "reads/s %s p50 %s p99 %s", rps, p50, p99}'
  wait "$owner" "$feeder"
  stop_server
}

for round in $(seq 1 "$rounds"); do
  echo "round $round old: $(measure "$old_bin")"
  echo "round $round new: $(measure "$new_bin")"
done
