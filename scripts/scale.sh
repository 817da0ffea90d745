#!/usr/bin/env bash
# One node at scale: for each SIZE, a fresh release server with the shipped defaults (the
# log on, `--fsync batch`, the shipped trail length) is loaded with SIZE POIs and SIZE
# travellers, each traveller reporting TRAIL positions so every trail is full; then
#   - RSS and bytes per item (POIs plus travellers), and the load times;
#   - batch updates (`positions`, batches of 1,000 over every traveller), ROUNDS windows;
#   - nearby POIs and nearby travellers (2 km, k = 20, random points), p50 and p99;
#   - a snapshot on demand (size, time), then SIGKILL and the time to `/readyz` again;
#   - Redis GEO loaded with the same points: its bytes per point (`used_memory`).
# Prints one JSON line per size and, for the last size, its update rate ÷ the first's.
#
#   scripts/scale.sh [SIZES] [TRAIL] [ROUNDS] [DURATION]
#   scripts/scale.sh 1000000,10000000 8 3 10
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/require.sh
require redis-server redis-cli
sizes=${1:-1000000,10000000}
trail=${2:-8}
rounds=${3:-3}
duration=${4:-10}
port=${PORT:-7897}
redis_port=${REDIS_PORT:-6399}
. scripts/lib.sh
target="http://127.0.0.1:$port"

now() { date +%s.%N; }
rss_bytes() { awk '/VmRSS/ {printf "%.0f\n", $2 * 1024}' "/proc/$1/status"; }
bench() { "$bin" bench --target "$target" --warmup 1 "$@"; }

for size in ${sizes//,/ }; do
  start_server "$port"
  idle=$(rss_bytes "$server")
  t0=$(now)
  bench --load-pois "$size" --workload healthz --duration 0.5 >/dev/null
  t1=$(now)
  bench --load-travellers "$size" --load-trail "$trail" --workload healthz --duration 0.5 >/dev/null
  t2=$(now)
  loaded=$(rss_bytes "$server")
  for round in $(seq 1 "$rounds"); do
    bench --travellers "$size" --workload positions --duration "$duration" --json
  done >"$work/positions.json"
  bench --travellers "$size" --workload nearby-pois,nearby-travellers --duration "$duration" \
    --json >"$work/nearby.json"
  after=$(rss_bytes "$server")
  snapshot=$(curl -sf -X POST "$target/v1/admin/snapshot")
  kill -9 "$server"
  wait "$server" 2>/dev/null || true
  t3=$(now)
  "$bin" serve --data-dir "$work/data" --no-sample --listen "127.0.0.1:$port" \
    --snapshot-every 0 >"$work/recovery.log" 2>&1 &
  server=$!
  until curl -sf "$target/readyz" >/dev/null; do
    kill -0 "$server" || { cat "$work/recovery.log" >&2; exit 1; }
    sleep 0.05
  done
  t4=$(now)
  recovered=$(rss_bytes "$server")
  stop_server

  start_redis "$redis_port"
  redis_idle=$(redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ {printf "%.0f\n", $2}')
  "$bin" bench --target "redis://127.0.0.1:$redis_port" --load-pois "$size" \
    --load-travellers "$size" --workload healthz --duration 0.5 >/dev/null
  redis_used=$(redis-cli -p "$redis_port" info memory | awk -F: '/^used_memory:/ {printf "%.0f\n", $2}')
  redis_rss=$(rss_bytes "$redis")
  stop_redis

  python3 - "$work" "$size" "$trail" "$idle" "$loaded" "$after" "$recovered" \
    "$t0" "$t1" "$t2" "$t3" "$t4" "$snapshot" "$redis_idle" "$redis_used" "$redis_rss" \
    <<'PY' | tee -a "$work/scale.json"
import json, statistics, sys
(work, size, trail, idle, loaded, after, recovered, t0, t1, t2, t3, t4, snapshot,
 redis_idle, redis_used, redis_rss) = sys.argv[1:]
size, idle, loaded, after, recovered = int(size), int(idle), int(loaded), int(after), int(recovered)
t0, t1, t2, t3, t4 = map(float, (t0, t1, t2, t3, t4))
rates = [json.loads(l)["updates_per_s"] for l in open(f"{work}/positions.json") if l.strip()]
nearby = {r["workload"]: r for r in map(json.loads, filter(str.strip, open(f"{work}/nearby.json")))}
snap = json.loads(snapshot)
print(json.dumps({
    "size": size,
    "trail": int(trail),
    "rss_loaded_bytes": loaded,
    "rss_after_workloads_bytes": after,
    "bytes_per_item": round((loaded - idle) / (2 * size), 1),
    "load_pois_s": round(t1 - t0, 1),
    "load_travellers_s": round(t2 - t1, 1),
    "updates_per_s_rounds": [round(r) for r in rates],
    "updates_per_s": round(statistics.median(rates)),
    "nearby_pois_p50_us": nearby["nearby-pois"]["latency_us"]["p50"],
    "nearby_pois_p99_us": nearby["nearby-pois"]["latency_us"]["p99"],
    "nearby_travellers_p50_us": nearby["nearby-travellers"]["latency_us"]["p50"],
    "nearby_travellers_p99_us": nearby["nearby-travellers"]["latency_us"]["p99"],
    "snapshot_bytes": snap["bytes"],
    "snapshot_ms": snap["millis"],
    "recovery_s": round(t4 - t3, 1),
    "rss_recovered_bytes": recovered,
    "redis_bytes_per_point": round((int(redis_used) - int(redis_idle)) / (2 * size), 1),
    "redis_rss_bytes": int(redis_rss),
}))
PY
done

python3 - "$work/scale.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if len(rows) > 1:
    first, last = rows[0], rows[-1]
    print(f"updates at {last['size']:,} ÷ at {first['size']:,}: "
          f"{last['updates_per_s'] / first['updates_per_s']:.3f}")
PY
