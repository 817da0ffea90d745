#!/usr/bin/env bash
# Trips ÷ late-positions of two builds, alternating on the same machine in one run (the
# method of `trips-bench.sh`: a fresh release server per run, TRAVELLERS travellers loaded,
# the `late-positions` batches with no trips, then the same batches with every traveller
# on a trip). Prints each run and the medians of each build.
#
#   scripts/trips-ab.sh OLD_BINARY NEW_BINARY [ROUNDS] [TRAVELLERS] [DURATION]
#
# For example, the build before a change: `git stash; cargo build --release; cp
# target/release/proxima /tmp/proxima-old; git stash pop; cargo build --release`, then
# `scripts/trips-ab.sh /tmp/proxima-old target/release/proxima 2 1000000 90`.
set -euo pipefail
cd "$(dirname "$0")/.."
old=$(realpath "$1")
new=$(realpath "$2")
rounds=${3:-2}
travellers=${4:-1000000}
duration=${5:-90}
port=${PORT:-7895}
. scripts/lib.sh

for round in $(seq 1 "$rounds"); do
  for build in old new; do
    bin=$old
    [ "$build" = new ] && bin=$new
    start_server "$port" --traveller-ttl 86400
    # The same load generator for both builds.
    "$new" bench --target "http://127.0.0.1:$port" --workload late-positions,trips \
      --travellers "$travellers" --load-travellers "$travellers" --duration "$duration" \
      --json >"$work/$build-$round.json"
    stop_server
    python3 - "$work/$build-$round.json" "$build" "$round" <<'PY' | tee -a "$work/runs.txt"
import json, sys
reports = {}
for line in open(sys.argv[1]):
    if line.strip():
        value = json.loads(line)
        reports[value["workload"]] = value
trips = reports["trips"]
print(sys.argv[2], sys.argv[3], trips["updates_per_s"],
      reports["late-positions"]["updates_per_s"], trips["vs_late_positions"], trips.get("refused", 0))
PY
  done
done

python3 - "$work/runs.txt" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    build, _, trips, late, ratio, refused = line.split()
    runs[build].append((float(trips), float(late), float(ratio), int(refused)))
for build in ("old", "new"):
    rows = runs[build]
    print(f"{build}: trips ÷ late-positions {statistics.median(r[2] for r in rows):.3f} "
          f"({', '.join(f'{r[2]:.3f}' for r in rows)}), trips updates/s "
          f"{statistics.median(r[0] for r in rows):,.0f} ({', '.join(f'{r[0]:,.0f}' for r in rows)}), "
          f"refused {', '.join(str(r[3]) for r in rows)}")
PY
