# Shared by the cluster scripts (sourced, from the repository root): builds the release
# binary, starts one nats-server with JetStream on port $NATS_PORT in a temporary directory,
# and gives `serve NAME PORT FLAGS...`, which starts a node there and waits until it is
# ready. Everything started is stopped, and the directory removed, at exit.
cargo build --release --quiet
BIN=target/release/proxima
NATS=$(command -v nats-server || echo /usr/sbin/nats-server)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$NATS" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$work/nats" > /dev/null 2>&1 &
pids+=($!)
sleep 1
serve() { # NAME PORT FLAGS...
    local name=$1 port=$2; shift 2
    "$BIN" serve --no-sample --listen "127.0.0.1:$port" --data-dir "$work/$name" "$@" > "$work/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 200); do curl -sf "127.0.0.1:$port/readyz" > /dev/null && return; sleep 0.1; done
    echo "$name did not become ready"; cat "$work/$name.log"; exit 1
}
