#!/usr/bin/env bash
# What serving HTTP/2 with prior knowledge costs HTTP/1.1 clients: runs wrk (HTTP/1.1)
# against two builds of proxima, alternately, ROUNDS times (default 3): BASE, built with
# the listener's builder made `http1_only()`, and NEW, as the tree builds it (hyper-util's
# auto builder, which reads the connection's first bytes to choose). Prints the requests a
# second of each round and the medians' ratio NEW ÷ BASE, for /healthz and for nearby POI
# queries at independent query points; then h2load's figures for NEW over HTTP/2.
#
#   scripts/h2c-cost.sh BASE NEW [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/require.sh
require h2load wrk curl python3
base=$1 new=$2 rounds=${3:-3}
port=${PORT:-7895}
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
python3 scripts/query-points.py population 10000 7 >"$work/points"

start() {
  rm -rf "$work/data"
  "$1" serve --listen "127.0.0.1:$port" --data-dir "$work/data" --fsync never \
    >"$work/out" 2>/dev/null &
  server=$!
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "the server did not start" >&2
  exit 1
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=; }
rps() { grep Requests/sec | awk '{print $2}'; }

for round in $(seq 1 "$rounds"); do
  for build in base new; do
    bin=$base
    [ $build = new ] && bin=$new
    start "$bin"
    h=$(wrk -t2 -c32 -d8s "http://127.0.0.1:$port/healthz" | rps)
    n=$(wrk -t2 -c32 -d8s -s scripts/wrk-nearby.lua "http://127.0.0.1:$port" -- "$work/points" 2000 20 | rps)
    echo "$round $build $h $n" | tee -a "$work/rounds" >&2
    if [ $build = new ] && [ "$round" = "$rounds" ]; then
      echo "h2load, HTTP/2 prior knowledge, 32 clients, 10 streams each, /healthz:"
      h2load -c32 -m10 -t2 -D 8 "http://127.0.0.1:$port/healthz" | grep -E "^finished|^requests|req/s"
    fi
    stop
  done
done

python3 - "$work/rounds" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = lambda build, col: statistics.median(float(r[col]) for r in rows if r[1] == build)
for name, col in (("healthz", 2), ("nearby 2 km, k 20", 3)):
    b, n = med("base", col), med("new", col)
    print(f"{name:<18} base {b:>9.0f} req/s  new {n:>9.0f} req/s  new/base {n / b:.3f}")
PY
