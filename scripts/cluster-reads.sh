#!/usr/bin/env bash
# Read throughput of a cluster with 1 and with 3 nodes on this machine: nearby-pois (2 km,
# k = 20) over 200,000 POIs, 30 connections in all, closed loop, 5 s; with 3 nodes, three
# `proxima bench` processes run at once, one per node, 10 connections each, and their
# throughputs are summed. ROUNDS rounds, alternating. It shows what more nodes give on
# the cores this machine has, not how a cluster scales across machines.
# Usage: scripts/cluster-reads.sh [ROUNDS]   (needs nats-server; builds the release binary)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
NATS_PORT=4334
. scripts/cluster-lib.sh
for port in 7811 7812 7813; do
    serve "n$port" "$port" --cluster nats://127.0.0.1:4334 --cluster-name reads
done
"$BIN" bench --target http://127.0.0.1:7811 --load-pois 200000 --workload healthz --duration 1 --warmup 0 > /dev/null
seq=$(curl -s 127.0.0.1:7811/v1/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["cluster"]["applied_seq"])')
for port in 7812 7813; do curl -sf "127.0.0.1:$port/v1/stats?min_seq=$seq" > /dev/null; done
rate() { python3 -c 'import json,sys; print(sum(json.loads(l)["throughput_per_s"] for l in sys.stdin if l.startswith("{")))'; }
for round in $(seq 1 "$ROUNDS"); do
    one=$("$BIN" bench --target http://127.0.0.1:7811 --workload nearby-pois --connections 30 --duration 5 --warmup 1 --json | rate)
    three=$(for port in 7811 7812 7813; do
        "$BIN" bench --target "http://127.0.0.1:$port" --workload nearby-pois --connections 10 --duration 5 --warmup 1 --json &
    done | rate)
    echo "round $round: 1 node $one/s, 3 nodes $three/s"
done
