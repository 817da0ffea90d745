#!/usr/bin/env bash
# Whether one caller's heavy reads make everyone else's wait: one key reads the stays of a
# trip of POINTS imported points (a walk) on 8 connections at once, without a pause, while
# another key reads its own small trip's route, one read after another, for 10 s; prints
# the second key's read latency (p50, p99, max), its 503s, and the first key's reads.
# Each build on a fresh server with both keys, alternating, ROUNDS rounds.
#
#   scripts/heavy-share.sh OLD_BIN NEW_BIN [ROUNDS] [POINTS]
set -euo pipefail
cd "$(dirname "$0")/.."
old_bin=$1
new_bin=$2
rounds=${3:-3}
points=${4:-1000000}
port=${PORT:-7897}
. scripts/lib.sh
url="http://127.0.0.1:$port"
attack_keys 1
victim=victim-key-0123456789abcdef
attacker=attacker-key-0001-abcdef

walk_geojson "$points"

measure() { # bin -> one JSON line
  bin=$1
  start_attack_server "$port"
  local a=(-H "Authorization: Bearer $attacker") v=(-H "Authorization: Bearer $victim")
  put_walk_trip "$url" "${a[@]}"
  curl -sf "${a[@]}" "$url/v1/trips/walk?viewer=ann" >/dev/null
  curl -sf "${v[@]}" -X PUT "$url/v1/trips/mine" -H 'content-type: application/json' \
    -d "{\"traveller\":\"bob\",\"title\":\"Mine\",\"started_at\":$walk_t0}" >/dev/null
  python3 - "$port" "$attacker" "$victim" <<'PY'
import http.client, json, sys, threading, time
port, attacker, victim = int(sys.argv[1]), sys.argv[2], sys.argv[3]
done = threading.Event()
heavy = [0]
statuses = {}
def hog():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not done.is_set():
        c.request("GET", "/v1/trips/walk/stays?viewer=ann&radius_m=1000&min_minutes=60",
                  headers={"authorization": f"Bearer {attacker}"})
        r = c.getresponse(); r.read()
        heavy[0] += r.status == 200
        statuses[r.status] = statuses.get(r.status, 0) + 1
hogs = [threading.Thread(target=hog) for _ in range(8)]
for h in hogs: h.start()
time.sleep(1)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
lat, busy, end = [], 0, time.time() + 10
while time.time() < end:
    start = time.perf_counter()
    c.request("GET", "/v1/trips/mine/route?viewer=bob", headers={"authorization": f"Bearer {victim}"})
    r = c.getresponse(); r.read()
    lat.append(time.perf_counter() - start)
    busy += r.status == 503
    assert r.status in (200, 503), r.status
done.set()
for h in hogs: h.join()
lat.sort()
q = lambda f: round(lat[min(len(lat) - 1, int(f * len(lat)))] * 1000, 1)
print(json.dumps({"reads": len(lat), "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": round(lat[-1] * 1000, 1),
                  "refused_503": busy, "hog_reads": heavy[0],
                  "hog_answers": {str(k): v for k, v in sorted(statuses.items())}}))
PY
  stop_server
}

for round in $(seq 1 "$rounds"); do
  echo "{\"round\": $round, \"old\": $(measure "$old_bin"), \"new\": $(measure "$new_bin")}"
done
