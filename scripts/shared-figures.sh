#!/usr/bin/env bash
# What a share link's reader costs when its figures are not the trip's own: `wrk` on
# `GET /v1/shared/{token}` of one trip of POINTS imported points (a walk, a point every 5 s),
# through a link with a window (`show_from` a tenth of the way in), then with a privacy
# zone of the traveller's around the walk's start as well; requests a second, each build
# on a fresh server, alternating, ROUNDS rounds. The share-link rate limit is raised out
# of the way: this is the server's cost, not the limit.
#
#   scripts/shared-figures.sh OLD_BIN NEW_BIN [ROUNDS] [POINTS]
set -euo pipefail
cd "$(dirname "$0")/.."
old_bin=$1
new_bin=$2
rounds=${3:-3}
points=${4:-500000}
port=${PORT:-7899}
. scripts/lib.sh
require wrk
url="http://127.0.0.1:$port"

walk_geojson "$points"

measure() { # bin -> "window_rps zoned_rps"
  bin=$1
  start_server "$port" --link-rate 1000000
  put_walk_trip "$url"
  local from=$((walk_t0 + 5000 * points / 10))
  local token
  token=$(curl -sf -X POST "$url/v1/trips/walk/links" -H 'content-type: application/json' \
    -d "{\"expires_at\":$(( $(date +%s) * 1000 + 86400000 )),\"show_from\":$from}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  local window zoned
  window=$(wrk -t2 -c8 -d10s "$url/v1/shared/$token" | awk '/Requests\/sec/ {print $2}')
  curl -sf -X PUT "$url/v1/travellers/ann/privacy-zones/home" -H 'content-type: application/json' \
    -d '{"area":{"type":"Circle","center":[2.35,48.85],"radius_m":500}}' >/dev/null
  zoned=$(wrk -t2 -c8 -d10s "$url/v1/shared/$token" | awk '/Requests\/sec/ {print $2}')
  stop_server
  echo "$window $zoned"
}

for round in $(seq 1 "$rounds"); do
  read -r ow oz < <(measure "$old_bin")
  read -r nw nz < <(measure "$new_bin")
  echo "{\"round\": $round, \"old_window\": $ow, \"new_window\": $nw, \"old_zoned\": $oz, \"new_zoned\": $nz}"
done
