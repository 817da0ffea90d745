#!/usr/bin/env bash
# Recovery after SIGKILL: on a fresh release server (snapshots every SNAPSHOT_EVERY s),
# 1,000,000 travellers report WORKLOAD (`trips`: every one on a trip, or `positions`: no
# trips) at RATE batches of 1,000 a second for DURATION s; the server is then killed with
# SIGKILL and restarted, and the time until `/readyz` answers is printed, with the data
# directory's sizes and the recovery's log line.
#
#   scripts/recovery-bench.sh [WORKLOAD] [RATE] [DURATION] [SNAPSHOT_EVERY]
#   (defaults: trips 280 360 120, about 100M points)
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:-trips}
rate=${2:-280}
duration=${3:-360}
snapshot_every=${4:-120}
port=${PORT:-7896}
. scripts/lib.sh

ready() {
  for _ in $(seq 1 6000); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not become ready" >&2
  return 1
}

"$bin" serve --data-dir "$work/data" --no-sample --listen "127.0.0.1:$port" \
  --traveller-ttl 86400 --snapshot-every "$snapshot_every" >"$work/first.log" 2>&1 &
server=$!
ready
"$bin" bench --target "http://127.0.0.1:$port" --workload "$workload" \
  --travellers 1000000 --load-travellers 1000000 --rate "$rate" --duration "$duration" --json
kill -9 "$server"
wait "$server" 2>/dev/null || true
server=
du -sh "$work/data"/*
started=$(date +%s.%N)
"$bin" serve --data-dir "$work/data" --no-sample --listen "127.0.0.1:$port" \
  --traveller-ttl 86400 --snapshot-every 0 >"$work/second.log" 2>&1 &
server=$!
ready
python3 -c "import sys; print(f'{sys.argv[1]}: ready after the SIGKILL in {float(sys.argv[3]) - float(sys.argv[2]):.1f} s')" \
  "$workload" "$started" "$(date +%s.%N)"
grep -E "recovered" "$work/second.log" || true
