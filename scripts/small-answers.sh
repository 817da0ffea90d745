#!/usr/bin/env bash
# Small answers, where the cost of a request is ours and not the index's: a fresh release
# server (`--fsync batch`, `--keys`) and a fresh redis-server (persistence off), both
# loaded with the same 1,000,000 POIs (sqrt-population), then ROUNDS rounds of, 32
# connections, 5 s each:
#   - nearby 2 km, k = 20 at one fixed sparse point (the first of scripts/query-points.py's
#     points whose answer holds 1 to 3 POIs): `wrk` (HTTP/1.1) and `h2load` (HTTP/2, h2c,
#     32 clients x 1 stream), against `redis-benchmark` asking GEOSEARCH at the same point;
#   - `/healthz` by `wrk` and by `h2load`;
#   - nearby 2 km, k = 20 at 100,000 random points (scripts/query-points.py) by `wrk`, and
#     nearby ÷ healthz by the harness (`proxima bench`, its own random points).
# Prints each round and the medians of the ratios taken within each round.
#
#   scripts/small-answers.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/require.sh
require wrk h2load redis-server redis-cli redis-benchmark
rounds=${1:-3}
port=${PORT:-7896}
rport=${REDIS_PORT:-6396}
. scripts/lib.sh
P="http://127.0.0.1:$port"
key=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)
echo "$key read,write,admin" >"$work/keys"
start_redis "$rport"

start_server "$port" --fsync batch --keys "$work/keys"
"$bin" bench --target "$P" --key "$key" --distribution sqrt-population --load-pois 1000000 \
  --workload healthz --duration 0.5 --warmup 0 >/dev/null
"$bin" bench --target "redis://127.0.0.1:$rport" --distribution sqrt-population \
  --load-pois 1000000 --workload healthz --duration 0.5 --warmup 0 >/dev/null
python3 scripts/query-points.py sqrt-population 100000 7 >"$work/points.txt"
fixed=
while read -r lat lon; do
  n=$(curl -sf -H "authorization: Bearer $key" \
    "$P/v1/pois/nearby?lat=$lat&lon=$lon&radius_m=2000&limit=20&fields=id" |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["results"]))')
  if [ "$n" -ge 1 ] && [ "$n" -le 3 ]; then fixed="$lat $lon"; break; fi
done < <(head -500 "$work/points.txt")
[ -n "$fixed" ] || { echo "no sparse point among the first 500" >&2; exit 1; }
read -r flat flon <<<"$fixed"
redis_n=$(redis-cli -p "$rport" GEOSEARCH bench:pois FROMLONLAT "$flon" "$flat" BYRADIUS 2000 m ASC COUNT 20 WITHDIST | grep -c '^bench:poi' || true)
echo "fixed point $flat,$flon: $n POIs within 2 km (Redis: $redis_n)"
echo "$flat $flon" >"$work/fixed.txt"
url="$P/v1/pois/nearby?lat=$flat&lon=$flon&radius_m=2000&limit=20"

wrk_ops() { wrk "$@" | awk '/Requests\/sec/ {print $2}'; }
h2_ops() { h2load "$@" | awk '/^finished in/ {for (i = 2; i <= NF; i++) if ($i == "req/s,") print $(i - 1) + 0}'; }
for round in $(seq 1 "$rounds"); do
  fixed_wrk=$(wrk_ops -t2 -c32 -d5s -s scripts/wrk-nearby.lua "$P" -- "$work/fixed.txt" 2000 20 - "$key")
  fixed_redis=$(redis-benchmark -p "$rport" -c 32 -n 300000 -q GEOSEARCH bench:pois FROMLONLAT "$flon" "$flat" BYRADIUS 2000 m ASC COUNT 20 WITHDIST |
    tr '\r' '\n' | awk '/requests per second/ {print $(NF-5)}' | tail -1)
  fixed_h2=$(h2_ops -c32 -m1 -D5 -H "authorization: Bearer $key" "$url")
  healthz_wrk=$(wrk_ops -t2 -c32 -d5s "$P/healthz")
  healthz_h2=$(h2_ops -c32 -m1 -D5 "$P/healthz")
  random_wrk=$(wrk_ops -t2 -c32 -d5s -s scripts/wrk-nearby.lua "$P" -- "$work/points.txt" 2000 20 - "$key")
  harness=$("$bin" bench --target "$P" --key "$key" --distribution sqrt-population --duration 5 \
    --warmup 1 --seed $((10 + round)) --workload healthz,nearby-pois --json |
    python3 -c 'import json,sys; r={}
for l in sys.stdin:
    if l.startswith("{"): j=json.loads(l); r[j["workload"]]=j["throughput_per_s"]
print(r["nearby-pois"], r["healthz"])')
  echo "$round $fixed_wrk $fixed_redis $fixed_h2 $healthz_wrk $healthz_h2 $random_wrk $harness"
done | tee "$work/rounds.txt"

python3 - "$work/rounds.txt" <<'PY'
import statistics, sys
rows = [list(map(float, l.split()[1:])) for l in open(sys.argv[1]) if l.strip()]
names = ["fixed wrk", "fixed redis-benchmark", "fixed h2load", "healthz wrk", "healthz h2load",
         "random nearby wrk", "random nearby harness", "healthz harness"]
for i, n in enumerate(names):
    print(f"{n:24} {statistics.median(r[i] for r in rows):>10,.0f}  rounds {[round(r[i]) for r in rows]}")
for label, a, b in [("fixed point: wrk ÷ redis-benchmark GEOSEARCH", 0, 1),
                    ("fixed point: h2load ÷ redis-benchmark GEOSEARCH", 2, 1),
                    ("fixed point ÷ healthz (wrk)", 0, 3),
                    ("random nearby ÷ healthz (wrk)", 5, 3),
                    ("random nearby ÷ healthz (harness)", 6, 7)]:
    rs = [r[a] / r[b] for r in rows]
    print(f"{label:50} {statistics.median(rs):.2f}  {[round(x, 2) for x in rs]}")
PY
