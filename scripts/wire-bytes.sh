#!/usr/bin/env bash
# Every route's answer, byte for byte: starts BIN on a fresh data dir (port 7887), sends a
# fixed script of requests (good and bad, on every route), and writes each answer's status,
# content type and body to OUT, one block a request. Two builds that answer alike give the
# same file, so `diff` shows what a change did to the wire. Values that differ from run to
# run (uptime, memory, timings, the data dir's path) are masked.
#
# usage: scripts/wire-bytes.sh BIN OUT
# Needs curl. Every `ts` is WIRE_TS (default: the start of yesterday, UTC, in Unix ms) plus a
# fixed offset, and the time-to-live a year, so two runs on the same day, or with the same
# WIRE_TS, send and get the same bytes.
set -euo pipefail
bin=$(realpath "$1"); out=$(realpath -m "$2")
port=7887; base="http://127.0.0.1:$port"
t0=${WIRE_TS:-$(( ($(date +%s) / 86400 - 1) * 86400000 ))}
work=$(mktemp -d)
"$bin" serve --no-sample --listen "127.0.0.1:$port" --data-dir "$work/data" \
    --traveller-ttl 31536000 --cursor-secret wire-bytes-secret > "$work/server.log" 2>&1 &
server=$!
trap 'kill -INT $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do curl -sf "$base/readyz" > /dev/null && break; sleep 0.1; done
: > "$out"

# call NAME METHOD PATH [curl args...]
call() {
    local name=$1 method=$2 path=$3; shift 3
    local meta
    meta=$(curl -s -X "$method" -o "$work/body" -w '%{http_code} %{content_type}' "$@" "$base$path")
    {
        echo "### $name: $method $path"
        echo "$meta"
        sed -e "s#$work#WORK#g" \
            -e 's/"uptime_s":[0-9]*/"uptime_s":N/' -e 's/"rss_bytes":[0-9]*/"rss_bytes":N/' \
            -e 's/"millis":[0-9]*/"millis":N/g' -e 's/"at_ms":[0-9]*/"at_ms":N/' \
            -e 's/"fsyncs":[0-9]*/"fsyncs":N/' "$work/body"
        echo
    } >> "$out"
}
json=(-H 'content-type: application/json')
ndjson=(-H 'content-type: application/x-ndjson')

call healthz GET /healthz
call readyz GET /readyz
call openapi GET /openapi.json
call no-route GET /nowhere
call wrong-method PATCH /v1/pois/nearby

# POIs, one at a time.
call put-poi-created PUT /v1/pois/cafe-1 "${json[@]}" \
    -d '{"lat":60.1699,"lon":24.9384,"name":"Café \"Ekberg\"\n1852","category":"cafe","tags":{"cuisine":"coffee","wifi":"yes"},"rating":4.5}'
call put-poi-replaced PUT /v1/pois/cafe-1 "${json[@]}" \
    -d '{"id":"cafe-1","lat":60.1699,"lon":24.9384,"name":"Café Ekberg","category":"cafe","rating":4.6}'
call put-poi-museum PUT /v1/pois/museum-1 "${json[@]}" \
    -d '{"lat":60.1719,"lon":24.9414,"name":"Ateneum","category":"museum"}'
call put-poi-antimeridian PUT /v1/pois/fiji-1 "${json[@]}" \
    -d '{"lat":-17.7,"lon":179.99,"name":"East","category":"viewpoint"}'
call put-poi-bad-lat PUT /v1/pois/bad "${json[@]}" -d '{"lat":91,"lon":0,"name":"x","category":"cafe"}'
call put-poi-bad-type PUT /v1/pois/bad -H 'content-type: text/plain' -d '{}'
call put-poi-unknown-field PUT /v1/pois/bad "${json[@]}" \
    -d '{"lat":1,"lon":0,"name":"x","category":"cafe","colour":"red"}'
call put-poi-id-mismatch PUT /v1/pois/a "${json[@]}" -d '{"id":"b","lat":1,"lon":0,"name":"x","category":"cafe"}'
call get-poi GET /v1/pois/cafe-1
call get-poi-missing GET /v1/pois/nobody
call delete-poi DELETE /v1/pois/museum-1
call delete-poi-missing DELETE /v1/pois/museum-1

