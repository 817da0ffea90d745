#!/usr/bin/env bash
# The route store's bytes on disk a stored point, through the server: on a fresh release
# server, TRAVELLERS travellers, every one on a trip, report the `trips` workload (batches
# of 1,000, one report in twenty late, shuffled) for DURATION s; then, writes stopped, the
# route thread settles what waits and compacts the file when its policy says so (waited
# for up to 120 s). Prints the points stored (the trips' `points`, summed over the API),
# the file's length and its blocks on disk (`du`) a point, before and after the wait, and
# the server's compaction log line.
#
# With MOVES `walk`, the travellers walk (`proxima bench --walk`: 7 m a report, a path)
# instead of reporting a random point within 100 m of their start each time.
#
#   scripts/route-disk.sh [TRAVELLERS] [DURATION] [MOVES]   (defaults 100000 120 jitter)
set -euo pipefail
cd "$(dirname "$0")/.."
travellers=${1:-100000}
duration=${2:-120}
moves=()
case "${3:-jitter}" in
  jitter) ;;
  walk) moves=(--walk) ;;
  *) echo "MOVES is jitter or walk" >&2; exit 2 ;;
esac
port=${PORT:-7897}
. scripts/lib.sh

metric() {
  curl -sf "http://127.0.0.1:$port/metrics" | awk -v m="$1" '$1 == m {print $2}'
}
sizes() {
  local f="$work/data/routes.redb"
  echo "$(stat -c %s "$f") $(du -B1 "$f" | cut -f1)"
}

start_server "$port" --traveller-ttl 86400
"$bin" bench --target "http://127.0.0.1:$port" --workload trips \
  --travellers "$travellers" --load-travellers "$travellers" --duration "$duration" \
  "${moves[@]}" --json >"$work/bench.json"
read -r len_before du_before < <(sizes)
for _ in $(seq 1 120); do
  [ "$(metric proxima_route_store_compactions)" != "0" ] && break
  sleep 1
done
sleep 2
read -r len_after du_after < <(sizes)
python3 - "$port" "$travellers" "$len_before" "$du_before" "$len_after" "$du_after" <<'PY'
import http.client, json, sys
port, trips = int(sys.argv[1]), int(sys.argv[2])
len_before, du_before, len_after, du_after = map(int, sys.argv[3:7])
conn = http.client.HTTPConnection("127.0.0.1", port)
points = 0
for i in range(trips):
    conn.request("GET", f"/v1/trips/bench:trip:{i}?viewer=bench:t:{i}")
    r = conn.getresponse()
    body = r.read()
    if r.status == 200:
        points += json.loads(body)["points"]
print(f"{points} points stored over {trips} trips ({points / trips:.0f} a trip)")
print(f"after the load:   file {len_before / points:.2f} bytes a point, on disk {du_before / points:.2f}")
print(f"after settling:   file {len_after / points:.2f} bytes a point, on disk {du_after / points:.2f}")
PY
grep -E "route store compacted" "$work/server.log" | tail -2 || echo "no compaction"
