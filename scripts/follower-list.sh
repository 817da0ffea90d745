#!/usr/bin/env bash
# Whether a follower's list of a traveller's trips tells how many it cannot see: ann has
# 10,000 trips, of which mum follows one; bob has one, which mum follows. `wrk` on each
# list as mum, alternately, twice; prints requests a second and mean latency. The two
# should not differ.
#
#   scripts/follower-list.sh [BIN]
set -euo pipefail
cd "$(dirname "$0")/.."
port=${PORT:-7903}
. scripts/lib.sh
require wrk
bin=${1:-$bin}
url="http://127.0.0.1:$port"
start_server "$port"
python3 - $port <<'PY'
import http.client, json, sys
port = int(sys.argv[1])
c = http.client.HTTPConnection("127.0.0.1", port)
def put(path, body):
    c.request("PUT", path, json.dumps(body) if body is not None else None, {"content-type": "application/json"})
    r = c.getresponse(); r.read(); assert r.status in (200, 201, 204), (path, r.status)
t0 = 1_600_000_000_000
for i in range(10_000):
    put(f"/v1/trips/ann-{i}", {"traveller": "ann", "title": "t", "started_at": t0 + i * 1000, "ended_at": t0 + i * 1000 + 500})
put("/v1/trips/ann-9999/followers/mum", None)
put("/v1/trips/bob-0", {"traveller": "bob", "title": "t", "started_at": t0 + 20_000_000, "ended_at": t0 + 20_000_500})
put("/v1/trips/bob-0/followers/mum", None)
PY
for who in ann bob ann bob; do
  printf "%s " $who; wrk -t2 -c8 -d5s "$url/v1/travellers/$who/trips?viewer=mum" | awk '/Requests\/sec/ {r=$2} /Latency/ {l=$2} END {print r, l}'
done
