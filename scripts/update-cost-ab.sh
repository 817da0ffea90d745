#!/usr/bin/env bash
# Server CPU per position update of two builds, alternating on the same machine in one run
# (the method of `update-cost.sh`: TRAVELLERS travellers from the sqrt-population data,
# random moves in batches of 1,000, the server's CPU time from /proc over the updates it
# applied), with no fences and with the `fences` workload's 10,000 static fences, a fresh
# server per case. Prints each round and the medians.
#
#   scripts/update-cost-ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [TRAVELLERS] [DURATION]
#
# For example, the build before a change: `git stash; cargo build --release; cp
# target/release/proxima /tmp/proxima-old; git stash pop; cargo build --release`, then
# `scripts/update-cost-ab.sh /tmp/proxima-old target/release/proxima`.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1
new=$2
rounds=${3:-3}
travellers=${4:-200000}
duration=${5:-10}
port=${PORT:-7899}
target="http://127.0.0.1:$port"
ticks=$(getconf CLK_TCK)
work=$(mktemp -d)
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cpu_s() { awk -v t="$ticks" '{printf "%.2f\n", ($14 + $15) / t}' "/proc/$server/stat"; }
applied() {
  curl -sf "$target/metrics" | awk '/^proxima_position_updates_applied_total/ {printf "%.0f\n", $2}'
}

for round in $(seq 1 "$rounds"); do
  for build in old new; do
    binary=$old
    [ "$build" = new ] && binary=$new
    for fences in none fences; do
      rm -rf "$work/data"
      "$binary" serve --data-dir "$work/data" --no-sample --listen "127.0.0.1:$port" \
        --snapshot-every 0 >"$work/server.log" 2>&1 &
      server=$!
      for _ in $(seq 1 100); do
        curl -sf "$target/readyz" >/dev/null && break
        sleep 0.1
      done
      bench() {
        "$new" bench --target "$target" --distribution sqrt-population --travellers "$travellers" "$@"
      }
      bench --load-travellers "$travellers" --workload healthz --duration 0.5 >/dev/null
      if [ "$fences" = fences ]; then
        bench --workload fences --keep-fences --duration 1 --warmup 0 >/dev/null
      fi
      c0=$(cpu_s)
      a0=$(applied)
      bench --workload positions --duration "$duration" --warmup 0 >/dev/null
      c1=$(cpu_s)
      a1=$(applied)
      echo "$round $build $fences $c0 $c1 $a0 $a1" | tee -a "$work/cost.txt"
      kill "$server"
      wait "$server" 2>/dev/null || true
      server=
    done
  done
done

python3 - "$work/cost.txt" <<'PY'
import collections, statistics, sys
cost = collections.defaultdict(dict)  # (build, fences) -> round -> µs a update
for line in open(sys.argv[1]):
    rnd, build, fences, c0, c1, a0, a1 = line.split()
    cost[(build, fences)][rnd] = (float(c1) - float(c0)) * 1e6 / (int(a1) - int(a0))
for build in ("old", "new"):
    for fences in ("none", "fences"):
        us = list(cost[(build, fences)].values())
        print(f"{build} {fences:6} µs a update {statistics.median(us):.2f} ({', '.join(f'{u:.2f}' for u in us)})")
    rates = [cost[(build, "none")][r] / cost[(build, "fences")][r] for r in cost[(build, "none")]]
    print(f"{build} rate with fences ÷ without {statistics.median(rates):.2f} ({', '.join(f'{x:.2f}' for x in rates)})")
PY
