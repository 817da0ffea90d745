#!/usr/bin/env bash
# What narrowing a long trip costs everyone else: one trip of POINTS imported points (a
# walk, a point every 5 s), then NARROWINGS narrowings back to back, each moving the start
# past one more point, while another client writes positions of another traveller one
# after another; prints the narrowings' time and the position writes' latency (p50, p99,
# max) during them. Each build on a fresh server, alternating, ROUNDS rounds.
#
#   scripts/narrow-stall.sh OLD_BIN NEW_BIN [ROUNDS] [POINTS] [NARROWINGS]
set -euo pipefail
cd "$(dirname "$0")/.."
old_bin=$1
new_bin=$2
rounds=${3:-3}
points=${4:-1000000}
narrowings=${5:-50}
port=${PORT:-7898}
. scripts/lib.sh
url="http://127.0.0.1:$port"

walk_geojson "$points"

measure() { # bin -> one JSON line
  bin=$1
  start_server "$port"
  put_walk_trip "$url"
  # Read once: whatever the import left is settled before the clock starts.
  curl -sf "$url/v1/trips/walk?viewer=ann" >/dev/null
  python3 - "$port" "$walk_t0" "$narrowings" <<'PY'
import http.client, json, sys, threading, time
port, t0, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
done = threading.Event()
latencies = []
def positions():
    c = http.client.HTTPConnection("127.0.0.1", port)
    while not done.is_set():
        body = json.dumps({"lat": 1.0, "lon": 1.0, "ts": int(time.time() * 1000)})
        start = time.perf_counter()
        c.request("PUT", "/v1/travellers/bob/position", body, {"content-type": "application/json"})
        r = c.getresponse(); r.read()
        assert r.status in (200, 201, 202, 204), r.status
        latencies.append(time.perf_counter() - start)
writer = threading.Thread(target=positions)
writer.start()
c = http.client.HTTPConnection("127.0.0.1", port)
start = time.perf_counter()
for i in range(1, n + 1):
    body = json.dumps({"traveller": "ann", "title": "Walk", "started_at": t0 + 5000 * i})
    c.request("PUT", "/v1/trips/walk", body, {"content-type": "application/json"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
elapsed = time.perf_counter() - start
done.set()
writer.join()
c.request("GET", "/v1/trips/walk?viewer=ann")
r = c.getresponse(); points = json.loads(r.read())["points"]
latencies.sort()
q = lambda f: latencies[min(len(latencies) - 1, int(f * len(latencies)))] * 1000
print(json.dumps({"narrowing_ms": round(elapsed / n * 1000, 2), "writes": len(latencies),
                  "write_p50_ms": round(q(0.5), 2), "write_p99_ms": round(q(0.99), 2),
                  "write_max_ms": round(latencies[-1] * 1000, 2), "points_after": points}))
PY
  stop_server
}

for round in $(seq 1 "$rounds"); do
  echo "{\"round\": $round, \"old\": $(measure "$old_bin"), \"new\": $(measure "$new_bin")}"
done
