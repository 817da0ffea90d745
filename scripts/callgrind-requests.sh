#!/usr/bin/env bash
# Instructions a request costs the server, counted by callgrind: stable on a noisy machine,
# where throughput is not. Starts BIN under valgrind on a fresh data dir (port 7886), loads
# what the request needs, switches collection on, sends N keep-alive requests from one
# curl, and prints the server's instructions divided by N (every thread counted: the
# workers, the log's thread, the metrics upkeep).
#
# usage: scripts/callgrind-requests.sh BIN healthz|position|nearby [N=2000] [OUT=callgrind.out]
#   healthz   GET /healthz
#   position  PUT /v1/travellers/{id}/position, each moving one of N existing travellers
#   nearby    GET /v1/pois/nearby, 2 km, limit 20, over 20,000 POIs like the benchmark's
#             (ids `bench:poi:N`, names `POI N`, no tags, every other one rated)
# Needs valgrind (Debian: valgrind), curl and python3. Annotate OUT with callgrind_annotate.
set -euo pipefail
. "$(dirname "$0")/require.sh"
require valgrind curl python3
bin=$(realpath "$1"); kind=$2; n=${3:-2000}; out=$(realpath -m "${4:-callgrind.out}")
port=7886; base="http://127.0.0.1:$port"
work=$(mktemp -d)
key="callgrind-key-0123456789"
echo "$key read,write" > "$work/keys"
auth="authorization: Bearer $key"

valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" \
    "$bin" serve --no-sample --listen "127.0.0.1:$port" --data-dir "$work/data" \
    --fsync batch --keys "$work/keys" > "$work/server.log" 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do curl -sf "$base/readyz" > /dev/null && break; sleep 0.2; done
curl -sf "$base/readyz" > /dev/null || { echo "the server did not start:"; cat "$work/server.log"; exit 1; }

now=$(($(date +%s) * 1000))
urls=()
case $kind in
healthz)
    for i in $(seq 1 "$n"); do urls+=("$base/healthz"); done
    args=() ;;
position)
    for i in $(seq 0 $((n - 1))); do
        echo "{\"id\":\"t$i\",\"lat\":48.85,\"lon\":2.35,\"ts\":$((now - 60000))}"
    done > "$work/travellers.ndjson"
    curl -sf -H "$auth" -H 'content-type: application/x-ndjson' \
        --data-binary @"$work/travellers.ndjson" "$base/v1/positions" > /dev/null
    for i in $(seq 0 $((n - 1))); do urls+=("$base/v1/travellers/t$i/position"); done
    args=(-X PUT -H "$auth" -H 'content-type: application/json'
          -d "{\"lat\":48.86,\"lon\":2.36,\"ts\":$now}") ;;
nearby)
    python3 - "$work/pois.ndjson" <<'EOF'
import random, sys
random.seed(1)
categories = ["cafe", "restaurant", "museum", "hotel", "shop", "park", "bar", "pharmacy"]
with open(sys.argv[1], "w") as f:
    for j in range(20000):
        lat = 60.17 + random.uniform(-0.05, 0.05)
        lon = 24.94 + random.uniform(-0.1, 0.1)
        rating = f',"rating":{round(random.uniform(0, 10), 1)}' if j % 2 == 0 else ""
        f.write(f'{{"id":"bench:poi:{j}","lat":{lat},"lon":{lon},"name":"POI {j}",'
                f'"category":"{random.choice(categories)}"{rating}}}\n')
EOF
    curl -sf -H "$auth" -H 'content-type: application/x-ndjson' \
        --data-binary @"$work/pois.ndjson" "$base/v1/pois/import?format=ndjson" > /dev/null
    for i in $(seq 0 $((n - 1))); do
        urls+=("$(printf '%s/v1/pois/nearby?lat=60.1%03d&lon=24.9%03d&radius_m=2000&limit=20' \
            "$base" $((i % 200 + 600)) $((i % 300 + 300)))")
    done
    args=(-H "$auth") ;;
*) echo "unknown request kind $kind"; exit 2 ;;
esac

callgrind_control -i on "$server" > /dev/null
bytes=$(curl -s "${args[@]}" "${urls[@]}" | wc -c)
callgrind_control -i off "$server" > /dev/null
kill -INT $server; wait $server || true
total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "$kind: $n requests, $bytes response bytes, $((total / n)) instructions a request ($out)"
