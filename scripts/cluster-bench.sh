#!/usr/bin/env bash
# Cluster mode against the local WAL, in the same run, on one machine:
# - write latency, single position updates and batches of 1,000 (one connection, closed
#   loop), on a node with a local WAL and on a cluster node (one nats-server, replicas 1),
#   alternating, ROUNDS rounds;
# - catch-up rate: a new cluster node joins and replays the whole stream; mutations and
#   position updates applied per second until it is ready.
# Usage: scripts/cluster-bench.sh [ROUNDS]   (needs nats-server; builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
NATS_PORT=4333
. scripts/cluster-lib.sh
serve local 7801
serve cluster 7802 --cluster nats://127.0.0.1:4333 --cluster-name bench
bench() { # PORT WORKLOAD BATCH
    "$BIN" bench --target "http://127.0.0.1:$1" --workload "$2" --batch "$3" --connections 1 \
        --duration 5 --warmup 1 --travellers 10000 --json | tail -1
}
for round in $(seq 1 "$ROUNDS"); do
    for target in local:7801 cluster:7802; do
        name=${target%%:*}; port=${target##*:}
        echo "round $round $name single $(bench "$port" position 1)"
        echo "round $round $name batch $(bench "$port" positions 1000)"
    done
done
seq=$(curl -s 127.0.0.1:7802/v1/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster"]["applied_seq"])')
start=$(date +%s.%N)
serve joiner 7803 --cluster nats://127.0.0.1:4333 --cluster-name bench
end=$(date +%s.%N)
applied=$(curl -s "127.0.0.1:7803/v1/stats?min_seq=$seq" | python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster"]["applied_seq"])')
echo "catch-up: $applied mutations replayed by a new node in $(python3 -c "print(round($end - $start, 2))") s (process start to ready)"

# Bootstrap: a node holding 1M POIs and 1M travellers uploads its snapshot; a new node with
# an empty data dir starts from it (download, load, then the stream after it).
serve big 7804 --cluster nats://127.0.0.1:4333 --cluster-name boot --snapshot-every 5
"$BIN" bench --target http://127.0.0.1:7804 --load-pois 1000000 --load-travellers 1000000 \
    --workload healthz --duration 1 --warmup 0 > /dev/null
for _ in $(seq 1 120); do
    grep -q "snapshot uploaded" "$work/big.log" && grep "snapshot uploaded" "$work/big.log" | tail -1 | grep -q "seq=[1-9]" && break
    sleep 1
done
sleep 6 # the next round, covering everything loaded
start=$(date +%s.%N)
serve newcomer 7805 --cluster nats://127.0.0.1:4333 --cluster-name boot
end=$(date +%s.%N)
counts=$(curl -s 127.0.0.1:7805/v1/stats | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["pois"], "POIs,", s["travellers"], "travellers")')
echo "bootstrap: a new node started from the uploaded snapshot with $counts, ready $(python3 -c "print(round($end - $start, 2))") s after its process started"
ls -la "$work/newcomer/snapshots" | tail -1
