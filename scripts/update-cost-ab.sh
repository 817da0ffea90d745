#!/usr/bin/env bash
# Server CPU per position update of two builds, alternating on the same machine in one run
# (the method of `update-cost.sh`: TRAVELLERS travellers from the sqrt-population data,
# random moves in batches of 1,000, the server's CPU time from /proc over the updates it
# applied), with no fences and with the `fences` workload's 10,000 static fences, a fresh
# server per case. Prints each round and the medians.
#
# RATE (batches of 1,000 a second over 8 connections) runs an open loop, as in
# `update-cost.sh`, slow enough for the judging thread to judge every move. CASES picks the
# cases, as in `update-cost.sh` (default "none fences"; also `roaming`, `roaming-all`).
#
#   [RATE=N] scripts/update-cost-ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [TRAVELLERS] [DURATION]
#
# For example, the build before a change: `git stash; cargo build --release; cp
# target/release/proxima /tmp/proxima-old; git stash pop; cargo build --release`, then
# `scripts/update-cost-ab.sh /tmp/proxima-old target/release/proxima`.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(realpath "$1")
new=$(realpath "$2")
rounds=${3:-3}
travellers=${4:-200000}
duration=${5:-10}
port=${PORT:-7899}
pace=()
[ -n "${RATE:-}" ] && pace=(--rate "$RATE" --connections 8)
. scripts/lib.sh
target="http://127.0.0.1:$port"
# The same load generator for both builds.
bench() {
  "$new" bench --target "$target" --distribution sqrt-population --travellers "$travellers" "$@"
}

for round in $(seq 1 "$rounds"); do
  for build in old new; do
    bin=$old
    [ "$build" = new ] && bin=$new
    for fences in ${CASES:-none fences}; do
      start_fence_case "$fences" "$port" "$travellers"
      c0=$(server_cpu_s)
      a0=$(updates_applied "$port")
      bench --workload positions --duration "$duration" --warmup 0 "${pace[@]}" >/dev/null
      c1=$(server_cpu_s)
      a1=$(updates_applied "$port")
      echo "$round $build $fences $c0 $c1 $a0 $a1" | tee -a "$work/cost.txt"
      stop_server
    done
  done
done

python3 - "$work/cost.txt" <<'PY'
import collections, statistics, sys
cost = collections.defaultdict(dict)  # (build, fences) -> round -> µs a update
for line in open(sys.argv[1]):
    rnd, build, fences, c0, c1, a0, a1 = line.split()
    cost[(build, fences)][rnd] = (float(c1) - float(c0)) * 1e6 / (int(a1) - int(a0))
cases = [c for c in ("none", "fences", "roaming", "roaming-all") if ("old", c) in cost]
for build in ("old", "new"):
    for fences in cases:
        us = list(cost[(build, fences)].values())
        print(f"{build} {fences:11} µs a update {statistics.median(us):.2f} ({', '.join(f'{u:.2f}' for u in us)})")
    if "none" in cases:
        for fences in cases[1:]:
            rates = [cost[(build, "none")][r] / cost[(build, fences)][r] for r in cost[(build, "none")]]
            print(f"{build} rate with {fences} ÷ without {statistics.median(rates):.2f} ({', '.join(f'{x:.2f}' for x in rates)})")
PY