# Imports.
printf 'id,lat,lon,name,category,rating,stars\nc1,60.17,24.94,One,cafe,3.5,2\nc2,60.18,24.95,Two,cafe,,\nbad,95,0,Bad,cafe,,\nc3,60.16,24.93,"Three, Ltd",bar,9,5\n' > "$work/pois.csv"
call import-csv POST '/v1/pois/import?format=csv' --data-binary @"$work/pois.csv"
printf '{"id":"n1","lat":60.19,"lon":24.96,"name":"N1","category":"shop"}\nnot json\n{"id":"n2","lat":-17.71,"lon":-179.99,"name":"West","category":"viewpoint"}\n' > "$work/pois.ndjson"
call import-ndjson POST '/v1/pois/import?format=ndjson' --data-binary @"$work/pois.ndjson"
call import-strict POST '/v1/pois/import?format=ndjson&strict=true' --data-binary @"$work/pois.ndjson"
call import-geojson POST '/v1/pois/import?format=geojson' --data-binary \
    '{"type":"FeatureCollection","features":[{"type":"Feature","id":"g1","geometry":{"type":"Point","coordinates":[24.97,60.2]},"properties":{"name":"G1","category":"park","opening":"24/7"}},{"type":"Feature","geometry":null,"properties":{}}]}'
call import-bad-format POST '/v1/pois/import?format=xml' --data-binary 'x'

# POI queries.
call nearby GET '/v1/pois/nearby?lat=60.17&lon=24.94&radius_m=5000'
call nearby-k GET '/v1/pois/nearby?lat=60.17&lon=24.94&limit=2'
call nearby-filter GET '/v1/pois/nearby?lat=60.17&lon=24.94&category=cafe&category=bar&min_rating=3'
call nearby-antimeridian GET '/v1/pois/nearby?lat=-17.7&lon=-179.99&radius_m=10000'
call nearby-page1 GET '/v1/pois/nearby?lat=60.17&lon=24.94&limit=3'
cursor=$(sed -n 's/.*"next_cursor":"\([^"]*\)".*/\1/p' "$work/body")
call nearby-page2 GET "/v1/pois/nearby?lat=60.17&lon=24.94&limit=3&cursor=$cursor"
call nearby-bad-cursor GET '/v1/pois/nearby?lat=60.17&lon=24.94&limit=3&cursor=abc'
call nearby-missing-lat GET '/v1/pois/nearby?lon=24.94'
call nearby-bad-radius GET '/v1/pois/nearby?lat=1&lon=1&radius_m=-1'
call nearby-nan GET '/v1/pois/nearby?lat=1&lon=1&radius_m=NaN'
call nearby-bad-limit GET '/v1/pois/nearby?lat=1&lon=1&limit=0'
call nearby-unknown GET '/v1/pois/nearby?lat=1&lon=1&colour=red'
call nearby-repeated GET '/v1/pois/nearby?lat=1&lat=2&lon=1'
call nearby-bad-category GET '/v1/pois/nearby?lat=1&lon=1&category=Caf%C3%A9'
call within GET '/v1/pois/within?bbox=24.9,60.1,25.0,60.2'
call within-antimeridian GET '/v1/pois/within?bbox=179,-18,-179,-17'
call within-page1 GET '/v1/pois/within?bbox=24.9,60.1,25.0,60.2&limit=2'
cursor=$(sed -n 's/.*"next_cursor":"\([^"]*\)".*/\1/p' "$work/body")
call within-page2 GET "/v1/pois/within?bbox=24.9,60.1,25.0,60.2&limit=2&cursor=$cursor"
call within-bad-bbox GET '/v1/pois/within?bbox=1,2,3'
call within-missing-bbox GET '/v1/pois/within'
call within-bad-lat GET '/v1/pois/within?bbox=0,95,1,96'

# Travellers.
call position PUT /v1/travellers/ann/position "${json[@]}" \
    -d "{\"lat\":60.17,\"lon\":24.94,\"ts\":$t0,\"accuracy_m\":5,\"trip_id\":\"trip-1\"}"
