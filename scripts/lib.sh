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
#   start_attack_server PORT             # a fresh keyed server for `proxima attack`
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
  "$bin" serve --no-sample --listen "127.0.0.1:$1" --keys "$work/keys.txt" \
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
