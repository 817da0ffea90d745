# What the benchmark scripts share, sourced (`. scripts/lib.sh`) after `cd` to the
# repository: a release build ($bin), a scratch folder ($work) removed on exit with any
# server still running, and a fresh server on a port, started and waited for.
#
#   start_server PORT [serve flags...]   # a fresh data dir under $work; sets $server
#   stop_server
#   start_redis PORT                     # a redis-server, persistence off; sets $redis
#   stop_redis
#   server_cpu_s                         # $server's CPU time so far (user + system), s
#   updates_applied PORT                 # its proxima_position_updates_applied_total
#
# start_server runs "$bin" as it is when called: set it to run another build.
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

start_redis() {
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
