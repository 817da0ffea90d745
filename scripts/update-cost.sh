#!/usr/bin/env bash
# Server CPU per position update, as Tile38's figures were taken: TRAVELLERS travellers
# (sqrt-population data), random moves in batches of 1,000 (`proxima bench --workload
# positions`), and the server's own CPU time (user + system, from /proc/PID/stat) over the
# updates it applied (`proxima_position_updates_applied_total`), for
#   - no fences;
#   - the `fences` workload's 10,000 static fences (circles and 50-vertex polygons, 200 m
#     to 5 km, around city centres), left in place (`--keep-fences`);
#   - the `roaming` workload's 500 m roaming fences (one around every tenth traveller,
#     seen by it and the nine friends it travels with), left in place;
#   - a 500 m roaming fence around every traveller, everyone public (`--roaming-every 1`:
#     each fence sees everyone within 500 m, as Tile38's `ROAM people * 500`).
# Each is measured on a fresh server per round; the fences' set-up is outside the window.
# Prints each round and the medians, µs a update and each ÷ the no-fence cost, and the
# share of moves the judging thread dropped unjudged (`judging_coalesced`: it runs niced,
# so under a closed loop that saturates the cores it falls behind and keeps only each
# traveller's newest 16 moves; the fences' cost is then only partly in the figure).
# RATE (batches of 1,000 a second, over 8 connections) runs an open loop instead, slow
# enough for the judging thread to keep up: the figure then holds every move judged.
#
# CASES picks the cases (default "none fences roaming roaming-all").
#
#   [RATE=N] [CASES=...] scripts/update-cost.sh [ROUNDS] [TRAVELLERS] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
travellers=${2:-200000}
duration=${3:-10}
port=${PORT:-7898}
pace=()
[ -n "${RATE:-}" ] && pace=(--rate "$RATE" --connections 8)
. scripts/lib.sh
coalesced() {
  curl -sf "http://127.0.0.1:$port/v1/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["judging_coalesced"])'
}
target="http://127.0.0.1:$port"
bench() {
  "$bin" bench --target "$target" --distribution sqrt-population --travellers "$travellers" "$@"
}

for round in $(seq 1 "$rounds"); do
  for fences in ${CASES:-none fences roaming roaming-all}; do
    start_fence_case "$fences" "$port" "$travellers"
    c0=$(server_cpu_s)
    a0=$(updates_applied "$port")
    j0=$(coalesced)
    bench --workload positions --duration "$duration" --warmup 0 "${pace[@]}" >/dev/null
    c1=$(server_cpu_s)
    a1=$(updates_applied "$port")
    j1=$(coalesced)
    echo "$round $fences $c0 $c1 $a0 $a1 $j0 $j1" | tee -a "$work/cost.txt"
    stop_server
  done
done

python3 - "$work/cost.txt" <<'PY'
import collections, statistics, sys
cost = collections.defaultdict(dict)  # fences -> round -> µs a update
dropped = collections.defaultdict(dict)  # fences -> round -> share of moves not judged
for line in open(sys.argv[1]):
    rnd, fences, c0, c1, a0, a1, j0, j1 = line.split()
    cost[fences][rnd] = (float(c1) - float(c0)) * 1e6 / (int(a1) - int(a0))
    dropped[fences][rnd] = (int(j1) - int(j0)) / (int(a1) - int(a0))
rounds = sorted(cost["none"])
for fences in [f for f in ("none", "fences", "roaming", "roaming-all") if f in cost]:
    us = [cost[fences][r] for r in rounds]
    rates = [cost["none"][r] / cost[fences][r] for r in rounds]
    print(f"{fences:8} µs a update {statistics.median(us):.2f} ({', '.join(f'{u:.2f}' for u in us)}); "
          f"rate ÷ no fences {statistics.median(rates):.2f} ({', '.join(f'{x:.2f}' for x in rates)}); "
          f"moves not judged {statistics.median(dropped[fences][r] for r in rounds):.1%}")
PY
