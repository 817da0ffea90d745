#!/usr/bin/env bash
# Proxima against Redis GEO on both data shapes, measured by `proxima bench` and
# cross-checked by tools that are not Proxima's: `wrk` with query points from
# scripts/query-points.py (random, 100,000 a shape) and at one fixed point, and
# `redis-benchmark` at the same fixed point.
#
#   scripts/shapes-vs-redis.sh [ROUNDS]     (default 3)
#
# For each shape: a fresh release server (`--fsync batch`, `--keys`: the WAL on and every
# request authenticated) and a fresh redis-server (persistence off), both loaded with the
# same 1,000,000 POIs; then ROUNDS rounds, each measuring, 32 connections, closed loop,
# 5 s after 1 s of warm-up: Proxima healthz, nearby 2 km k = 20, the same with
# fields=id,distance_m; Redis PING and GEOSEARCH; both at 10 km; both taking position
# batches of 1,000 on 4 connections (GEOADD for Redis); then wrk and redis-benchmark.
# Prints each figure per round and the medians, and the ratios within each round.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/require.sh
require wrk redis-server redis-cli redis-benchmark curl python3
rounds=${1:-3}
cargo build --release --quiet
BIN=target/release/proxima
PPORT=7891
RPORT=6391
P=http://127.0.0.1:$PPORT
R=redis://127.0.0.1:$RPORT
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    redis-cli -p $RPORT shutdown nosave >/dev/null 2>&1 || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
key=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 32)
echo "$key read,write,admin" > "$work/keys.txt"
redis-server --port $RPORT --save '' --appendonly no > "$work/redis.log" 2>&1 &
pids+=($!)
results="$work/results"
: > "$results"
note() { echo "$*" | tee -a "$results"; } # SHAPE ROUND TOOL WHAT OPS_PER_S
bench_json() { python3 -c '
import json, sys
for line in sys.stdin:
    if line.startswith("{"):
        r = json.loads(line)
        print(r["workload"], r.get("updates_per_s") or r["throughput_per_s"], r["errors"])'; }
wrk_ops() { wrk "$@" | awk '/Requests\/sec/ {print $2}'; } # requests/s of a wrk run
rb() { # N COMMAND...: requests/s of redis-benchmark sending COMMAND N times
    redis-benchmark -p $RPORT -c 32 -n "$1" -q "${@:2}" | tr '\r' '\n' | awk '/requests per second/ {print $(NF-5)}' | tail -1
}
for shape in population sqrt-population; do
    "$BIN" serve --no-sample --listen 127.0.0.1:$PPORT --data-dir "$work/p-$shape" \
        --fsync batch --keys "$work/keys.txt" > "$work/proxima-$shape.log" 2>&1 &
    ppid=$!
    pids+=($ppid)
    for _ in $(seq 1 200); do curl -sf $P/readyz > /dev/null && break; sleep 0.1; done
    redis-cli -p $RPORT flushall > /dev/null
    echo "loading 1,000,000 POIs ($shape) into both" >&2
    "$BIN" bench --target $P --key "$key" --distribution $shape --load-pois 1000000 \
        --workload healthz --duration 1 --warmup 0 > /dev/null
    "$BIN" bench --target $R --distribution $shape --load-pois 1000000 \
        --workload healthz --duration 1 --warmup 0 > /dev/null
    python3 scripts/query-points.py $shape 100000 7 > "$work/points.txt"
    echo "48.856600 2.352200" > "$work/fixed.txt"
    common=(--distribution $shape --duration 5 --warmup 1 --json)
    c32=(--connections 32)
    for round in $(seq 1 "$rounds"); do
        seed=$((10 + round))
        "$BIN" bench --target $P --key "$key" "${common[@]}" "${c32[@]}" --seed $seed \
            --workload healthz,nearby-pois | bench_json | while read -r w ops errors; do
            note "$shape $round harness proxima-$w $ops errors=$errors"; done
        "$BIN" bench --target $P --key "$key" "${common[@]}" "${c32[@]}" --seed $seed --fields id,distance_m \
            --workload nearby-pois | bench_json | while read -r w ops errors; do
            note "$shape $round harness proxima-$w-fields $ops errors=$errors"; done
        "$BIN" bench --target $R "${common[@]}" "${c32[@]}" --seed $seed \
            --workload healthz,nearby-pois | bench_json | while read -r w ops errors; do
            note "$shape $round harness redis-$w $ops errors=$errors"; done
        for target in proxima redis; do
            if [ $target = proxima ]; then t=(--target $P --key "$key"); else t=(--target $R); fi
            "$BIN" bench "${t[@]}" "${common[@]}" "${c32[@]}" --seed $seed --radius-m 10000 \
                --workload nearby-pois | bench_json | while read -r w ops errors; do
                note "$shape $round harness $target-$w-10km $ops errors=$errors"; done
            "$BIN" bench "${t[@]}" "${common[@]}" --seed $seed --connections 4 --batch 1000 \
                --travellers 1000000 --workload positions | bench_json | while read -r w ops errors; do
                note "$shape $round harness $target-$w-updates $ops errors=$errors"; done
        done
        note "$shape $round wrk proxima-healthz $(wrk_ops -t2 -c32 -d5s $P/healthz)"
        note "$shape $round wrk proxima-nearby-pois $(wrk_ops -t2 -c32 -d5s -s scripts/wrk-nearby.lua $P -- "$work/points.txt" 2000 20 - "$key")"
        note "$shape $round wrk proxima-nearby-pois-fields $(wrk_ops -t2 -c32 -d5s -s scripts/wrk-nearby.lua $P -- "$work/points.txt" 2000 20 id,distance_m "$key")"
        note "$shape $round wrk proxima-fixed-point $(wrk_ops -t2 -c32 -d5s -s scripts/wrk-nearby.lua $P -- "$work/fixed.txt" 2000 20 - "$key")"
        note "$shape $round redis-benchmark redis-fixed-point $(rb 100000 GEOSEARCH bench:pois FROMLONLAT 2.3522 48.8566 BYRADIUS 2000 m ASC COUNT 20 WITHDIST)"
        note "$shape $round redis-benchmark redis-ping $(rb 400000 PING)"
    done
    kill $ppid; wait $ppid 2>/dev/null || true
done
python3 - "$results" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(dict)  # (shape, tool, what) -> {round: ops}
for line in open(sys.argv[1]):
    f = line.split()
    rows[(f[0], f[2], f[3])][int(f[1])] = float(f[4])
def med(shape, tool, what):
    v = rows.get((shape, tool, what), {})
    return statistics.median(v.values()) if v else float("nan")
def ratios(shape, a, b):
    ra, rb = rows.get((shape,) + a, {}), rows.get((shape,) + b, {})
    rs = [ra[r] / rb[r] for r in sorted(ra) if r in rb and rb[r]]
    return (statistics.median(rs), rs) if rs else (float("nan"), [])
print()
print("medians, requests/s:")
for key in sorted(rows):
    print(f"  {key[0]:16} {key[1]:16} {key[2]:30} {med(*key):>10,.0f}  rounds {[round(v) for v in rows[key].values()]}")
print("ratios within each round (median [rounds]):")
for shape in ("population", "sqrt-population"):
    for label, a, b in [
        ("nearby / Redis GEOSEARCH (harness)", ("harness", "proxima-nearby-pois"), ("harness", "redis-nearby-pois")),
        ("nearby fields=id,distance_m / Redis (harness)", ("harness", "proxima-nearby-pois-fields"), ("harness", "redis-nearby-pois")),
        ("nearby 10 km / Redis GEOSEARCH (harness)", ("harness", "proxima-nearby-pois-10km"), ("harness", "redis-nearby-pois-10km")),
        ("batches of 1,000, updates/s / Redis GEOADD (harness)", ("harness", "proxima-positions-updates"), ("harness", "redis-positions-updates")),
        ("nearby / own healthz (harness)", ("harness", "proxima-nearby-pois"), ("harness", "proxima-healthz")),
        ("nearby fields / own healthz (harness)", ("harness", "proxima-nearby-pois-fields"), ("harness", "proxima-healthz")),
        ("nearby / own healthz (wrk)", ("wrk", "proxima-nearby-pois"), ("wrk", "proxima-healthz")),
        ("nearby / Redis GEOSEARCH (wrk vs harness's Redis)", ("wrk", "proxima-nearby-pois"), ("harness", "redis-nearby-pois")),
        ("fixed point: wrk / redis-benchmark", ("wrk", "proxima-fixed-point"), ("redis-benchmark", "redis-fixed-point")),
    ]:
        m, rs = ratios(shape, a, b)
        print(f"  {shape:16} {label:52} {m:5.2f}  {[round(x, 2) for x in rs]}")
PY