call position-stale PUT /v1/travellers/ann/position "${json[@]}" -d "{\"lat\":60.1,\"lon\":24.9,\"ts\":$((t0 - 1000))}"
call position-bad PUT /v1/travellers/ann/position "${json[@]}" -d '{"lat":60.1,"lon":181,"ts":1}'
call position-bad-ts PUT /v1/travellers/ann/position "${json[@]}" -d '{"lat":60.1,"lon":1,"ts":-5}'
call position-bad-id PUT '/v1/travellers/%01/position' "${json[@]}" -d '{"lat":60.1,"lon":1,"ts":5}'
printf "{\"id\":\"bob\",\"lat\":60.171,\"lon\":24.941,\"ts\":$((t0 + 1000))}\n{\"id\":\"cyd\",\"lat\":60.175,\"lon\":24.945,\"ts\":$((t0 + 2000))}\n{\"id\":\"bad\",\"lat\":99,\"lon\":0,\"ts\":1}\nnope\n{\"id\":\"ann\",\"lat\":60.0,\"lon\":24.0,\"ts\":$((t0 - 100000000000))}\n" > "$work/batch.ndjson"
call batch-ndjson POST /v1/positions "${ndjson[@]}" --data-binary @"$work/batch.ndjson"
call batch-array POST /v1/positions "${json[@]}" \
    -d "[{\"id\":\"dee\",\"lat\":-17.7,\"lon\":179.999,\"ts\":$((t0 + 3000))},{\"id\":\"\",\"lat\":1,\"lon\":1,\"ts\":1}]"
call batch-empty POST /v1/positions "${ndjson[@]}" --data-binary $'\n'
call batch-bad-type POST /v1/positions -H 'content-type: text/csv' -d 'x'
call sharing-public PUT /v1/travellers/bob/sharing "${json[@]}" -d '{"visibility":"public"}'
call sharing-friends PUT /v1/travellers/ann/sharing "${json[@]}" -d '{"visibility":"friends","viewers":["zed","bob","bob"]}'
call sharing-bad PUT /v1/travellers/ann/sharing "${json[@]}" -d '{"visibility":"everyone"}'
call get-traveller-self GET '/v1/travellers/ann?viewer=ann'
call get-traveller-friend GET '/v1/travellers/ann?viewer=bob'
call get-traveller-stranger GET '/v1/travellers/ann?viewer=eve'
call get-traveller-public GET /v1/travellers/bob
call get-traveller-bad-viewer GET '/v1/travellers/bob?viewer=a%2Fb'
call trail GET '/v1/travellers/ann/trail?viewer=ann'
call trail-since GET "/v1/travellers/ann/trail?viewer=ann&since=$t0"
call trail-hidden GET '/v1/travellers/ann/trail?viewer=eve'
call travellers-nearby GET '/v1/travellers/nearby?lat=60.17&lon=24.94&radius_m=2000&viewer=bob'
call travellers-nearby-all GET '/v1/travellers/nearby?lat=60.17&lon=24.94'
call travellers-nearby-antimeridian GET '/v1/travellers/nearby?lat=-17.7&lon=-179.99&radius_m=5000&viewer=dee'
call travellers-nearby-bad GET '/v1/travellers/nearby?lat=60.17&lon=24.94&radius_m=30000000'
call delete-traveller DELETE /v1/travellers/cyd
call delete-traveller-missing DELETE /v1/travellers/cyd

# Maps and operations.
call heatmap-pois GET '/v1/heatmap?bbox=24.9,60.1,25.0,60.25&resolution=7'
call heatmap-travellers GET '/v1/heatmap?bbox=24.9,60.1,25.0,60.25&resolution=9&layer=travellers'
call heatmap-bad-layer GET '/v1/heatmap?bbox=24.9,60.1,25.0,60.25&resolution=9&layer=roads'
call heatmap-bad-resolution GET '/v1/heatmap?bbox=24.9,60.1,25.0,60.25&resolution=16'
call heatmap-too-many GET '/v1/heatmap?bbox=-180,-90,180,90&resolution=12'
call snapshot POST /v1/admin/snapshot
call stats GET /v1/stats
echo "wrote $(grep -c '^### ' "$out") answers to $out"
