#!/usr/bin/env bash
# What narrowing a long trip costs everyone else: one trip of POINTS imported points (a
# walk, a point every 5 s), then NARROWINGS narrowings back to back, each moving the start
# past one more point, while another traveller on a trip of its own writes positions one
# after another (a point every 2 ms) and reads its route (the newest 100 points, every
# 5 ms); prints the narrowings' time, and the other traveller's writes' and route reads'
# latency (p50, p99, max) during them. Each build on a fresh server, alternating, ROUNDS
# rounds.
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
def call(c, method, path, body=None):
    c.request(method, path, json.dumps(body) if body is not None else None,
              {"content-type": "application/json"})
    r = c.getresponse(); data = r.read()
    return r.status, data
c = http.client.HTTPConnection("127.0.0.1", port)
now = int(time.time() * 1000)
status, _ = call(c, "PUT", "/v1/trips/v", {"traveller": "bob", "title": "V", "started_at": now - 3_600_000})
assert status == 201, status
done = threading.Event()
writes, reads = [], []
def positions():
    c = http.client.HTTPConnection("127.0.0.1", port)
    i = 0
    while not done.is_set():
        i += 1
        body = {"lat": 1.0 + i * 1e-5, "lon": 1.0, "ts": int(time.time() * 1000), "trip_id": "v"}
        start = time.perf_counter()
        status, _ = call(c, "PUT", "/v1/travellers/bob/position", body)
        assert status in (200, 201, 202, 204), status
        writes.append(time.perf_counter() - start)
        time.sleep(0.002)
def route():
    c = http.client.HTTPConnection("127.0.0.1", port)
    while not done.is_set():
        start = time.perf_counter()
        status, _ = call(c, "GET", "/v1/trips/v/route?viewer=bob&limit=100")
        assert status == 200, status
        reads.append(time.perf_counter() - start)
        time.sleep(0.005)
others = [threading.Thread(target=positions), threading.Thread(target=route)]
for t in others:
    t.start()
time.sleep(0.5)
start = time.perf_counter()
for i in range(1, n + 1):
    status, _ = call(c, "PUT", "/v1/trips/walk", {"traveller": "ann", "title": "Walk", "started_at": t0 + 5000 * i})
    assert status == 200, status
elapsed = time.perf_counter() - start
done.set()
for t in others:
    t.join()
status, body = call(c, "GET", "/v1/trips/walk?viewer=ann")
points = json.loads(body)["points"]
def q(values, f):
    values = sorted(values)
    return round(values[min(len(values) - 1, int(f * len(values)))] * 1000, 2)
print(json.dumps({"narrowing_ms": round(elapsed / n * 1000, 2), "writes": len(writes),
                  "write_p50_ms": q(writes, 0.5), "write_p99_ms": q(writes, 0.99),
                  "write_max_ms": q(writes, 1.0), "reads": len(reads),
                  "read_p50_ms": q(reads, 0.5), "read_p99_ms": q(reads, 0.99),
                  "read_max_ms": q(reads, 1.0), "points_after": points}))
PY
  stop_server
}

for round in $(seq 1 "$rounds"); do
  echo "{\"round\": $round, \"old\": $(measure "$old_bin"), \"new\": $(measure "$new_bin")}"
done
