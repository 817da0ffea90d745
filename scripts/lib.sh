# What the benchmark scripts share, sourced (`. scripts/lib.sh`) after `cd` to the
# repository: a release build ($bin), a scratch folder ($work) removed on exit with any
# server still running, and a fresh server on a port, started and waited for.
#
#   start_server PORT [serve flags...]   # a fresh data dir under $work; sets $server
#   stop_server
#   start_redis PORT                     # a redis-server, persistence off; sets $redis
#   stop_redis
#   start_fence_case CASE PORT TRAVELLERS  # start_server with TRAVELLERS loaded and CASE's
#                                        # fences put (see below); needs the caller's `bench`
#   attack_keys ATTACKERS                # $victim's key and ATTACKERS attacker keys in
#                                        # $work/keys.txt (the attackers' in attackers.txt)
#   start_attack_server PORT             # a fresh keyed server for `proxima attack` ($SERVER_BIN
#                                        # if set: another build, attacked by this one's client)
#   walk_geojson POINTS                  # $work/walk.geojson: a walk of POINTS points
#   put_walk_trip URL [curl args...]     # trip `walk` of ann from $walk_t0, the walk imported
#   server_cpu_s                         # $server's CPU time so far (user + system), s
#   updates_applied PORT                 # its proxima_position_updates_applied_total
#
# start_server runs "$bin" as it is when called: set it to run another build.
. scripts/require.sh
require curl python3
bin=target/release/proxima
cargo build --release --quiet
work=$(mktemp -d)
server=
redis=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  [ -n "$redis" ] && kill "$redis" 2>/dev/null && wait "$redis" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {
  local port=$1
  shift
  rm -rf "$work/data"
  "$bin" serve --data-dir "$work/data" --no-sample --listen "127.0.0.1:$port" \
    --snapshot-every 0 "$@" >"$work/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "the server did not start:" >&2
  cat "$work/server.log" >&2
  return 1
}

stop_server() {
  kill "$server"
  wait "$server" 2>/dev/null || true
  server=
}

# A fresh server on PORT with TRAVELLERS travellers and the fences of CASE, left in place:
# `none`; `fences` (the `fences` workload's 10,000 static fences); `roaming` (a roaming fence
# around every tenth traveller); `roaming-all` (one around every traveller, everyone
# public, the server's fence limit raised to hold them). The loads go through the caller's
# `bench` function (`bench ARGS...`: `proxima bench` aimed at the server).
start_fence_case() {
  local fences=$1 port=$2 travellers=$3
  if [ "$fences" = roaming-all ]; then
    start_server "$port" --max-fences $((travellers + 1000))
  else
    start_server "$port"
  fi
  bench --load-travellers "$travellers" --workload healthz --duration 0.5 >/dev/null
  case $fences in
    none) ;;
    roaming-all) bench --workload roaming --roaming-every 1 --keep-fences --duration 1 --warmup 0 >/dev/null ;;
    *) bench --workload "$fences" --keep-fences --duration 1 --warmup 0 >/dev/null ;;
  esac
}

# The keys `proxima attack` runs with: one victim key ($victim, read and write) and
# ATTACKERS ordinary attacker keys, in $work/keys.txt; the attackers' alone in
# $work/attackers.txt.
attack_keys() {
  victim=victim-key-0123456789abcdef
  {
    echo "$victim read,write"
    for i in $(seq 1 "$1"); do printf 'attacker-key-%04d-abcdef read,write\n' "$i"; done
  } >"$work/keys.txt"
  grep attacker "$work/keys.txt" >"$work/attackers.txt"
}

# A fresh server on PORT with the keys of `attack_keys`, its output in $work/server.out and
# server.err. Every caller of an attack run connects from 127.0.0.1, so the per-address
# connection limit (a quarter of --max-connections) would shut the victim out with the
# attackers: it is raised to --max-connections, as for callers behind one proxy.
start_attack_server() {
  rm -rf "$work/data"
  "${SERVER_BIN:-$bin}" serve --no-sample --listen "127.0.0.1:$1" --keys "$work/keys.txt" \
    --data-dir "$work/data" --max-connections-per-address 4096 >"$work/server.out" 2>"$work/server.err" &
  server=$!
  for _ in $(seq 1 100); do
    grep -q listening "$work/server.out" 2>/dev/null && break
    sleep 0.1
  done
}

start_redis() {
  require redis-server redis-cli
  redis-server --port "$1" --save '' --appendonly no >"$work/redis.log" 2>&1 &
  redis=$!
  until redis-cli -p "$1" ping >/dev/null 2>&1; do
    kill -0 "$redis" 2>/dev/null || { cat "$work/redis.log" >&2; return 1; }
    sleep 0.05
  done
}

stop_redis() {
  kill "$redis"
  wait "$redis" 2>/dev/null || true
  redis=
}

server_cpu_s() {
  awk -v t="$(getconf CLK_TCK)" '{printf "%.2f\n", ($14 + $15) / t}' "/proc/$server/stat"
}

updates_applied() {
  curl -sf "http://127.0.0.1:$1/metrics" |
    awk '/^proxima_position_updates_applied_total/ {printf "%.0f\n", $2}'
}

# The first instant of `walk_geojson`'s walk, Unix ms.
walk_t0=1704092400000

# $work/walk.geojson: a walk of POINTS points from Paris, a point every 5 s from $walk_t0,
# 7 m apart, turning gently (a FeatureCollection of Points with `timestamp`s).
walk_geojson() {
  python3 - "$1" "$walk_t0" >"$work/walk.geojson" <<'PY'
import json, math, sys
n, t0 = int(sys.argv[1]), int(sys.argv[2])
lat, lon, heading = 48.85, 2.35, 0.3
out = ['{"type":"FeatureCollection","features":[']
for i in range(n):
    heading += math.sin(i / 50.0) * 0.05
    lat += 7 * math.cos(heading) / 111_195
    lon += 7 * math.sin(heading) / (111_195 * math.cos(math.radians(lat)))
    f = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]},
         "properties": {"timestamp": t0 + 5000 * i}}
    out.append(("," if i else "") + json.dumps(f, separators=(",", ":")))
out.append("]}")
sys.stdout.write("".join(out))
PY
}

# Trip `walk` of traveller ann, from $walk_t0 and running, with $work/walk.geojson imported
# into it, on the server at URL (curl args after it: a key's header, say).
put_walk_trip() {
  local url=$1
  shift
  curl -sf "$@" -X PUT "$url/v1/trips/walk" -H 'content-type: application/json' \
    -d "{\"traveller\":\"ann\",\"title\":\"Walk\",\"started_at\":$walk_t0}" >/dev/null
  curl -sf "$@" -X POST "$url/v1/trips/walk/import?format=geojson" \
    --data-binary @"$work/walk.geojson" >/dev/null
}
